"""Private apt configurations for other Debian suites, without touching the system's apt state.

Each suite gets its own sources file, lists dir and archive cache under ``<root>/<suite>``.
The mirror host is read from the system's own apt sources, never hard-coded.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

SUITES = ("bullseye", "bookworm", "trixie", "sid")
SYSTEM_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


def system_mirror() -> str:
    """The first non-security Debian mirror URI found in the system's apt sources."""
    files: list[Path] = []
    for p in SYSTEM_SOURCES:
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix in (".list", ".sources"))
    for f in files:
        for line in f.read_text(errors="replace").splitlines():
            line = line.strip()
            if line.startswith("#"):
                continue
            for uri in re.findall(r"(https?://\S+)", line):
                uri = uri.rstrip("/")
                if uri.endswith("/debian"):
                    return uri
    raise RuntimeError("no Debian mirror found in the system apt sources")


class SuiteApt:
    """apt-get / apt-cache bound to one suite's private state directory."""

    def __init__(self, root: Path, suite: str, mirror: str | None = None) -> None:
        self.suite = suite
        self.dir = root / suite
        self.mirror = mirror or system_mirror()
        self.sources = self.dir / "sources.list"
        self.lists = self.dir / "lists"
        self.archives = self.dir / "archives"
        self.status = self.dir / "status"

    def options(self) -> list[str]:
        return [
            "-o", f"Dir::Etc::SourceList={self.sources}",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State::Lists={self.lists}",
            "-o", f"Dir::Cache::archives={self.archives}",
            "-o", f"Dir::Cache={self.dir / 'cache'}",
            "-o", f"Dir::State::status={self.status}",  # empty: ignore installed versions
            "-o", "Dir::Cache::pkgcache=",
            "-o", "Dir::Cache::srcpkgcache=",
            "-o", "APT::Sandbox::User=root",
            "-o", "Acquire::Languages=none",
            "-o", "APT::Get::AllowUnauthenticated=false",
        ]

    def setup(self) -> None:
        """Write the sources file and make the state directories."""
        for d in (self.lists / "partial", self.archives / "partial", self.dir / "cache"):
            d.mkdir(parents=True, exist_ok=True)
        self.status.touch()
        keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
        opts = f"[arch=amd64 signed-by={keyring}]"
        if self.suite == "sid":  # sid may be signed by a key newer than the local keyring
            opts = "[arch=amd64 trusted=yes]"
        text = (
            f"deb {opts} {self.mirror} {self.suite} main\n"
            f"deb-src {opts} {self.mirror} {self.suite} main\n"
        )
        self.sources.write_text(text)

    def run(self, tool: str, *args: str, cwd: Path | None = None, timeout: int = 1800) -> str:
        cmd = [tool, *self.options(), *args]
        res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join([tool, *args])} failed: {res.stderr.strip()[-800:]}")
        return res.stdout

    def update(self) -> None:
        self.setup()
        self.run("apt-get", "-q", "update")

    def is_updated(self) -> bool:
        return any(self.lists.glob("*_Sources*")) and any(self.lists.glob("*_Packages*"))

    def showsrc(self, src: str) -> list[dict[str, str]]:
        """Source stanzas for ``src`` (possibly several versions)."""
        try:
            out = self.run("apt-cache", "showsrc", "--only-source", src)
        except RuntimeError:
            return []
        return parse_stanzas(out)

    def show(self, pkg: str) -> list[dict[str, str]]:
        try:
            return parse_stanzas(self.run("apt-cache", "show", "--no-all-versions", pkg))
        except RuntimeError:
            return []

    def download(self, pkg: str, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        self.run("apt-get", "-q", "download", pkg, cwd=dest)

    def source(self, src: str, dest: Path) -> None:
        """Download and unpack a source package into ``dest``."""
        dest.mkdir(parents=True, exist_ok=True)
        self.run("apt-get", "-q", "source", "--only-source", src, cwd=dest, timeout=900)


def parse_stanzas(text: str) -> list[dict[str, str]]:
    """Parse deb822 stanzas (continuation lines are joined with newlines)."""
    out: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if cur:
                out.append(cur)
            cur, key = {}, ""
        elif line[0] in " \t" and key:
            cur[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, val = line.partition(":")
            cur[key] = val.strip()
    if cur:
        out.append(cur)
    return out
