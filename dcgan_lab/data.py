"""Datasets as plain uint8 arrays: find them, check them, download them, or fall back to a sample.

Framework-free (numpy + Pillow + tqdm). The framework adapters live in
:mod:`dcgan_lab.torch.data` and :mod:`dcgan_lab.keras.data`.

``load(name, split)`` returns ``(images, labels)``: images uint8 NHWC (C = 1 for grayscale),
labels uint8. It looks, in this order, in

1. ``path=`` (a file or a folder), when given. An explicit path is authoritative: if the data is
   not there, :class:`DatasetNotFound` is raised rather than quietly loading something else;
2. the folder named by ``$DCGAN_LAB_DATA``;
3. the user cache, ``$XDG_CACHE_HOME/dcgan_lab`` (default ``~/.cache/dcgan_lab``);
4. the dataset's canonical public source, downloaded into the cache with a checksum check
   (skipped when ``download=False`` or ``DCGAN_LAB_OFFLINE=1``). A failed download is said once,
   on stdout, and remembered for the rest of the process: that dataset is not tried again, and
   after a network failure (no DNS, no route, a refused or timed-out connection) no dataset is;
5. the small real sample embedded in the package (``assets/sample.npz``), with a one-line notice.

Where the data came from is printed (``verbose=True``) and is always available afterwards from
:func:`last_source`; :func:`locate` tells where a data file would be read from without loading it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import sys
import tarfile
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import archives
from .images import square, to_float, to_uint8

__all__ = [
    "DATASETS",
    "DatasetError",
    "DatasetNotFound",
    "Source",
    "cache_dir",
    "class_names",
    "last_source",
    "load",
    "load_folder",
    "locate",
    "to_float",
    "to_uint8",
]

ENV_DATA = "DCGAN_LAB_DATA"
ENV_OFFLINE = "DCGAN_LAB_OFFLINE"
SAMPLE_FILE = Path(__file__).resolve().parent / "assets" / "sample.npz"
# seconds a connection or a read may wait before the mirror counts as failed (not the whole
# download: a large file takes as long as it takes, but a dead network fails fast)
DOWNLOAD_TIMEOUT_S = 20.0


class DatasetNotFound(FileNotFoundError):
    """No data file was found in any of the places searched (the message lists them)."""


class DatasetError(ValueError):
    """A data file exists but cannot be used: corrupt, truncated, missing keys, wrong shape/dtype."""


@dataclass(frozen=True)
class _Spec:
    files: tuple[str, ...]  # file names to look for in a data folder, in order of preference
    splits: tuple[str, ...]
    image_shape: tuple[int, int, int]  # H, W, C
    classes: tuple[str, ...]


DATASETS: dict[str, _Spec] = {
    "mnist": _Spec(("mnist.npz",), ("train", "test"), (28, 28, 1), tuple("0123456789")),
    "fashion_mnist": _Spec(
        ("fashion_mnist.npz",),
        ("train", "test"),
        (28, 28, 1),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"),
    ),
    "cifar10": _Spec(
        ("cifar10.npz", "cifar10_small.npz"),
        ("train", "test"),
        (32, 32, 3),
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    ),
    "clothing64": _Spec(
        ("clothing64.npz",),
        ("train", "validation", "test"),
        (64, 64, 3),
        ("dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts", "skirt",
         "t-shirt"),
    ),
}


@dataclass(frozen=True)
class _Remote:
    """One file of a canonical source: mirror URLs, the published checksum, a size cap.

    ``max_bytes``: a download announcing (Content-Length) or streaming more bytes than this is
    stopped and deleted, so a wrong or hostile mirror cannot fill the disk or, later, memory.
    """

    filename: str
    urls: tuple[str, ...]
    sha256: str | None = None
    md5: str | None = None
    max_bytes: int | None = None


_KERAS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_ZALANDO = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

# The clothing64 archive: `git archive --format=zip` of the pinned commit (what GitHub serves) is
# 106,493,984 bytes; a download of more is stopped (5 % over: GitHub may compress differently,
# and JPEG photos do not grow much either way).
CLOTHING_ARCHIVE_MAX_BYTES = 112_000_000

# Canonical public sources. Hashes are the published ones, never computed here:
# - mnist.npz: the sha256 Keras pins in keras/datasets/mnist.py.
# - Fashion-MNIST: the MD5s in the zalandoresearch/fashion-mnist README (no sha256 is published
#   upstream, so none is used). Keras hosts copies of the same four files; both locations are
#   tried and both must match the README MD5s.
# - CIFAR-10: the MD5 on https://www.cs.toronto.edu/~kriz/cifar.html for the binary version
#   (the authors publish no sha256). The binary format is decoded directly; no pickle is read.
# The size caps (max_bytes) are the files' sizes rounded up, with room to spare: the checksums
# decide what is right, the caps only stop a download that is far too large.
SOURCES: dict[str, tuple[_Remote, ...]] = {
    "mnist": (
        _Remote("mnist.npz", (_KERAS + "mnist.npz",),
                sha256="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
                max_bytes=13_000_000),  # 11.5 MB
    ),
    "fashion_mnist": tuple(
        _Remote(f, (_KERAS + f, _ZALANDO + f), md5=m, max_bytes=cap)
        for f, m, cap in (
            ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 30_000_000),
            ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", 100_000),
            ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", 5_000_000),
            ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", 100_000),
        )
    ),
    "cifar10": (
        _Remote("cifar-10-binary.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
                md5="c32a1d4ab5d03f1284b67883e8d87530", max_bytes=190_000_000),  # 170 MB
    ),
    # clothing64: the CC0 source repository's archive at the pinned commit. GitHub builds archives
    # on the fly (their bytes are not promised stable), so the check is on the content instead:
    # every photo's git blob hash, listed "path blobhash" in path order, must hash to the digest of
    # the pinned commit's tree (CLOTHING_TREE below), photo count included. Its size is capped
    # (CLOTHING_ARCHIVE_MAX_BYTES) while it downloads, and the photos' sizes that the zip declares
    # are checked against the pinned total before any photo is read into memory.
    "clothing64": (
        _Remote("clothing-dataset-small.zip", (
            "https://github.com/alexeygrigorev/clothing-dataset-small/archive/"
            "11961516512414bf9f6c150a832cfd21b54a6b54.zip",
            "https://codeload.github.com/alexeygrigorev/clothing-dataset-small/zip/"
            "11961516512414bf9f6c150a832cfd21b54a6b54",
        ), max_bytes=CLOTHING_ARCHIVE_MAX_BYTES),
    ),
}


@dataclass(frozen=True)
class _TreeCheck:
    """The photos a source archive must hold: their count, the sha256 of their manifest and
    their total size in bytes (checked on the sizes the zip declares, before any is read)."""

    count: int
    manifest_sha256: str
    photo_bytes: int


# Made from `git ls-tree -r -l 11961516512414bf9f6c150a832cfd21b54a6b54` of
# github.com/alexeygrigorev/clothing-dataset-small: the 3,781 .jpg files under train/,
# validation/ and test/, one "path blobhash" line each, sorted, newline-terminated; their sizes
# add up to 106,020,674 bytes.
CLOTHING_TREE = _TreeCheck(3781, "2067f00c9b8320a4ba0fedced679967aba3e81be2c053c814c4e73a13276c48c",
                           106_020_674)

@dataclass(frozen=True)
class Source:
    """Where the last :func:`load` of a dataset came from (see :func:`last_source`)."""

    name: str
    split: str
    origin: str  # "path" | "env" | "cache" | "download" | "sample"
    file: Path
    count: int
    image_shape: tuple[int, int, int]
    note: str = ""

    def __str__(self) -> str:
        h, w, c = self.image_shape
        s = f"{self.name}/{self.split}: {self.count} images {h}x{w}x{c} from {self.file}"
        return f"{s} ({self.note})" if self.note else s


_LAST: dict[str, Source] = {}


@dataclass
class _Failure:
    """A download that failed in this process (it is not tried again until Python restarts)."""

    reason: str
    offline: bool  # a network failure: the machine looks offline, so no dataset is tried again
    told: bool = False  # the one notice on stdout was printed


_FAILURES: dict[str, _Failure] = {}


def _earlier_failure(name: str) -> _Failure | None:
    """This dataset's failed download, or any network failure, earlier in this process."""
    if name in _FAILURES:
        return _FAILURES[name]
    return next((f for f in _FAILURES.values() if f.offline), None)


def last_source(name: str | None = None) -> Source | None:
    """The :class:`Source` of the most recent :func:`load` of ``name`` (or of any dataset)."""
    if name is None:
        return next(reversed(_LAST.values()), None)
    _check_name(name)
    return _LAST.get(name)


def class_names(name: str) -> list[str]:
    """Class names of a dataset, in label-id order."""
    return list(_check_name(name).classes)


def cache_dir() -> Path:
    """The user cache folder: ``$XDG_CACHE_HOME/dcgan_lab`` or ``~/.cache/dcgan_lab``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "dcgan_lab"


# --------------------------------------------------------------------------------------------
# lookup


def _check_name(name: str, split: str | None = None) -> _Spec:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    spec = DATASETS[name]
    if split is not None and split not in spec.splits:
        raise ValueError(
            f"unknown split {split!r} for {name!r}; known splits: {', '.join(spec.splits)}"
        )
    return spec


def _in_folder(folder: Path, spec: _Spec) -> Path | None:
    for fname in spec.files:
        if (folder / fname).is_file():
            return folder / fname
    return None


def _offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes", "on")


def _local(name: str, path: str | os.PathLike | None, searched: list[str]) -> tuple[Path, str] | None:
    """Search path -> $DCGAN_LAB_DATA -> cache; record each place in ``searched``."""
    spec = DATASETS[name]
    want = " or ".join(spec.files)
    if path is not None:
        p = Path(path).expanduser()
        if p.is_file():
            return p, "path"
        if p.is_dir():
            hit = _in_folder(p, spec)
            if hit:
                return hit, "path"
            searched.append(f"path={p} (no {want} in this folder)")
        else:
            searched.append(f"path={p} (does not exist)")
        raise DatasetNotFound(_not_found_message(name, searched, explicit=True))
    env = os.environ.get(ENV_DATA)
    if env:
        folder = Path(env).expanduser()
        hit = _in_folder(folder, spec) if folder.is_dir() else None
        if hit:
            return hit, "env"
        why = f"no {want}" if folder.is_dir() else "folder does not exist"
        searched.append(f"${ENV_DATA}={folder} ({why})")
    else:
        searched.append(f"${ENV_DATA} (not set)")
    cache = cache_dir()
    hit = _in_folder(cache, spec) if cache.is_dir() else None
    if hit:
        return hit, "cache"
    searched.append(f"cache {cache} (no {want})")
    return None


def locate(name: str, path: str | os.PathLike | None = None) -> Path | None:
    """The data file :func:`load` would read for ``name`` (no download, no sample), or None."""
    _check_name(name)
    try:
        hit = _local(name, path, [])
    except DatasetNotFound:
        return None
    return hit[0] if hit else None


def _not_found_message(name: str, searched: list[str], explicit: bool = False) -> str:
    spec = DATASETS[name]
    lines = [f"dataset {name!r} not found. Searched:"] + [f"  - {s}" for s in searched]
    if explicit:
        lines.append(f"Fix: point path= at {' or '.join(spec.files)} or a folder holding it.")
    else:
        lines.append(
            f"Fix: set {ENV_DATA} to a folder holding {' or '.join(spec.files)}, pass path=..., "
            "or run once with network access to download it into the cache."
        )
    return "\n".join(lines)


def load(
    name: str,
    split: str = "train",
    path: str | os.PathLike | None = None,
    *,
    download: bool = True,
    allow_sample: bool = True,
    verbose: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Load ``split`` of dataset ``name`` as ``(images uint8 NHWC, labels uint8)``.

    Names: ``mnist``, ``fashion_mnist``, ``cifar10``, ``clothing64``. Splits: ``train``/``test``
    (``clothing64`` also ``validation``). See the module docstring for the search order.
    ``verbose`` prints where the data came from; without it, falling back to the sample is a
    warning, except after a failed download, which is said once per process on stdout.
    Raises :class:`DatasetNotFound` when nothing is found and the sample is not allowed,
    :class:`DatasetError` when a file is unusable, ``ValueError`` for an unknown name or split.
    """
    spec = _check_name(name, split)
    searched: list[str] = []
    hit = _local(name, path, searched)
    failure: _Failure | None = None
    if hit is None:
        if not download:
            searched.append("download (skipped: download=False)")
        elif _offline():
            searched.append(f"download (skipped: {ENV_OFFLINE}=1)")
        elif (failure := _earlier_failure(name)) is not None:
            searched.append(f"download (not tried again: it failed earlier in this process: "
                            f"{failure.reason})")
        else:
            try:
                hit = _fetch(name, verbose=verbose), "download"
            except _DownloadFailed as exc:
                failure = _FAILURES[name] = _Failure(str(exc), exc.offline)
                searched.append(f"download ({exc})")
    if hit is not None:
        file, origin = hit
        x, y = _read(name, split, file)
        note = ""
        if name == "cifar10" and file.name == "cifar10_small.npz":
            note = "the stratified 10,000/2,000 subset; add cifar10.npz beside it for the full set"
        elif name == "cifar10" and file.name == "cifar10.npz" and origin != "path":
            note = "the full set"
        src = Source(name, split, origin, file, len(x), spec.image_shape, note)
        _LAST[name] = src
        if verbose:
            print(src)
        return x, y
    if not allow_sample:
        searched.append("embedded sample (not allowed: allow_sample=False)")
        raise DatasetNotFound(_not_found_message(name, searched))
    x, y = _read_sample(name, split)
    h, w, c = spec.image_shape
    how = f"set {ENV_DATA} to a folder with {spec.files[0]}, or run online to download it"
    if _offline() or not download:
        how += f" ({'unset ' + ENV_OFFLINE if _offline() else 'download=True'})"
    elif failure is not None:
        how += f" into {cache_dir()} (a download failed in this process, so none is tried again " \
               "until Python restarts)"
    src = Source(name, split, "sample", SAMPLE_FILE, len(x), spec.image_shape, "embedded sample")
    _LAST[name] = src
    msg = (f"dcgan_lab: {name}/{split}: using the small embedded SAMPLE ({len(x)} images "
           f"{h}x{w}x{c}), not the full data set. For the full set, {how}.")
    if failure is not None and not failure.told:
        # the failure is said once per process, on stdout (a notebook page shows it as output;
        # a warning would go to stderr, which fails the book build), whatever ``verbose`` says
        failure.told = True
        print(f"dcgan_lab: the download of {name} failed ({failure.reason}).\n{msg}")
    elif verbose:
        print(msg)
    elif failure is None:
        warnings.warn(msg, stacklevel=2)
    return x, y


# --------------------------------------------------------------------------------------------
# reading and checking .npz files


def _open_npz(file: Path):
    try:
        return np.load(file, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):  # numpy's own text names the setting that would load it anyway
            raise DatasetError(
                f"{file}: holds pickled Python objects, not a .npz archive of plain arrays. A "
                "pickle can run code when it is loaded, so it is never read. Delete it and fetch "
                "the data again.") from None
        raise DatasetError(f"{file}: not a readable .npz archive (truncated or corrupt: {exc}). "
                           "Delete it and fetch it again.") from exc
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DatasetError(
            f"{file}: not a readable .npz archive (truncated or corrupt: {exc}). "
            "Delete it and fetch it again."
        ) from exc


def _get(f, file: Path, key: str) -> np.ndarray:
    if key not in f.files:
        raise DatasetError(
            f"{file}: missing key {key!r} (found {', '.join(f.files) or 'no arrays'}). "
            "Is this the right file?"
        )
    try:
        return f[key]
    except ValueError as exc:
        if "pickle" in str(exc):  # numpy's own text names the setting that would load it anyway
            raise DatasetError(f"{file}: array {key!r} holds Python objects, which only a pickle "
                               "can load, and a pickle can run code: only plain numeric arrays "
                               "are read. Is this the right file?") from None
        raise DatasetError(f"{file}: array {key!r} is corrupt or truncated ({exc})") from exc
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        raise DatasetError(f"{file}: array {key!r} is corrupt or truncated ({exc}). "
                           "Delete the file and fetch it again.") from exc


def _check_xy(x: np.ndarray, y: np.ndarray, spec: _Spec, file: Path, xkey: str, ykey: str):
    h, w, c = spec.image_shape
    if x.dtype != np.uint8:
        raise DatasetError(f"{file}: {xkey} has dtype {x.dtype}, expected uint8 (0..255)")
    ok = (x.ndim == 4 and x.shape[1:] == (h, w, c)) or (c == 1 and x.ndim == 3 and x.shape[1:] == (h, w))
    if not ok:
        want = f"(N, {h}, {w})" if c == 1 else f"(N, {h}, {w}, {c})"
        raise DatasetError(f"{file}: {xkey} has shape {x.shape}, expected {want}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{file}: {ykey} has shape {y.shape} and dtype {y.dtype}, "
                           "expected 1-D integer labels")
    if len(y) != len(x):
        raise DatasetError(f"{file}: {xkey} has {len(x)} rows but {ykey} has {len(y)}")
    if len(y) and (y.min() < 0 or y.max() >= len(spec.classes)):
        raise DatasetError(f"{file}: {ykey} has labels outside 0..{len(spec.classes) - 1}")
    return x.reshape(len(x), h, w, c), y.astype(np.uint8, copy=False)


def _read(name: str, split: str, file: Path) -> tuple[np.ndarray, np.ndarray]:
    spec = DATASETS[name]
    with _open_npz(file) as f:
        if name == "clothing64":
            x, y, s = _get(f, file, "x"), _get(f, file, "y"), _get(f, file, "split")
            if s.shape != y.shape:
                raise DatasetError(f"{file}: split has shape {s.shape}, expected {y.shape}")
            x, y = _check_xy(x, y, spec, file, "x", "y")
            keep = s == spec.splits.index(split)
            return x[keep], y[keep]
        xk, yk = f"x_{split}", f"y_{split}"
        return _check_xy(_get(f, file, xk), _get(f, file, yk), spec, file, xk, yk)


def _read_sample(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    if not SAMPLE_FILE.is_file():
        raise DatasetNotFound(f"the embedded sample {SAMPLE_FILE} is missing from the install; "
                              f"reinstall dcgan-lab or set {ENV_DATA}")
    with _open_npz(SAMPLE_FILE) as f:
        xk, yk = f"{name}_x_{split}", f"{name}_y_{split}"
        return _check_xy(_get(f, SAMPLE_FILE, xk), _get(f, SAMPLE_FILE, yk), DATASETS[name],
                         SAMPLE_FILE, xk, yk)


# --------------------------------------------------------------------------------------------
# downloading


class _DownloadFailed(Exception):
    """A download that cannot be used; ``offline``: every mirror failed at the network level."""

    def __init__(self, message: str, offline: bool = False) -> None:
        super().__init__(message)
        self.offline = offline


class _TooLarge(Exception):
    """A download that sends more bytes than its source's cap (``_Remote.max_bytes``)."""


def _is_network_error(exc: BaseException) -> bool:
    """No DNS, no route, a refused or timed-out connection: the network failed, not the file."""
    if isinstance(exc, urllib.error.HTTPError):  # a server answered
        return False
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, (socket.gaierror, TimeoutError, ConnectionError)):
        return True
    return isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)


def _progress_bars(verbose: bool) -> bool:
    """Progress bars only on a terminal: in a notebook or a log they are noise, and on tqdm's
    default stream, stderr, they would fail the book build."""
    try:
        return verbose and sys.stdout is not None and sys.stdout.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stdout
        return False


def _download(remote: _Remote, dest: Path, verbose: bool, announce: str | None = None) -> Path:
    """Fetch ``remote`` into ``dest`` (trying each mirror), verifying its size and checksum.

    A mirror announcing more than ``remote.max_bytes`` (Content-Length) is not downloaded; one
    that streams more is stopped. A file that fails its checksum is deleted and never used.
    ``announce`` is printed once a mirror answers (a dead network prints nothing but the one
    notice of :func:`load`). Raises :class:`_DownloadFailed` naming every URL tried and why it
    failed (``offline`` when every mirror failed at the network level).
    """
    from tqdm import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    cap = remote.max_bytes
    errors: list[str] = []
    network_errors = 0
    for url in remote.urls:
        algo, expected = ("sha256", remote.sha256) if remote.sha256 else ("md5", remote.md5)
        h = hashlib.new(algo) if expected else None
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as r:
                total = int(r.headers.get("Content-Length") or 0) or None
                if cap is not None and total is not None and total > cap:
                    errors.append(f"{url}: announces {total:,} bytes, more than the {cap:,} "
                                  "expected at most; not downloaded")
                    continue
                if announce and verbose:
                    print(announce)
                announce = None
                with open(tmp, "wb") as out, tqdm(
                        total=total, unit="B", unit_scale=True, desc=remote.filename,
                        file=sys.stdout, disable=not _progress_bars(verbose), leave=False) as bar:
                    got = 0
                    while chunk := r.read(1 << 20):
                        got += len(chunk)
                        if cap is not None and got > cap:
                            raise _TooLarge(f"sent more than the {cap:,} bytes expected at most; "
                                            "stopped, and the partial file was deleted")
                        out.write(chunk)
                        if h:
                            h.update(chunk)
                        bar.update(len(chunk))
        except _TooLarge as exc:
            tmp.unlink(missing_ok=True)
            errors.append(f"{url}: {exc}")
            continue
        except (urllib.error.URLError, OSError, ValueError) as exc:
            tmp.unlink(missing_ok=True)
            errors.append(f"{url}: {exc}")
            network_errors += _is_network_error(exc)
            continue
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if h is not None and h.hexdigest() != expected:
            tmp.unlink(missing_ok=True)
            errors.append(f"{url}: {algo} checksum mismatch (expected {expected}, got "
                          f"{h.hexdigest()}); the downloaded file was deleted")
            continue
        os.replace(tmp, dest)
        return dest
    raise _DownloadFailed("; ".join(errors), offline=network_errors == len(remote.urls))


def _save_npz(dest: Path, **arrays: np.ndarray) -> None:
    tmp = dest.with_name(dest.stem + ".part.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, dest)


def _fetch(name: str, verbose: bool) -> Path:
    """Download ``name`` from its canonical source into the cache; return the cached .npz."""
    cache = cache_dir()
    work = cache / "downloads"
    remotes = SOURCES[name]
    announce = f"dcgan_lab: downloading {name} into {cache} ..."
    if name == "mnist":
        path = _download(remotes[0], cache / "mnist.npz", verbose, announce)
        try:
            _read(name, "train", path)
        except DatasetError as exc:
            path.unlink(missing_ok=True)
            raise _DownloadFailed(f"downloaded file is unusable ({exc}); it was deleted") from exc
        return path
    files = [_download(r, work / r.filename, verbose, announce if i == 0 else None)
             for i, r in enumerate(remotes)]
    try:
        if name == "fashion_mnist":
            tri, trl, tei, tel = files
            arrays = {"x_train": archives.read_idx(tri, 2051), "y_train": archives.read_idx(trl, 2049),
                      "x_test": archives.read_idx(tei, 2051), "y_test": archives.read_idx(tel, 2049)}
        elif name == "clothing64":
            arrays = archives.read_clothing_zip(files[0], CLOTHING_TREE, DATASETS["clothing64"],
                                                _progress_bars(verbose))
        else:
            arrays = archives.read_cifar_tar(files[0])
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, ValueError) as exc:
        raise _DownloadFailed(f"could not decode the download ({exc})") from exc
    finally:
        for f in files:
            f.unlink(missing_ok=True)
    dest = cache / DATASETS[name].files[0]
    _save_npz(dest, **arrays)
    return dest


# --------------------------------------------------------------------------------------------
# photo folders and value ranges

_IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def load_folder(path: str | os.PathLike, size: int = 64, *, verbose: bool = True) -> np.ndarray:
    """Load every photo under ``path`` (recursively) as uint8 ``(N, size, size, 3)``.

    Each image gets its EXIF orientation, a centre crop to a square on its short side and a
    LANCZOS resize to ``size`` x ``size`` RGB (the processing used for ``clothing64``). Files
    that are not readable images are skipped with one warning that counts and names them;
    hidden files (names starting with ".") are ignored. Files are read in sorted path order.
    """
    from PIL import Image

    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetNotFound(f"load_folder: {root} is not an existing folder; pass the folder "
                              "that holds your photos")
    if size < 1:
        raise ValueError(f"load_folder: size must be >= 1, got {size}")
    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    from tqdm import tqdm

    images, bad = [], []
    for p in tqdm(files, desc=f"images in {root.name}", unit="file",
                  disable=not verbose or len(files) < 500):
        try:
            with Image.open(p) as im:
                im.load()
                images.append(np.asarray(square(im, size), dtype=np.uint8))
        except Exception:  # noqa: BLE001 - any unreadable file is skipped and reported
            bad.append(p)
    if bad:
        names = ", ".join(str(b.relative_to(root)) for b in bad[:10])
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        warnings.warn(f"load_folder: skipped {len(bad)} of {len(files)} files in {root} that are "
                      f"not readable images: {names}{more}", stacklevel=2)
    if not images:
        raise DatasetError(f"load_folder: no usable images in {root} ({len(files)} files, "
                           f"{len(bad)} unreadable); expected photos such as "
                           f"{', '.join(sorted(_IMAGE_EXT)[:4])}")
    return np.stack(images)
