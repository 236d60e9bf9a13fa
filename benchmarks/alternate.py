"""Time two step functions in ONE process, in alternating blocks, so that both see the same load.

Used by ``bench_train.py --alternate`` and ``bench_train_keras.py --alternate``.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def alternate(steps: dict[str, Callable[[int], None]], blocks: int, block_steps: int,
              warmup: int = 1, sync: Callable[[], None] | None = None) -> dict:
    """Run ``steps["ours"]`` and ``steps["reference"]`` (each called with a 1-based step number)
    in ``blocks`` alternating blocks of ``block_steps`` steps (ours first in even blocks) after
    ``warmup`` untimed steps of each. Returns wall and CPU seconds per side and their ratios
    (reference / ours: > 1 means ours is faster)."""
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
    return {"block_steps": block_steps, "blocks": blocks,
            "ours_s": [round(t, 3) for t in times["ours"]],
            "reference_s": [round(t, 3) for t in times["reference"]],
            "ours_steps_per_s": blocks * block_steps / sum(times["ours"]),
            "reference_steps_per_s": blocks * block_steps / sum(times["reference"]),
            "ratio": sum(times["reference"]) / sum(times["ours"]),
            "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
            # CPU seconds of this process: on a shared machine, less disturbed by the other jobs
            "cpu_ratio": cpu["reference"] / cpu["ours"]}
