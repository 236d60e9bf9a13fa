"""dcgan_lab.run.loop.run with a framework-free backend: what the writing process writes, and that a
process of a distributed run that does not write (``Backend.writer`` False) leaves the folder
untouched while stepping, resuming and returning the same history."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dcgan_lab.run import config, loop
from dcgan_lab.run.config import TrainOptions
from dcgan_lab.run.history import STEP_METRICS


class Counter(loop.Backend):
    """A 'model' that is one number, incremented by every step; the checkpoint is JSON."""

    framework, checkpoint_name, final_names = "fake", "counter.json", ("final.txt",)

    def __init__(self, writer: bool = True):
        self.writer = writer

    def read_checkpoint(self, path: Path, cfg) -> dict:
        return json.loads(path.read_text())

    def checkpoint_step(self, state: dict) -> int:
        return state["step"]

    def build(self, cfg) -> None:
        self.value = 0.0

    def restore(self, path: Path, state: dict) -> int:
        self.value = state["value"]
        return state["step"]

    def batches(self, images, cfg, start: int):
        return iter(range(start + 1, cfg.steps + 1))

    def step(self, step, images, cfg, inputs) -> dict[str, float]:
        assert inputs == step
        self.value += 1.0
        return dict.fromkeys(STEP_METRICS, self.value / 10)

    def sample(self, z: np.ndarray) -> np.ndarray:
        return np.zeros((len(z), 4, 4, 1), np.uint8)

    def save(self, path: Path, step: int, cfg, fixed_z) -> None:
        path.write_text(json.dumps({"step": step, "value": self.value}))

    def save_final(self, run) -> None:
        (run.path / "final.txt").write_text(str(self.value))


IMAGES = np.zeros((16, 28, 28, 1), np.uint8)


def _cfg(steps: int):
    opts = TrainOptions(steps=steps, batch_size=4, sample_every=1, checkpoint_every=2, n_fixed=4)
    return config.resolve_run("torch-mnist", "torch", opts, "smoke", IMAGES)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_writer_writes_the_run_folder(tmp_path):
    h = loop.run(_cfg(3), Counter(), tmp_path / "run", data=IMAGES, progress=False)
    assert h["loss_d"] == [0.1, 0.2, 0.3]
    files = _files(tmp_path / "run")
    assert {"config.json", "history.csv", "counter.json", "training.gif", "final.txt",
            "samples/step_000003.png"} <= set(files)
    assert json.loads(files["counter.json"]) == {"step": 3, "value": 3.0}


def test_a_process_that_does_not_write_leaves_the_folder_alone(tmp_path):
    h = loop.run(_cfg(3), Counter(writer=False), tmp_path / "fresh", data=IMAGES, progress=False)
    assert h["loss_d"] == [0.1, 0.2, 0.3] and not (tmp_path / "fresh").exists()
    loop.run(_cfg(2), Counter(), tmp_path / "run", data=IMAGES, progress=False)
    before = _files(tmp_path / "run")
    resumed = loop.run(_cfg(4), Counter(writer=False), tmp_path / "run", data=IMAGES,
                       resume=True, progress=False)
    assert resumed["step"] == [1, 2, 3, 4] and resumed["loss_d"][2:] == [0.3, 0.4]  # restored 2
    assert _files(tmp_path / "run") == before
