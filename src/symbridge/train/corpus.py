"""Corpus builder: Debian binaries (official, static -dev archives, local rebuilds) per split.

Usage::

    python -m symbridge.train.corpus --split train|dev-eval --out /work/data/corpus [--rebuild]

Without ``--rebuild`` it downloads the binary packages of every source package of the split from
bullseye, bookworm, trixie and sid, keeps the x86-64 ELF files and links each static archive of a
``-dev`` package into one ELF.  With ``--rebuild`` it compiles a few small C sources with gcc and
clang at several optimisation levels instead.  Either way it finishes by rewriting the committed
manifest (``corpus/manifest-<split>.jsonl``) and pair list (``corpus/pairs-<split>.json``) from
the per-package record files, so both modes may run side by side.  Work is resumable: each finished
unit leaves a ``.done`` marker and a ``records.jsonl`` next to its files.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from symbridge.train.apt_suites import SUITES, SuiteApt

REPO = Path(__file__).resolve().parents[3]
SOURCE_LISTS = {  # copies of the project's lists (../shared/corpus), committed so that a clone has them
    "train": REPO / "corpus" / "train-sources.txt",
    "dev-eval": REPO / "corpus" / "dev-eval-sources.txt",
}
FORBIDDEN = {"miredo", "fdupes"}  # seed example packages: never in the corpus
MIN_FUNCS, MAX_ARCHIVE = 5, 20 * 1024 * 1024
REBUILDS = {
    "train": ["jansson", "giflib", "bzip2", "libconfig", "yajl", "lzo2", "hiredis", "libtommath",
              "libogg", "lmdb", "libmnl", "libexif", "msgpack-c", "c-ares",
              # second wave (2026-11-25, session 2): more small libraries and programs
              "attr", "acl", "libtasn1-6", "libidn2", "libffi", "libnftnl", "protobuf-c", "fribidi", "speex",
              "libcap2", "libseccomp", "gdbm", "libzip", "libgpg-error", "opus", "libuv1", "gzip", "bc",
              "diffutils", "libvorbis", "flac", "libmicrohttpd", "libusb-1.0",
              "xz-utils", "libpng1.6", "libwebp", "brotli", "libevent", "nghttp2", "libedit", "readline", "file",
              "libsndfile", "mpg123", "libtheora", "pixman", "libtomcrypt", "apr", "grep", "sed", "less", "tar",
              "findutils", "mpfr4", "libxslt",
              # third wave (session 3): packages the model already trains on that had no rebuilds yet
              "patch", "zip", "gmp", "tiff", "gawk", "make-dfsg", "libunistring", "wget",
              # fourth wave (session 6): the larger autoconf packages the model trains on (cross-optimisation
              # accuracy follows the amount of rebuilt code; glib2.0, openssl and fftw3 are not autoconf)
              "bash", "coreutils", "curl", "libgcrypt20", "ncurses", "openssh", "tcl8.6",
              # fifth wave (session 18): OpenSSL, with its own Configure
              "openssl"],
    "dev-eval": ["cjson", "lz4", "libdeflate", "jq", "libonig", "nettle"],
}
# sid only stands in for trixie when trixie's source is not on the mirror
REBUILD_SUITES = {"train": ["bookworm"], "dev-eval": ["bookworm", "bullseye", "trixie", "sid"]}
OPTS = {"train": ["-O0", "-O1", "-O2", "-O3", "-Os"], "dev-eval": ["-O0", "-O2", "-O3"]}
# rebuild passes: the essential levels for every package first, the extra ones after
OPT_PASSES = {"train": [["-O0", "-O2", "-O3"], ["-O1", "-Os"]], "dev-eval": [["-O0", "-O2", "-O3"]]}
COMPILERS = ["gcc", "clang"]
BUILD_TIMEOUT = int(os.environ.get("SYMBRIDGE_BUILD_TIMEOUT", "300"))  # seconds a build step may take (openssl: 2400)
SKIP_PKG = re.compile(
    r"(-doc|-dbg|-dbgsym|-udeb|-tests?|-perl|-java|-ocaml|-cil|-examples)$|^(python3?-|ruby-|gir1\.2-|lib32|libx32"
    r"|golang-|node-|php-|lua-)"
)


@dataclass
class Record:
    """One ELF file of the corpus (one manifest line)."""

    split: str
    source_package: str
    binary_package: str
    version: str
    suite: str
    origin: str  # official | static-dev | rebuild
    compiler: str
    flags: str
    relpath: str
    sha256: str
    kind: str  # shared | exec | static-linked-archive
    size: int


class Log:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = path.open("a")

    def __call__(self, msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        self.fh.write(line + "\n")
        self.fh.flush()
        print(line, flush=True)


# ---------------------------------------------------------------- ELF helpers

def elf_type(path: Path) -> str | None:
    """'shared' or 'exec' for an x86-64 ET_DYN/ET_EXEC file, else None."""
    if path.is_symlink() or not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError:
        return None
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        return None
    e_type, e_machine = struct.unpack_from("<HH", head, 16)
    if e_machine != 62 or e_type not in (2, 3):
        return None
    if e_type == 3 and re.search(r"\.so(\.|$)", path.name):
        return "shared"
    if e_type == 3 and not has_interp(path):
        return "shared"
    return "exec"


def has_interp(path: Path) -> bool:
    """Whether an ELF64 file has a PT_INTERP segment (a PIE executable)."""
    with path.open("rb") as f:
        hdr = f.read(64)
        phoff = struct.unpack_from("<Q", hdr, 32)[0]
        phentsize, phnum = struct.unpack_from("<HH", hdr, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return any(struct.unpack_from("<I", table, i * phentsize)[0] == 3 for i in range(phnum))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def count_funcs(path: Path) -> int:
    """Defined FUNC symbols according to ``nm`` (used to skip tiny archives)."""
    res = subprocess.run(["nm", "--defined-only", str(path)], capture_output=True, text=True)
    return sum(1 for ln in res.stdout.splitlines() if re.match(r"^\S+ [Tt] ", ln))


def sh(cmd: list[str] | str, cwd: Path | None = None, timeout: int = 600,
       env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          shell=isinstance(cmd, str), env=env)


# ---------------------------------------------------------------- package selection

def read_sources(split: str) -> list[str]:
    names = []
    for line in SOURCE_LISTS[split].read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and line not in FORBIDDEN:
            names.append(line)
    return names


def pick_binaries(stanza: dict[str, str]) -> list[str]:
    """Binary packages of a source stanza worth downloading (arch-specific debs, no docs/bindings)."""
    picked = []
    for line in stanza.get("Package-List", "").splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[1] != "deb":
            continue
        name, section, arch = parts[0], parts[2], parts[4] if len(parts) > 4 else ""
        archs = arch.removeprefix("arch=").split(",")
        if archs == ["all"] or not any(a in ("any", "amd64", "linux-any") or "amd64" in a
                                       for a in archs):
            continue
        if SKIP_PKG.search(name) or section in ("doc", "debug", "python", "localization"):
            continue
        picked.append(name)
    return picked


def newest_stanza(stanzas: list[dict[str, str]]) -> dict[str, str] | None:
    best: dict[str, str] | None = None
    for st in stanzas:
        if best is None or version_gt(st.get("Version", ""), best.get("Version", "")):
            best = st
    return best


def version_gt(a: str, b: str) -> bool:
    return sh(["dpkg", "--compare-versions", a, "gt", b]).returncode == 0


# ---------------------------------------------------------------- official downloads

class Builder:
    download_suites: tuple[str, ...] = SUITES  # the suites whose official builds are downloaded

    def __init__(self, split: str, out: Path) -> None:
        self.split = split
        self.out = out
        self.root = out / split
        self.apt = {s: SuiteApt(out / "apt", s) for s in SUITES}
        self.log = Log(out / f"{split}.log")

    def ensure_apt(self) -> None:
        for suite in self.download_suites:
            apt = self.apt[suite]
            if not apt.is_updated():
                self.log(f"apt update {suite}")
                apt.update()
            else:
                apt.setup()

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.out))

    # one source package, one suite ------------------------------------------------
    def fetch_official(self, src: str) -> None:
        lock = self.root / src / ".lock"
        if not take_lock(lock):
            self.log(f"{src}: locked by another process, skipped")
            return
        try:
            self.fetch_all_suites(src)
        finally:
            lock.unlink(missing_ok=True)

    def fetch_all_suites(self, src: str) -> None:
        seen_versions: dict[str, str] = {}
        for suite in self.download_suites:
            unit = self.root / src / suite
            done = unit / ".done"
            if done.exists():
                info = json.loads(done.read_text() or "{}")
                if info.get("version"):
                    seen_versions.setdefault(info["version"], suite)
                continue
            try:
                info = self.fetch_suite(src, suite, unit, seen_versions)
            except Exception as exc:  # one failure must not stop the run
                self.log(f"FAIL {src} {suite}: {exc}")
                continue
            if info.get("version"):
                seen_versions.setdefault(info["version"], suite)
            done.write_text(json.dumps(info))

    def fetch_suite(self, src: str, suite: str, unit: Path,
                    seen_versions: dict[str, str]) -> dict[str, str]:
        apt = self.apt[suite]
        stanza = newest_stanza(apt.showsrc(src))
        if stanza is None:
            self.log(f"{src} {suite}: no source package")
            unit.mkdir(parents=True, exist_ok=True)
            return {"version": "", "note": "absent"}
        version = stanza["Version"]
        if version in seen_versions:  # same build as another suite: do not duplicate
            self.log(f"{src} {suite}: {version} same as {seen_versions[version]}, skipped")
            unit.mkdir(parents=True, exist_ok=True)
            return {"version": version, "same_as": seen_versions[version]}
        if unit.exists():
            shutil.rmtree(unit)
        unit.mkdir(parents=True)
        records: list[Record] = []
        for pkg in pick_binaries(stanza):
            records += self.fetch_binary(src, suite, version, pkg, unit)
        write_records(unit / "records.jsonl", records)
        self.log(f"{src} {suite} {version}: {len(records)} ELF files")
        return {"version": version}

    def fetch_binary(self, src: str, suite: str, version: str, pkg: str,
                     unit: Path) -> list[Record]:
        with tempfile.TemporaryDirectory(dir=self.out) as tmp:
            tmpd = Path(tmp)
            try:
                self.apt[suite].download(pkg, tmpd)
            except RuntimeError as exc:
                self.log(f"  {src} {suite} {pkg}: download failed: {str(exc)[-200:]}")
                return []
            debs = list(tmpd.glob("*.deb"))
            if not debs:
                return []
            ext = tmpd / "x"
            if sh(["dpkg-deb", "-x", str(debs[0]), str(ext)]).returncode != 0:
                self.log(f"  {src} {suite} {pkg}: dpkg-deb failed")
                return []
            bin_version = sh(["dpkg-deb", "-f", str(debs[0]), "Version"]).stdout.strip() or version
            return self.keep_elves(src, suite, bin_version, pkg, ext, unit)

    def keep_elves(self, src: str, suite: str, version: str, pkg: str, ext: Path,
                   unit: Path) -> list[Record]:
        records: list[Record] = []
        for path in sorted(ext.rglob("*")):
            rel_in_deb = path.relative_to(ext)
            if path.name.endswith(".a") and path.is_file() and not path.is_symlink():
                if pkg.endswith("-dev"):
                    rec = self.link_archive(src, suite, version, pkg, path, unit / "static-dev")
                    if rec:
                        records.append(rec)
                continue
            kind = elf_type(path)
            if kind is None:
                continue
            dest = unit / "official" / pkg / rel_in_deb
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), dest)
            records.append(self.record(src, pkg, version, suite, "official", "", "", dest, kind))
        return records

    def record(self, src: str, pkg: str, version: str, suite: str, origin: str, cc: str,
               flags: str, path: Path, kind: str) -> Record:
        return Record(self.split, src, pkg, version, suite, origin, cc, flags, self.rel(path),
                      sha256(path), kind, path.stat().st_size)

    # static archives --------------------------------------------------------------
    def link_archive(self, src: str, suite: str, version: str, pkg: str, archive: Path,
                     dest_dir: Path) -> Record | None:
        size = archive.stat().st_size
        if size > MAX_ARCHIVE:
            self.log(f"  {src} {suite} {archive.name}: archive too big ({size >> 20} MB), skipped")
            return None
        if count_funcs(archive) < MIN_FUNCS:
            return None
        dest_dir.mkdir(parents=True, exist_ok=True)
        out = dest_dir / f"{pkg}__{archive.stem}.elf"
        err = ""
        for cmd in link_variants(archive, out):
            res = sh(cmd, timeout=300)
            if res.returncode == 0 and out.exists() and count_funcs(out) >= MIN_FUNCS:
                return self.record(src, pkg, version, suite, "static-dev", "", "", out,
                                   "static-linked-archive")
            err = res.stderr.strip()[-300:]
        self.log(f"  {src} {suite} {archive.name}: link failed: {err}")
        out.unlink(missing_ok=True)
        return None


def take_lock(lock: Path) -> bool:
    """Create ``lock`` holding our pid; a lock of a dead process is taken over."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                os.kill(int(lock.read_text() or "0"), 0)
                return False
            except (ProcessLookupError, ValueError):
                lock.unlink(missing_ok=True)
                continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def link_variants(archive: Path, out: Path) -> list[list[str]]:
    """Ways to link a whole archive into one ELF with its .symtab, most faithful first: the product's
    (elf.link), so that a reference archive is read as the corpus's were."""
    from ..elf.link import link_variants as variants

    return variants([archive], out)


def link_first(archive: Path, out: Path) -> bool:
    """Link ``archive`` with the first variant that works."""
    for cmd in link_variants(archive, out):
        res = sh(cmd, timeout=300)
        if res.returncode == 0 and out.exists() and count_funcs(out) >= MIN_FUNCS:
            return True
    out.unlink(missing_ok=True)
    return False


def lone_archives(work: Path, elves: list[tuple[Path, str]]) -> list[Path]:
    """Static libraries built without a shared counterpart (e.g. a cmake build that ignores
    BUILD_SHARED_LIBS): they are linked into one ELF like the -dev archives."""
    shared = {so_family(p.name) for p, kind in elves if kind == "shared"}
    junk = re.compile(r"CMakeFiles|(^|/)(tests?|fuzz\w*|examples?|bench\w*|unity)(/|$)")
    return [a for a in sorted(work.rglob("*.a"))
            if a.is_file() and not a.is_symlink() and not junk.search(str(a.relative_to(work)))
            and so_family(a.name.removesuffix(".a")) not in shared and count_funcs(a) >= MIN_FUNCS]


def write_records(path: Path, records: list[Record]) -> None:
    with path.open("w") as f:
        for r in records:
            f.write(json.dumps(asdict(r), sort_keys=True) + "\n")


# ---------------------------------------------------------------- rebuilds

class Rebuilder(Builder):
    suites: list[str] | None = None  # the suites whose sources are rebuilt (default: REBUILD_SUITES of the split)
    compilers: list[str] = COMPILERS

    def rebuild(self, src: str, opts: list[str]) -> None:
        for suite in self.suites or REBUILD_SUITES[self.split]:
            if suite == "sid" and (self.out / "src" / self.split / src / "trixie" / ".done").exists():
                continue
            try:
                tree, version = self.get_source(src, suite)
            except Exception as exc:
                self.log(f"FAIL rebuild {src} {suite}: source: {exc}")
                continue
            for cc, opt in itertools.product(self.compilers, opts):
                unit = self.root / src / "rebuild" / suite / f"{cc}{opt}"
                if (unit / ".done").exists():
                    continue
                try:
                    n = self.build_one(src, suite, version, tree, cc, opt, unit)
                    self.log(f"rebuild {src} {suite} {cc} {opt}: {n} ELF files")
                except Exception as exc:
                    self.log(f"FAIL rebuild {src} {suite} {cc} {opt}: {str(exc)[-400:]}")
                    unit.mkdir(parents=True, exist_ok=True)
                    write_records(unit / "records.jsonl", [])
                (unit / ".done").write_text("")

    def get_source(self, src: str, suite: str) -> tuple[Path, str]:
        """Unpacked (patched) source tree of ``src`` in ``suite``, downloaded once."""
        base = self.out / "src" / self.split / src / suite
        stanza = newest_stanza(self.apt[suite].showsrc(src))
        if stanza is None:
            raise RuntimeError("no source package")
        version = stanza["Version"]
        if not (base / ".done").exists():
            if base.exists():
                shutil.rmtree(base)
            self.apt[suite].source(src, base)
            (base / ".done").write_text(version)
        trees = [d for d in base.iterdir() if d.is_dir()]
        if not trees:
            raise RuntimeError("source did not unpack")
        return trees[0], version

    def build_one(self, src: str, suite: str, version: str, tree: Path, cc: str, opt: str,
                  unit: Path) -> int:
        flags = f"{opt} -g0"
        work = self.out / "build" / self.split / f"{src}-{suite}-{cc}{opt}"
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(tree, work, symlinks=True)
        try:
            err = build_tree(work, cc, flags)
            elves = collect_build_elves(work)
            archives = lone_archives(work, elves)
            if not elves and not archives:
                raise RuntimeError(f"no ELF produced: {err}")
            if unit.exists():
                shutil.rmtree(unit)
            records = []
            for path, kind in elves:
                dest = unit / path.relative_to(work)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)
                records.append(self.record(src, f"{src}-rebuild", version, suite, "rebuild",
                                           cc, flags, dest, kind))
            for path in archives:
                dest = unit / path.relative_to(work).with_suffix(".a.elf")
                dest.parent.mkdir(parents=True, exist_ok=True)
                if link_first(path, dest):
                    records.append(self.record(src, f"{src}-rebuild", version, suite, "rebuild",
                                               cc, flags, dest, "static-linked-archive"))
            write_records(unit / "records.jsonl", records)
            return len(records)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def build_env(cc: str, flags: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(CC=cc, CFLAGS=flags, CXXFLAGS=flags, LDFLAGS="", CPPFLAGS="",
               DEB_BUILD_MAINT_OPTIONS="", MAKEFLAGS="",
               FORCE_UNSAFE_CONFIGURE="1")  # GNU tar's configure refuses to run as root otherwise
    return env


def build_tree(work: Path, cc: str, flags: str) -> str:
    """Build with the package's own build system; fall back to compiling .c files directly."""
    env = build_env(cc, flags)
    errors = []
    where = build_dir(work)
    for step in build_plans(where, cc, flags):
        ok, err = run_steps(step, where, env)
        if ok and collect_build_elves(work):
            return ""
        errors.append(err)
    if collect_build_elves(work):  # a late step (docs, tests) failed after the code was built
        return ""
    ok, err = direct_compile(work, cc, flags, env)
    errors.append(err)
    return " | ".join(e[-200:] for e in errors if e)


def build_dir(work: Path) -> Path:
    """The top dir, or a sub dir holding the build system (e.g. lmdb's libraries/liblmdb)."""
    markers = ("CMakeLists.txt", "configure", "Configure", "configure.ac", "Makefile", "makefile", "meson.build")
    if any((work / m).exists() for m in markers):
        return work
    for sub in sorted(work.glob("*/*")) + sorted(work.glob("*")):
        if sub.is_dir() and "debian" not in sub.parts and any((sub / m).exists() for m in markers):
            return sub
    return work


def build_plans(work: Path, cc: str, flags: str) -> list[list[str]]:
    """Candidate command sequences, most natural first."""
    make = f"make -j2 CC={cc}"
    plans: list[list[str]] = []
    if (work / "CMakeLists.txt").exists():
        plans.append([
            f"cmake -S . -B _b -DCMAKE_C_COMPILER={cc} '-DCMAKE_C_FLAGS={flags}' "
            "-DCMAKE_BUILD_TYPE=None -DBUILD_SHARED_LIBS=ON -DCMAKE_SKIP_RPATH=ON "
            "-DBUILD_TESTING=OFF -DJANSSON_BUILD_SHARED_LIBS=ON -DJANSSON_BUILD_DOCS=OFF "
            "-DMSGPACK_BUILD_TESTS=OFF -DMSGPACK_BUILD_EXAMPLES=OFF -DENABLE_CJSON_TEST=OFF",
            "cmake --build _b -j2",
        ])
    if (work / "Configure").exists() and (work / "crypto").is_dir():  # OpenSSL's own Configure reads CC and CFLAGS
        plans.append(["./Configure linux-x86_64 shared no-tests", "make -j2 build_libs"])
    conf = "./configure --enable-shared --disable-dependency-tracking"
    if (work / "configure").exists():
        plans.append([conf, make])
    if (work / "configure.ac").exists() or (work / "configure.in").exists():
        # also when a configure exists: openssh's refuses to run when configure.ac is newer than itself
        plans.append(["autoreconf -fi", conf, make])
    if (work / "meson.build").exists():
        plans.append(["meson setup _m --buildtype=plain", "ninja -C _m -j2"])
    if (work / "Makefile").exists() or (work / "makefile").exists():
        plans.append([make])
        plans.append([f"make -j2 CC={cc} 'CFLAGS={flags} -fPIC'"])
    return plans


def run_steps(steps: list[str], work: Path, env: dict[str, str]) -> tuple[bool, str]:
    for cmd in steps:
        try:
            res = sh(cmd, cwd=work, timeout=BUILD_TIMEOUT, env=env)
        except subprocess.TimeoutExpired:
            return False, f"{cmd}: timeout"
        if res.returncode != 0:
            return False, f"{cmd}: {(res.stderr or res.stdout).strip()[-300:]}"
    return True, ""


def direct_compile(work: Path, cc: str, flags: str, env: dict[str, str]) -> tuple[bool, str]:
    """Compile every library .c file (not tests/examples/programs) into one shared object."""
    skip = re.compile(r"(^|/)(tests?|examples?|fuzz\w*|bench\w*|contrib|doc|debian|programs?|"
                      r"tools?|demos?|cmake|_b|_m)(/|$)")
    cfiles = [p for p in work.rglob("*.c") if not skip.search(str(p.relative_to(work)))]
    cfiles = [p for p in cfiles if "main(" not in p.read_text(errors="ignore")]
    if not cfiles:
        return False, "direct: no .c files"
    incs = sorted({f"-I{p.parent}" for p in work.rglob("*.h")})[:60]
    out = work / "_direct" / f"lib{work.name.split('-')[0]}.so"
    out.parent.mkdir(exist_ok=True)
    cmd = [cc, *flags.split(), "-fPIC", "-shared", "-w", "-o", str(out), *incs,
           *map(str, cfiles)]
    res = sh(cmd, cwd=work, timeout=BUILD_TIMEOUT, env=env)
    return res.returncode == 0, "direct: " + res.stderr.strip()[-300:]


def collect_build_elves(work: Path) -> list[tuple[Path, str]]:
    """Real x86-64 ELF outputs of a build, without compiler probes."""
    junk = re.compile(r"CMakeFiles|conftest|a\.out$|CompilerId|(^|/)(tests?|testsuite|fuzz\w*|"
                      r"examples?|bench\w*|unity)(/|$)|(^|/)(test|fuzz)_?[^/]*$")
    out = []
    for p in sorted(work.rglob("*")):
        if junk.search(str(p.relative_to(work))):
            continue
        kind = elf_type(p)
        if kind:
            out.append((p, kind))
    return out


# ---------------------------------------------------------------- manifest and pairs

def load_records(root: Path) -> list[dict]:
    recs = []
    for f in sorted(root.rglob("records.jsonl")):
        if not (f.parent / ".done").exists():
            continue
        for line in f.read_text().splitlines():
            rec = json.loads(line) if line.strip() else None
            if rec and not SKIP_PKG.search(rec["binary_package"]):  # e.g. multilib from old runs
                recs.append(rec)
    return recs


def so_family(relpath: str) -> str:
    """libfoo.so.1.2 -> libfoo; keeps the directory so flavours (e.g. i686/) stay apart."""
    name = Path(relpath).name
    base = re.split(r"\.so(\.|$)", name)[0]
    base = re.sub(r"-[\d.]+$", "", base)  # libfoo-2.3 -> libfoo
    return base


def official_pairs(recs: list[dict], ref_suite: str, tgt_suite: str) -> list[dict]:
    """Same-library pairs between two suites: shared libs by SONAME family, execs by name,
    static archives by archive name."""
    by: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in recs:
        if r["origin"] == "rebuild":
            continue
        if r["kind"] == "shared":
            key = ("cross-release", r["source_package"], so_family(r["relpath"]))
        elif r["kind"] == "exec":
            key = ("cross-release-exec", r["source_package"], Path(r["relpath"]).name)
        else:
            name = Path(r["relpath"]).name.split("__", 1)[-1]
            key = ("cross-release-static", r["source_package"], so_family(name))
        by[key][r["suite"]].append(r)
    pairs = []
    for (kind, src, _), suites in sorted(by.items()):
        refs, tgts = suites.get(ref_suite, []), suites.get(tgt_suite, [])
        if refs and tgts:
            ref = max(refs, key=lambda r: r["size"])
            tgt = max(tgts, key=lambda r: r["size"])
            pairs.append({"reference": ref["relpath"], "target": tgt["relpath"], "kind": kind,
                          "source_package": src, "ref_suite": ref_suite, "target_suite": tgt_suite})
    return pairs


def rebuild_pairs(recs: list[dict], combos: list[tuple[str, tuple, tuple]]) -> list[dict]:
    """Pairs of the same build artefact between two (suite, compiler, flags) configurations."""
    index: dict[tuple, dict] = {}
    for r in recs:
        if r["origin"] != "rebuild":
            continue
        parts = Path(r["relpath"]).parts  # split/src/rebuild/suite/ccOPT/<artefact...>
        art = Path(*parts[5:])
        artefact = str(art.parent / so_family(art.name)) if r["kind"] == "shared" else str(art)
        opt = r["flags"].split()[0]
        index[(r["source_package"], artefact, r["suite"], r["compiler"], opt)] = r
    pairs = []
    for (src, art, suite, cc, opt), ref in sorted(index.items()):
        for kind, a, b in combos:
            if a[0] is None and (cc, opt) == a[1:]:
                tsuite = suite
            elif a[0] is not None and (suite, cc, opt) == a:
                tsuite = b[0]
            else:
                continue
            tgt = index.get((src, art, tsuite, b[1], b[2]))
            if tgt and tgt["sha256"] != ref["sha256"]:
                pairs.append({"reference": ref["relpath"], "target": tgt["relpath"],
                              "kind": kind, "source_package": src})
    return pairs


# the rebuild pairs of one source that dev-eval measures (rebuild_pairs' combos)
EVAL_REBUILD_COMBOS = [
    ("cross-opt", (None, "gcc", "-O0"), (None, "gcc", "-O3")),
    ("cross-compiler", (None, "gcc", "-O2"), (None, "clang", "-O2")),
    # both apart at once, each way (a kind the benchmark adds to DESIGN.md's: combinations no fit is drawn for)
    ("cross-everything", (None, "clang", "-O0"), (None, "gcc", "-O3")),
    ("cross-everything", (None, "gcc", "-O3"), (None, "clang", "-O0")),
]


def dev_eval_pairs(recs: list[dict]) -> list[dict]:
    pairs = official_pairs(recs, "bullseye", "trixie")
    combos = list(EVAL_REBUILD_COMBOS)
    # bullseye (or trixie) sources may be missing on the mirror: bookworm / sid stand in
    combos += [("cross-version", (old, cc, o), (new, cc, o))
               for old, new in (("bullseye", "trixie"), ("bookworm", "trixie"),
                                ("bullseye", "sid"), ("bookworm", "sid"))
               for cc in COMPILERS for o in OPTS["dev-eval"]]
    return pairs + rebuild_pairs(recs, combos)


def train_pairs(recs: list[dict]) -> list[dict]:
    pairs = []
    for a, b in itertools.combinations(SUITES, 2):
        pairs += official_pairs(recs, a, b)
    configs = [(cc, o) for cc in COMPILERS for o in OPTS["train"]]
    combos = []
    for x, y in itertools.combinations(configs, 2):
        kind = "cross-compiler" if x[0] != y[0] and x[1] == y[1] else (
            "cross-opt" if x[0] == y[0] else "cross-compiler-opt")
        combos.append((kind, (None, *x), (None, *y)))
    # the same build of bookworm's and of trixie's source (`--suite trixie`; sid's where trixie's was not found)
    combos += [("cross-version", ("bookworm", *c), (new, *c)) for new in ("trixie", "sid") for c in configs]
    return pairs + rebuild_pairs(recs, combos)


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def write_manifest(split: str, out: Path, log: Log, keep_missing: bool = False) -> None:
    """The manifest and pairs of what is on disk; with `keep_missing`, also the committed manifest's rows whose
    files are not on this machine (a run that adds to a corpus only partly on disk keeps the record of the rest)."""
    recs = load_records(out / split)
    cdir = REPO / "corpus"
    if keep_missing and (old := cdir / f"manifest-{split}.jsonl").exists():
        here = {r["relpath"] for r in recs}
        recs += [r for line in old.read_text().splitlines() if line.strip()
                 for r in [json.loads(line)] if r["relpath"] not in here and not (out / r["relpath"]).exists()]
    recs.sort(key=lambda r: r["relpath"])
    cdir.mkdir(exist_ok=True)
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs)
    atomic_write(cdir / f"manifest-{split}.jsonl", lines)
    pairs = dev_eval_pairs(recs) if split == "dev-eval" else train_pairs(recs)
    atomic_write(cdir / f"pairs-{split}.json", json.dumps(pairs, indent=1) + "\n")
    log(f"manifest {split}: {len(recs)} ELF files, {len(pairs)} pairs")


# ---------------------------------------------------------------- entry point

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=sorted(SOURCE_LISTS), required=True)
    ap.add_argument("--out", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--rebuild", action="store_true", help="rebuild sources instead of downloading")
    ap.add_argument("--only", nargs="*", help="restrict to these source packages")
    ap.add_argument("--manifest-only", action="store_true")
    ap.add_argument("--first-pass", action="store_true",
                    help="rebuild only the essential optimisation levels (-O0, -O2, -O3), not the extra ones")
    ap.add_argument("--reverse", action="store_true",
                    help="walk the package list backwards (run a second downloader beside one)")
    ap.add_argument("--suite", nargs="+", choices=SUITES, help="rebuild these suites' sources (default: "
                    "bookworm's for train, all four for dev-eval); e.g. --suite trixie for cross-version pairs")
    ap.add_argument("--compilers", nargs="+", choices=COMPILERS, default=COMPILERS)
    ap.add_argument("--opts", nargs="+", help="rebuild at these optimisation levels only (e.g. -O2)")
    ap.add_argument("--keep-missing", action="store_true",
                    help="keep the committed manifest's rows whose files are not on this machine")
    ap.add_argument("--leave-lists", action="store_true",
                    help="build into --out but leave the committed manifest and pairs lists as they are (builds "
                         "made to measure something else: the benchmarks read the committed pairs)")
    args = ap.parse_args(argv)
    if args.leave_lists and args.manifest_only:
        ap.error("--leave-lists and --manifest-only ask for opposite things")
    allowed = read_sources(args.split)
    builder = (Rebuilder if args.rebuild else Builder)(args.split, args.out)

    def lists() -> None:
        if not args.leave_lists:
            write_manifest(args.split, args.out, builder.log, args.keep_missing)

    if args.rebuild:
        builder.suites, builder.compilers = args.suite, args.compilers  # type: ignore[attr-defined]
    if not args.manifest_only:
        builder.ensure_apt()
        todo = REBUILDS[args.split] if args.rebuild else allowed
        todo = [s for s in todo if s in allowed and (not args.only or s in args.only)]
        todo = todo[::-1] if args.reverse else todo
        passes = OPT_PASSES[args.split] if args.rebuild else [[]]
        passes = passes[:1] if args.first_pass else passes
        passes = [args.opts] if args.opts else passes
        for opts in passes:
            for src in todo:
                builder.log(f"== {src} {' '.join(opts)}")
                if args.rebuild:
                    builder.rebuild(src, opts)  # type: ignore[attr-defined]
                else:
                    builder.fetch_official(src)
                lists()
    lists()
    return 0


if __name__ == "__main__":
    sys.exit(main())
