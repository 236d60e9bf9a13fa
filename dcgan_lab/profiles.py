"""Run profiles: ``smoke`` (CI, seconds), ``cpu`` (a laptop, minutes) and ``gpu`` (full settings).

The profile comes from the ``DCGAN_LAB_PROFILE`` environment variable; when it is unset the
hardware decides: ``gpu`` where an NVIDIA GPU is visible, else ``cpu``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PROFILES = ("smoke", "cpu", "gpu")
ENV_VAR = "DCGAN_LAB_PROFILE"


def _has_gpu() -> bool:
    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None


def check(profile: str) -> str:
    """Return ``profile`` if it is a known profile, else raise a ``ValueError`` listing them."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    return profile


def current(profile: str | None = None) -> str:
    """The profile in force: ``profile`` if given, else ``$DCGAN_LAB_PROFILE``, else by hardware."""
    if profile is not None:
        return check(profile)
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value:
        try:
            return check(value)
        except ValueError as e:
            raise ValueError(f"{ENV_VAR}={value!r} is not a profile: choose one of "
                             f"{', '.join(PROFILES)}") from e
    return "gpu" if _has_gpu() else "cpu"
