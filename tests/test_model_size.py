"""A bigger model learns where a smaller one does: H=64 on the amp-like effect does not
stall at the start (a user's first try for more quality is a bigger model), at the
defaults (train.py's: the input level's gain included), epoch for epoch against H=32."""

import numpy as np

from audio_io.amp import amp
from audio_io.dataset import Dataset, rms
from audio_io.demo import music_like
from audio_io.pair import Pair
from audio_io.windows import split_validation
from lstm_core.devices import device_settings
from lstm_core.model import ModelConfig
from lstm_core.run import StopRule, new_run, train_run
from lstm_core.training import TrainConfig, input_gain_for

RATE = 22050
EPOCHS = 10


def best_val_esr(hidden: int, data: Dataset, folder) -> float:
    train = TrainConfig(input_gain=input_gain_for(rms(data.x_train)))      # as train.py sets it
    state = new_run(ModelConfig(hidden_size=hidden), train, StopRule(epochs=EPOCHS, patience=None), {}, seed=0)
    train_run(state, data, device_settings("cpu", processes=1), folder, {})
    return state.progress.best_esr


def test_hidden_64_learns_the_amp_as_hidden_32_does(tmp_path):
    x = music_like(8, RATE, seed=3)
    y = amp(x, RATE)
    data = Dataset(*split_validation(x, y, 0.2), Pair(x, y, RATE))
    small, large = (best_val_esr(hidden, data, tmp_path / str(hidden)) for hidden in (32, 64))
    print(f"amp-like, {EPOCHS} epochs: best val ESR H=32 {small:.3g}, H=64 {large:.3g}")
    assert small < 0.7                      # the effect is being learned in this many epochs (from 1)...
    assert large < 1.5 * small              # ...and the bigger model is not left behind (a stall stays near 1)
