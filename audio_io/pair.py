"""A pair of recordings, checked: the dry input and the same audio through the effect.

Every problem that would make training fail or learn nonsense stops here with a message
that names the file and says what to do, as an AudioError (the command lines print it on
one line and exit non-zero). Harmless adjustments (a stereo mix-down, a trim) are
reported as notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .align import estimate_delay, shift
from .files import AudioError, read_audio

SILENCE_PEAK = 10 ** (-60 / 20)      # a target whose peak is below -60 dBFS is treated as silent


@dataclass
class Pair:
    input: np.ndarray            # (N,) float32
    target: np.ndarray           # (N,) float32
    rate: int
    notes: list = field(default_factory=list)   # what was adjusted, for the user
    delay: int = 0               # target lag behind input in samples (estimated)
    aligned: bool = False        # whether the delay was compensated


def pick_channel(data: np.ndarray, path, channel: int | None, notes: list) -> np.ndarray:
    """(N, C) -> (N,): channel ``channel`` (0-based), or the mean of all with a note."""
    channels = data.shape[1]
    if channel is not None:
        if not 0 <= channel < channels:
            raise AudioError(f"{path}: has {channels} channel(s), --channel {channel} does not exist "
                             f"(channels are numbered from 0)")
        return np.ascontiguousarray(data[:, channel])
    if channels > 1:
        notes.append(f"{path}: {channels} channels mixed down to mono (use --channel N to pick one)")
        return data.mean(axis=1, dtype=np.float32)
    return data[:, 0].copy()


def check_finite(samples: np.ndarray, path):
    bad = ~np.isfinite(samples)
    if bad.any():
        first = int(np.argmax(bad))
        raise AudioError(f"{path}: {int(bad.sum())} sample(s) are NaN or infinite (first at sample {first}); "
                         f"export the file again as PCM or clean float audio")


def read_mono(path, channel: int | None, notes: list) -> tuple[np.ndarray, int]:
    data, rate = read_audio(path)
    if data.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no samples")
    samples = pick_channel(data, path, channel, notes)
    check_finite(samples, path)
    return samples, rate


def load_pair(input_path, target_path, channel: int | None = None, trim: bool = False, align: bool = False,
              min_length: int = 1, max_delay: int | None = None) -> Pair:
    """Read and check a pair.

    Args:
        channel: the channel to use from multi-channel files; None mixes down.
        trim: allow different lengths, cutting the longer file (reported in notes).
        align: compensate the estimated delay between input and target.
        min_length: the fewest samples training can use (one window).
        max_delay: the largest delay searched for, in samples (default: 50 ms).

    Raises AudioError naming the file and the problem.
    """
    notes: list = []
    x, rate_x = read_mono(input_path, channel, notes)
    y, rate_y = read_mono(target_path, channel, notes)
    if rate_x != rate_y:
        raise AudioError(f"{input_path} is {rate_x} Hz but {target_path} is {rate_y} Hz: "
                         f"resample one so that both have the same sample rate")
    if x.size != y.size:
        if not trim:
            raise AudioError(f"{input_path} has {x.size} samples but {target_path} has {y.size}: "
                             f"the pair must be the same recording through the effect; use --trim to cut "
                             f"the longer one")
        longer = input_path if x.size > y.size else target_path
        cut = abs(x.size - y.size)
        notes.append(f"--trim: cut {cut} samples ({cut / rate_x:.3f} s) from the end of {longer}")
        n = min(x.size, y.size)
        x, y = x[:n], y[:n]
    if np.abs(y).max() < SILENCE_PEAK:
        raise AudioError(f"{target_path}: the target is silent or nearly so (peak below -60 dBFS): "
                         f"check that it is the processed recording")
    if np.abs(x).max() < SILENCE_PEAK:
        raise AudioError(f"{input_path}: the input is silent or nearly so (peak below -60 dBFS)")
    pair = Pair(x, y, rate_x, notes)
    pair.delay = estimate_delay(x, y, max_delay if max_delay is not None else max(1, rate_x // 20))
    if align and pair.delay:
        pair.input, pair.target = shift(x, y, pair.delay)
        pair.aligned = True
    if pair.input.size < min_length:
        raise AudioError(f"{input_path}: {pair.input.size} samples ({pair.input.size / rate_x:.2f} s) is too short "
                         f"for one training window of {min_length} samples; use longer recordings or a shorter "
                         f"--segment / --warmup")
    return pair
