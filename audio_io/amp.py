"""An amp-like reference effect: what guitarists capture most, and harder to learn than a pedal.

    x -> input coupling high-pass
      -> triode stage 1: gain, asymmetric clipping, a bias that moves with the level
      -> coupling high-pass -> triode stage 2 (the same, less gain)
      -> the '59 Bassman tone stack
      -> power stage whose headroom sags with the level it plays at
      -> cabinet-like response -> y

Built from published models of tube amplifiers, each reduced to what can run without a
per-sample loop (the bias and the sag follow envelopes computed ahead, feed-forward):

* Triode gain stages as static waveshapers: grid conduction limits the positive grid swing
  firmly, cutoff limits the negative swing softly, and each stage inverts; the coupling
  capacitor in front of a stage charges through grid current on loud passages and moves its
  operating point ("blocking distortion", so the clipping grows more asymmetric with the
  level). This is the structure of the preamp models reviewed by J. Pakarinen and D. T. Yeh,
  "A review of digital techniques for modeling vacuum-tube guitar amplifiers", Computer
  Music Journal 33(2), 2009.
* The tone stack of the '59 Fender Bassman 5F6-A: the third-order analog transfer function
  derived by D. T. Yeh and J. O. Smith, "Discretization of the '59 Fender Bassman tone
  stack", DAFx 2006, with its component values, discretised by the bilinear transform.
* Sag: a tube rectifier's supply voltage drops with the current drawn, so the power stage
  clips earlier for a moment after a loud attack (an envelope with ~10 ms attack and
  ~150 ms release sets its headroom).
* The cabinet: a closed-back 4x12-like response, a resonant high-pass near 90 Hz (the
  speakers' resonance in the box), a presence bump near 2 kHz and a 2nd-order roll-off from
  about 4.5 kHz, as RBJ-cookbook biquads.

Every stage is plain NumPy over the whole signal; x (T,) in, y (T,) float32 out.
"""

from __future__ import annotations

import math

import numpy as np

from .effects import _samples, gain_reduction_envelope, iir, lowpass_biquad_coefficients

BASSMAN = {"R1": 250e3, "R2": 1e6, "R3": 25e3, "R4": 56e3, "C1": 250e-12, "C2": 20e-9, "C3": 20e-9}


def bilinear(b_analog, a_analog, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(b, a) in powers of z^-1 of H(s) = sum b_k s^k / sum a_k s^k (ascending powers of s),
    by the bilinear transform s = 2 rate (1 - z^-1) / (1 + z^-1), without prewarping."""
    order = max(len(b_analog), len(a_analog)) - 1
    c = 2.0 * rate
    minus, plus = np.array([1.0, -1.0]), np.array([1.0, 1.0])

    def transformed(coefficients):
        total = np.zeros(order + 1)
        for k, value in enumerate(coefficients):
            term = np.array([value * c ** k])
            for _ in range(k):
                term = np.convolve(term, minus)
            for _ in range(order - k):
                term = np.convolve(term, plus)
            total += term
        return total

    b, a = transformed(b_analog), transformed(a_analog)
    return b / a[0], a / a[0]


def bassman_tone_stack(t: float, m: float, l: float, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(b, a) of the Bassman tone stack at treble ``t``, middle ``m``, bass ``l`` (each 0..1),
    from Yeh and Smith's analog coefficients (H(s) = (b1 s + b2 s^2 + b3 s^3) / (1 + a1 s
    + a2 s^2 + a3 s^3)) and the component values of the 5F6-A."""
    R1, R2, R3, R4 = (BASSMAN[k] for k in ("R1", "R2", "R3", "R4"))
    C1, C2, C3 = (BASSMAN[k] for k in ("C1", "C2", "C3"))
    b1 = t * C1 * R1 + m * C3 * R3 + l * (C1 * R2 + C2 * R2) + (C1 * R3 + C2 * R3)
    b2 = (t * (C1 * C2 * R1 * R4 + C1 * C3 * R1 * R4) - m * m * (C1 * C3 * R3 * R3 + C2 * C3 * R3 * R3)
          + m * (C1 * C3 * R1 * R3 + C1 * C3 * R3 * R3 + C2 * C3 * R3 * R3)
          + l * (C1 * C2 * R1 * R2 + C1 * C2 * R2 * R4 + C1 * C3 * R2 * R4)
          + l * m * (C1 * C3 * R2 * R3 + C2 * C3 * R2 * R3)
          + (C1 * C2 * R1 * R3 + C1 * C2 * R3 * R4 + C1 * C3 * R3 * R4))
    C123 = C1 * C2 * C3
    b3 = C123 * (l * m * (R1 * R2 * R3 + R2 * R3 * R4) - m * m * (R1 * R3 * R3 + R3 * R3 * R4)
                 + m * (R1 * R3 * R3 + R3 * R3 * R4) + t * R1 * R3 * R4 - t * m * R1 * R3 * R4 + t * l * R1 * R2 * R4)
    a1 = (C1 * R1 + C1 * R3 + C2 * R3 + C2 * R4 + C3 * R4) + m * C3 * R3 + l * (C1 * R2 + C2 * R2)
    a2 = (m * (C1 * C3 * R1 * R3 - C2 * C3 * R3 * R4 + C1 * C3 * R3 * R3 + C2 * C3 * R3 * R3)
          + l * m * (C1 * C3 * R2 * R3 + C2 * C3 * R2 * R3) - m * m * (C1 * C3 * R3 * R3 + C2 * C3 * R3 * R3)
          + l * (C1 * C2 * R2 * R4 + C1 * C2 * R1 * R2 + C1 * C3 * R2 * R4 + C2 * C3 * R2 * R4)
          + (C1 * C2 * R1 * R4 + C1 * C3 * R1 * R4 + C1 * C2 * R3 * R4 + C1 * C2 * R1 * R3 + C1 * C3 * R3 * R4
             + C2 * C3 * R3 * R4))
    a3 = C123 * (l * m * (R1 * R2 * R3 + R2 * R3 * R4) - m * m * (R1 * R3 * R3 + R3 * R3 * R4)
                 + m * (R3 * R3 * R4 + R1 * R3 * R3 - R1 * R3 * R4) + l * R1 * R2 * R4 + R1 * R3 * R4)
    return bilinear([0.0, b1, b2, b3], [1.0, a1, a2, a3], rate)


def coupling_highpass(x, cutoff_hz: float, rate: int) -> np.ndarray:
    """A coupling capacitor into a grid resistor: a one-pole high-pass (bilinear), float64."""
    p = math.exp(-2.0 * math.pi * cutoff_hz / rate)
    return iir(x, [(1 + p) / 2, -(1 + p) / 2], [1.0, -p])


def triode(v: np.ndarray) -> np.ndarray:
    """The static curve of a common-cathode triode stage, normalised, inverting: the positive
    grid swing (grid conduction) limits firmly at 1, the negative (cutoff) softly near 1.6."""
    positive = v / (1.0 + np.maximum(v, 0.0) ** 4) ** 0.25
    negative = 1.6 * np.tanh(np.minimum(v, 0.0) / 1.6)
    return -np.where(v >= 0.0, positive, negative)


def triode_stage(x: np.ndarray, gain: float, rate: int, blocking: float = 0.4) -> np.ndarray:
    """gain, then the triode curve with the operating point pushed down by ``blocking`` times
    an envelope of the grid current (the positive swing above the curve's knee): on loud
    passages the coupling capacitor charges and the stage clips more asymmetrically."""
    v = gain * x
    grid_current = np.maximum(v - 0.5, 0.0)
    bias = blocking * gain_reduction_envelope(grid_current, attack_ms=2.0, release_ms=60.0, rate=rate)
    return triode(v - bias)


def rbj(kind: str, frequency: float, q: float, rate: int, gain_db: float = 0.0):
    """(b, a) of the RBJ cookbook "highpass" or "peak" biquad."""
    w = 2.0 * math.pi * frequency / rate
    cos_w, alpha = math.cos(w), math.sin(w) / (2.0 * q)
    if kind == "highpass":
        return ((1 + cos_w) / 2, -(1 + cos_w), (1 + cos_w) / 2), (1 + alpha, -2 * cos_w, 1 - alpha)
    if kind == "peak":
        A = 10.0 ** (gain_db / 40.0)
        return (1 + alpha * A, -2 * cos_w, 1 - alpha * A), (1 + alpha / A, -2 * cos_w, 1 - alpha / A)
    raise ValueError(kind)


def cabinet(x, rate: int) -> np.ndarray:
    """A 4x12-like cabinet: resonant high-pass at 90 Hz, +4 dB near 2 kHz, low-pass from 4.5 kHz."""
    y = iir(x, *rbj("highpass", 90.0, 1.3, rate))
    y = iir(y, *rbj("peak", min(2000.0, 0.4 * rate), 1.0, rate, 4.0))
    return iir(y, *lowpass_biquad_coefficients(min(4500.0, 0.45 * rate), 0.8, rate))


def amp(x, rate: int, gain: float = 1.0, bass: float = 0.5, middle: float = 0.4, treble: float = 0.7,
        sag: float = 0.5) -> np.ndarray:
    """The amp-like effect of the module doc. x (T,) -> (T,) float32.

    ``gain`` scales the preamp's drive (1: a high-gain setting, the first stage at 20x, the
    second at 8x; 0.1: nearly clean); bass, middle, treble: the tone stack's controls (0..1);
    ``sag``: how far the power stage's headroom drops on loud passages (0: a stiff supply).
    """
    x = _samples(x)
    y = coupling_highpass(x, 20.0, rate)
    y = triode_stage(y, 20.0 * gain + 1.0, rate)
    y = coupling_highpass(y, 15.0, rate)
    y = triode_stage(y, 8.0 * gain + 1.0, rate)
    y = iir(y, *bassman_tone_stack(treble, middle, bass, rate))
    drive = 4.0 * y                                            # the phase inverter into the power tubes
    level = gain_reduction_envelope(np.abs(drive), attack_ms=10.0, release_ms=150.0, rate=rate)
    headroom = 1.0 / (1.0 + sag * level)
    y = headroom * np.tanh(drive / headroom + 0.1) - headroom * math.tanh(0.1)   # a slightly unbalanced push-pull
    y = coupling_highpass(y, 10.0, rate)                        # the output transformer passes no DC
    return (0.5 * cabinet(y, rate)).astype(np.float32)
