"""Bad inputs through the command line: every one is refused with exit status 2 (usage) or 1
(the rest), exactly one line on stderr naming the option, value or file, no traceback, and
nothing that existed before changed. A damaged ``history.csv`` is restored on resume from the
copy written with the checkpoint.

The commands run in-process (``dcgan_lab.cli.main``) on copies of one tiny torch run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from dcgan_lab import cli  # noqa: E402

TINY = ["--profile", "smoke", "--no-progress", "--steps", "4", "--batch-size", "8",
        "--sample-every", "2", "--checkpoint-every", "2", "--n-fixed", "4"]


def run_cli(capsys, args: list) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``dcgan-lab ARGS`` run in this process."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder`` (and the folder itself): its bytes, mode and mtime."""
    snap = {".": (None, folder.stat().st_mode, folder.stat().st_mtime_ns)}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        data = p.read_bytes() if p.is_file() and not p.is_symlink() else None
        snap[p.relative_to(folder).as_posix()] = (data, st.st_mode, st.st_mtime_ns)
    return snap


def assert_one_line(code: int, err: str, expected_code: int, *words: str) -> str:
    """The one stderr line of a refused command, checked; returns it."""
    assert code == expected_code, err
    assert "Traceback" not in err and "weights_only" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dcgan-lab"), err
    for word in words:
        assert word in lines[0], (word, err)
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A finished 4-step torch-mnist run (checkpoints at steps 2 and 4)."""
    out = tmp_path_factory.mktemp("bad_inputs") / "run"
    assert cli.main(["train", "torch-mnist", "--framework", "torch", "--out", str(out),
                     *TINY]) == 0
    return out


@pytest.fixture
def place(tmp_path, run, monkeypatch) -> Path:
    """A folder holding a copy of the run and things to misuse: a file, a folder, an existing
    PNG and ONNX file, non-checkpoint .pth files, and a user's folder with no run in it."""
    shutil.copytree(run, tmp_path / "run")
    (tmp_path / "file.txt").write_text("a user's file\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "existing.png").write_bytes(b"a user's picture")
    (tmp_path / "existing.onnx").write_bytes(b"a user's model")
    (tmp_path / "garbage.pth").write_bytes(b"hello, not a checkpoint")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "model.pth")  # a pickled module, not tensors
    foreign = tmp_path / "foreign"
    (foreign / "samples").mkdir(parents=True)
    (foreign / "history.csv").write_text("my own numbers\n1,2,3\n")
    (foreign / "training.gif").write_bytes(b"GIF89a my own animation")
    (foreign / "samples" / "step_000001.png").write_bytes(b"my own picture")
    monkeypatch.chdir(tmp_path)  # a default output (runs/, samples.png) would land here
    return tmp_path


def _cut_history(run: Path) -> None:
    """history.csv cut in the middle of the row of step 3 (as a full disk or a crash leaves it)."""
    text = (run / "history.csv").read_text()
    start = text.index("\n3,")
    (run / "history.csv").write_text(text[:start + 12])


def _binary_history(run: Path) -> None:
    (run / "history.csv").write_bytes(bytes(range(256)) * 4)


SETUPS = {
    "cut, no copy": lambda run: (_cut_history(run), (run / "checkpoint.history.csv").unlink()),
    "deleted, no copy": lambda run: ((run / "history.csv").unlink(),
                                     (run / "checkpoint.history.csv").unlink()),
    "binary, no copy": lambda run: (_binary_history(run),
                                    (run / "checkpoint.history.csv").unlink()),
    "binary config": lambda run: (run / "config.json").write_bytes(b"\xff\xfe\x00garbage"),
}

RESUME = "train torch-mnist --out {t}/run --resume --no-progress"
NEW = "train torch-mnist --profile smoke --no-progress --out {t}/new"
IMPORT = "import-weights {t}/{f} --recipe dcgan64 --framework torch --out {t}/imported"

# (command line with {t} for the folder, setup of the run copy, exit status, words of the line)
CASES = [
    # option values: usage errors found at parse time, exit 2
    (f"{NEW} --lr-g nan", None, 2, ["--lr-g", "'nan'", "finite"]),
    (f"{NEW} --lr-g inf", None, 2, ["--lr-g", "'inf'"]),
    (f"{NEW} --lr-g 0", None, 2, ["--lr-g", "positive"]),
    (f"{NEW} --lr-d -1", None, 2, ["--lr-d", "'-1'", "positive"]),
    (f"{NEW} --beta1 1", None, 2, ["--beta1", "'1'", "< 1"]),
    (f"{NEW} --beta1 -0.5", None, 2, ["--beta1", "'-0.5'"]),
    (f"{NEW} --label-smoothing 1", None, 2, ["--label-smoothing", "'1'"]),
    (f"{NEW} --label-smoothing 0.6", None, 2, ["--label-smoothing", "label_smoothing=0.6"]),
    (f"{NEW} --flip-prob 1.5", None, 2, ["--flip-prob", "'1.5'", "<= 1"]),
    (f"{NEW} --flip-prob -0.1", None, 2, ["--flip-prob", "'-0.1'"]),
    (f"{NEW} --speed warp=9", None, 2, ["--speed", "'warp'", "mixed_precision"]),
    (f"{NEW} --speed mixed_precision=fp8", None, 2, ["--speed", "mixed_precision='fp8'"]),
    (f"{NEW} --g-dropout 1", None, 2, ["--g-dropout", "'1'", "< 1"]),
    (f"{NEW} --steps 1e30", None, 2, ["--steps", "'1e30'", "not an integer"]),
    (f"{NEW} --steps {10**30}", None, 2, ["--steps", str(10**30), "up to 1,000,000,000"]),
    (f"{NEW} --batch-size 0", None, 2, ["--batch-size", "'0'"]),
    (f"{NEW} --seed -1", None, 2, ["--seed", "'-1'"]),
    (f"{NEW} --seed {2**64}", None, 2, ["--seed", str(2**64)]),
    (f"{NEW} --real-labels 1.0,0.7", None, 2, ["--real-labels", "LOW <= HIGH"]),
    # train: found before anything is written, exit 1
    # the data set's size depends on where MNIST comes from (full set or the embedded sample)
    (f"{NEW} --batch-size 100000", None, 1, ["--batch-size 100000", "larger than the data set"]),
    (f"{NEW} --data /no/such/folder", None, 1, ["--data /no/such/folder", "no such folder"]),
    (f"{NEW} --data ./no-such-folder", None, 1, ["--data ./no-such-folder", "no such folder"]),
    (f"{NEW} --data ~/no-such-dcgan-folder", None, 1, ["~/no-such-dcgan-folder", "no such folder"]),
    (f"{NEW} --data nosuchset", None, 1, ["--data nosuchset", "not a data set name", "mnist"]),
    (f"{NEW} --data {{t}}/file.txt", None, 1, ["file.txt", "is a file, not a folder of photos"]),
    ("train torch-mnist --out {t}/file.txt", None, 1, ["--out", "file.txt", "is a file"]),
    ("train torch-mnist --out {t}/file.txt/run", None, 1, ["--out", "file.txt", "not a folder"]),
    ("train torch-mnist --out {t}/foreign", None, 1, ["foreign", "not empty", "no config.json",
                                                      "--force"]),
    ("train torch-mnist --out {t}/foreign --resume", None, 1, ["cannot resume", "foreign"]),
    (f"train torch-mnist --out {{t}}/run {' '.join(TINY)}", None, 1,
     ["already holds this run", "--resume"]),
    ("train torch-mnist --out {t}/run --lr-d 1e-3", None, 1, ["holds a different run", "lr_d"]),
    (RESUME, "cut, no copy", 1, ["history.csv", "line 4", "cut short", "--force"]),
    (RESUME, "deleted, no copy", 1, ["history.csv is missing", "checkpoint.history.csv"]),
    (RESUME, "binary, no copy", 1, ["history.csv", "binary"]),
    (RESUME, "binary config", 1, ["config.json", "not a readable JSON file"]),
    # sample: never over an existing file without --force, never over a run's file
    ("sample {t}/run -n 4 --out {t}/existing.png", None, 1, ["--out", "existing.png",
                                                             "already exists", "--force"]),
    ("sample {t}/run -n 4 --out {t}/run/checkpoint.pt --force", None, 1,
     ["--out", "checkpoint.pt", "run folder", "not even with --force"]),
    ("sample {t}/run -n 4 --out {t}/run/generator.pt", None, 1, ["generator.pt", "run folder"]),
    ("sample {t}/run -n 4 --out {t}/run/config.json --force", None, 1, ["config.json",
                                                                        "run folder"]),
    ("sample {t}/run -n 4 --out {t}/run/history.csv --force", None, 1, ["history.csv",
                                                                        "run folder"]),
    ("sample {t}/run -n 4 --out {t}/run/samples/step_000002.png --force", None, 1,
     ["step_000002.png", "run folder"]),
    ("sample {t}/run -n 4 --out {t}/adir", None, 1, ["--out", "adir", "is a folder"]),
    ("sample {t}/run -n 4 --out {t}/adir --force", None, 1, ["--out", "adir", "is a folder"]),
    ("sample {t}/run -n 4 --out {t}/file.txt/grid.png", None, 1, ["--out", "not a folder"]),
    ("sample {t}/run --seed -1", None, 2, ["--seed", "'-1'"]),
    ("sample {t}/run", "binary config", 1, ["config.json", "not a readable JSON file"]),
    # export: the same rules for --onnx
    ("export {t}/run --onnx {t}/existing.onnx", None, 1, ["--onnx", "existing.onnx",
                                                          "already exists", "--force"]),
    ("export {t}/run --onnx {t}/run/checkpoint.pt --force", None, 1,
     ["--onnx", "checkpoint.pt", "run folder"]),
    ("export {t}/run --onnx {t}/run/generator.pt --force", None, 1, ["generator.pt",
                                                                     "run folder"]),
    ("export {t}/run --onnx {t}/adir --force", None, 1, ["--onnx", "adir", "is a folder"]),
    ("export {t}/run --onnx {t}/file.txt/g.onnx", None, 1, ["--onnx", "not a folder"]),
    # import-weights: one line naming the file, never the advice to load it unsafely
    (IMPORT.format(t="{t}", f="garbage.pth"), None, 1,
     ["garbage.pth", "is not a PyTorch state dict or checkpoint"]),
    (IMPORT.format(t="{t}", f="model.pth"), None, 1,
     ["model.pth", "is not a PyTorch state dict or checkpoint", "never loaded"]),
    (IMPORT.format(t="{t}", f="nope.pth"), None, 1, ["nope.pth", "no such file"]),
    ("import-weights {t}/garbage.pth --recipe dcgan64 --framework torch --out {t}/foreign",
     None, 1, ["foreign", "not empty"]),
    ("import-weights {t}/garbage.pth --recipe dcgan64 --framework torch --out {t}/file.txt",
     None, 1, ["--out", "file.txt", "is a file"]),
]


@pytest.mark.parametrize("line, setup, code, words", CASES,
                         ids=[f"{c[0].split()[0]}: {' '.join(c[0].split()[2:])}"
                              + (f" [{c[1]}]" if c[1] else "") for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(place, capsys, line, setup, code, words):
    if setup is not None:
        SETUPS[setup](place / "run")
    before = snapshot(place)
    status, _, err = run_cli(capsys, [a.format(t=place) for a in line.split()])
    assert_one_line(status, err, code, *words)
    assert snapshot(place) == before


@pytest.fixture
def read_only(tmp_path) -> Path:
    """A folder this process cannot write in: a read-only copy, or /sys for root."""
    if os.geteuid() != 0:
        folder = tmp_path / "read_only"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    probe = Path("/sys") / "dcgan-lab-write-probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        yield Path("/sys")
        return
    probe.unlink()
    pytest.skip("no read-only folder to write in")


@pytest.mark.parametrize("line, words", [
    ("sample {t}/run -n 4 --out {r}/grid.png", ["--out", "grid.png"]),
    ("export {t}/run --onnx {r}/g.onnx", ["--onnx", "g.onnx"]),
    ("train torch-mnist --out {r}/run " + " ".join(TINY), ["run"]),
], ids=["sample", "export", "train"])
def test_a_read_only_place_is_one_line(place, read_only, capsys, line, words):
    if line.startswith("export"):
        pytest.importorskip("onnxruntime")
    before = snapshot(place)
    status, _, err = run_cli(capsys, [a.format(t=place, r=read_only) for a in line.split()])
    assert_one_line(status, err, 1, str(read_only), *words)
    assert snapshot(place) == before
    assert not list(read_only.glob("*grid.png*")) and not list(read_only.glob("*.onnx*"))


# --------------------------------------------------------------------------------------------
# a history.csv that does not match the checkpoint: restored from the copy written with it


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.mark.parametrize("damage", ["cut mid-row", "deleted", "binary", "rows missing",
                                    "a row repeated", "rows after the checkpoint"])
def test_resume_restores_a_damaged_history(place, capsys, damage):
    run = place / "run"
    original = _lines(run / "history.csv")  # header and steps 1-4
    csv = run / "history.csv"
    if damage == "cut mid-row":
        _cut_history(run)
    elif damage == "deleted":
        csv.unlink()
    elif damage == "binary":
        _binary_history(run)
    elif damage == "rows missing":
        csv.write_text("\n".join(original[:1] + original[3:]) + "\n")  # steps 1 and 2 gone
    elif damage == "a row repeated":
        csv.write_text("\n".join(original[:3] + original[2:]) + "\n")
    else:  # what a run killed after its checkpoint leaves: dropped, the steps are redone
        csv.write_text("\n".join(original + ["5,1,1,1,1,0.5,0.5,0.1"]) + "\n")
    status, out, err = run_cli(capsys, RESUME.format(t=place).split() + ["--steps", "6"])
    assert status == 0, err
    if damage == "rows after the checkpoint":
        assert "note:" not in out
    else:
        assert f"restored steps 1-4 from {run / 'checkpoint.history.csv'}" in out, out
    lines = _lines(csv)
    assert lines[:5] == original  # the rows of steps 1-4 as they were written
    assert [int(ln.split(",")[0]) for ln in lines[1:]] == [1, 2, 3, 4, 5, 6]


def test_force_in_a_users_folder_replaces_only_the_runs_names(place, capsys):
    foreign = place / "foreign"
    (foreign / "notes.txt").write_text("mine\n")
    status, _, err = run_cli(capsys, ["train", "torch-mnist", "--out", foreign, "--force",
                                      *TINY])
    assert status == 0, err
    assert (foreign / "notes.txt").read_text() == "mine\n"
    assert (foreign / "config.json").is_file()


@pytest.mark.parametrize("command", ["sample", "export"])
def test_force_replaces_an_existing_output_file(place, capsys, command):
    if command == "export":
        pytest.importorskip("onnxruntime")
        args = ["export", place / "run", "--onnx", place / "existing.onnx", "--force"]
        target, magic = place / "existing.onnx", b"\x08"  # an ONNX ModelProto's first field
    else:
        args = ["sample", place / "run", "-n", "4", "--out", place / "existing.png", "--force"]
        target, magic = place / "existing.png", b"\x89PNG"
    status, out, err = run_cli(capsys, args)
    assert status == 0, err
    assert target.read_bytes().startswith(magic)
    assert not list(place.glob(".*.tmp"))
