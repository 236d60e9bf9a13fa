"""The run folder: :class:`RunDir` (``config.json``, ``history.csv``, ``samples/``, checkpoint
and final models) and the check that a checkpoint belongs to a run.
"""

from __future__ import annotations

import json
from pathlib import Path

from .atomic import read_json, write_json
from .config import Config, RunDirError


# --- the run folder ---------------------------------------------------------------------------
class RunDir:
    """Layout of a run folder: config.json, history.csv, samples/, checkpoint files, final models."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def history_path(self) -> Path:
        return self.path / "history.csv"

    @property
    def history_copy_path(self) -> Path:
        """The history as of the last checkpoint (written just before it): what a resume
        restores ``history.csv`` from when that file is missing, damaged or cut."""
        return self.path / "checkpoint.history.csv"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    def sample_path(self, step: int) -> Path:
        return self.samples / f"step_{step:06d}.png"

    def sample_paths(self) -> list[Path]:
        return sorted(self.samples.glob("step_*.png"))

    @property
    def gif_path(self) -> Path:
        return self.path / "training.gif"

    def read_config(self) -> Config:
        if not self.config_path.exists():
            raise RunDirError(f"{self.path} is not a run folder: {self.config_path.name} is missing")
        return Config.from_dict(read_json(self.config_path))

    def prepare(self, cfg: Config, resume: bool = False, force: bool = False) -> bool:
        """Check the folder and write ``config.json``. Returns True when resuming an existing run.

        A folder that holds a different run is refused unless ``force``; a folder that holds this
        run is refused unless ``resume`` (or ``force``, which starts afresh). Temporary files
        that a killed run left half-written (``.NAME.*.tmp``: an atomic write that never got
        renamed) are removed.
        """
        exists = self.check(cfg, resume=resume, force=force)
        self.write(cfg)
        return exists and resume and not force

    def write(self, cfg: Config) -> None:
        """Create the folder and write ``config.json``, without the checks of :meth:`check`
        (for a caller that has made them: the run loop checks once, before any slow work)."""
        try:
            self.samples.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunDirError(f"cannot create the run folder {self.path} ({e.strerror or e}); "
                              f"choose another --out") from None
        for folder in (self.path, self.samples):
            for stale in folder.glob(".*.tmp*"):
                stale.unlink(missing_ok=True)
        write_json(self.config_path, cfg.to_dict())

    def check(self, cfg: Config, resume: bool = False, force: bool = False) -> bool:
        """The checks of :meth:`prepare` without writing anything (to fail before slow work).

        A folder that holds other files but no run (no ``config.json``) is refused unless
        ``force`` (which writes only the run's own names there). Returns whether the folder
        already holds a run (a ``config.json``).
        """
        exists = self.config_path.exists()
        if exists and not force:
            old = self.read_config()
            if old.comparable() != cfg.comparable():
                diff = {k: (old.comparable()[k], v) for k, v in cfg.comparable().items()
                        if old.comparable().get(k) != v}
                raise RunDirError(
                    f"{self.path} holds a different run (differences as old -> new: "
                    f"{json.dumps(diff, default=str)}); choose another --out, or pass --force "
                    f"to start afresh there")
            if not resume:
                raise RunDirError(f"{self.path} already holds this run: pass --resume to continue "
                                  f"it or --force to start afresh")
        elif resume and not exists:
            raise RunDirError(f"cannot resume: {self.path} holds no run ({self.config_path.name} "
                              f"is missing)")
        elif not exists and not force and self.path.is_dir():
            others = self._other_entries()
            if others:
                shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
                raise RunDirError(f"{self.path} is not empty ({shown}) but holds no run (no "
                                  f"{self.config_path.name}); choose a new or empty --out, or "
                                  f"pass --force to train there (files named as a run's are "
                                  f"replaced)")
        return exists

    def _other_entries(self) -> list[str]:
        """The names in the folder, but for an empty ``samples/`` (a run killed while starting)."""
        return sorted(p.name for p in self.path.iterdir()
                      if not (p == self.samples and p.is_dir() and not any(p.iterdir())))


def check_checkpoint_run(path: Path, recipe: str | None, config: dict | str, cfg: Config) -> None:
    """Raise :class:`~dcgan_lab.run.atomic.CheckpointError` naming ``path`` unless a checkpoint's
    ``recipe`` and ``config`` (``Config.to_dict()``, or its JSON) belong to the run of ``cfg``."""
    from .atomic import CheckpointError

    if recipe != cfg.recipe:
        raise CheckpointError(f"{path} belongs to recipe {recipe!r}, not {cfg.recipe!r}: choose "
                              f"another --out or pass --force")
    try:
        old = Config.from_dict(json.loads(config) if isinstance(config, str) else config)
    except (ValueError, TypeError, RunDirError) as e:
        raise CheckpointError(f"{path}: its config is unreadable ({e})") from None
    if old.comparable() != cfg.comparable():
        diff = sorted(k for k, v in cfg.comparable().items() if old.comparable().get(k) != v)
        raise CheckpointError(f"{path} belongs to a different run (differs in {', '.join(diff)}): "
                              f"choose another --out or pass --force")
