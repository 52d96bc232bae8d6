"""A model as read from any file it can live in, and the error for a file that cannot be used.

Readers of every format (npz.py, nam.py, aidax.py, coreaudioml.py) return a ModelFile and raise
ModelFileError; the helpers below keep what other tools' free-form metadata says only
where it makes sense.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from ..model import ModelConfig


class ModelFileError(ValueError):
    """A model or checkpoint file cannot be used; the message names the file and why."""


@dataclass
class ModelFile:
    """A model as read from any file it can live in (ours, .nam, AIDA-X .json): see formats.py."""

    params: dict                       # float32 host arrays, our names (lstm0.W_x, ..., out.b)
    config: ModelConfig
    sample_rate: int | None            # what the file says it was trained at, if it says
    meta: dict                         # what the file says about itself (name, val_esr, date, ...)
    kind: str                          # "npz" (ours), "nam" or "aidax" (AIDA-X's trainer's CoreAudioML files too)
    initial_state: tuple | None = None  # (h, c), each (L, H): where a stream starts; None: zeros
    notes: list = field(default_factory=list)   # what the reader noticed, for the user
    gains_db: tuple = (0.0, 0.0)       # (input, output) gains in dB around the model (AIDA-X in_gain, out_gain)

    @property
    def gains(self) -> tuple[float, float]:
        """(input, output) as factors: the audio is multiplied by the first before the model
        (its skip included) and the model's output by the second."""
        return tuple(10.0 ** (g / 20.0) for g in self.gains_db)




# Facts read from other tools' files are free-form: keep them only when they make sense.
RATES = (8000, 384000)         # sample rates taken at face value; others are treated as missing


def finite_number(value) -> float | None:
    """``value`` as a float when it is a finite number (metadata is free-form), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        return None
    return float(value)


def sample_rate_or_none(value) -> int | None:
    """A plausible sample rate in Hz, or None. Community AIDA-X files write it as a number
    or as a string of one ("48000"); both are read."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    rate = finite_number(value)
    return int(rate) if rate is not None and RATES[0] <= rate <= RATES[1] else None


def parse_date(value) -> datetime | None:
    """An ISO date-time string as a datetime, or None for anything else."""
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
