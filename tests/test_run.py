"""The run as a library (lstm_core/run.py), in-process: its checkpoint gives back the state
it was given, and a run stopped and resumed ends exactly where one run straight through ends."""

import dataclasses
import math

import numpy as np
import pytest

from audio_io.dataset import Dataset
from audio_io.pair import Pair
from lstm_core.devices import device_settings
from lstm_core.files.history import read_history
from lstm_core.files.model_file import ModelFileError
from lstm_core.files.npz import load_model
from lstm_core.model import ModelConfig
from lstm_core.run import Reporter, StopRule, load_checkpoint, new_run, save_checkpoint, train_run
from lstm_core.training import TrainConfig

RATE = 8000
DEVICE = device_settings("cpu", batch=4, segment=0.05, processes=1)


def small_data(seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    n = 3 * RATE
    t = np.arange(n) / RATE
    x = (0.4 * np.sin(2 * np.pi * 110 * t) * np.sin(2 * np.pi * 0.7 * t) + 0.05 * rng.standard_normal(n))
    x = x.astype(np.float32)
    y = np.tanh(3 * x).astype(np.float32)
    cut = int(0.8 * n)
    return Dataset(x[:cut], y[:cut], x[cut:], y[cut:], Pair(x, y, RATE))


def small_run(epochs=3, seed=1, **options):
    model = ModelConfig(hidden_size=4)
    train = TrainConfig(warmup=100, tbptt=100)
    return new_run(model, train, StopRule(epochs=epochs, patience=100), {"seed": seed, **options}, seed)


def assert_same_state(a, b):
    assert (a.model, a.train, a.rule, a.options) == (b.model, b.train, b.rule, b.options)
    for name in a.params:
        assert np.array_equal(a.params[name], b.params[name]), name
        assert np.array_equal(a.best_params[name], b.best_params[name]), name
    assert a.adam.step == b.adam.step and set(a.adam.m) == set(b.adam.m)
    for name in a.adam.m:
        assert np.array_equal(a.adam.m[name], b.adam.m[name]) and np.array_equal(a.adam.v[name], b.adam.v[name])
    assert a.progress == b.progress
    assert a.rng.bit_generator.state == b.rng.bit_generator.state


def test_a_checkpoint_gives_back_the_state(tmp_path):
    """load(save(state)) == state, after an epoch has filled Adam, the history and the RNG."""
    state = small_run(epochs=1)
    train_run(state, small_data(), DEVICE, tmp_path, {"pair": {}})
    assert state.adam.step > 0 and len(state.progress.history) == 1
    (tmp_path / "copy").mkdir()
    save_checkpoint(tmp_path / "copy", state, {})
    loaded, meta = load_checkpoint(tmp_path / "copy")
    assert_same_state(loaded, state)
    assert meta["kind"] == "checkpoint"
    # ...and what train_run itself wrote after its epoch is the same state too.
    from_run, meta = load_checkpoint(tmp_path)
    assert_same_state(from_run, state)
    assert meta["sample_rate"] == RATE and meta["pair"] == {}


def test_stopped_and_resumed_in_process_equals_straight_through(tmp_path):
    data = small_data()
    straight = small_run(epochs=4)
    train_run(straight, data, DEVICE, tmp_path / "straight", {})

    first = small_run(epochs=2)
    assert train_run(first, data, DEVICE, tmp_path / "resumed", {}) == "epochs"
    resumed, _ = load_checkpoint(tmp_path / "resumed")
    resumed.rule = dataclasses.replace(resumed.rule, epochs=4)
    assert train_run(resumed, data, DEVICE, tmp_path / "resumed", {}) == "epochs"

    assert [row["val_esr"] for row in resumed.progress.history] == [row["val_esr"] for row in straight.progress.history]
    for name in straight.params:
        assert np.array_equal(resumed.params[name], straight.params[name]), name
        assert np.array_equal(resumed.best_params[name], straight.best_params[name]), name
    assert resumed.progress.seconds > first.progress.seconds          # time counts on across the resume
    assert [row["epoch"] for row in read_history(tmp_path / "resumed" / "history.csv")] == [1, 2, 3, 4]
    params, _, meta = load_model(tmp_path / "resumed" / "model.npz")
    assert meta["epoch"] == resumed.progress.best_epoch and meta["val_esr"] == resumed.progress.best_esr
    for name in params:
        assert np.array_equal(params[name], resumed.best_params[name]), name


class Recorder(Reporter):
    def __init__(self):
        self.notes, self.epochs, self.batches = [], [], 0

    def note(self, text):
        self.notes.append(text)

    def batch(self, done, total, seconds, loss):
        assert 0 < done <= total
        self.batches += 1

    def epoch(self, row, improved):
        self.epochs.append((row["epoch"], improved))


def test_the_reporter_only_hears_and_a_fine_tune_keeps_its_start(tmp_path):
    """A fine-tune is measured first and kept as epoch 0; a learning rate so large that
    every epoch is worse leaves model.npz holding the starting parameters."""
    data = small_data()
    state = small_run(epochs=2, init="start.nam")
    state.train = dataclasses.replace(state.train, lr=5.0)
    start = {k: v.copy() for k, v in state.params.items()}
    reporter = Recorder()
    train_run(state, data, DEVICE, tmp_path, {}, reporter)
    assert any(note.startswith("init: the starting model's val ESR is") for note in reporter.notes)
    assert reporter.batches > 0 and [epoch for epoch, _ in reporter.epochs] == [1, 2]
    params, _, meta = load_model(tmp_path / "model.npz")
    if meta["epoch"] == 0:                     # no epoch beat the start (the usual case at lr 5)
        assert all(np.array_equal(params[k], start[k]) for k in start)
    assert meta["val_esr"] == min(state.progress.best_esr, meta["val_esr"])
    assert math.isfinite(meta["val_esr"])


def test_a_damaged_checkpoint_is_named(tmp_path):
    with pytest.raises(ModelFileError, match="no checkpoint.npz to resume from"):
        load_checkpoint(tmp_path)
    state = small_run()
    save_checkpoint(tmp_path, state, {})
    from lstm_core.files.npz import load_npz, save_npz_atomic

    arrays, meta = load_npz(tmp_path / "checkpoint.npz")
    del meta["progress"]
    save_npz_atomic(tmp_path / "checkpoint.npz", arrays, meta)
    with pytest.raises(ModelFileError, match="damaged"):
        load_checkpoint(tmp_path)
