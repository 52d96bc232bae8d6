"""Cutting a pair into training windows: warm-up + segment, shuffled each epoch.

A window of T = warmup + segment samples: the first ``warmup`` samples only drive the
model's state (burn-in, no loss), the ``segment`` after it carry the loss (and are cut
into TBPTT slices by the trainer). Each epoch the segment grid is shifted by a random
offset drawn from a whole segment, so segment (and TBPTT) boundaries fall somewhere new
every epoch, and the segments are shuffled, so batches mix different parts of the
recording. (An offset drawn only from the samples left over after the last whole segment
moved the grid by little, and not at all when nothing was left over.)
"""

from __future__ import annotations

import numpy as np


def window_count(n_samples: int, segment: int, warmup: int) -> int:
    """How many whole windows fit with the grid at offset 0 (an epoch has this many, or
    one fewer when its offset pushes the last window out)."""
    return max(0, (n_samples - warmup) // segment)


def epoch_batches(x: np.ndarray, y: np.ndarray, segment: int, warmup: int, batch: int, rng: np.random.Generator):
    """Yield (x_window (T, 1, B), y_window (T, B)) float32 batches covering one epoch.

    Args:
        x, y: (N,) input and target of the training part.
        segment: loss-carrying samples per window; warmup: burn-in samples before them.
        batch: windows per batch (the last batch may be smaller).
        rng: draws the grid offset and the order.
    """
    n = x.size
    first_starts = n - warmup - segment + 1                # where the first window may start, at most
    offset = int(rng.integers(0, min(segment, first_starts))) if first_starts > 1 else 0
    starts = np.arange(warmup + offset, n - segment + 1, segment)        # first loss sample of each window
    rng.shuffle(starts)
    steps = np.arange(-warmup, segment)                                  # (T,)
    for first in range(0, starts.size, batch):
        index = steps[:, None] + starts[None, first : first + batch]      # (T, B)
        yield x[index][:, None, :], y[index]


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float):
    """(x_train, y_train, x_val, y_val): the last ``fraction`` of the pair, in time, is
    held out (never shuffled across the split)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the validation fraction must be between 0 and 1, got {fraction}")
    cut = int(round(x.size * (1.0 - fraction)))
    return x[:cut], y[:cut], x[cut:], y[cut:]
