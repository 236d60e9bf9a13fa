import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("DCGAN_LAB_PROFILE", "smoke")
_shared = Path(__file__).resolve().parents[2] / "shared" / "data"
if "DCGAN_LAB_DATA" not in os.environ and _shared.is_dir():
    os.environ["DCGAN_LAB_DATA"] = str(_shared)
