"""What an import of weights reports, shared by both importers (imports neither framework)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class WeightsMismatch(ValueError):
    """A weights file that cannot be read, or does not fit the recipe's network."""


@dataclass
class ImportReport:
    """What an import did: the run folder and the largest output differences to the source's
    own network (None where the file holds no network, or no discriminator was given)."""

    run_dir: Path
    g_max_diff: float | None
    d_max_diff: float | None
