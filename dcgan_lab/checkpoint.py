"""Framework-free helpers for never losing work: atomic writes and run-folder checks.

A checkpoint is written to a temporary file in the same folder, flushed to disk, then renamed
over the old one (``os.replace`` is atomic), so a run killed at any moment, SIGKILL included,
leaves either the previous checkpoint or the new one, never half of one.

For the tests that prove it, :func:`atomic_path` has a hook: with the environment variable
``DCGAN_LAB_PAUSE_IN_WRITE=NAME:N`` set, the N-th atomic write of a file called ``NAME`` in the
process stops half-way -- the temporary file cut to half its bytes, not yet renamed -- creates
``<temporary file>.paused`` and sleeps, so that a test can ``kill -9`` the process right there.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or belongs to another run."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _maybe_pause_in_write(path, tmp_path)
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


PAUSE_ENV = "DCGAN_LAB_PAUSE_IN_WRITE"
_writes: dict[str, int] = {}


def _maybe_pause_in_write(path: Path, tmp: Path) -> None:
    """The test hook of the module docstring (``DCGAN_LAB_PAUSE_IN_WRITE=NAME:N``)."""
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return
    name, _, nth = spec.rpartition(":")
    if path.name != name:
        return
    _writes[name] = _writes.get(name, 0) + 1
    if _writes[name] != int(nth):
        return
    size = tmp.stat().st_size
    os.truncate(tmp, size // 2)  # as if the process died with half the bytes on disk
    Path(f"{tmp}.paused").write_text(f"{size // 2} of {size} bytes of {path}\n")
    time.sleep(600)  # the test kills us here


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf8"))


def write_json(path: str | Path, obj: object) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable JSON file ({e})") from None
