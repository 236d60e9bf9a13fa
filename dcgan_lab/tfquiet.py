"""Import TensorFlow without the lines its C++ runtime writes to stderr while it loads.

TensorFlow 2.18+ logs through absl: before absl is initialised, every message goes straight to
the process's stderr whatever ``TF_CPP_MIN_LOG_LEVEL`` says (absl's "All log messages before
absl::InitializeLog() ..." and oneDNN's "oneDNN custom operations are on ..."). In a notebook
those land in cell outputs as stderr. :func:`import_tensorflow` loads TensorFlow with file
descriptor 2 pointed at a temporary file, then writes back every line that is not one of those
known notices, so real warnings still show; if the import fails, everything is written back.
``TF_CPP_MIN_LOG_LEVEL`` defaults to 3 (errors too: the graph optimiser logs a harmless
"remapper failed" error for some fused LeakyReLU gradients on oneDNN). No framework is imported
at module level.
"""

from __future__ import annotations

import os
import sys
import tempfile
from types import ModuleType

#: Start-up lines that carry no information for a reader of this course.
NOTICES = ("All log messages before absl::InitializeLog() is called",
           "oneDNN custom operations are on")


def import_tensorflow() -> ModuleType:
    """``import tensorflow``, quietly the first time in a process; returns the module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no fd 2 (embedded interpreters)
        import tensorflow

        return tensorflow
    with tempfile.TemporaryFile(mode="w+b") as log:
        os.dup2(log.fileno(), 2)
        ok = False
        try:
            import tensorflow

            ok = True
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            text = log.read().decode(errors="replace")
            lines = text.splitlines(keepends=True)
            keep = lines if not ok else [ln for ln in lines if not any(n in ln for n in NOTICES)]
            if keep:
                sys.stderr.write("".join(keep))
                sys.stderr.flush()
    return tensorflow
