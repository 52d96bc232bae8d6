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
    return recordings_batches([(x, y, ())], segment, warmup, batch, rng)


def grid_starts(n: int, segment: int, warmup: int, rng: np.random.Generator) -> np.ndarray:
    """The first loss sample of each window of one recording of n samples, the grid moved
    by an offset drawn from a whole segment (as far as the recording allows)."""
    first_starts = n - warmup - segment + 1                # where the first window may start, at most
    offset = int(rng.integers(0, min(segment, first_starts))) if first_starts > 1 else 0
    return np.arange(warmup + offset, n - segment + 1, segment)


def recordings_batches(recordings: list, segment: int, warmup: int, batch: int, rng: np.random.Generator,
                       jitter: float = 0.0, blend: float = 0.0, neighbours: list | None = None):
    """One epoch over several recordings, their windows mixed in every batch.

    recordings: (x (N_r,), y (N_r,), controls (K,)) each: the audio, and the constant
    values of the model's other inputs (knob settings) for that recording. Every window of
    every recording is used once, in one shuffled order, so each batch holds the settings
    in proportion to their duration. Yields (x_window (T, 1 + K, B), y_window (T, B)) float32.

    Trained on exact settings alone, a conditioned model may answer anything between them.
    Two ways make it answer well there (RESULTS.md "Knob blending", "Knob jitter"):

    blend: the fraction of a recording's windows moved to a setting between its own and a
        neighbour's, (1 - u) c_r + u c_n with u uniform in [0, 1), the target the same mix of
        the two targets. A neighbour (``neighbours[r]``, dataset.blend_neighbours) holds the
        same input audio, so the window's input is both recordings' input; its setting
        differs in one knob alone, with no recording between them. The mixed target is the
        setting's true output to first order in the knob, and exact at both ends.
    jitter: Gaussian noise of this deviation on a window's controls (one draw per window and
        control, constant over it), the targets unchanged. It teaches a flat response around
        each setting, so with ``blend`` on it goes only to recordings without a neighbour.
    """
    neighbours = neighbours if neighbours is not None and blend else [()] * len(recordings)
    pooled = [(index, start) for index, (x, _, _) in enumerate(recordings)
              for start in grid_starts(x.size, segment, warmup, rng)]
    order = np.array(pooled, dtype=np.int64).reshape(-1, 2)
    rng.shuffle(order)
    steps = np.arange(-warmup, segment)                                  # (T,)
    K = len(recordings[0][2])
    for first in range(0, order.shape[0], batch):
        chosen = order[first : first + batch]
        B = chosen.shape[0]
        x_window = np.empty((steps.size, 1 + K, B), np.float32)
        y_window = np.empty((steps.size, B), np.float32)
        # Drawn only when blending, so that blend 0 keeps the random stream of the runs before it.
        blended, mix, pick = (rng.random(B) < blend, rng.random(B), rng.random(B)) if blend and K else (None,) * 3
        for column, (index, start) in enumerate(chosen):
            x, y, controls = recordings[index]
            x_window[:, 0, column] = x[start + steps]
            x_window[:, 1:, column] = controls
            y_window[:, column] = y[start + steps]
            near = neighbours[index]
            if near and blended[column]:
                _, y_near, c_near = recordings[near[int(pick[column] * len(near))]]
                u = mix[column]
                x_window[:, 1:, column] = (1.0 - u) * np.asarray(controls) + u * np.asarray(c_near)
                y_window[:, column] = (1.0 - u) * y[start + steps] + u * y_near[start + steps]
        if jitter and K:
            noise = (jitter * rng.standard_normal((1, K, B))).astype(np.float32)
            if blend:
                noise *= np.array([not neighbours[index] for index in chosen[:, 0]], np.float32)
            x_window[:, 1:, :] += noise
        yield x_window, y_window


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float):
    """(x_train, y_train, x_val, y_val): the last ``fraction`` of the pair, in time, is
    held out (never shuffled across the split)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the validation fraction must be between 0 and 1, got {fraction}")
    cut = int(round(x.size * (1.0 - fraction)))
    return x[:cut], y[:cut], x[cut:], y[cut:]
