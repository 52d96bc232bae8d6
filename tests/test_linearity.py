"""linear_fit_esr: the least-squares FIR fit from the pair's correlations equals the one a
plain least-squares solve finds, and tells a linear pair from one with clipping."""

import numpy as np
import pytest

from audio_io.effects import one_pole_lowpass
from audio_io.linearity import linear_fit_esr
from lstm_core.training import (DEFAULT_INPUT_LEVEL, HIGH_GAIN_INPUT_LEVEL, LINEAR_ESR, SATURATED_ESR,
                                default_input_level)


def plain_least_squares_esr(x, y, taps):
    """The reference: the convolution matrix written out (zeros before x[0]), lstsq."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    X = np.lib.stride_tricks.sliding_window_view(np.concatenate([np.zeros(taps - 1), x]), taps)[:, ::-1]
    h = np.linalg.lstsq(X, y, rcond=None)[0]
    error = y - X @ h
    return float(error @ error / (y @ y))


@pytest.mark.parametrize("n, taps", [(3000, 64), (100, 64)])        # 100: shorter than 2 filter lengths
def test_the_fit_equals_a_plain_least_squares_solve(n, taps):
    x = np.random.default_rng(3).standard_normal(n)
    y = np.tanh(2 * x) + 0.3 * np.roll(x, 5)
    expected = plain_least_squares_esr(x, y, taps)
    assert 1e-3 < expected < 1 and linear_fit_esr(x, y, taps) == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_a_linear_pair_is_told_from_one_with_clipping():
    rate = 44100
    x = 0.05 * np.random.default_rng(4).standard_normal(5 * rate).astype(np.float32)
    delayed = np.concatenate([np.zeros(100, np.float32), x[:-100]])
    lowpass = one_pole_lowpass(x, 800.0, rate)
    for linear in (delayed, lowpass, 0.3 * x):
        assert linear_fit_esr(x, linear) < 1e-10
        assert default_input_level(linear_fit_esr(x, linear)) == -np.inf
    clipped = np.tanh(30 * lowpass)                         # 30 times the gain into a soft clip
    assert linear_fit_esr(x, clipped) > 100 * LINEAR_ESR
    assert default_input_level(linear_fit_esr(x, clipped)) == DEFAULT_INPUT_LEVEL
    assert linear_fit_esr(x, np.zeros_like(x)) == np.inf     # nothing to explain
    assert linear_fit_esr(np.zeros_like(x), x) == np.inf     # nothing to explain it with


def test_a_pair_that_no_linear_filter_explains_is_a_high_gain_one():
    """A full-wave rectifier of a symmetric input has no linear part at all (its ESR is
    about 1): it trains louder; a set of pairs does only when every pair is that far from
    linear, and a linear one among them is no longer trained as it is."""
    x = 0.05 * np.random.default_rng(5).standard_normal(3 * 44100).astype(np.float32)
    rectified = np.abs(x)
    clipped = np.tanh(30 * x)
    saturated, linear = linear_fit_esr(x, rectified), linear_fit_esr(x, 0.3 * x)
    assert saturated > SATURATED_ESR > linear_fit_esr(x, clipped) > LINEAR_ESR > linear
    assert default_input_level(saturated) == HIGH_GAIN_INPUT_LEVEL > DEFAULT_INPUT_LEVEL
    assert default_input_level(saturated, saturated) == HIGH_GAIN_INPUT_LEVEL
    assert default_input_level(saturated, linear_fit_esr(x, clipped)) == DEFAULT_INPUT_LEVEL
    assert default_input_level(saturated, linear) == DEFAULT_INPUT_LEVEL
    assert default_input_level(linear, linear) == -np.inf
    assert default_input_level(np.inf) == default_input_level() == DEFAULT_INPUT_LEVEL     # nothing was fitted
