"""Run a script that stops half-way through an atomic write, for the kill -9 tests.

    python tests/integration/pause_in_write.py NAME N SCRIPT [ARGS...]
    python tests/integration/pause_in_write.py NAME N -c CODE [ARGS...]

runs SCRIPT or CODE (with ARGS as its ``sys.argv[1:]``) with ``os.replace`` patched: the N-th time a
file called NAME is about to be installed, its temporary file is cut to half its bytes (as if the
process died with half of them on disk), ``<temporary file>.paused`` is created and the process
sleeps, so that the test can ``kill -9`` it right there. The package itself has no such hook.
"""

from __future__ import annotations

import os
import runpy
import sys
import time
from pathlib import Path


def install(name: str, nth: int) -> None:
    """Patch ``os.replace`` to pause inside the ``nth`` install of a file called ``name``."""
    real_replace = os.replace
    seen = 0

    def replace(src, dst, *args, **kwargs):
        nonlocal seen
        if Path(dst).name == name:
            seen += 1
            if seen == nth:
                size = os.stat(src).st_size
                os.truncate(src, size // 2)
                Path(f"{src}.paused").write_text(f"{size // 2} of {size} bytes of {dst}\n")
                time.sleep(600)  # the test kills us here
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace


if __name__ == "__main__":
    name, nth, script, *rest = sys.argv[1:]
    install(name, int(nth))
    if script == "-c":
        code, *rest = rest
        sys.argv = ["-c", *rest]
        exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})
    else:
        sys.argv = [script, *rest]
        runpy.run_path(script, run_name="__main__")
