"""audio_io.effects: the vectorised filters equal per-sample loops, and every effect does what
its docstring says, measured on its output."""

import math

import numpy as np
import pytest

from audio_io.effects import (biquad, compressor, demo_effect, gain_reduction_envelope, linear_filter,
                              lowpass_biquad_coefficients, one_pole_coefficient, one_pole_lowpass, overdrive,
                              resonant_lowpass, time_constant_log_pole)

from helpers import largest_difference

RATE = 44100


def sine(frequency, seconds=0.5, amplitude=1.0, rate=RATE):
    return (amplitude * np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def steady_gain(x, y):
    """RMS gain over the second half, after the filter has settled."""
    half = x.shape[0] // 2
    return float(np.sqrt(np.mean(y[half:].astype(np.float64) ** 2) / np.mean(x[half:].astype(np.float64) ** 2)))


def one_pole_loop(x, a):
    y, state = np.empty(x.shape[0]), 0.0
    for n, sample in enumerate(x.tolist()):
        state = state + a * (sample - state)
        y[n] = state
    return y


def direct_form_loop(x, b, a):
    """a0 y[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2] - a1 y[n-1] - a2 y[n-2], one sample at a time."""
    b0, b1, b2 = (v / a[0] for v in b)
    a1, a2 = a[1] / a[0], a[2] / a[0]
    y, x1, x2, y1, y2 = np.empty(x.shape[0]), 0.0, 0.0, 0.0, 0.0
    for n, sample in enumerate(x.tolist()):
        out = b0 * sample + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
        x2, x1, y2, y1 = x1, sample, y1, out
        y[n] = out
    return y


@pytest.mark.parametrize("cutoff", [20.0, 1000.0, 18000.0])
def test_one_pole_lowpass_equals_the_per_sample_loop(rng, cutoff):
    x = (0.5 * rng.standard_normal(1000)).astype(np.float32)          # 1000: seven full blocks and a part
    reference = one_pole_loop(x, one_pole_coefficient(cutoff, RATE))
    assert np.abs(one_pole_lowpass(x, cutoff, RATE) - reference).max() < 1e-5


@pytest.mark.parametrize("cutoff, q", [(60.0, 12.0), (1000.0, 0.7071), (15000.0, 3.0)])
def test_biquad_equals_the_direct_form_loop(rng, cutoff, q):
    # A 60 Hz, Q 12 resonance rings for thousands of samples: the carried state must be exact.
    x = (0.5 * rng.standard_normal(3000)).astype(np.float32)
    b, a = lowpass_biquad_coefficients(cutoff, q, RATE)
    reference = direct_form_loop(x, b, a)
    assert largest_difference(biquad(x, b, a), reference, floor=1.0) < 1e-5


def test_linear_filter_equals_the_state_space_loop_for_any_block_size(rng):
    A = rng.standard_normal((3, 3))
    A *= 0.97 / np.abs(np.linalg.eigvals(A)).max()                        # stable, slowly decaying
    B, C, D = rng.standard_normal(3), rng.standard_normal(3), 0.3
    x = rng.standard_normal(1001)
    state, reference = np.zeros(3), np.empty(1001)
    for n in range(1001):
        reference[n] = C @ state + D * x[n]
        state = A @ state + B * x[n]
    for block in (1, 5, 128, 1024):                                        # one block covers everything at 1024
        y = linear_filter(x, A, B, C, D, block=block)
        assert largest_difference(y, reference) < 1e-9


def test_one_pole_lowpass_gain_matches_its_frequency_response():
    a = one_pole_coefficient(1000.0, RATE)
    measured = {f: steady_gain(sine(f), one_pole_lowpass(sine(f), 1000.0, RATE)) for f in (100.0, 1000.0, 10000.0)}
    for f, gain in measured.items():
        expected = abs(a / (1 - (1 - a) * np.exp(-2j * np.pi * f / RATE)))
        assert gain == pytest.approx(expected, rel=2e-3)
    assert measured[100.0] > 0.99 and measured[10000.0] < 0.15
    assert measured[1000.0] == pytest.approx(1 / math.sqrt(2), abs=0.03)      # -3 dB near the cutoff


def biquad_response(b, a, frequency):
    z = np.exp(-2j * np.pi * frequency / RATE)
    return abs((b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z))


def test_resonant_lowpass_peaks_by_q_at_the_cutoff_and_follows_its_response():
    gain = lambda f, q: steady_gain(sine(f), resonant_lowpass(sine(f), 1000.0, q, RATE))  # noqa: E731
    assert gain(1000.0, 4.0) == pytest.approx(4.0, rel=0.02)
    assert gain(1000.0, 1 / math.sqrt(2)) == pytest.approx(1 / math.sqrt(2), rel=0.02)
    assert gain(100.0, 4.0) == pytest.approx(1.0, abs=0.02)
    assert gain(10000.0, 4.0) < 0.012                                        # two poles: -39 dB 3.3 octaves up
    b, a = lowpass_biquad_coefficients(1000.0, 4.0, RATE)
    for f in (300.0, 1100.0, 3000.0, 12000.0):
        assert gain(f, 4.0) == pytest.approx(biquad_response(b, a, f), rel=5e-3)


def test_resonant_lowpass_drive_is_linear_at_zero_and_saturates_otherwise():
    x = sine(200.0)
    clean = resonant_lowpass(x, 2000.0, 2.0, RATE)
    assert np.abs(resonant_lowpass(0.1 * x, 2000.0, 2.0, RATE) - 0.1 * clean).max() < 1e-6
    driven_loud = steady_gain(x, resonant_lowpass(x, 2000.0, 2.0, RATE, drive=3.0))
    driven_soft = steady_gain(0.01 * x, resonant_lowpass(0.01 * x, 2000.0, 2.0, RATE, drive=3.0))
    assert driven_soft == pytest.approx(3.0 / math.tanh(3.0), rel=0.02)     # small signals: gain drive/tanh(drive)
    assert driven_loud < 0.8 * driven_soft                                   # loud ones are squashed


def harmonic_amplitude(y, frequency, harmonic, rate=RATE):
    n = np.arange(y.shape[0])
    return abs(np.mean(y * np.exp(-2j * np.pi * harmonic * frequency * n / rate))) * 2


def test_overdrive_is_bounded_normalised_and_odd_without_bias():
    x = np.linspace(-1, 1, 2001, dtype=np.float32)
    y = overdrive(x, 5.0)
    assert y.dtype == np.float32
    assert np.abs(y).max() == pytest.approx(1.0, abs=1e-6)                  # full scale in, full scale out
    assert np.array_equal(overdrive(-x, 5.0), -y)
    assert np.all(np.diff(y) >= 0)
    assert overdrive(np.array([1e-4]), 5.0)[0] / 1e-4 == pytest.approx(5.0 / math.tanh(5.0), rel=1e-3)
    assert np.abs(overdrive(np.array([-100.0, 100.0]), 5.0)).max() <= 1 / math.tanh(5.0) + 1e-6


def test_overdrive_bias_adds_even_harmonics_and_keeps_silence_silent():
    x = sine(441.0, seconds=0.1, amplitude=0.5)[:4400]                      # 441 Hz: exactly 44 periods
    symmetric, biased = overdrive(x, 4.0), overdrive(x, 4.0, bias=0.1)
    assert harmonic_amplitude(symmetric, 441.0, 2) < 1e-5 * harmonic_amplitude(symmetric, 441.0, 1)
    assert harmonic_amplitude(biased, 441.0, 2) > 0.02 * harmonic_amplitude(biased, 441.0, 1)
    assert np.abs(overdrive(np.zeros(10), 4.0, bias=0.1)).max() == 0.0
    assert np.abs(biased).max() <= 1.0


def peak_db(y):
    return 20 * math.log10(np.abs(y).max())


def test_compressor_turns_down_the_loud_passage_and_leaves_the_quiet_one():
    quiet, loud = sine(440.0, 0.5, 0.01), sine(440.0, 0.5, 1.0)             # -40 dB and 0 dB peaks
    y = compressor(np.concatenate([quiet, loud]), RATE, threshold_db=-24, ratio=6)
    half = quiet.shape[0]
    assert np.abs(y[:half] - quiet).max() < 1e-7                             # below threshold: untouched
    assert peak_db(y[-half // 2:]) == pytest.approx(-24 + 24 / 6, abs=0.3)    # settles at -20 dB
    assert compressor(quiet, RATE, makeup_db=6.0) == pytest.approx(quiet * 10 ** (6 / 20), rel=1e-5)


def gain_reduction_db(x, y):
    return -20 * np.log10(y.astype(np.float64) / x.astype(np.float64))


def test_compressor_attack_and_release_take_their_time_constants():
    # A level step on a constant signal: the gain applied is y / x at every sample.
    attack_ms, release_ms = 5.0, 60.0
    steps = [(0.2, 0.01), (0.3, 1.0), (0.5, 0.01)]
    x = np.concatenate([np.full(int(s * RATE), level, np.float32) for s, level in steps])
    onset, end = int(0.2 * RATE), int(0.5 * RATE)
    reduction = gain_reduction_db(x, compressor(x, RATE, attack_ms=attack_ms, release_ms=release_ms))
    full = reduction[end - 1]
    assert full == pytest.approx(24 * (1 - 1 / 6), abs=0.01)
    assert reduction[onset + int(attack_ms / 1000 * RATE)] / full == pytest.approx(1 - 1 / math.e, abs=0.02)
    assert reduction[onset + int(5 * attack_ms / 1000 * RATE)] / full > 0.99
    after_release = reduction[end + int(release_ms / 1000 * RATE)] / full
    assert 0.3 < after_release < 0.45                                        # about 1/e, lagging by the attack
    assert reduction[end + int(6 * release_ms / 1000 * RATE)] / full < 0.01
    slow = gain_reduction_db(x, compressor(x, RATE, attack_ms=attack_ms, release_ms=4 * release_ms))
    assert slow[end + int(release_ms / 1000 * RATE)] / full > 0.75


def test_gain_reduction_envelope_equals_the_per_sample_detector(rng):
    wanted = np.maximum(rng.standard_normal(3000) * 6, 0.0)                  # zeros included: ln 0 = -inf
    wanted[1000:1600] = 0.0
    attack, release = math.exp(time_constant_log_pole(2.0, RATE)), math.exp(time_constant_log_pole(20.0, RATE))
    peak, envelope, reference = 0.0, 0.0, np.empty(wanted.shape[0])
    for n, u in enumerate(wanted.tolist()):
        peak = max(u, release * peak)
        envelope = attack * envelope + (1 - attack) * peak
        reference[n] = envelope
    assert np.abs(gain_reduction_envelope(wanted, 2.0, 20.0, RATE) - reference).max() < 1e-9


def test_demo_effect_squashes_loud_notes_and_darkens_the_highs():
    soft_gain = steady_gain(sine(200.0, amplitude=0.01), demo_effect(sine(200.0, amplitude=0.01), RATE))
    loud_gain = steady_gain(sine(200.0, amplitude=0.8), demo_effect(sine(200.0, amplitude=0.8), RATE))
    high_gain = steady_gain(sine(15000.0, amplitude=0.01), demo_effect(sine(15000.0, amplitude=0.01), RATE))
    assert loud_gain < 0.5 * soft_gain                                       # it clips
    assert high_gain < 0.35 * soft_gain                                      # the tone filter at 4 kHz
    y = demo_effect(sine(200.0, amplitude=1.0), RATE)
    assert y.dtype == np.float32 and y.shape == (int(0.5 * RATE),) and np.abs(y).max() <= 1.0


def test_bad_arguments_are_errors():
    with pytest.raises(ValueError, match="cutoff"):
        one_pole_lowpass(np.zeros(4), 30000.0, RATE)
    with pytest.raises(ValueError, match="shape"):
        overdrive(np.zeros((4, 2)), 2.0)
    with pytest.raises(ValueError, match="time constant"):
        compressor(np.zeros(4), RATE, attack_ms=0.0)
