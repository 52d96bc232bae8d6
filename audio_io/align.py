"""The delay between input and target, by cross-correlation, and its compensation.

A target recorded through real gear (an amp, an interface round trip) usually lags the
input by a few to a few hundred samples. The model cannot predict the future, so a lag
it must learn costs capacity, and a target that *leads* its input is impossible to
learn: misaligned pairs are the commonest reason amp captures fail to train.
"""

from __future__ import annotations

import numpy as np

ANALYSIS_SAMPLES = 1 << 20     # correlate at most this many samples (about 24 s at 44.1 kHz)


def estimate_delay(x: np.ndarray, y: np.ndarray, max_delay: int) -> int:
    """The lag d (|d| <= max_delay) maximising sum_n x[n] y[n + d]: positive when the
    target y lags the input x. Uses the FFT on at most ANALYSIS_SAMPLES samples, from the
    loudest stretch of the input."""
    n = min(x.size, y.size)
    if n > ANALYSIS_SAMPLES:
        # The loudest stretch carries the most information about the lag.
        block = ANALYSIS_SAMPLES
        energy = np.add.reduceat(x[: n - n % block].astype(np.float64) ** 2, np.arange(0, n - n % block, block))
        start = int(np.argmax(energy)) * block if energy.size else 0
        x, y = x[start : start + block], y[start : start + block]
        n = x.size
    x = x[:n].astype(np.float64) - x[:n].mean()
    y = y[:n].astype(np.float64) - y[:n].mean()
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.conj(np.fft.rfft(x, size)) * np.fft.rfft(y, size)
    correlation = np.fft.irfft(spectrum, size)          # correlation[d] = sum x[n] y[n + d] (circular)
    max_delay = min(max_delay, n - 1)
    lags = np.concatenate([np.arange(0, max_delay + 1), np.arange(-max_delay, 0)])
    values = np.concatenate([correlation[: max_delay + 1], correlation[size - max_delay :]])
    # Magnitude: an inverting effect (a polarity flip) still has a clear peak.
    return int(lags[np.argmax(np.abs(values))])


def shift(x: np.ndarray, y: np.ndarray, delay: int) -> tuple[np.ndarray, np.ndarray]:
    """The pair with the target moved by ``delay`` samples to line up with the input;
    both are cut to the overlapping part."""
    if delay > 0:
        return x[:-delay], y[delay:]
    if delay < 0:
        return x[-delay:], y[:delay]
    return x, y
