"""dcgan_lab.speed and the speed options of both trainers: each option on gives the losses of the
option off (exactly for the input pipelines, to float rounding for layouts and compilers, to
bfloat16 rounding for mixed precision). A few steps on a few hundred real MNIST images, CPU."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

from dcgan_lab import speed
from dcgan_lab.run.config import TrainOptions
from dcgan_lab.run.history import History
from dcgan_lab.speed import PLAIN, Speed

OPTS = TrainOptions(steps=3, batch_size=8, sample_every=3, checkpoint_every=3, n_fixed=4)
KEYS = ("loss_d", "loss_d_real", "loss_d_fake", "loss_g", "d_real", "d_fake")


def _losses(h: History) -> np.ndarray:
    return np.array([[row[k] for k in KEYS] for row in h.rows])


# --- the options themselves -------------------------------------------------------------------


def test_resolve_fills_measured_defaults_and_keeps_choices():
    s = speed.resolve(None, "torch", "cpu")
    assert s == speed.DEFAULTS[("torch", "cpu")]
    assert all(getattr(s, f) is not None for f in Speed.__dataclass_fields__)
    s = speed.resolve(Speed(workers=3), "torch", "cuda")
    assert s.workers == 3 and s.pin_memory is True  # the rest from the cuda defaults
    assert speed.resolve(None, "keras", "tpu") == PLAIN  # unknown device: everything off
    assert PLAIN.describe() == "plain"
    assert Speed(channels_last=True, workers=2).describe() == "channels_last, workers=2"


@pytest.mark.parametrize("bad, name", [(Speed(autocast="int8"), "autocast"),
                                       (Speed(mixed_precision="fp8"), "mixed_precision"),
                                       (Speed(workers=-1), "workers"),
                                       (Speed(prefetch=1.5), "prefetch")])
def test_bad_values_name_the_option(bad, name):
    with pytest.raises(ValueError, match=name):
        speed.resolve(bad, "torch", "cpu")


# --- PyTorch ----------------------------------------------------------------------------------


def _torch_run(tmp_path, mnist, name: str, fast: Speed, opts=OPTS, recipe="torch-mnist"):
    from dcgan_lab.torch import train

    return train(recipe, tmp_path / name, options=opts, data=mnist, progress=False, force=True,
                 speed=fast)


@pytest.fixture(scope="module")
def torch_plain(tmp_path_factory, mnist) -> np.ndarray:
    pytest.importorskip("torch")
    return _losses(_torch_run(tmp_path_factory.mktemp("plain"), mnist, "plain", PLAIN))


def test_torch_workers_give_identical_runs_even_with_dropout(tmp_path, mnist):
    """A DataLoader worker prepares the batches; torch's RNG (dropout) is untouched by it."""
    opts = OPTS.replace(g_dropout=0.3)
    a = _torch_run(tmp_path, mnist, "w0", PLAIN, opts)
    b = _torch_run(tmp_path, mnist, "w1", PLAIN.replace(workers=1), opts)
    np.testing.assert_array_equal(_losses(a), _losses(b))


# channels_last: measured |diff| up to 1.6e-3 after 3 steps with ATEN_CPU_CAPABILITY=default
@pytest.mark.parametrize("fast, tol", [(PLAIN.replace(channels_last=True), 5e-3),
                                       (PLAIN.replace(autocast="bf16"), 0.1)])
def test_torch_option_keeps_the_losses(tmp_path, mnist, torch_plain, fast, tol):
    got = _losses(_torch_run(tmp_path, mnist, "fast", fast))
    np.testing.assert_allclose(got, torch_plain, atol=tol, rtol=0)
    if fast.autocast:  # bf16 rounding is visible, yet small
        assert not np.array_equal(got, torch_plain)


def test_torch_concat_batches_under_autocast(tmp_path, mnist):
    opts = OPTS.replace(steps=2, d_batches="concat")
    a = _losses(_torch_run(tmp_path, mnist, "a", PLAIN, opts))
    b = _losses(_torch_run(tmp_path, mnist, "b", PLAIN.replace(autocast="bf16"), opts))
    np.testing.assert_allclose(a, b, atol=0.1, rtol=0)


@pytest.mark.skipif(os.environ.get("ATEN_CPU_CAPABILITY") == "default",
                    reason="torch 2.13's inductor emits at::vec code that does not compile when "
                           "ATEN_CPU_CAPABILITY=default (a kernel-dispatch test setting)")
def test_torch_compile_keeps_the_losses(tmp_path, mnist, torch_plain):
    got = _losses(_torch_run(tmp_path, mnist, "compiled", PLAIN.replace(compile=True)))
    # inductor fuses and reorders float32 ops: measured |diff| up to 3e-4 after 3 steps
    np.testing.assert_allclose(got, torch_plain, atol=1e-3, rtol=0)


# --- Keras ------------------------------------------------------------------------------------


def _keras_run(tmp_path, mnist, name: str, fast: Speed, recipe="torch-mnist",
               opts=OPTS) -> History:
    K = importlib.import_module("dcgan_lab.keras.backend")
    return K.train(recipe, tmp_path / name, options=opts, data=mnist, progress=False,
                   force=True, speed=fast)


@pytest.fixture(scope="module")
def keras_plain(tmp_path_factory, mnist) -> np.ndarray:
    pytest.importorskip("keras")
    return _losses(_keras_run(tmp_path_factory.mktemp("kplain"), mnist, "plain", PLAIN))


def test_keras_prefetch_gives_identical_runs(tmp_path, mnist, keras_plain):
    got = _losses(_keras_run(tmp_path, mnist, "prefetch", PLAIN.replace(prefetch=2)))
    np.testing.assert_array_equal(got, keras_plain)


def test_keras_jit_compile_keeps_the_losses(tmp_path, mnist, keras_plain):
    got = _losses(_keras_run(tmp_path, mnist, "xla", PLAIN.replace(jit_compile=True)))
    np.testing.assert_allclose(got, keras_plain, atol=1e-4, rtol=0)


def test_keras_mixed_bfloat16_stays_close_and_restores_the_policy(tmp_path, mnist, keras_plain):
    import keras

    got = _losses(_keras_run(tmp_path, mnist, "bf16", PLAIN.replace(
        mixed_precision="mixed_bfloat16")))
    np.testing.assert_allclose(got, keras_plain, atol=0.1, rtol=0)
    assert not np.array_equal(got, keras_plain)
    assert keras.mixed_precision.dtype_policy().name == "float32"


def test_keras_stacked_style_with_xla(tmp_path, mnist):
    opts = OPTS.replace(steps=2)
    a = _losses(_keras_run(tmp_path, mnist, "a", PLAIN, "dense-mnist", opts))
    b = _losses(_keras_run(tmp_path, mnist, "b", PLAIN.replace(jit_compile=True),
                           "dense-mnist", opts))
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)


def test_describe_devices_is_one_line_per_asked_framework(monkeypatch):
    import importlib.util

    from dcgan_lab import speed

    line = speed.describe_devices("torch")
    if importlib.util.find_spec("torch") is None:
        assert line == "torch: not installed"
    else:
        import torch

        assert line.startswith(f"torch {torch.__version__}: ")
        assert ("cuda:" in line) == torch.cuda.is_available() and "\n" not in line
    with pytest.raises(ValueError, match="jax"):
        speed.describe_devices("jax")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorflow" else real(name, *a))
    assert speed.describe_devices("keras") == "keras: not installed"
    both = speed.describe_devices()  # every installed framework: here torch only
    assert "keras" not in both and " | " not in both


def test_describe_devices_for_torch_never_imports_tensorflow():
    pytest.importorskip("torch")
    code = ("import sys; from dcgan_lab import speed; line = speed.describe_devices('torch'); "
            "assert 'tensorflow' not in sys.modules, sys.modules.keys(); print(line)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("torch ") and len(r.stdout.strip().splitlines()) == 1


def test_describe_devices_names_both_frameworks():
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    from dcgan_lab import speed

    line = speed.describe_devices(("torch", "keras"))
    torch_part, keras_part = line.split(" | ")
    assert torch_part.startswith("torch ") and "tensorflow " in keras_part
    assert ("GPU:0" in keras_part) != ("no GPU visible" in keras_part)


# --- the benchmark's alternating mode (benchmarks/): the options it takes, the runs it records ---


@pytest.fixture()
def bench(monkeypatch):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "benchmarks"))
    return importlib.import_module("bench_train"), importlib.import_module("alternate")


def test_benchmark_wiring_speed_option_parses_and_names_unknown_options(bench):
    bench_train, _ = bench
    assert bench_train.parse_speed(None) == PLAIN
    s = bench_train.parse_speed("channels_last,autocast=bf16")
    assert s == PLAIN.replace(channels_last=True, autocast="bf16")
    with pytest.raises(ValueError, match="channel_last.*choose from"):
        bench_train.parse_speed("channel_last")
    with pytest.raises(ValueError, match="autocast"):
        bench_train.parse_speed("autocast=bf32")


def test_benchmark_wiring_record_appends_with_command_and_keeps_the_table(bench, tmp_path):
    import json

    _, alternate = bench
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"settings": {"steps": 5}, "rows": [{"recipe": "x"}]}))
    ticks = iter(range(100))
    r = alternate.alternate({"ours": lambda i: next(ticks), "reference": lambda i: next(ticks)},
                            blocks=2, block_steps=1)
    for _ in range(2):
        alternate.record(dict(r), "torch", ["benchmarks/bench_train.py", "--alternate", "2"], path)
    saved = json.loads(path.read_text())
    assert saved["rows"] == [{"recipe": "x"}] and saved["settings"] == {"steps": 5}
    assert len(saved["alternating"]) == 2
    entry = saved["alternating"][0]
    assert entry["command"] == "python benchmarks/bench_train.py --alternate 2"
    assert entry["kind"] == "torch" and len(entry["ours_s"]) == 2 and entry["date_utc"]
    assert len(entry["load_before"]) == 3 and "CPUs" in entry["machine"]


def test_parse_reads_a_command_line_value_and_names_bad_ones():
    assert speed.parse(None) == speed.parse("plain") == PLAIN
    assert speed.parse("channels_last=true,workers=2") == PLAIN.replace(channels_last=True,
                                                                          workers=2)
    assert speed.parse("compile=off") == PLAIN
    with pytest.raises(ValueError, match="compile='maybe'"):
        speed.parse("compile=maybe")
    with pytest.raises(ValueError, match="workers"):
        speed.parse("workers=-1")


# --- the three targets in one run (bench_train.py --targets) ----------------------------------


def test_fastest_cpu_options_round_trip_through_their_description():
    """--targets hands the options to the alternating mode as text: the text must parse back."""
    assert speed.parse(speed.FASTEST_CPU.describe()) == speed.FASTEST_CPU != PLAIN


def test_benchmark_wiring_result_json_finds_the_result_line_or_names_the_command(bench):
    bench_train, _ = bench
    out = 'note: loading\n{"ratio": 1.5}\ndcgan64 batch 64: ratio 1.500 (wall)\n'
    assert bench_train.result_json(out, "cmd") == {"ratio": 1.5}
    with pytest.raises(RuntimeError, match="bench_train_keras.py --alternate 2.*no JSON"):
        bench_train.result_json("Traceback ...\n", "bench_train_keras.py --alternate 2")


def test_markdown_table_escapes_pipes_inside_cells(bench):
    """A cell with a pipe (the old "|Δloss_g|" header) must not split: every line of the table
    has as many cells as the separator line, which is what makes Markdown render it as a table."""
    bench_train, _ = bench
    text = bench_train.markdown_table(["a", "|x| of b"], [["1", "p|q"], ["2", "r"]])
    lines = text.splitlines()
    assert lines[1] == "|---|---|"
    assert lines[0] == "| a | \\|x\\| of b |" and lines[2] == "| 1 | p\\|q |"
    unescaped = [len(ln.replace("\\|", "").split("|")) for ln in lines]
    assert unescaped == [4, 4, 4, 4]


def _fake_alternating(ours_s: float, reference_s: float, cpu_ratio: float | None = None) -> dict:
    return {"recipe": "dcgan64", "batch_size": 64, "block_steps": 1, "blocks": 2,
            "load_before": [1.0, 1.0, 1.0], "ours_s": [ours_s] * 2,
            "reference_s": [reference_s] * 2, "ours_steps_per_s": 1 / ours_s,
            "reference_steps_per_s": 1 / reference_s, "ratio": reference_s / ours_s,
            "cpu_s": {"ours": 2 * ours_s, "reference": 2 * reference_s},
            "cpu_ratio": cpu_ratio or reference_s / ours_s}


def test_benchmark_wiring_targets_print_met_and_record_with_stand_in_timings(bench, tmp_path, monkeypatch,
                                                                 capsys):
    """One --targets run with stand-in timings (no speed is measured here: the benchmark command
    measures): torch plain and FASTEST_CPU against the canonical step, Keras plain and
    mixed_bfloat16 against keras.io's train_step and the TF tutorial's step as context; a table
    row per target, met by the wall ratio; --record appends five entries that the appendix finds
    again (latest_targets)."""
    import functools
    import json

    bench_train, alternate = bench
    calls = []

    def torch_alt(recipe, batch, blocks, block_steps, warmup, speed=None):
        calls.append((recipe, batch, blocks, block_steps, warmup, speed))
        # plain: 1.04 on the wall clock but 1.1 in CPU time: the wall ratio decides
        r = _fake_alternating(1.0, 1.04, 1.1) if speed is None else _fake_alternating(1.0, 2.0)
        return {**r, "speed": speed or "plain"}

    monkeypatch.setattr(bench_train, "torch_alternating", torch_alt)
    keras_ratios = {"plain": 2.1, "fastest": 3.2, "tf-tutorial": 2.5}
    monkeypatch.setattr(bench_train, "keras_alternating_subprocess",
                        lambda *a, ours: _fake_alternating(2.0, keras_ratios[ours]))
    path = tmp_path / "results.json"
    monkeypatch.setattr(alternate, "record", functools.partial(alternate.record, path=path))
    argv = ["benchmarks/bench_train.py", "--targets", "--blocks", "2", "--block-steps", "1",
            "--warmup", "0", "--record"]
    monkeypatch.setattr(sys, "argv", argv)
    assert bench_train.main(argv[1:]) == 0

    fastest = speed.FASTEST_CPU.describe()
    assert calls == [("dcgan64", 64, 2, 1, 0, None), ("dcgan64", 64, 2, 1, 0, fastest)]
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| ")][1:]
    assert [ln.rsplit("|", 2)[-2].strip() for ln in rows] == ["no", "yes", "yes", "yes", "-"]
    assert "| 1.04 | 1.10 |" in rows[0] and fastest in rows[1] and "| 1.05 |" in rows[2]
    assert "mixed_bfloat16" in rows[3] and "| 1.60 |" in rows[3] and "context" in rows[4]
    saved = json.loads(path.read_text())["alternating"]
    assert [(e["kind"], e["target"]) for e in saved] == [
        ("torch", 1.05), ("torch", 1.3), ("keras", 1.0), ("keras", 1.5), ("keras", None)]
    assert all(e["command"] == "python " + " ".join(argv) for e in saved)
    found = bench_train.latest_targets(saved)
    assert [e["ratio"] for e in found] == [e["ratio"] for e in saved]


def test_benchmark_wiring_latest_targets_takes_the_last_run_of_each_and_reads_older_alternate_runs(bench):
    bench_train, _ = bench
    fastest = speed.FASTEST_CPU.describe()
    old = [{**_fake_alternating(1.0, r), "kind": kind, "speed": options}
           for kind, options, r in [("torch", "plain", 1.1), ("torch", "channels_last", 1.2),
                                    ("torch", fastest, 2.5), ("torch", "plain", 1.0)]]
    old.append({**_fake_alternating(1.0, 0.98), "kind": "keras"})  # keras runs name no options
    old.append({**_fake_alternating(1.0, 3.0), "kind": "torch", "speed": "plain",
                "recipe": "torch-mnist"})  # another recipe: not a target
    found = bench_train.latest_targets(old)
    assert [(e["comparison"].split()[0], round(e["ratio"], 2), e["target"]) for e in found] == [
        ("torch", 1.0, 1.05), ("torch", 2.5, 1.3), ("keras", 0.98, 1.0)]
    assert bench_train.latest_targets(old[:1]) == [{**old[0], "comparison": found[0]["comparison"],
                                                    "target": 1.05}]


def test_benchmark_wiring_keras_op_totals_count_the_executor_ops_per_type(bench):
    """bench_train_keras.py --op-profile: kernels counted per op type on tf_Compute threads only."""
    pytest.importorskip("tensorflow")
    import bench_train_keras
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    plane = space.planes.add()
    names = {1: "gen/conv:Conv2D", 2: "grad/conv:Conv2DBackpropFilter",
             3: "ExecutorState::Process", 4: "train_step"}
    for i, name in names.items():
        plane.event_metadata[i].id, plane.event_metadata[i].name = i, name
    for line_name, events in [("tf_Compute/1", [(1, 2e12), (1, 1e12), (2, 5e11), (3, 9e12)]),
                              ("tf_Compute/2", [(1, 1e12)]), ("python", [(1, 7e12), (4, 7e12)])]:
        line = plane.lines.add(name=line_name)
        for mid, ps in events:
            line.events.add(metadata_id=mid, duration_ps=int(ps))
    totals = bench_train_keras.op_totals(space.SerializeToString())
    assert totals == {"Conv2D": [3, 4.0], "Conv2DBackpropFilter": [1, 0.5]}
    table = bench_train_keras.op_table({"ours": totals, "reference": {"Conv2D": [2, 2.0]}}, 2)
    assert table.splitlines()[2] == "| Conv2D | 1.5 | 2.000 | 1 | 1.000 |"
