"""audio_io: the pair checks, alignment and windowing."""

import numpy as np
import pytest
import soundfile as sf

from audio_io.align import estimate_delay, shift
from audio_io.files import AudioError
from audio_io.pair import load_pair
from audio_io.windows import epoch_batches, split_validation, window_count


def write(path, samples, rate=8000, subtype="PCM_16"):
    sf.write(str(path), samples, rate, subtype=subtype)
    return path


@pytest.fixture
def signal():
    rng = np.random.default_rng(3)
    return np.clip(0.2 * rng.standard_normal(4000), -0.9, 0.9).astype(np.float32)


def test_good_pair_loads(tmp_path, signal):
    pair = load_pair(write(tmp_path / "a.wav", signal), write(tmp_path / "b.wav", 0.5 * signal))
    assert pair.rate == 8000 and pair.input.dtype == np.float32 and pair.input.size == 4000
    assert pair.delay == 0 and pair.notes == []


@pytest.mark.parametrize("problem,match", [
    ("rates", "resample one"),
    ("lengths", "use --trim"),
    ("silent", "silent or nearly so"),
    ("short", "too short"),
    ("nan", "NaN or infinite"),
    ("missing", "no such file"),
    ("junk", "cannot be read as audio"),
    ("channel", "--channel 3 does not exist"),
])
def test_bad_pairs_get_a_clear_message(tmp_path, signal, problem, match):
    a = write(tmp_path / "a.wav", signal)
    b = write(tmp_path / "b.wav", signal)
    kwargs = {}
    if problem == "rates":
        b = write(tmp_path / "b.wav", signal, rate=16000)
    elif problem == "lengths":
        b = write(tmp_path / "b.wav", signal[:3000])
    elif problem == "silent":
        b = write(tmp_path / "b.wav", signal * 1e-4)
    elif problem == "short":
        kwargs["min_length"] = 5000
    elif problem == "nan":
        bad = signal.copy()
        bad[100] = np.nan
        b = write(tmp_path / "b.wav", bad, subtype="FLOAT")
    elif problem == "missing":
        b = tmp_path / "nothing.wav"
    elif problem == "junk":
        b.write_bytes(b"RIFF but not really")
    elif problem == "channel":
        kwargs["channel"] = 3
    with pytest.raises(AudioError, match=match):
        load_pair(a, b, **kwargs)


def test_trim_cuts_and_reports(tmp_path, signal):
    pair = load_pair(write(tmp_path / "a.wav", signal), write(tmp_path / "b.wav", signal[:3200]), trim=True)
    assert pair.input.size == pair.target.size == 3200
    assert any("cut 800 samples" in note for note in pair.notes)


def test_stereo_mix_down_and_channel_choice(tmp_path, signal):
    stereo = np.stack([signal, -0.5 * signal], axis=1)
    a = write(tmp_path / "a.wav", stereo)
    b = write(tmp_path / "b.wav", stereo)
    mixed = load_pair(a, b)
    assert np.allclose(mixed.input, 0.25 * signal, atol=1e-4)
    assert any("mixed down" in note for note in mixed.notes)
    right = load_pair(a, b, channel=1)
    assert np.allclose(right.input, -0.5 * signal, atol=1e-4) and right.notes == []


@pytest.mark.parametrize("delay", [0, 1, 17, -9, 250])
def test_delay_is_found_and_compensated(tmp_path, delay):
    rng = np.random.default_rng(4)
    x = (0.3 * rng.standard_normal(20000)).astype(np.float32)
    y = 0.7 * np.roll(x, delay) + 0.01 * rng.standard_normal(20000).astype(np.float32)
    assert estimate_delay(x, y, 400) == delay
    pair = load_pair(write(tmp_path / "a.wav", x), write(tmp_path / "b.wav", y, subtype="FLOAT"), align=True)
    assert pair.delay == delay and pair.aligned == (delay != 0)
    core = slice(300, -300)
    assert np.corrcoef(pair.input[core], pair.target[core])[0, 1] > 0.99


def test_delay_in_a_long_file_uses_its_loudest_stretch():
    """Files longer than ANALYSIS_SAMPLES are correlated on their loudest stretch."""
    from audio_io.align import ANALYSIS_SAMPLES

    rng = np.random.default_rng(6)
    n = ANALYSIS_SAMPLES + 300_000
    x = np.zeros(n, np.float32)
    x[-400_000:] = 0.3 * rng.standard_normal(400_000)         # silence first, the music at the end
    y = np.roll(x, 31) + 0.001 * rng.standard_normal(n).astype(np.float32)
    assert estimate_delay(x, y, 500) == 31


def test_shift_lines_the_target_up():
    x = np.arange(10.0)
    a, b = shift(x, np.roll(x, 3), 3)                   # the target lags by 3 samples
    assert np.array_equal(a, b) and a.size == 7
    a, b = shift(np.roll(x, 2), x, -2)                  # the target leads by 2 samples
    assert np.array_equal(a, b) and a.size == 8


def test_epoch_windows_cover_the_training_part_once(rng):
    x = np.arange(1000, dtype=np.float32)
    y = -x
    seen = []
    for xb, yb in epoch_batches(x, y, segment=100, warmup=20, batch=3, rng=rng):
        assert xb.shape[0] == 120 and xb.shape[1] == 1 and np.array_equal(yb, -xb[:, 0, :])
        assert np.all(np.diff(xb[:, 0, :], axis=0) == 1)      # contiguous audio in each window
        seen.extend(xb[20, 0, :].tolist())                    # first loss-carrying sample
    assert len(seen) == window_count(1000, 100, 20) == 9
    firsts = np.sort(seen)
    assert np.all(np.diff(firsts) == 100) and firsts[0] >= 20 and firsts[-1] + 100 <= 1000


def test_validation_split_is_in_time():
    x = np.arange(100.0)
    xt, yt, xv, yv = split_validation(x, -x, 0.2)
    assert xt[-1] == 79 and xv[0] == 80 and xv.size == 20 and np.array_equal(yv, -xv)
