"""Data-parallel training equals one process on the same global batch, and resumes exactly.

PyTorch: ``torchrun --nproc_per_node 2`` on the gloo backend (CPU) against
``dcgan_lab.torch.train``; Keras: ``MirroredStrategy`` over 2 logical CPU devices against
``dcgan_lab.keras.train`` (``Model.train_step`` style). A few steps of torch-mnist (BatchNorm in
both nets: the global-batch statistics are part of what is checked) at batch 8, in subprocesses.
Each framework's checks compare the logged losses, the final weights (BatchNorm's running
statistics included) and the optimisers' state of the checkpoints, and a run of 2 steps resumed
to 4 with the straight 4-step run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dcgan_lab.run.config import TrainOptions
from dcgan_lab.run.history import History

KEYS = ("loss_d", "loss_d_real", "loss_d_fake", "loss_g", "d_real", "d_fake")
STEPS, BATCH = 4, 8
# Final weights and optimiser state of the data-parallel run against one process, per tensor:
# |a - b| / |b| (Frobenius norms). The mean of two half-batch gradients rounds differently from
# the full batch's, and Adam's first steps amplify it (g / sqrt(v) ~ sign(g): a gradient element
# near 0 moves its weight by +-lr either way; beta1 = 0.5 passes the gradients' differences
# straight into exp_avg). Measured after 4 steps (torch-mnist, batch 8): 2 gloo processes against
# one process, largest 0.021 (G's exp_avg), weights 0.0076 (a BatchNorm bias, started at 0); the
# SAME one-process run with 2 threads instead of 1 differs from it by the same 0.021 / 0.0076.
# Local instead of global BatchNorm statistics gives 0.47-0.67 on weights and exp_avg.
STATE_RTOL = 0.06
# Keras, the same measure after 4 steps: MirroredStrategy on 2 logical CPUs against one device.
# With TensorFlow's own kernels (oneDNN off) the largest was 3e-6; with oneDNN on, as TensorFlow
# ships, the half batches' sums round differently and Adam amplifies it as in torch: 0.0164
# (G's Adam state opt_g/0012, embedded MNIST sample, fresh clone). The torch bound applies: it is
# far below what local BatchNorm statistics or wrong shards give (0.5 and more).
KERAS_STATE_RTOL = STATE_RTOL


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", DCGAN_LAB_PROFILE="smoke")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def _losses(rows: list[dict]) -> np.ndarray:
    return np.array([[row[k] for k in KEYS] for row in rows])


def _assert_states_close(a: dict[str, np.ndarray], b: dict[str, np.ndarray], rtol: float) -> None:
    """Every tensor of ``a`` within ``rtol`` of ``b``'s (relative Frobenius norm), naming the worst."""
    assert a.keys() == b.keys() and len(a) > 20
    rel = {k: float(np.linalg.norm(a[k] - b[k]) / max(np.linalg.norm(b[k]), 1e-12)) for k in a}
    worst = max(rel, key=rel.get)
    assert rel[worst] <= rtol, f"{worst}: relative difference {rel[worst]:.3g} > {rtol}"


def _torch_state(run_dir: Path) -> dict[str, np.ndarray]:
    """G's and D's state dicts and both Adams' state, by name, from a run's checkpoint.pt."""
    import torch

    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    out = {f"{net}.{k}": v.double().numpy() for net in ("generator", "discriminator")
           for k, v in ckpt[net].items()}
    for opt in ("opt_g", "opt_d"):
        for i, state in ckpt[opt]["state"].items():
            out.update({f"{opt}.{i}.{k}": np.asarray(v, np.float64) for k, v in state.items()})
    return out


def _torchrun(tmp: Path, name: str, steps: int, *extra: str) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "dcgan_lab.cli", "train", "torch-mnist", "--distributed", "--steps", str(steps),
           "--batch-size", str(BATCH), "--out", str(tmp / name), "--no-progress", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    """A straight STEPS-step torchrun run of torch-mnist on 2 gloo processes."""
    pytest.importorskip("torch")
    tmp = tmp_path_factory.mktemp("ddp")
    _torchrun(tmp, "straight", STEPS)
    return tmp / "straight"


def test_torchrun_two_gloo_processes_equal_one_process(ddp_run, tmp_path):
    import torch

    from dcgan_lab.speed import PLAIN
    from dcgan_lab.torch import load_generator, train

    ddp = History.from_csv(ddp_run / "history.csv")
    torch.set_num_threads(1)
    one = train("torch-mnist", tmp_path / "one", options=TrainOptions(
        steps=STEPS, batch_size=BATCH), data="mnist", progress=False, speed=PLAIN)
    assert ddp["step"] == one["step"] == list(range(1, STEPS + 1))
    # history.csv keeps 6 significant digits (+-5e-6 at 1.6), and the rounding amplified by Adam
    # (see STATE_RTOL) moves the losses: measured |diff| 1.9e-5 on loss_g at step 2; a wrong
    # shard or statistic moves them by 1e-2 and more.
    np.testing.assert_allclose(_losses(ddp.rows), _losses(one.rows), atol=5e-5, rtol=0)
    ddp_state, one_state = _torch_state(ddp_run), _torch_state(tmp_path / "one")
    for state in (ddp_state, one_state):  # Adam counted STEPS updates of every parameter
        counts = [float(v) for k, v in state.items() if k.endswith(".step")]
        assert len(counts) == 18 and set(counts) == {STEPS}  # G's 10 tensors, D's 8
    _assert_states_close(ddp_state, one_state, STATE_RTOL)
    # the saved generator loads into the one-process model (plain BatchNorm keys), and the
    # one-process trainer continues the distributed run from its checkpoint
    assert load_generator(ddp_run) is not None
    shutil.copytree(ddp_run, tmp_path / "continued")
    more = train("torch-mnist", tmp_path / "continued", options=TrainOptions(
        steps=STEPS + 1, batch_size=BATCH), resume=True, progress=False, speed=PLAIN)
    assert more["step"] == list(range(1, STEPS + 2)) and more.rows[:STEPS] == ddp.rows


def test_torchrun_resume_continues_exactly(ddp_run, tmp_path):
    _torchrun(tmp_path, "resumed", STEPS // 2)
    _torchrun(tmp_path, "resumed", STEPS, "--resume")
    resumed = History.from_csv(tmp_path / "resumed" / "history.csv")
    assert resumed["step"] == list(range(1, STEPS + 1))
    np.testing.assert_array_equal(_losses(resumed.rows),
                                  _losses(History.from_csv(ddp_run / "history.csv").rows))
    # every process restored the same checkpoint (dropout's seeds are keyed by (step, rank)):
    # the weights and Adam's state are those of the straight run bit for bit
    _assert_states_close(_torch_state(tmp_path / "resumed"), _torch_state(ddp_run), 0.0)


KERAS_SCRIPT = textwrap.dedent("""
    import json, shutil, sys
    from dcgan_lab.keras import distributed as KD
    strategy = KD.make_strategy(cpu_replicas=2)  # before TensorFlow uses a device
    import dcgan_lab.keras as K
    from dcgan_lab import data
    from dcgan_lab.run.config import TrainOptions
    images = data.load("mnist", "train", verbose=False)[0][:256]
    out = sys.argv[1]
    o = TrainOptions(steps={steps}, batch_size={batch}, keras_style="train_step")
    half = o.replace(steps={steps} // 2)
    two = KD.train("torch-mnist", out + "/two", strategy=strategy, options=o, data=images,
                   progress=False)
    KD.train("torch-mnist", out + "/resumed", strategy=strategy, options=half, data=images,
             progress=False)
    resumed = KD.train("torch-mnist", out + "/resumed", strategy=strategy, options=o,
                       data=images, progress=False, resume=True)
    one = K.train("torch-mnist", out + "/one", options=o, data=images, progress=False)
    shutil.copytree(out + "/two", out + "/continued")  # the one-device trainer continues it
    more = K.train("torch-mnist", out + "/continued", options=o.replace(steps={steps} + 1),
                   data=images, progress=False, resume=True)
    print("RESULT " + json.dumps({{"replicas": strategy.num_replicas_in_sync, "two": two.rows,
                                   "resumed": resumed.rows, "one": one.rows,
                                   "continued": more.rows}}))
""")


def _keras_state(run_dir: Path) -> dict[str, np.ndarray]:
    """Every variable of a Keras checkpoint (weights, BatchNorm statistics, both Adams, the
    seed state) by group and index, read as plain arrays (no TensorFlow in this process)."""
    with np.load(run_dir / "checkpoint.keras.npz", allow_pickle=False) as z:
        return {k: z[k].astype(np.float64) for k in z.files
                if k.split("/")[0] in ("generator", "discriminator", "opt_g", "opt_d")}


def test_mirrored_strategy_two_logical_cpus_equal_one_device_and_resume(tmp_path):
    pytest.importorskip("keras")
    script = KERAS_SCRIPT.format(steps=STEPS, batch=BATCH)
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                       text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT "))[7:])
    assert out["replicas"] == 2
    assert len(out["two"]) == len(out["one"]) == len(out["resumed"]) == STEPS
    # two replicas sum each half batch apart: with TensorFlow's oneDNN kernels (on, as shipped)
    # the losses differed by up to 5.9e-5 after 4 steps (embedded sample, a fresh clone)
    np.testing.assert_allclose(_losses(out["two"]), _losses(out["one"]), atol=2e-4, rtol=0)
    for name in ("generator.keras", "discriminator.keras", "training.gif"):
        assert (tmp_path / "two" / name).exists(), name
    two, one = _keras_state(tmp_path / "two"), _keras_state(tmp_path / "one")
    _assert_states_close(two, one, KERAS_STATE_RTOL)
    half = STEPS // 2  # the resumed history's first rows come from history.csv (6 digits)
    np.testing.assert_allclose(_losses(out["resumed"][:half]), _losses(out["two"][:half]),
                               rtol=5e-6, atol=0)
    np.testing.assert_array_equal(_losses(out["resumed"][half:]), _losses(out["two"][half:]))
    _assert_states_close(_keras_state(tmp_path / "resumed"), two, 0.0)  # bit for bit
    assert [r["step"] for r in out["continued"]] == list(range(1, STEPS + 2))


def test_shard_splits_the_batch_dimension_and_refuses_uneven_batches():
    from dcgan_lab.run.streams import shard  # both trainers' (torch tensors or NumPy arrays)

    x = {"real": np.arange(2 * 6).reshape(2, 6), "z_g": np.zeros((1, 6, 3))}
    a, b = shard(x, 0, 2), shard(x, 1, 2)
    np.testing.assert_array_equal(np.concatenate([a["real"], b["real"]], 1), x["real"])
    assert a["z_g"].shape == (1, 3, 3)
    with pytest.raises(ValueError, match="real: a batch of 6 .* multiple of 4"):
        shard(x, 0, 4)
    torch = pytest.importorskip("torch")
    t = shard({"real": torch.from_numpy(x["real"])}, 1, 2)["real"]
    assert torch.equal(t, torch.from_numpy(b["real"]))


def test_global_batchnorm_is_batchnorm_without_a_process_group():
    torch = pytest.importorskip("torch")
    from dcgan_lab.torch.distributed import GlobalBatchNorm

    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5)
    bn, gbn = torch.nn.BatchNorm2d(3), GlobalBatchNorm(3)
    torch.testing.assert_close(gbn(x), bn(x))
    torch.testing.assert_close(gbn.running_var, bn.running_var)


def test_only_process_0_writes_and_the_resume_command_continues_the_run():
    torch = pytest.importorskip("torch")
    from dcgan_lab.run import config
    from dcgan_lab.torch.distributed import DistributedBackend

    cfg = config.resolve("torch-mnist", "torch", TrainOptions(batch_size=8, seed=3))
    first, second = (DistributedBackend(r, 2, torch.device("cpu")) for r in (0, 1))
    assert first.writer and not second.writer
    assert first.resume_command(cfg, Path("runs/ddp")) == (
        "torchrun --standalone --nproc_per_node 2 -m dcgan_lab.cli train torch-mnist "
        "--distributed --out runs/ddp --resume")
