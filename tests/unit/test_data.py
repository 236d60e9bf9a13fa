"""dcgan_lab.data (lookup, checks, downloads, sample, photo folders) and the framework adapters."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import subprocess
import sys
import tarfile
import threading
import warnings
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcgan_lab import archives, data, images

SHARED = Path(os.environ.get("DCGAN_LAB_DATA", ""))
needs_shared = pytest.mark.skipif(not (SHARED / "mnist.npz").is_file(),
                                  reason="shared data folder (DCGAN_LAB_DATA) not available")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No data folder, an empty cache in tmp, downloads allowed (tests patch the sources), and
    a fresh process's memory of failed downloads."""
    monkeypatch.delenv("DCGAN_LAB_DATA", raising=False)
    monkeypatch.delenv("DCGAN_LAB_OFFLINE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(data, "_FAILURES", {})
    return tmp_path


def fake_mnist(path: Path, n: int = 10, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        x_train=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, n).astype(np.uint8),
        x_test=rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        y_test=np.arange(3, dtype=np.uint8),
    )
    return path


def fake_cifar(path: Path, n: int) -> Path:
    np.savez_compressed(path, x_train=np.zeros((n, 32, 32, 3), np.uint8), y_train=np.zeros(n, np.uint8),
                        x_test=np.zeros((2, 32, 32, 3), np.uint8), y_test=np.zeros(2, np.uint8))
    return path


# ------------------------------------------------------------------------------- real files


@needs_shared
@pytest.mark.parametrize(
    "name, split, n, shape",
    [
        ("mnist", "train", 60000, (28, 28, 1)),
        ("mnist", "test", 10000, (28, 28, 1)),
        ("fashion_mnist", "train", 60000, (28, 28, 1)),
        ("fashion_mnist", "test", 10000, (28, 28, 1)),
        ("cifar10", "train", 10000, (32, 32, 3)),
        ("cifar10", "test", 2000, (32, 32, 3)),
        ("clothing64", "train", 3068, (64, 64, 3)),
        ("clothing64", "validation", 341, (64, 64, 3)),
        ("clothing64", "test", 372, (64, 64, 3)),
    ],
)
def test_real_files(name, split, n, shape, capsys):
    x, y = data.load(name, split)
    assert x.shape == (n, *shape) and x.dtype == np.uint8
    assert y.shape == (n,) and y.dtype == np.uint8
    assert set(np.unique(y)) == set(range(10))
    src = data.last_source(name)
    assert src.origin == "env" and src.count == n and src.file.parent == SHARED
    out = capsys.readouterr().out
    assert f"{name}/{split}: {n} images {shape[0]}x{shape[1]}x{shape[2]} from {src.file}" in out


@needs_shared
def test_known_facts_of_real_data():
    _, y = data.load("mnist", "train", verbose=False)
    assert list(y[:5]) == [5, 0, 4, 1, 9]
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    _, y = data.load("fashion_mnist", verbose=False)
    assert list(y[:4]) == [9, 0, 0, 3]
    assert data.class_names("clothing64")[9] == "t-shirt"


@needs_shared
def test_cifar10_uses_small_file_and_says_so(capsys):
    data.load("cifar10", "test")
    out = capsys.readouterr().out
    assert "cifar10_small.npz" in out and "subset" in out
    assert data.last_source("cifar10").file.name == "cifar10_small.npz"


def test_cifar10_prefers_full_file(tmp_path, capsys):
    fake_cifar(tmp_path / "cifar10_small.npz", 4)
    fake_cifar(tmp_path / "cifar10.npz", 6)
    x, _ = data.load("cifar10", path=tmp_path)
    assert len(x) == 6 and data.last_source("cifar10").file.name == "cifar10.npz"
    assert "cifar10.npz" in capsys.readouterr().out
    assert data.locate("cifar10", tmp_path) == tmp_path / "cifar10.npz"


# ------------------------------------------------------------------------------- search order


def test_search_order_path_env_cache(isolated, monkeypatch):
    folder_path = fake_mnist(isolated / "a" / "mnist.npz", n=10).parent
    folder_env = fake_mnist(isolated / "b" / "mnist.npz", n=8).parent
    fake_mnist(data.cache_dir() / "mnist.npz", n=7)
    kw = dict(verbose=False, allow_sample=False)

    assert len(data.load("mnist", **kw)[0]) == 7
    assert data.last_source("mnist").origin == "cache"
    monkeypatch.setenv("DCGAN_LAB_DATA", str(folder_env))
    assert len(data.load("mnist", **kw)[0]) == 8
    assert data.last_source("mnist").origin == "env"
    assert len(data.load("mnist", path=folder_path, **kw)[0]) == 10  # folder
    assert len(data.load("mnist", path=folder_path / "mnist.npz", **kw)[0]) == 10  # file
    assert data.last_source("mnist").origin == "path"
    x, y = data.load("mnist", "test", path=folder_path, **kw)
    assert x.shape == (3, 28, 28, 1) and list(y) == [0, 1, 2]


def test_explicit_path_is_authoritative(isolated):
    fake_mnist(data.cache_dir() / "mnist.npz")
    with pytest.raises(data.DatasetNotFound, match="does not exist") as e:
        data.load("mnist", path=isolated / "nowhere", verbose=False)
    assert str(isolated / "nowhere") in str(e.value)
    with pytest.raises(data.DatasetNotFound, match="no mnist.npz"):
        data.load("mnist", path=isolated, verbose=False)


# ------------------------------------------------------------------------------- sample fallback


def test_sample_fallback_when_nothing_else(isolated, monkeypatch, capsys):
    monkeypatch.setenv("DCGAN_LAB_OFFLINE", "1")
    x, y = data.load("mnist")
    assert x.shape[1:] == (28, 28, 1) and 1000 <= len(x) < 60000 and len(y) == len(x)
    out = capsys.readouterr().out
    assert "SAMPLE" in out and "DCGAN_LAB_DATA" in out and out.count("\n") == 1
    assert data.last_source("mnist").origin == "sample"
    for split in ("train", "validation", "test"):
        xc, yc = data.load("clothing64", split)
        assert xc.shape[1:] == (64, 64, 3) and len(xc) >= 20 and yc.dtype == np.uint8
    xc, _ = data.load("cifar10", "test", download=False)
    assert xc.shape[1:] == (32, 32, 3)
    assert "run online to download it" in capsys.readouterr().out
    with pytest.warns(UserWarning, match="SAMPLE"):
        data.load("fashion_mnist", "test", verbose=False)


def test_sample_is_small_and_clean():
    assert data.SAMPLE_FILE.stat().st_size <= 15 * 10**6
    with np.load(data.SAMPLE_FILE, allow_pickle=False) as f:
        # enough for the cpu profile offline: 1,000 generated vs 1,000 real test digits, 1,000
        # train digits of one class, a Frechet distance on 150+ clothing test photos
        assert len(f["mnist_x_test"]) >= 2000
        assert np.bincount(f["mnist_y_train"]).min() >= 1000
        assert len(f["clothing64_x_test"]) >= 150 and len(f["clothing64_x_train"]) >= 300
        for name, spec in data.DATASETS.items():
            for split in spec.splits:
                x = f[f"{name}_x_{split}"]
                assert x.dtype == np.uint8 and len(x) == len(f[f"{name}_y_{split}"])


def test_not_found_names_every_place(isolated, monkeypatch):
    empty = isolated / "empty"
    empty.mkdir()
    monkeypatch.setenv("DCGAN_LAB_DATA", str(empty))
    monkeypatch.setenv("DCGAN_LAB_OFFLINE", "1")
    with pytest.raises(data.DatasetNotFound) as e:
        data.load("fashion_mnist", allow_sample=False)
    msg = str(e.value)
    assert isinstance(e.value, FileNotFoundError)
    for part in (str(empty), str(data.cache_dir()), "DCGAN_LAB_DATA", "DCGAN_LAB_OFFLINE=1",
                 "allow_sample=False", "fashion_mnist.npz"):
        assert part in msg


def test_unknown_name_or_split():
    with pytest.raises(ValueError, match="mnist, fashion_mnist, cifar10, clothing64"):
        data.load("celeba")
    with pytest.raises(ValueError, match="train, validation, test"):
        data.load("clothing64", "val")


# ------------------------------------------------------------------------------- bad files


def test_bad_files_raise_dataset_error(tmp_path):
    good = fake_mnist(tmp_path / "good" / "mnist.npz")
    cases = {}
    trunc = tmp_path / "trunc" / "mnist.npz"
    trunc.parent.mkdir()
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases[trunc] = "truncated"
    x, y = np.zeros((4, 28, 28), np.uint8), np.zeros(4, np.uint8)
    for sub, arrays, fault in [
        ("keys", dict(images=x, labels=y), "missing key 'x_train'"),
        ("shape", dict(x_train=np.zeros((4, 32, 32), np.uint8), y_train=y), r"shape \(4, 32, 32\)"),
        ("dtype", dict(x_train=x.astype(np.float32), y_train=y), "dtype float32"),
        ("rows", dict(x_train=x, y_train=y[:3]), "4 rows"),
        ("object", dict(x_train=np.array([None, 1], dtype=object), y_train=y), "Python objects"),
    ]:
        f = tmp_path / sub / "mnist.npz"
        f.parent.mkdir()
        np.savez(f, **arrays)
        cases[f] = fault
    for f, fault in cases.items():
        with pytest.raises(data.DatasetError, match=fault) as e:
            data.load("mnist", path=f.parent, verbose=False)
        assert str(f) in str(e.value) and isinstance(e.value, ValueError)


# ------------------------------------------------------------------------------- downloads


def _file_url(p: Path) -> str:
    return p.resolve().as_uri()


def _count_urlopen(monkeypatch) -> list[tuple[str, float | None]]:
    """Record every URL the downloader opens (and its timeout); the download itself goes on."""
    calls: list[tuple[str, float | None]] = []
    real = data.urllib.request.urlopen

    def urlopen(url, *args, **kwargs):
        calls.append((url, kwargs.get("timeout")))
        return real(url, *args, **kwargs)

    monkeypatch.setattr(data.urllib.request, "urlopen", urlopen)
    return calls


def _closed_port() -> int:
    """A local TCP port nobody listens on: connecting is refused at once, as offline."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_network_says_so_once_on_stdout_and_never_retries(isolated, monkeypatch, capfd):
    """A reader's offline machine: the first failed download is one message on stdout (the
    embedded sample is used, and how to get the full set); no warning, nothing on stderr; later
    loads in the process, of this dataset or another, make no network attempt."""
    url = f"http://127.0.0.1:{_closed_port()}/mnist.npz"
    monkeypatch.setitem(data.SOURCES, "mnist", (data._Remote("mnist.npz", (url,), sha256="0" * 64),))
    calls = _count_urlopen(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, _ = data.load("mnist", "test")
        out, err = capfd.readouterr()
        assert calls == [(url, data.DOWNLOAD_TIMEOUT_S)] and data.DOWNLOAD_TIMEOUT_S <= 30
        assert err == "" and data.last_source("mnist").origin == "sample" and len(x) >= 1000
        assert out.count("download of mnist failed") == 1 and out.count("SAMPLE") == 1
        assert url in out and "DCGAN_LAB_DATA" in out and "mnist.npz" in out
        assert "none is tried again" in out
        x2, _ = data.load("mnist", "train")  # the same dataset: the sample line, no retry
        data.load("fashion_mnist", "test", verbose=False)  # offline: no other dataset either
        out, err = capfd.readouterr()
    assert len(calls) == 1 and err == "" and len(x2) >= 1000
    assert "download of" not in out and out.count("SAMPLE") == 1
    assert data.last_source("fashion_mnist").origin == "sample"
    with pytest.raises(data.DatasetNotFound, match="not tried again: it failed earlier"):
        data.load("cifar10", allow_sample=False, verbose=False)
    assert len(calls) == 1


def test_network_errors_are_told_from_bad_files():
    import socket
    import urllib.error

    dns = urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))
    assert data._is_network_error(dns)
    assert data._is_network_error(urllib.error.URLError(TimeoutError("timed out")))
    assert data._is_network_error(ConnectionRefusedError(111, "Connection refused"))
    assert not data._is_network_error(urllib.error.URLError(FileNotFoundError(2, "missing")))
    http404 = urllib.error.HTTPError("http://x/y", 404, "Not Found", None, None)
    assert not data._is_network_error(http404)


def test_download_size_is_capped(isolated, monkeypatch):
    """A mirror announcing (Content-Length) or streaming more than the source's cap is stopped
    and nothing is kept; every source has a cap, clothing64's just above the pinned archive."""
    big = isolated / "remote" / "mnist.npz"
    big.parent.mkdir()
    big.write_bytes(b"\0" * 2000)
    monkeypatch.setitem(data.SOURCES, "mnist", (data._Remote(
        "mnist.npz", (_file_url(big),), sha256="0" * 64, max_bytes=1000),))
    with pytest.raises(data.DatasetNotFound, match="announces 2,000 bytes, more than the 1,000"):
        data.load("mnist", allow_sample=False, verbose=False)

    class Endless(http.server.BaseHTTPRequestHandler):  # no Content-Length: only a stream cap helps
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            for _ in range(64):
                self.wfile.write(b"\0" * 4096)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/mnist.npz"
        monkeypatch.setitem(data.SOURCES, "mnist", (data._Remote(
            "mnist.npz", (url,), sha256="0" * 64, max_bytes=10_000),))
        data._FAILURES.clear()
        with pytest.raises(data.DatasetNotFound, match="sent more than the 10,000 bytes"):
            data.load("mnist", allow_sample=False, verbose=False)
    finally:
        server.shutdown()
        server.server_close()
    assert not [p for p in data.cache_dir().rglob("*") if p.is_file()]
    assert all(r.max_bytes for remotes in data.SOURCES.values() for r in remotes)
    (clothing,) = data.SOURCES["clothing64"]
    assert clothing.max_bytes == data.CLOTHING_ARCHIVE_MAX_BYTES
    assert data.CLOTHING_TREE.photo_bytes < clothing.max_bytes < 1.1 * data.CLOTHING_TREE.photo_bytes


def test_checksum_failure_deletes_and_reports(isolated, monkeypatch, capsys):
    src = fake_mnist(isolated / "remote" / "mnist.npz")
    bad = data._Remote("mnist.npz", (_file_url(src),), sha256="0" * 64)
    monkeypatch.setitem(data.SOURCES, "mnist", (bad,))
    with pytest.raises(data.DatasetNotFound, match="checksum mismatch.*deleted"):
        data.load("mnist", allow_sample=False, verbose=False)
    cache = data.cache_dir()
    assert not (cache / "mnist.npz").exists() and not (cache / "mnist.npz.part").exists()
    # with the sample allowed, the bad download is reported once (stdout), not tried again in
    # this process, and never used
    calls = _count_urlopen(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, _ = data.load("mnist", verbose=False)
    assert data.last_source("mnist").origin == "sample" and len(x) != 10
    assert calls == [] and "checksum mismatch" in capsys.readouterr().out


def test_download_over_http_then_cache(isolated, monkeypatch, capsys):
    served = isolated / "served"
    src = fake_mnist(served / "mnist.npz", n=12)
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # the server's own log goes to stderr
            pass

    handler = partial(Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/mnist.npz"
        monkeypatch.setitem(data.SOURCES, "mnist", (data._Remote("mnist.npz", (url,), sha256=sha),))
        x, _ = data.load("mnist", allow_sample=False)
    finally:
        server.shutdown()
        server.server_close()
    assert len(x) == 12 and data.last_source("mnist").origin == "download"
    assert (data.cache_dir() / "mnist.npz").is_file()
    out, err = capsys.readouterr()
    assert "downloading mnist" in out and err == ""  # no progress bar on stderr (a page fails)
    x2, _ = data.load("mnist", verbose=False, allow_sample=False)
    assert data.last_source("mnist").origin == "cache" and np.array_equal(x, x2)


def _idx_gz(path: Path, arr: np.ndarray) -> data._Remote:
    magic = 2051 if arr.ndim == 3 else 2049
    head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(gzip.compress(head + arr.tobytes()))
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    missing = _file_url(path.parent / "missing.gz")  # a dead first mirror
    return data._Remote(path.name, (missing, _file_url(path)), md5=md5)


def test_fashion_download_decodes_idx(isolated, monkeypatch):
    rng = np.random.default_rng(1)
    remote = isolated / "remote"
    remote.mkdir()
    xtr, ytr = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), np.array([9, 0, 0, 3, 1], np.uint8)
    xte, yte = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8), np.array([2, 4], np.uint8)
    remotes = tuple(_idx_gz(remote / f, a) for f, a in [
        ("train-images-idx3-ubyte.gz", xtr), ("train-labels-idx1-ubyte.gz", ytr),
        ("t10k-images-idx3-ubyte.gz", xte), ("t10k-labels-idx1-ubyte.gz", yte)])
    monkeypatch.setitem(data.SOURCES, "fashion_mnist", remotes)
    x, y = data.load("fashion_mnist", allow_sample=False, verbose=False)
    assert np.array_equal(x[..., 0], xtr) and np.array_equal(y, ytr)
    x, y = data.load("fashion_mnist", "test", allow_sample=False, verbose=False)
    assert np.array_equal(x[..., 0], xte) and data.last_source("fashion_mnist").origin == "cache"
    assert not any((data.cache_dir() / "downloads").glob("*.gz"))  # converted, then removed


def test_md5_checksum_failure_deletes_and_reports(isolated, monkeypatch):
    """The MD5 path (Fashion-MNIST's and CIFAR-10's mirrors publish MD5 sums), as the SHA-256
    one: a file that fails its checksum is deleted, named in the error, and never used; a good
    mirror after a bad one is used."""
    rng = np.random.default_rng(2)
    remote = isolated / "remote"
    remote.mkdir()
    arrays = [("train-images-idx3-ubyte.gz", rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)),
              ("train-labels-idx1-ubyte.gz", np.array([1, 2, 3], np.uint8)),
              ("t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)),
              ("t10k-labels-idx1-ubyte.gz", np.array([4, 5], np.uint8))]
    good = [_idx_gz(remote / f, a) for f, a in arrays]
    bad_md5 = hashlib.md5(b"something else").hexdigest()
    bad = data._Remote(good[0].filename, (good[0].urls[-1],), md5=bad_md5)
    monkeypatch.setitem(data.SOURCES, "fashion_mnist", (bad, *good[1:]))
    with pytest.raises(data.DatasetNotFound,
                       match=f"md5 checksum mismatch \\(expected {bad_md5}, got "
                             f"{good[0].md5}\\); the downloaded file was deleted"):
        data.load("fashion_mnist", allow_sample=False, verbose=False)
    leftovers = [p.name for p in data.cache_dir().rglob("*") if p.is_file()]
    assert not [n for n in leftovers if n.startswith("train-images") or n.endswith(".part")]
    assert not (data.cache_dir() / "fashion_mnist.npz").exists()
    # a corrupt first mirror, then the good one: the good file is used
    corrupt = remote / "corrupt.gz"
    corrupt.write_bytes(b"not the file")
    mirrors = data._Remote(good[0].filename, (_file_url(corrupt), good[0].urls[-1]),
                           md5=good[0].md5)
    monkeypatch.setitem(data.SOURCES, "fashion_mnist", (mirrors, *good[1:]))
    data._FAILURES.clear()  # a new process: the failure above is not remembered
    x, y = data.load("fashion_mnist", allow_sample=False, verbose=False)
    assert np.array_equal(x[..., 0], arrays[0][1]) and np.array_equal(y, arrays[1][1])


def test_cifar_download_decodes_binary(isolated, monkeypatch):
    def batch(n, label):
        rec = np.zeros((n, 3073), np.uint8)
        rec[:, 0] = label
        rec[:, 1:1025], rec[:, 1025:2049], rec[:, 2049:] = 10, 20, 30  # R, G, B planes
        return rec.tobytes()

    tgz = isolated / "cifar-10-binary.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name, payload in [(f"data_batch_{i}.bin", batch(2, i)) for i in range(1, 6)] + [
                ("test_batch.bin", batch(3, 7))]:
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    md5 = hashlib.md5(tgz.read_bytes()).hexdigest()
    monkeypatch.setitem(data.SOURCES, "cifar10", (data._Remote(tgz.name, (_file_url(tgz),), md5=md5),))
    x, y = data.load("cifar10", allow_sample=False, verbose=False)
    assert x.shape == (10, 32, 32, 3) and list(y) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert x[0, 5, 7].tolist() == [10, 20, 30]
    assert (data.cache_dir() / "cifar10.npz").is_file()
    x, y = data.load("cifar10", "test", allow_sample=False, verbose=False)
    assert len(x) == 3 and set(y) == {7}


# ------------------------------------------------------------------------------- load_folder


def test_load_folder_skips_bad_files(tmp_path):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    # 90x30: red | green | blue thirds -> the centre crop is all green
    img = np.zeros((30, 90, 3), np.uint8)
    img[:, :30, 0] = img[:, 30:60, 1] = img[:, 60:, 2] = 255
    Image.fromarray(img).save(photos / "a.png")
    Image.fromarray(np.full((50, 80), 128, np.uint8)).save(photos / "b.jpg", quality=95)  # gray
    Image.fromarray(np.zeros((40, 40, 4), np.uint8)).save(photos / "sub" / "c.png")  # RGBA
    (photos / "notes.txt").write_text("not an image")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (photos / ".DS_Store").write_bytes(b"\0\1")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        x = data.load_folder(photos, size=32)
    msgs = [str(w.message) for w in rec]
    assert len(msgs) == 1 and "skipped 2 of 5" in msgs[0]
    assert "notes.txt" in msgs[0] and "broken.jpg" in msgs[0] and ".DS_Store" not in msgs[0]
    assert x.shape == (3, 32, 32, 3) and x.dtype == np.uint8
    assert x[0, :, :, 1].min() > 200 and x[0, :, :, [0, 2]].max() < 40  # a.png: centre crop
    assert abs(int(x[1].mean()) - 128) <= 2  # gray jpeg -> RGB


def test_load_folder_applies_exif_orientation(tmp_path):
    img = np.zeros((20, 40, 3), np.uint8)  # stored wide: left half red, right half blue
    img[:, :20, 0], img[:, 20:, 2] = 255, 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(img).save(tmp_path / "r.jpg", exif=exif, quality=95)
    x = data.load_folder(tmp_path, size=16)
    # displayed tall: red on top, blue at the bottom (without EXIF it would be red | blue)
    assert x[0, 2, 2, 0] > 200 and x[0, 2, -3, 0] > 200 and x[0, -3, 2, 2] > 200


def test_load_folder_errors(tmp_path):
    with pytest.raises(data.DatasetNotFound, match="missing"):
        data.load_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DatasetError, match="no usable images"):
        data.load_folder(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="skipped 1 of 1"):
        with pytest.raises(data.DatasetError, match="no usable images"):
            data.load_folder(bad)


# ------------------------------------------------------------------------------- value range


def test_to_float_to_uint8_round_trip():
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    f = data.to_float(x)
    assert f.dtype == np.float32 and f.min() == -1.0 and f.max() == 1.0
    assert np.array_equal(data.to_uint8(f), x)
    assert data.to_uint8(np.array([-3.0, 0.0, 5.0])).tolist() == [0, 128, 255]
    with pytest.raises(TypeError, match="uint8"):
        data.to_float(f)


def test_data_and_viz_import_no_framework():
    code = ("import sys, dcgan_lab.data, dcgan_lab.figures; "
            "bad = [m for m in ('torch', 'tensorflow', 'keras', 'matplotlib') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------- adapters


def _images(n=40, c=1, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 8, 8, c), dtype=np.uint8)


def test_torch_dataloader():
    torch = pytest.importorskip("torch")
    from dcgan_lab import torch as lab_torch

    x = _images(40, 3)
    ds = lab_torch.ImageDataset(x)
    item = ds[3]
    assert item.shape == (3, 8, 8) and item.dtype == torch.float32
    assert torch.allclose(item, torch.from_numpy(data.to_float(x[3])).permute(2, 0, 1))
    dl = lab_torch.make_dataloader(x, batch_size=16, seed=1)
    batches = list(dl)
    assert len(batches) == 2 and batches[0].shape == (16, 3, 8, 8)
    assert all(b.min() >= -1 and b.max() <= 1 for b in batches)
    same = list(lab_torch.make_dataset(x, batch_size=16, seed=1))
    other = list(lab_torch.make_dataloader(x, batch_size=16, seed=2))
    assert all(torch.equal(a, b) for a, b in zip(batches, same, strict=True))
    assert not torch.equal(batches[0], other[0])
    assert len(list(lab_torch.make_dataloader(x, 16, drop_last=False))) == 3
    xb, yb = next(iter(lab_torch.make_dataloader(x, 8, shuffle=False, labels=np.arange(40))))
    assert yb.tolist() == list(range(8)) and xb.shape == (8, 3, 8, 8)
    with pytest.raises(ValueError, match="batch_size"):
        lab_torch.make_dataloader(x, batch_size=64)


def test_keras_dataset():
    pytest.importorskip("tensorflow")
    from dcgan_lab import keras as lab_keras

    x = _images(40, 1)
    batches = [b.numpy() for b in lab_keras.make_dataset(x, batch_size=16, seed=1)]
    assert len(batches) == 2 and batches[0].shape == (16, 8, 8, 1) and batches[0].dtype == np.float32
    assert all(b.min() >= -1 and b.max() <= 1 for b in batches)
    same = [b.numpy() for b in lab_keras.make_dataset(x, batch_size=16, seed=1, cache=False)]
    other = [b.numpy() for b in lab_keras.make_dataset(x, batch_size=16, seed=2)]
    assert all(np.array_equal(a, b) for a, b in zip(batches, same, strict=True))
    assert not np.array_equal(batches[0], other[0])
    ordered = next(iter(lab_keras.make_dataset(x, 8, shuffle=False))).numpy()
    assert np.array_equal(ordered, data.to_float(x[:8]))
    xb, yb = next(iter(lab_keras.make_dataset(x, 8, shuffle=False, labels=np.arange(40))))
    assert yb.numpy().tolist() == list(range(8)) and xb.shape == (8, 8, 8, 1)
    with pytest.raises(ValueError, match="batch_size"):
        lab_keras.make_dataset(x, batch_size=64)


def _clothing_zip(path: Path, photos: dict[str, bytes], extra: dict[str, bytes] | None = None):
    """A small archive laid out like GitHub's archive of clothing-dataset-small."""
    prefix = "clothing-dataset-small-11961516512414bf9f6c150a832cfd21b54a6b54/"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(prefix + "README.md", b"# clothing\n")
        for rel, blob in {**photos, **(extra or {})}.items():
            zf.writestr(rel if rel.startswith("..") else prefix + rel, blob)
    lines = sorted(f"{rel} {archives.git_blob_sha1(b)}" for rel, b in photos.items())
    digest = hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()
    return data._TreeCheck(len(photos), digest, sum(len(b) for b in photos.values()))


def _jpeg(rng, w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_clothing64_download_checks_tree_and_processes_like_the_shipped_file(isolated, monkeypatch):
    rng = np.random.default_rng(3)
    photos = {"train/dress/b1.jpg": _jpeg(rng, 40, 53), "train/hat/a2.jpg": _jpeg(rng, 53, 40),
              "validation/shoes/c3.jpg": _jpeg(rng, 30, 30), "test/t-shirt/d4.jpg": _jpeg(rng, 64, 80)}
    archive = isolated / "clothing.zip"
    check = _clothing_zip(archive, photos)
    monkeypatch.setattr(data, "CLOTHING_TREE", check)
    monkeypatch.setitem(data.SOURCES, "clothing64", (data._Remote(archive.name, (_file_url(archive),)),))
    x, y = data.load("clothing64", "train", allow_sample=False, verbose=False)
    assert data.last_source("clothing64").origin == "download" and x.shape == (2, 64, 64, 3)
    assert list(y) == [0, 1]  # dress, hat: rows in path order
    with Image.open(io.BytesIO(photos["train/dress/b1.jpg"])) as im:
        assert np.array_equal(x[0], np.asarray(images.square(im, 64)))
    with np.load(data.cache_dir() / "clothing64.npz") as f:
        assert list(f["image_id"]) == ["d4", "b1", "a2", "c3"] and list(f["split"]) == [2, 0, 0, 1]
    x, y = data.load("clothing64", "test", allow_sample=False, verbose=False)
    assert data.last_source("clothing64").origin == "cache" and list(y) == [9]
    assert not any((data.cache_dir() / "downloads").iterdir())  # the archive is removed


def test_clothing64_sizes_are_checked_before_any_photo_is_read(isolated, monkeypatch):
    rng = np.random.default_rng(5)
    photos = {"train/dress/b1.jpg": _jpeg(rng, 40, 40), "test/hat/a2.jpg": _jpeg(rng, 40, 40)}
    archive = isolated / "clothing.zip"
    check = _clothing_zip(archive, photos)
    monkeypatch.setattr(data, "CLOTHING_TREE", data._TreeCheck(
        check.count, check.manifest_sha256, check.photo_bytes - 1))
    monkeypatch.setitem(data.SOURCES, "clothing64", (data._Remote(archive.name, (_file_url(archive),)),))

    def no_read(*args, **kwargs):
        raise AssertionError("a photo was read before the declared sizes were checked")

    monkeypatch.setattr(zipfile.ZipFile, "read", no_read)
    monkeypatch.setattr(zipfile.ZipFile, "open", no_read)
    with pytest.raises(data.DatasetNotFound, match=f"of {check.photo_bytes:,} bytes.*none was read"):
        data.load("clothing64", allow_sample=False, verbose=False)
    assert not (data.cache_dir() / "clothing64.npz").exists()


def test_pickles_are_refused_and_no_message_suggests_loading_them(tmp_path):
    import pickle

    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "mnist.npz").write_bytes(pickle.dumps({"x_train": [1, 2]}))
    obj = tmp_path / "object"
    obj.mkdir()
    np.savez(obj / "mnist.npz", x_train=np.array([None, 1], dtype=object), y_train=np.zeros(2))
    for f, says in ((folder, "pickled Python objects"), (obj, "holds Python objects")):
        with pytest.raises(data.DatasetError, match=says) as e:
            data.load("mnist", path=f, verbose=False)
        text = "".join(__import__("traceback").format_exception(e.value))
        assert "allow_pickle" not in text and "can run code" in text


def test_clothing64_download_refuses_changed_photos_and_unsafe_names(isolated, monkeypatch):
    rng = np.random.default_rng(4)
    photos = {"train/dress/b1.jpg": _jpeg(rng, 40, 40), "test/hat/a2.jpg": _jpeg(rng, 40, 40)}
    archive = isolated / "clothing.zip"
    monkeypatch.setattr(data, "CLOTHING_TREE", _clothing_zip(archive, photos))
    monkeypatch.setitem(data.SOURCES, "clothing64", (data._Remote(archive.name, (_file_url(archive),)),))
    tampered = dict(photos, **{"test/hat/a2.jpg": photos["test/hat/a2.jpg"][:-1] + b"\0"})
    _clothing_zip(archive, tampered)  # same names, one photo changed: the tree digest differs
    with pytest.raises(data.DatasetNotFound, match="do not match the pinned commit.*nothing was cached"):
        data.load("clothing64", allow_sample=False, verbose=False)
    assert not (data.cache_dir() / "clothing64.npz").exists()
    _clothing_zip(archive, photos, extra={"../escape/x.jpg": b"evil"})
    data._FAILURES.clear()  # a new process: the failure above is not remembered
    with pytest.raises(data.DatasetNotFound, match="unsafe member name"):
        data.load("clothing64", allow_sample=False, verbose=False)
    assert not (isolated / "escape").exists() and not (data.cache_dir() / "clothing64.npz").exists()
