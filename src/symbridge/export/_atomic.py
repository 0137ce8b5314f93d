"""Atomic file writes: a temp file in the destination's directory, then os.replace."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from symbridge.errors import UsageError


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(dst: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``dst`` atomically (mode bits ``mode`` or the umask default).

    The temp file is removed on any error.
    """
    dst = Path(dst)
    try:
        fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    except OSError as e:
        raise UsageError(f"{dst}: cannot write: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode() if mode is None else mode)
        os.replace(tmp, dst)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
