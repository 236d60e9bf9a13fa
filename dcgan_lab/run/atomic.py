"""Framework-free helpers for never losing work: atomic writes and output checks.

A checkpoint is written to a temporary file in the same folder, flushed to disk, then renamed
over the old one (``os.replace`` is atomic), so a run killed at any moment, SIGKILL included,
leaves either the previous checkpoint or the new one, never half of one.

:func:`check_output_file` and :func:`check_output_folder` check where a command is about to write
before it writes anything: nothing that exists is replaced without ``--force``, and a run
folder's own files never are.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or belongs to another run."""


class OutputError(ValueError):
    """A place to write to that would replace something, is a folder, or is not writable."""


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
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


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


# --- where commands write ---------------------------------------------------------------------
#: the names of a run folder's own files (beside ``config.json``; grids in its ``samples/``)
RUN_FILE_PATTERNS = ("config.json", "history.csv", "checkpoint.*", "generator.*",
                     "discriminator.*", "training.gif", ".*.tmp")


def run_folder_of(path: Path) -> Path | None:
    """The run folder (a folder with ``config.json``) whose own file ``path`` is, else None."""
    for p in {path.absolute(), path.resolve()}:
        folder = p.parent
        if folder.name == "samples" and (folder.parent / "config.json").is_file() \
                and fnmatch.fnmatch(p.name, "step_*.png"):
            return folder.parent
        if (folder / "config.json").is_file() and any(fnmatch.fnmatch(p.name, pattern)
                                                      for pattern in RUN_FILE_PATTERNS):
            return folder
    return None


def _check_writable(folder: Path, option: str, path: Path) -> None:
    """Raise :class:`OutputError` unless ``folder`` (or its nearest existing parent) is a folder
    this process may write in."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{option} {path}: {existing} is a file, not a folder; choose another "
                          f"{option}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: {existing} is not writable; choose another {option}")


def check_output_file(path: Path, option: str, force: bool = False) -> None:
    """Raise :class:`OutputError` naming ``option`` unless a new file may be written at ``path``:
    it must not be a folder nor a run folder's own file (not even with ``force``), must not exist
    (unless ``force``) and its folder must be writable."""
    run = run_folder_of(path)
    if run is not None:
        raise OutputError(f"{option} {path}: that is a file of the run folder {run}, which is "
                          f"never replaced (not even with --force); choose another name")
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file name inside it instead")
    if (path.exists() or path.is_symlink()) and not force:
        raise OutputError(f"{option} {path} already exists; choose another name, or pass --force "
                          f"to replace it")
    _check_writable(path.parent, option, path)


def check_output_folder(path: Path, option: str = "--out") -> None:
    """Raise :class:`OutputError` unless ``path`` is (or can be made) a writable folder."""
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path} is a file, not a folder; choose another {option}")
    _check_writable(path, option, path)


def _new_file_mode(path: Path) -> int:
    """The mode of the file ``path`` replaces, else that of a new file (0666 less the umask)."""
    if path.exists():
        return path.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_output(path: Path, write: Callable[[Path], object], option: str) -> None:
    """``write(tmp)`` then install ``tmp`` as ``path`` atomically; an ``OSError`` becomes
    :class:`OutputError` naming ``option`` (and nothing is left behind)."""
    try:
        with atomic_path(path) as tmp:
            write(tmp)
            tmp.chmod(_new_file_mode(path))  # not the temporary file's 0600
    except OSError as e:
        raise OutputError(f"{option} {path}: cannot write there ({e.strerror or e}); choose "
                          f"another {option}") from None


def why_unreadable(e: BaseException) -> str:
    """Why a file did not load (``torch.load(weights_only=True)``, ``np.load``), in a few words
    that never repeat a library's advice to load it unsafely."""
    text = " ".join(str(e).split())
    if any(word in text for word in ("weights_only", "Weights only", "allow_pickle")):
        return "it holds pickled Python objects, which are never loaded"
    if "safe_mode" in text:
        return "it holds Python code (e.g. a Lambda layer), which is never run"
    return f"{type(e).__name__}: {text[:160]}" if text else type(e).__name__
