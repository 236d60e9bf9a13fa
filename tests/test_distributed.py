"""Data-parallel training equals one process on the same global batch.

PyTorch: ``torchrun --nproc_per_node 2`` on the gloo backend (CPU) against
``dcgan_lab.torch.train``; Keras: ``MirroredStrategy`` over 2 logical CPU devices against
``dcgan_lab.keras.train`` (``Model.train_step`` style). A few steps of torch-mnist (BatchNorm in
both nets: the global-batch statistics are part of what is checked) at batch 8, in subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dcgan_lab.history import History
from dcgan_lab.training import TrainOptions

KEYS = ("loss_d", "loss_d_real", "loss_d_fake", "loss_g", "d_real", "d_fake")
STEPS, BATCH = 3, 8


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", DCGAN_LAB_PROFILE="smoke")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def _losses(rows: list[dict]) -> np.ndarray:
    return np.array([[row[k] for k in KEYS] for row in rows])


def test_torchrun_two_gloo_processes_equal_one_process(tmp_path):
    torch = pytest.importorskip("torch")
    from dcgan_lab.torch import train

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "dcgan_lab.torch.distributed", "torch-mnist", "--steps", str(STEPS),
           "--batch-size", str(BATCH), "--out", str(tmp_path / "ddp"), "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    ddp = History.from_csv(tmp_path / "ddp" / "history.csv")
    assert (tmp_path / "ddp" / "generator.pt").exists()

    from dcgan_lab.speed import PLAIN

    torch.set_num_threads(1)
    one = train("torch-mnist", tmp_path / "one", options=TrainOptions(
        steps=STEPS, batch_size=BATCH), data="mnist", progress=False, speed=PLAIN)
    assert ddp["step"] == one["step"] == list(range(1, STEPS + 1))
    # history.csv keeps 6 significant digits (+-5e-6 at 1.6), and the mean of two half-batch
    # gradients rounds differently from the full batch's, which Adam's first steps amplify
    # (g / sqrt(v) ~ sign(g)): measured |diff| 1.9e-5 on loss_g at step 2 (torch-mnist, G
    # trained on D's fake batch); a wrong shard or statistic moves the losses by 1e-2 and more.
    np.testing.assert_allclose(_losses(ddp.rows), _losses(one.rows), atol=5e-5, rtol=0)
    # the saved generator loads into the one-process model (plain BatchNorm keys)
    from dcgan_lab.torch import load_generator

    assert load_generator(tmp_path / "ddp") is not None


KERAS_SCRIPT = textwrap.dedent("""
    import json, sys
    from dcgan_lab.keras import distributed as KD
    strategy = KD.make_strategy(cpu_replicas=2)  # before TensorFlow uses a device
    import dcgan_lab.keras as K
    from dcgan_lab import data
    from dcgan_lab.training import TrainOptions
    images = data.load("mnist", "train", verbose=False)[0][:256]
    o = TrainOptions(steps={steps}, batch_size={batch}, keras_style="train_step")
    two = KD.train("torch-mnist", sys.argv[1] + "/two", strategy=strategy, options=o,
                   data=images, progress=False)
    one = K.train("torch-mnist", sys.argv[1] + "/one", options=o, data=images, progress=False)
    print("RESULT " + json.dumps({{"replicas": strategy.num_replicas_in_sync,
                                   "two": two.rows, "one": one.rows}}))
""")


def test_mirrored_strategy_two_logical_cpus_equal_one_device(tmp_path):
    pytest.importorskip("keras")
    script = KERAS_SCRIPT.format(steps=STEPS, batch=BATCH)
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                       text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT "))[7:])
    assert out["replicas"] == 2
    assert len(out["two"]) == len(out["one"]) == STEPS
    np.testing.assert_allclose(_losses(out["two"]), _losses(out["one"]), atol=1e-5, rtol=0)
    assert (tmp_path / "two" / "generator.keras").exists()


def test_shard_splits_the_batch_dimension_and_refuses_uneven_batches():
    torch = pytest.importorskip("torch")
    from dcgan_lab.torch.distributed import shard

    x = {"real": torch.arange(2 * 6).reshape(2, 6), "z_g": torch.zeros(1, 6, 3)}
    a, b = shard(x, 0, 2), shard(x, 1, 2)
    assert torch.equal(torch.cat([a["real"], b["real"]], 1), x["real"])
    assert a["z_g"].shape == (1, 3, 3)
    with pytest.raises(ValueError, match="multiple of 4"):
        shard(x, 0, 4)


def test_global_batchnorm_is_batchnorm_without_a_process_group():
    torch = pytest.importorskip("torch")
    from dcgan_lab.torch.distributed import GlobalBatchNorm

    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5)
    bn, gbn = torch.nn.BatchNorm2d(3), GlobalBatchNorm(3)
    torch.testing.assert_close(gbn(x), bn(x))
    torch.testing.assert_close(gbn.running_var, bn.running_var)
