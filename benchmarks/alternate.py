"""Time two step functions in ONE process, in alternating blocks, so that both see the same load.

Used by ``bench_train.py --alternate`` and ``bench_train_keras.py --alternate``; with
``--record`` they append the result, the command, the date, the machine and its load to
``benchmarks/results.json`` (key ``"alternating"``), which the book's speed appendix reads.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import time
from collections.abc import Callable
from pathlib import Path


def alternate(steps: dict[str, Callable[[int], None]], blocks: int, block_steps: int,
              warmup: int = 1, sync: Callable[[], None] | None = None) -> dict:
    """Run ``steps["ours"]`` and ``steps["reference"]`` (each called with a 1-based step number)
    in ``blocks`` alternating blocks of ``block_steps`` steps (ours first in even blocks) after
    ``warmup`` untimed steps of each. Returns wall and CPU seconds per side and their ratios
    (reference / ours: > 1 means ours is faster)."""
    load_before = [round(x, 2) for x in os.getloadavg()]
    counter = {"ours": 0, "reference": 0}
    cpu = {"ours": 0.0, "reference": 0.0}

    def block(which: str, n: int) -> float:
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            counter[which] += 1
            steps[which](counter[which])
        if sync is not None:
            sync()
        cpu[which] += time.process_time() - c0
        return time.perf_counter() - t0

    block("ours", warmup)
    block("reference", warmup)
    cpu.update(ours=0.0, reference=0.0)
    times: dict[str, list[float]] = {"ours": [], "reference": []}
    for b in range(blocks):
        for which in ("ours", "reference") if b % 2 == 0 else ("reference", "ours"):
            times[which].append(block(which, block_steps))
    return {"block_steps": block_steps, "blocks": blocks, "load_before": load_before,
            "ours_s": [round(t, 3) for t in times["ours"]],
            "reference_s": [round(t, 3) for t in times["reference"]],
            "ours_steps_per_s": blocks * block_steps / sum(times["ours"]),
            "reference_steps_per_s": blocks * block_steps / sum(times["reference"]),
            "ratio": sum(times["reference"]) / sum(times["ours"]),
            "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
            # CPU seconds of this process: on a shared machine, less disturbed by the other jobs
            "cpu_ratio": cpu["reference"] / cpu["ours"]}


#: Where ``--record`` keeps the alternating runs, beside the table runs of ``bench_train.py``.
RESULTS = Path(__file__).resolve().parent / "results.json"


def record(result: dict, kind: str, argv: list[str], path: Path = RESULTS) -> dict:
    """Append ``result`` of an alternating run to ``path``'s ``"alternating"`` list, with what a
    reader needs to judge it: ``kind`` (``"torch"`` or ``"keras"``), the exact command (with
    ``OMP_NUM_THREADS`` if set), the UTC date, the machine (architecture, CPU count, CPU model) and the load average before and after.
    Other keys of the file are kept. Returns the stored entry."""
    threads = os.environ.get("OMP_NUM_THREADS")
    command = "python " + " ".join(shlex.quote(a) for a in argv)
    entry = {"kind": kind, "command": (f"OMP_NUM_THREADS={threads} " if threads else "") + command,
             "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
             "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {_cpu_model()}",
             "load_before": result.pop("load_before", None),
             "load_after": [round(x, 2) for x in os.getloadavg()], **result}
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("alternating", []).append(entry)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return entry


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
