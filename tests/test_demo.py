"""audio_io.demo: seeded, music-like material (levels, rests, spectra measured), and its pair."""

import numpy as np
import pytest

from audio_io.demo import demo_pair, midi_to_hz, music_like, pluck, scale_notes
from audio_io.effects import demo_effect

RATE = 16000          # a low rate keeps the tests fast; the generator is rate-agnostic
SECONDS = 20


@pytest.fixture(scope="module", params=[0, 1])
def material(request):
    return music_like(SECONDS, RATE, request.param)


def window_rms(x, seconds):
    size = int(seconds * RATE)
    windows = x[: x.shape[0] // size * size].astype(np.float64).reshape(-1, size)
    return np.sqrt(np.mean(windows**2, axis=1))


def test_same_seed_same_samples_other_seed_other_music():
    a, b, other = music_like(5, RATE, 3), music_like(5, RATE, 3), music_like(5, RATE, 4)
    assert np.array_equal(a, b)
    assert abs(np.corrcoef(a, other)[0, 1]) < 0.3


def test_shape_dtype_and_peak(material):
    assert material.dtype == np.float32 and material.shape == (SECONDS * RATE,)
    assert np.all(np.isfinite(material))
    assert 0.5 <= np.abs(material).max() <= 0.9


def test_has_rests_of_digital_silence_but_is_mostly_music(material):
    silent = np.abs(material) < 1e-6
    edges = np.flatnonzero(np.diff(np.concatenate([[0], silent.astype(np.int8), [0]])))
    longest_run = (edges[1::2] - edges[0::2]).max() / RATE
    assert longest_run >= 0.25                                   # a rest, not a zero crossing
    assert silent.mean() < 0.25


def test_has_soft_and_loud_passages(material):
    rms = window_rms(material, 0.25)
    playing = rms[rms > 1e-4]
    assert np.percentile(playing, 90) / np.percentile(playing, 10) > 8        # over 18 dB between passages


def test_is_not_a_pure_tone(material):
    # The loudest second, windowed: plucked strings give many partials (a sine gives one peak).
    running = np.concatenate([[0.0], np.cumsum(material.astype(np.float64) ** 2)])
    start = int(np.argmax(running[RATE:] - running[:-RATE]))
    spectrum = np.abs(np.fft.rfft(material[start : start + RATE] * np.hanning(RATE)))
    peaks = (spectrum[1:-1] > spectrum[:-2]) & (spectrum[1:-1] > spectrum[2:]) & (spectrum[1:-1] > spectrum.max() / 100)
    assert peaks.sum() >= 20
    power = spectrum**2 + 1e-30
    assert np.exp(np.mean(np.log(power))) / np.mean(power) > 1e-3             # spectral flatness


@pytest.mark.parametrize("midi, rate", [(40, 44100), (64, 44100), (76, 16000)])
def test_pluck_is_in_tune(rng, midi, rate):
    # E5 at 16 kHz has a 24-sample period: without the fractional correction it would be 2% sharp or flat.
    frequency = midi_to_hz(midi)
    note = pluck(rng, frequency, 1.0, rate, velocity=0.8, decay_s=3.0, brightness=0.8)
    padded = np.abs(np.fft.rfft(note[rate // 10 :] * np.hanning(note.shape[0] - rate // 10), 16 * rate))
    bins = np.fft.rfftfreq(16 * rate, 1 / rate)
    near = (bins > 0.9 * frequency) & (bins < 1.1 * frequency)
    assert bins[near][np.argmax(padded[near])] == pytest.approx(frequency, rel=0.002)


def test_pluck_decays_at_its_rate_and_peaks_at_its_velocity(rng):
    rate = 16000
    ringing = pluck(rng, 110.0, 1.0, rate, velocity=0.5, decay_s=3.0, brightness=1.0)
    muted = pluck(rng, 110.0, 1.0, rate, velocity=0.5, decay_s=0.15, brightness=1.0)
    assert np.abs(ringing).max() == pytest.approx(0.5, rel=0.05)
    level_db = lambda x, t: 20 * np.log10(np.sqrt(np.mean(x[int(t * rate) : int((t + 0.05) * rate)] ** 2)))  # noqa: E731
    assert level_db(ringing, 0.1) - level_db(ringing, 0.6) < 20                # a 3 s ring loses little in 0.5 s
    assert level_db(muted, 0.1) - level_db(muted, 0.6) > 60                    # a palm mute is gone
    assert ringing[-1] == 0.0                                                  # damped at its end


def test_scale_is_e_minor_from_e2_to_e5():
    notes = scale_notes()
    assert notes[0] == 40 and notes[-1] == 76 and len(notes) == 22
    assert set(notes % 12) == {4, 6, 7, 9, 11, 0, 2}                           # E F# G A B C D


def test_demo_pair_is_the_demo_effect_of_the_dry_material():
    dry, wet = demo_pair(3, RATE, 5)
    assert dry.dtype == wet.dtype == np.float32 and dry.shape == wet.shape == (3 * RATE,)
    assert np.array_equal(dry, music_like(3, RATE, 5))
    assert np.array_equal(wet, demo_effect(dry, RATE))
    assert np.abs(wet).max() <= 1.0
    difference = np.sum((wet - dry).astype(np.float64) ** 2) / np.sum(dry.astype(np.float64) ** 2)
    assert difference > 0.1                                                    # the pedal does something
