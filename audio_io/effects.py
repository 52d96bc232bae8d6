"""Reference audio effects in plain NumPy: the processing the LSTM learns to imitate.

Every effect takes ``x`` (T,) samples (any float dtype, full scale +-1) and returns (T,)
float32. Arithmetic is float64 inside. No effect has a per-sample Python loop: the linear
filters run block by block in closed form (``linear_filter``), the compressor's envelope
follower is a running maximum in the log domain followed by a linear filter.
"""

from __future__ import annotations

import math

import numpy as np

BLOCK = 128     # samples per block of ``linear_filter``: BLOCK multiply-adds per sample, T / BLOCK loop steps


def _samples(x) -> np.ndarray:
    """x as a (T,) float64 array; anything that is not one channel of samples is an error."""
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"expected one channel of samples, shape (T,), got shape {x.shape}")
    return x.astype(np.float64)


def _check_cutoff(cutoff_hz: float, rate: int):
    if not 0 < cutoff_hz < rate / 2:
        raise ValueError(f"cutoff {cutoff_hz} Hz must lie between 0 and half the sample rate ({rate / 2} Hz)")


def linear_filter(x, A, B, C, D, block: int = BLOCK) -> np.ndarray:
    """Run the linear system s[n+1] = A s[n] + B x[n], y[n] = C s[n] + D x[n] from s[0] = 0.

    x (T,); A (N, N); B (N,); C (N,); D scalar; returns y (T,) float64. Exact (float64
    rounding only) and without a per-sample loop: the signal is cut into blocks of ``block``
    samples, each block's response to its own input is one matrix product with the
    (block, block) lower-triangular Toeplitz matrix of the impulse response, and only the
    N-dimensional state is carried from block to block in a Python loop of T / block steps.
    """
    x = _samples(x)
    A = np.atleast_2d(np.asarray(A, np.float64))                   # (N, N)
    B = np.atleast_1d(np.asarray(B, np.float64))                   # (N,)
    C = np.atleast_1d(np.asarray(C, np.float64))                   # (N,)
    T, order = x.shape[0], A.shape[0]
    blocks = -(-T // block)
    padded = np.zeros(blocks * block)
    padded[:T] = x
    X = padded.reshape(blocks, block)                              # (blocks, block)

    state_to_output = np.empty((block, order))                     # row k: C A^k
    input_to_state = np.empty((block, order))                      # row k: A^k B
    row, column = C.copy(), B.copy()
    for k in range(block):
        state_to_output[k], input_to_state[k] = row, column
        row, column = row @ A, A @ column
    block_transition = np.linalg.matrix_power(A, block)            # (N, N): A^block

    impulse = np.empty(block)                                      # h[0] = D, h[k] = C A^(k-1) B
    impulse[0] = D
    impulse[1:] = state_to_output[:-1] @ B
    lag = np.arange(block)[:, None] - np.arange(block)[None, :]
    toeplitz = np.where(lag >= 0, impulse[np.maximum(lag, 0)], 0.0)   # (block, block): y = toeplitz @ x

    zero_state_output = X @ toeplitz.T                             # (blocks, block)
    state_pushed = X @ input_to_state[::-1]                        # (blocks, N): sum_j A^(block-1-j) B x[j]
    block_start_state = np.empty((blocks, order))                  # (blocks, N)
    state = np.zeros(order)
    for b in range(blocks):
        block_start_state[b] = state
        state = block_transition @ state + state_pushed[b]
    y = zero_state_output + block_start_state @ state_to_output.T
    return y.reshape(-1)[:T]


def one_pole_coefficient(cutoff_hz: float, rate: int) -> float:
    """a = 1 - exp(-2 pi cutoff / rate): the smoothing factor of an RC low-pass whose
    time constant is 1 / (2 pi cutoff), sampled at ``rate`` (impulse invariance)."""
    _check_cutoff(cutoff_hz, rate)
    return 1.0 - math.exp(-2.0 * math.pi * cutoff_hz / rate)


def one_pole_lowpass(x, cutoff_hz: float, rate: int) -> np.ndarray:
    """y[n] = y[n-1] + a (x[n] - y[n-1]), y[-1] = 0, a = one_pole_coefficient(cutoff_hz, rate).

    x (T,) -> y (T,) float32. -3 dB near ``cutoff_hz``, then -6 dB per octave; the impulse
    response is positive, so |y| never exceeds max |x|.
    """
    a = one_pole_coefficient(cutoff_hz, rate)
    pole = 1.0 - a
    # State s[n] = y[n-1]: y[n] = pole s[n] + a x[n], and s[n+1] = y[n].
    return linear_filter(x, [[pole]], [a], [pole], a).astype(np.float32)


def iir(x, b, a) -> np.ndarray:
    """The filter a0 y[n] = sum_k b_k x[n-k] - sum_{k>=1} a_k y[n-k], of any order, from rest.

    x (T,); b, a: coefficient sequences of equal length N + 1; returns y (T,) float64.
    Transposed direct form II as a state-space system (N states) run by linear_filter:
    y = b0 x + s1, s_k' = b_k x - a_k y + s_{k+1} (s_{N+1} = 0).
    """
    b = np.asarray(b, np.float64) / float(a[0])
    a = np.asarray(a, np.float64) / float(a[0])
    if b.shape != a.shape or b.ndim != 1 or b.size < 2:
        raise ValueError(f"b and a must be coefficient lists of the same length (2 or more), got {b.size} and {a.size}")
    order = b.size - 1
    A = np.zeros((order, order))
    A[:, 0] = -a[1:]
    A[:-1, 1:] = np.eye(order - 1)
    B = b[1:] - a[1:] * b[0]
    C = np.zeros(order)
    C[0] = 1.0
    return linear_filter(x, A, B, C, b[0])


def biquad(x, b, a) -> np.ndarray:
    """The second-order filter a0 y[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2] - a1 y[n-1] - a2 y[n-2].

    x (T,); b = (b0, b1, b2), a = (a0, a1, a2); starts from rest; returns y (T,) float32.
    """
    return iir(x, b, a).astype(np.float32)


def lowpass_biquad_coefficients(cutoff_hz: float, q: float, rate: int) -> tuple[tuple, tuple]:
    """(b, a) of the RBJ cookbook low-pass: unity gain at DC, gain q at ``cutoff_hz``,
    -12 dB per octave above. w = 2 pi cutoff / rate, alpha = sin(w) / (2 q);
    b = ((1 - cos w) / 2, 1 - cos w, (1 - cos w) / 2), a = (1 + alpha, -2 cos w, 1 - alpha)."""
    _check_cutoff(cutoff_hz, rate)
    if q <= 0:
        raise ValueError(f"resonance (Q) must be positive, got {q}")
    w = 2.0 * math.pi * cutoff_hz / rate
    cos_w, alpha = math.cos(w), math.sin(w) / (2.0 * q)
    b = ((1.0 - cos_w) / 2.0, 1.0 - cos_w, (1.0 - cos_w) / 2.0)
    a = (1.0 + alpha, -2.0 * cos_w, 1.0 - alpha)
    return b, a


def saturate(x, drive: float) -> np.ndarray:
    """tanh(drive x) / tanh(drive): full scale stays full scale, small signals are scaled by
    drive / tanh(drive). drive = 0 is the limit of no saturation, y = x. x (T,) -> (T,) float64."""
    x = _samples(x)
    if drive < 0:
        raise ValueError(f"drive must be >= 0, got {drive}")
    if drive == 0:
        return x
    return np.tanh(drive * x) / math.tanh(drive)


def resonant_lowpass(x, cutoff_hz: float, resonance: float, rate: int, drive: float = 0.0) -> np.ndarray:
    """A resonant 2-pole low-pass, driven: biquad(saturate(x, drive), RBJ low-pass(cutoff, Q = resonance)).

    x (T,) -> (T,) float32. ``resonance`` is the Q: 1/sqrt(2) is flat (Butterworth), Q > 1
    peaks at the cutoff by 20 log10(Q) dB (Q = 4: +12 dB). ``drive`` saturates the input
    before the filter (see ``saturate``; 0 = linear). Because the saturation comes before a
    linear filter, the whole effect runs vectorised; a nonlinear ladder, which saturates
    inside its feedback loop, would need a per-sample loop.
    """
    b, a = lowpass_biquad_coefficients(cutoff_hz, resonance, rate)
    return biquad(saturate(x, drive), b, a)


def overdrive(x, gain: float, bias: float = 0.0) -> np.ndarray:
    """Soft clipping: y = (tanh(gain (x + bias)) - tanh(gain bias)) / norm.

    x (T,) -> (T,) float32. ``gain`` > 0 sets how hard it clips (1: gentle, 10: fuzz).
    ``bias`` shifts the curve so that the two half-waves clip differently (even harmonics,
    as in a tube or a single transistor); tanh(gain bias), the output at rest, is
    subtracted so that silence stays silence. ``norm`` makes a full-scale input (x = +-1)
    reach exactly 1 on the louder side, so |y| <= 1 for |x| <= 1 (for any x, |y| stays
    below (1 + |tanh(gain bias)|) / norm), and with bias 0 the curve is odd:
    overdrive(-x) = -overdrive(x).
    """
    x = _samples(x)
    if gain <= 0:
        raise ValueError(f"gain must be positive, got {gain}")
    at_rest = math.tanh(gain * bias)
    norm = max(math.tanh(gain * (1.0 + bias)) - at_rest, at_rest - math.tanh(gain * (bias - 1.0)))
    return ((np.tanh(gain * (x + bias)) - at_rest) / norm).astype(np.float32)


def time_constant_log_pole(time_ms: float, rate: int) -> float:
    """ln(pole) of a one-pole smoother that covers 1 - 1/e of a step in ``time_ms``:
    pole = exp(-1 / (time_s rate))."""
    if time_ms <= 0:
        raise ValueError(f"a time constant must be positive, got {time_ms} ms")
    return -1.0 / (time_ms / 1000.0 * rate)


def gain_reduction_envelope(wanted_db, attack_ms: float, release_ms: float, rate: int) -> np.ndarray:
    """Smooth the wanted gain reduction u[n] >= 0 (dB, (T,)) into the applied one (T,) float64.

    Peak detector with exponential release, then a one-pole attack (Giannoulis, Massberg and
    Reiss, "Digital dynamic range compressor design", JAES 2012, the smooth decoupled detector):
        peak[n] = max(u[n], r peak[n-1]),          r = exp(-1 / (release_s rate))
        env[n]  = p env[n-1] + (1 - p) peak[n],    p = exp(-1 / (attack_s rate))
    The peak recursion is exact without a loop: peak[n] = max over k <= n of r^(n-k) u[k],
    so ln peak[n] = n ln r + running max of (ln u[k] - k ln r).
    """
    u = _samples(wanted_db)
    log_release = time_constant_log_pole(release_ms, rate)
    steps = np.arange(u.shape[0], dtype=np.float64)
    with np.errstate(divide="ignore"):                             # ln 0 = -inf: no reduction wanted
        log_u = np.log(u)
    log_peak = steps * log_release + np.maximum.accumulate(log_u - steps * log_release)
    peak = np.exp(log_peak)
    pole = math.exp(time_constant_log_pole(attack_ms, rate))
    return linear_filter(peak, [[pole]], [1.0 - pole], [pole], 1.0 - pole)


def compressor(x, rate: int, threshold_db: float = -24.0, ratio: float = 6.0, attack_ms: float = 5.0,
               release_ms: float = 60.0, makeup_db: float = 0.0) -> np.ndarray:
    """Feed-forward compressor with a hard knee, acting on the sample peak level in dB.

    x (T,) -> (T,) float32. level[n] = 20 log10 |x[n]|; above ``threshold_db`` the static
    curve lets the level rise by 1 dB per ``ratio`` dB, so the wanted gain reduction is
    u[n] = max(0, level[n] - threshold_db) (1 - 1 / ratio) dB. It is smoothed by
    ``gain_reduction_envelope`` (a release of ``release_ms``, an attack of ``attack_ms``,
    each the time to cover 1 - 1/e of a step) and y[n] = x[n] 10^((makeup_db - env[n]) / 20).
    A full-scale sine (0 dB peak) settles at threshold + (0 - threshold) / ratio dB peak.
    """
    x = _samples(x)
    if ratio < 1:
        raise ValueError(f"ratio must be >= 1, got {ratio}")
    level_db = 20.0 * np.log10(np.maximum(np.abs(x), 1e-12))       # 1e-12: silence is -240 dB, not -inf
    wanted_db = np.maximum(level_db - threshold_db, 0.0) * (1.0 - 1.0 / ratio)
    applied_db = gain_reduction_envelope(wanted_db, attack_ms, release_ms, rate)
    return (x * 10.0 ** ((makeup_db - applied_db) / 20.0)).astype(np.float32)


def knob_pedal(x, rate: int, drive: float, tone: float) -> np.ndarray:
    """The knob demo's pedal: overdrive(x, 1 + 0.8 drive, bias 0.05) into a one-pole low-pass
    at 700 Hz 2^(0.45 tone) (700 Hz to 16 kHz, under 0.45 rate); drive and tone run 0..10.
    x (T,) -> (T,) float32."""
    cutoff = min(700.0 * 2.0 ** (0.45 * tone), 0.45 * rate)
    return one_pole_lowpass(overdrive(x, 1.0 + 0.8 * drive, DEMO_BIAS), cutoff, rate)


DEMO_GAIN = 4.0            # drives the loudest notes well into clipping, leaves the softest nearly clean
DEMO_BIAS = 0.05           # a little asymmetry, for some even harmonics
DEMO_CUTOFF_HZ = 4000.0    # takes the fizz off the clipped edges, as a pedal's tone control does


def demo_effect(x, rate: int) -> np.ndarray:
    """The demo's pedal: one_pole_lowpass(overdrive(x, 4, bias 0.05), 4 kHz). x (T,) -> (T,) float32.

    At rates of 8 kHz or below the tone filter is set to 0.45 rate, under Nyquist.
    """
    cutoff = min(DEMO_CUTOFF_HZ, 0.45 * rate)
    return one_pole_lowpass(overdrive(x, DEMO_GAIN, DEMO_BIAS), cutoff, rate)
