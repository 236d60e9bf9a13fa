"""Decoding the downloaded archives of :mod:`dcgan_lab.data`, in memory: nothing is extracted to
disk, so no member name can write outside the cache. Each reader raises :class:`ArchiveError`
naming the file when it does not hold what its format promises."""

from __future__ import annotations

import gzip
import hashlib
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from .images import square


class ArchiveError(ValueError):
    """A downloaded archive that does not decode to the data set it should hold."""


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Decode an idx(.gz) file (the MNIST format): big-endian header, then uint8 data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        raise ArchiveError(f"{path}: not an idx file (magic {got}, expected {magic})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ArchiveError(f"{path}: truncated idx file ({data.size} bytes for {dims})")
    return data.reshape(dims)


def read_cifar_tar(path: Path) -> dict[str, np.ndarray]:
    """Decode the CIFAR-10 binary tarball: records of 1 label byte + 3072 bytes (R, G, B planes)."""
    names = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
    out: dict[str, np.ndarray] = {}
    with tarfile.open(path, "r:gz") as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        for split, files in names.items():
            xs, ys = [], []
            for fname in files:
                if fname not in members:
                    raise ArchiveError(f"{path}: {fname} missing from the archive")
                raw = np.frombuffer(tar.extractfile(members[fname]).read(), np.uint8)
                if raw.size % 3073:
                    raise ArchiveError(f"{path}: {fname} is not a whole number of records")
                rec = raw.reshape(-1, 3073)
                ys.append(rec[:, 0])
                xs.append(rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            out[f"x_{split}"] = np.ascontiguousarray(np.concatenate(xs))
            out[f"y_{split}"] = np.concatenate(ys)
    return out


def git_blob_sha1(content: bytes) -> str:
    """The hash git gives a file's content (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def read_clothing_zip(path: Path, check, spec, progress: bool = False) -> dict[str, np.ndarray]:
    """Decode the clothing-dataset-small archive into the arrays of ``clothing64.npz``.

    Nothing is extracted to disk: photos are read from the zip in memory, so no member name can
    write outside the cache (names with ``..`` or an absolute path are refused all the same).
    Before any photo is read, their count and the sizes the zip declares for them must add up to
    the pinned tree's (a read never returns more than the declared size, so memory is bounded);
    then the photos' git blob hashes must match the pinned tree (``check``) before any is decoded.
    Processing is the shipped file's: EXIF orientation, centre crop, LANCZOS to 64x64 RGB, rows
    in path order (test/, train/, validation/), ``split`` 0/1/2 = train/validation/test.
    ``check`` has the pinned ``count``, ``photo_bytes`` and ``manifest_sha256``; ``spec`` the
    data set's ``classes`` and ``splits``.
    """
    import io

    from PIL import Image
    from tqdm import tqdm

    photos: dict[str, zipfile.ZipInfo] = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            parts = Path(info.filename).parts
            if info.filename.startswith(("/", "\\")) or ".." in parts:
                raise ArchiveError(f"{path}: unsafe member name {info.filename!r}; refused")
            # <repo>-<commit>/<split>/<class>/<uuid>.jpg
            if info.is_dir() or len(parts) != 4 or parts[1] not in spec.splits:
                continue
            photos["/".join(parts[1:])] = info
        declared = sum(info.file_size for info in photos.values())
        if len(photos) != check.count or declared != check.photo_bytes:
            raise ArchiveError(
                f"{path}: the archive's photos do not match the pinned commit ({len(photos)} "
                f"photos of {declared:,} bytes; expected {check.count} of "
                f"{check.photo_bytes:,}); none was read and nothing was cached")
        lines = []
        blobs = {}
        for rel in sorted(photos):
            blobs[rel] = zf.read(photos[rel])
            lines.append(f"{rel} {git_blob_sha1(blobs[rel])}")
    digest = hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()
    if len(lines) != check.count or digest != check.manifest_sha256:
        raise ArchiveError(
            f"{path}: the archive's photos do not match the pinned commit ({len(lines)} photos, "
            f"manifest sha256 {digest}; expected {check.count} and {check.manifest_sha256}); "
            "nothing was cached")
    xs, ys, splits, ids = [], [], [], []
    for rel in tqdm(sorted(blobs), desc="clothing64 photos -> 64x64", unit="photo",
                    file=sys.stdout, disable=not progress, leave=False):
        split, cls, fname = rel.split("/")
        if cls not in spec.classes:
            raise ArchiveError(f"{path}: unknown class folder {cls!r} in {rel}")
        with Image.open(io.BytesIO(blobs[rel])) as im:
            im.load()
            xs.append(np.asarray(square(im, 64), dtype=np.uint8))
        ys.append(spec.classes.index(cls))
        splits.append(spec.splits.index(split))
        ids.append(Path(fname).stem)
    return {"x": np.stack(xs), "y": np.asarray(ys, np.uint8), "split": np.asarray(splits, np.uint8),
            "class_names": np.asarray(spec.classes), "split_names": np.asarray(spec.splits),
            "image_id": np.asarray(ids)}
