import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("DCGAN_LAB_PROFILE", "smoke")
_shared = Path(__file__).resolve().parents[2] / "shared" / "data"
if "DCGAN_LAB_DATA" not in os.environ and _shared.is_dir():
    os.environ["DCGAN_LAB_DATA"] = str(_shared)
# Child processes (kill -9 tests, torchrun, CLI) import this checkout's dcgan_lab, not whatever
# copy the virtual environment has installed (an editable install may point at another tree).
_root = str(Path(__file__).resolve().parents[1])
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_root, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != _root]])
