"""The one dataset function: the split training and the report both see, and its refusals."""

import os

import numpy as np
import pytest
import soundfile as sf

from audio_io.dataset import DEFAULT_VAL_FRACTION, PairOptions, load_dataset
from audio_io.files import AudioError

RATE = 8000


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(3)
    x = (0.3 * rng.standard_normal(RATE * 2)).astype(np.float32)
    sf.write(tmp_path / "dry.wav", x, RATE, subtype="FLOAT")
    sf.write(tmp_path / "wet.wav", np.tanh(2 * x), RATE, subtype="FLOAT")
    return tmp_path, x


def test_the_last_part_validates_split_in_time(pair):
    folder, x = pair
    data = load_dataset(PairOptions(str(folder / "dry.wav"), str(folder / "wet.wav")))
    cut = round(x.size * (1 - DEFAULT_VAL_FRACTION))
    assert np.array_equal(data.x_train, x[:cut]) and np.array_equal(data.x_val, x[cut:])
    assert np.allclose(data.y_val, np.tanh(2 * x[cut:]), atol=1e-6)
    assert data.rate == RATE and data.facts["val_seconds"] == pytest.approx(x[cut:].size / RATE)
    assert data.window_count(1000, 200) == (cut - 200) // 1000


def test_stored_options_find_a_pair_that_moved_with_its_run_folder(pair):
    """A run folder that held its pair (as the demo's does) still finds it after a rename."""
    folder, _ = pair
    run = folder / "run"
    run.mkdir()
    for name, demo_name in (("dry.wav", "demo_input.wav"), ("wet.wav", "demo_target.wav")):
        os.replace(folder / name, run / demo_name)
    options = PairOptions(str(run / "demo_input.wav"), str(run / "demo_target.wav"))
    os.replace(run, folder / "renamed")
    with pytest.raises(AudioError, match="no such file"):
        load_dataset(options)
    data = load_dataset(options.located(folder / "renamed"))
    assert data.x_val.size > 0


def test_refusals_name_what_to_do(pair):
    folder, x = pair
    dry, wet = str(folder / "dry.wav"), str(folder / "wet.wav")
    with pytest.raises(AudioError, match="left for validation"):
        load_dataset(PairOptions(dry, wet, val_fraction=1e-6))
    with pytest.raises(AudioError, match="go together"):
        load_dataset(PairOptions(dry, wet, val_input=dry))
    sf.write(folder / "other_rate.wav", x, RATE * 2)
    with pytest.raises(AudioError, match="Hz"):
        load_dataset(PairOptions(dry, wet, val_input=str(folder / "other_rate.wav"),
                                 val_target=str(folder / "other_rate.wav")))
    data = load_dataset(PairOptions(dry, wet))
    with pytest.raises(AudioError, match="fewer than one window"):
        data.check_window(1000, x.size)
    data.check_window(1000, 2000)                       # fits: no error
