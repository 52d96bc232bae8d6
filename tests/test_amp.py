"""The amp-like reference effect (audio_io/amp.py): each published piece does what its
model says, and the whole behaves like a high-gain amp (asymmetric, level-dependent)."""

import numpy as np
import pytest

from audio_io.amp import amp, bassman_tone_stack, bilinear, triode, triode_stage
from audio_io.demo import music_like
from audio_io.effects import iir

RATE = 44100


def response_db(b, a, hz):
    z = np.exp(-2j * np.pi * np.asarray(hz, np.float64) / RATE)
    return 20 * np.log10(np.abs(np.polyval(b[::-1], z) / np.polyval(a[::-1], z)))


def test_iir_of_any_order_equals_the_direct_form_loop(rng):
    b, a = [0.2, -0.1, 0.05, 0.01], [1.0, -0.9, 0.3, -0.05]
    x = rng.standard_normal(1000)
    y = np.zeros_like(x)
    for n in range(x.size):
        y[n] = sum(b[k] * x[n - k] for k in range(4) if n >= k) - sum(a[k] * y[n - k] for k in range(1, 4) if n >= k)
    assert np.abs(iir(x, b, a) - y).max() < 1e-12


def test_bilinear_keeps_dc_and_sends_infinity_to_nyquist():
    b, a = bilinear([1.0], [1.0, 1.0 / (2 * np.pi * 1000.0)], RATE)          # 1 / (1 + s / w): a 1 kHz low-pass
    assert abs(response_db(b, a, 1e-3)) < 1e-6
    assert response_db(b, a, 1000.0) == pytest.approx(-3.0, abs=0.2)        # -3 dB near the cutoff
    assert abs(np.polyval(b[::-1], -1.0)) < 1e-12                            # a zero at Nyquist


def test_bassman_tone_stack_scoops_the_middle_and_blocks_dc():
    """Yeh and Smith's stack has no DC path (b0 = 0), and the middle control fills the
    scoop near 1 kHz that the Bassman is known for."""
    scooped, filled = bassman_tone_stack(0.5, 0.0, 0.5, RATE), bassman_tone_stack(0.5, 1.0, 0.5, RATE)
    assert response_db(*scooped, 1e-3) < -60
    mids = response_db(*scooped, 1000.0), response_db(*filled, 1000.0)
    assert mids[1] > mids[0] + 6
    low, mid, high = response_db(*scooped, [80.0, 1000.0, 5000.0])
    assert mid < low and mid < high


def test_triode_clips_its_two_half_waves_differently():
    v = np.linspace(-20, 20, 4001)
    y = triode(v)
    assert np.all(np.diff(y) <= 0)                                          # inverting, monotonic
    assert abs(y.min() + 1.0) < 0.01 and abs(y.max() - 1.6) < 0.01          # grid conduction at 1, cutoff near 1.6
    sine = 4 * np.sin(2 * np.pi * 200 * np.arange(RATE) / RATE)
    spectrum = np.abs(np.fft.rfft(triode_stage(sine, 1.0, RATE)[RATE // 2:]))
    assert spectrum[400] > 0.05 * spectrum[200]                             # even harmonics: asymmetric


def test_the_amp_is_bounded_compressed_and_silent_in_silence():
    x = music_like(6, RATE, seed=4)
    y = amp(x, RATE)
    assert y.dtype == np.float32 and y.shape == x.shape and np.isfinite(y).all()
    assert np.abs(y).max() < 1.0 and abs(float(y.mean())) < 1e-3
    assert np.array_equal(amp(x, RATE), y)                                  # deterministic
    soft, loud = amp(0.05 * x, RATE), amp(0.5 * x, RATE)
    gain = np.sqrt(np.mean(loud ** 2) / np.mean(soft ** 2))
    assert gain < 3                                                         # 20 dB more in, far less out
    assert np.abs(amp(np.zeros(1000), RATE)).max() == 0.0
