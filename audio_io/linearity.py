"""How closely a linear filter explains a pair: whether the effect has anything to clip.

train.py trains a quiet input as if it were louder (lstm_core/training.py input_gain_for):
that helps every effect with gain, and costs a clean filter (RESULTS.md "Model size,
validation chunks, ...": the input level for a linear pair). A pair whose target a linear
filter reproduces to within training.LINEAR_ESR is such a filter, and is trained on its
input as it is (training.default_input_level). At the other end, a pair whose best linear
filter still leaves training.SATURATED_ESR or more (a high-gain amp, a fuzz) is trained
louder still (RESULTS.md "A louder input level for high-gain pairs").

The filter is the least-squares FIR filter of ``taps`` taps from input to target (the
input taken as zero before its first sample), found from the pair's correlations through
FFTs (the normal equations R h = p, R the input's autocorrelation with its end
corrected), all in float64: about a second for a minute of audio.

Shapes: x, y (N,) float arrays, the input and the target.
"""

from __future__ import annotations

import numpy as np

LINEAR_TAPS = 256             # 5.8 ms at 44.1 kHz: a one-pole low-pass at 800 Hz decays by 1e-12 within it
MAX_SAMPLES = 1 << 21         # 47.6 s at 44.1 kHz: longer pairs are judged on their first this many samples
RIDGE = 1e-9                  # of R's diagonal, added to it: an input shorter than the filter, or with no energy in
                              # some band, leaves R singular; the fit is then a little worse, never an error


def linear_fit_esr(x: np.ndarray, y: np.ndarray, taps: int = LINEAR_TAPS) -> float:
    """The ESR (error energy over target energy) left by the best FIR filter of ``taps``
    taps from x to y, over their first MAX_SAMPLES samples; inf for a silent target or
    input. About 1e-15 for a pair that is a linear filter settling within that length (a
    delay included); a longer response (a high-pass below about 100 Hz on bass-heavy
    audio) or a DC offset in the target leaves more, as if the pair were not linear. On
    the training audio of benchmarks/time_to_quality.py: 2.6e-3 for the resonant filter (a
    tanh drives it) up to 0.83 for the amp-like effect."""
    n = min(x.size, y.size, MAX_SAMPLES)
    x, y = np.asarray(x[:n], np.float64), np.asarray(y[:n], np.float64)
    energy = float(y @ y)
    if energy == 0.0:
        return float("inf")
    size = 1 << int(np.ceil(np.log2(n + taps)))           # no wrap-around within the lags used
    spectrum_x, spectrum_y = np.fft.rfft(x, size), np.fft.rfft(y, size)
    # Lag k of sum_n a[n] b[n - k], for k = 0 .. taps - 1: the normal equations' terms.
    auto = np.fft.irfft(spectrum_x * np.conj(spectrum_x), size)[:taps]
    if auto[0] == 0.0:                                       # a silent input explains nothing
        return float("inf")
    cross = np.fft.irfft(spectrum_y * np.conj(spectrum_x), size)[:taps]
    # R[i, j] = sum_n x[n - i] x[n - j] over n < N: the lag's whole sum less the products
    # that fall past the end for the smaller of i and j (the last min(i, j) samples).
    index = np.arange(taps)
    lags, smaller = np.abs(np.subtract.outer(index, index)), np.minimum.outer(index, index)
    tail = np.zeros(2 * taps)                                # x[N - 1], x[N - 2], ..., zeros before x[0]
    tail[: min(n, 2 * taps)] = x[::-1][: 2 * taps]
    past_end = np.zeros((taps, taps + 1))                    # [d, i]: sum of x[m] x[m - d] over the last i m
    for d in range(taps):
        past_end[d, 1:] = np.cumsum(tail[:taps] * tail[d : d + taps])
    normal = auto[lags] - past_end[lags, smaller]
    normal[np.diag_indices(taps)] += RIDGE * auto[0]
    h = np.linalg.solve(normal, cross)
    fit = np.fft.irfft(spectrum_x * np.fft.rfft(h, size), size)[:n]
    error = y - fit
    return float(error @ error / energy)
