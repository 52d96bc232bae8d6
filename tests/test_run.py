"""The run as a library (lstm_core/run.py), in-process: its checkpoint gives back the state
it was given, and a run stopped and resumed ends exactly where one run straight through ends."""

import dataclasses
import functools
import math
import re

import numpy as np
import pytest

from audio_io.dataset import Dataset
from audio_io.pair import Pair
from lstm_core.devices import device_settings
from lstm_core.files.history import read_history
from lstm_core.files.model_file import ModelFileError
from lstm_core.files.npz import load_model
from lstm_core.adam import AdamState, adam_step
from lstm_core.model import ModelConfig, init_params
from lstm_core.run import Reporter, StopRule, load_checkpoint, new_run, save_checkpoint, train_run
from lstm_core.training import MAX_INPUT_GAIN, TrainConfig, input_gain_for, train_window

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


def small_run(epochs=3, seed=1, average=0.0, **options):
    """A run of 4 units, its probe after each batch off (probe.py; the tests of the probe
    turn it on), as the runs here are judged epoch by epoch."""
    model = ModelConfig(hidden_size=4)
    train = TrainConfig(warmup=100, tbptt=100, average=average, probe_batches=False)
    return new_run(model, train, StopRule(epochs=epochs, patience=100), {"seed": seed, **options}, seed)


def assert_same_state(a, b):
    assert (a.model, a.train, a.rule, a.options) == (b.model, b.train, b.rule, b.options)
    for name in a.params:
        assert np.array_equal(a.params[name], b.params[name]), name
        assert np.array_equal(a.best_params[name], b.best_params[name]), name
    assert a.adam.step == b.adam.step and set(a.adam.m) == set(b.adam.m)
    for name in a.adam.m:
        assert np.array_equal(a.adam.m[name], b.adam.m[name]) and np.array_equal(a.adam.v[name], b.adam.v[name])
    assert set(a.adam.average) == set(b.adam.average)
    for name in a.adam.average:
        assert np.array_equal(a.adam.average[name], b.adam.average[name]), name
    assert a.progress == b.progress
    assert a.rng.bit_generator.state == b.rng.bit_generator.state


@pytest.mark.parametrize("average", [0.0, 0.9])
def test_a_checkpoint_gives_back_the_state(tmp_path, average):
    """load(save(state)) == state, after an epoch has filled Adam (and its running average of
    the parameters), the history and the RNG."""
    state = small_run(epochs=1, average=average)
    train_run(state, small_data(), DEVICE, tmp_path, {"pair": {}})
    assert state.adam.step > 0 and len(state.progress.history) == 1
    assert bool(state.adam.average) == (average > 0)
    (tmp_path / "copy").mkdir()
    save_checkpoint(tmp_path / "copy", state, {})
    loaded, meta = load_checkpoint(tmp_path / "copy")
    assert_same_state(loaded, state)
    assert meta["kind"] == "checkpoint"
    # ...and what train_run itself wrote after its epoch is the same state too.
    from_run, meta = load_checkpoint(tmp_path)
    assert_same_state(from_run, state)
    assert meta["sample_rate"] == RATE and meta["pair"] == {}


@pytest.mark.parametrize("average", [0.0, 0.9])
def test_stopped_and_resumed_in_process_equals_straight_through(tmp_path, average):
    data = small_data()
    straight = small_run(epochs=4, average=average)
    train_run(straight, data, DEVICE, tmp_path / "straight", {})

    first = small_run(epochs=2, average=average)
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


def test_a_checkpoint_from_before_the_running_average_resumes_without_one(tmp_path):
    """A run started before TrainConfig.average, knob_jitter, knob_blend and rollback_above
    existed goes on as it began (no average, no jitter or blending, a spiked epoch at a
    constant rate not rolled back), not with today's defaults."""
    from lstm_core.files.npz import load_npz, save_npz_atomic

    state = small_run(epochs=1, average=0.0)
    train_run(state, small_data(), DEVICE, tmp_path, {})
    arrays, meta = load_npz(tmp_path / "checkpoint.npz")
    for key in ("average", "knob_jitter", "knob_blend", "rollback_above"):
        del meta["train"][key]
    for key in ("best_averaged", "batch_seconds", "validation_seconds", "budget_stop", "validation_chunk"):
        del meta["progress"][key]
    save_npz_atomic(tmp_path / "checkpoint.npz", arrays, meta)
    resumed, _ = load_checkpoint(tmp_path)
    assert resumed.train.average == 0.0 and TrainConfig().average > 0
    assert resumed.train.knob_jitter == 0.0 and TrainConfig().knob_jitter > 0
    assert resumed.train.knob_blend == 0.0 and TrainConfig().knob_blend > 0
    assert resumed.train.rollback_above == 0.0 and TrainConfig().rollback_above > 0   # constant: it never did
    resumed.rule = dataclasses.replace(resumed.rule, epochs=2)
    assert train_run(resumed, small_data(), DEVICE, tmp_path, {}) == "epochs"
    assert not resumed.adam.average


# ----------------------------------------------------------------------------- runs that never waste themselves

def test_a_diverged_epoch_is_rolled_back_and_nothing_saved_holds_a_nan(tmp_path, monkeypatch):
    """A NaN gradient injected in epoch 2: the run rolls back to epoch 1's parameters and
    Adam, halves its rate, says so in history.csv, and goes on; checkpoint.npz and model.npz
    hold finite numbers only, and the run resumes from them."""
    import lstm_core.run

    real = lstm_core.run.train_window
    calls = {"windows": 0}

    def poisoned(params, config, adam, x, target, train, workspace=None, gpu_loop="step"):
        calls["windows"] += 1
        loss = real(params, config, adam, x, target, train, workspace, gpu_loop)
        if calls["windows"] == poison_at:
            params["lstm0.W_h"][0, 0] = np.nan                  # as a NaN gradient would leave it
        return loss

    data = small_data()
    poison_at = math.inf
    monkeypatch.setattr(lstm_core.run, "train_window", poisoned)
    train_run(small_run(epochs=1), data, DEVICE, tmp_path / "count", {})
    poison_at = calls["windows"] + 2                             # in epoch 2
    calls["windows"] = 0
    state = small_run(epochs=4)
    train_run(state, data, DEVICE, tmp_path / "run", {})
    rows = read_history(tmp_path / "run" / "history.csv")
    assert not math.isfinite(rows[1]["train_loss"]) and rows[1]["event"].startswith("diverged: rolled back to epoch 1")
    assert rows[2]["lr"] < rows[0]["lr"]                         # the rate was cut
    assert all(math.isfinite(row["val_esr"]) for row in rows[2:])   # and it went on learning
    from lstm_core.files.npz import load_npz

    arrays, _ = load_npz(tmp_path / "run" / "checkpoint.npz")
    assert all(np.isfinite(value).all() for value in arrays.values())
    params, _, _ = load_model(tmp_path / "run" / "model.npz")
    assert all(np.isfinite(value).all() for value in params.values())
    monkeypatch.setattr(lstm_core.run, "train_window", real)
    resumed, _ = load_checkpoint(tmp_path / "run")
    resumed.rule = dataclasses.replace(resumed.rule, epochs=5)
    assert train_run(resumed, data, DEVICE, tmp_path / "run", {}) == "epochs"


class SpikeAt:
    """train_window with batches spiking: the output weights blown up by 100 before the
    updates of window ``at(windows_per_epoch)`` (a window, or a set of them, counted from 1
    since the last ``restart``, on runs of ``device``), as a run of bad Adam steps would.
    Installed on lstm_core.run with monkeypatch."""

    def __init__(self, monkeypatch, tmp_path, at, device=DEVICE):
        import lstm_core.run

        self.real, self.windows, self.spike_at = lstm_core.run.train_window, 0, set()
        monkeypatch.setattr(lstm_core.run, "train_window", self)
        train_run(small_run(epochs=1), small_data(), device, tmp_path / "count", {})
        spiking = at(self.windows)
        self.spike_at = spiking if isinstance(spiking, set) else {spiking}
        self.windows = 0

    def restart(self):
        self.windows = 0

    def __call__(self, params, config, adam, x, target, train, workspace=None, gpu_loop="step"):
        self.windows += 1
        if self.windows in self.spike_at:
            params["out.W"] *= 100.0
        return self.real(params, config, adam, x, target, train, workspace, gpu_loop)


@pytest.mark.parametrize("guard", ["batch", "probe", "none"])
def test_a_batch_that_spikes_is_undone_before_validation(tmp_path, monkeypatch, guard):
    """A spike injected into one batch of epoch 4. The batch guard undoes the batch and
    cuts the rate; without it the probe (probe.py) sees the jump after the batch and sends
    the run back to its best epoch at half the rate: either way history.csv says so, and
    epoch 4's val ESR stays near the best. With neither, the same batch shows in the
    validation as a spike of more than 10 times: the epoch is then rolled back to the best
    one (TrainConfig.rollback_above), or with rollback_above 0 (which turns the probe off
    too) it stands."""
    spike = SpikeAt(monkeypatch, tmp_path, lambda per_epoch: 3 * per_epoch + 5)          # epoch 4, batch 5
    for rollback_above in ([6.0] if guard == "batch" else [6.0, 0.0]):
        spike.restart()
        state = small_run(epochs=4)
        state.train = dataclasses.replace(state.train, guard_batches=guard == "batch",
                                          probe_batches=guard == "probe", rollback_above=rollback_above)
        folder = tmp_path / f"run{rollback_above:g}"
        train_run(state, small_data(), DEVICE, folder, {})
        rows = read_history(folder / "history.csv")
        best_before = min(row["val_esr"] for row in rows[:3])
        best = 1 + min(range(3), key=lambda i: rows[i]["val_esr"])
        if guard == "batch":
            assert rows[3]["event"].startswith("1 batch(es) spiked: undone, learning rate now 0.005"), rows[3]
        if guard == "probe" and rollback_above:
            assert re.fullmatch(f"probe [0-9.e+]+ times the best: rolled back to epoch {best}, learning rate now "
                                f"0.005", rows[3]["event"]), rows[3]
            assert float(rows[3]["event"].split()[1]) > 10                # the jump it saw
        if guard == "batch" or (guard == "probe" and rollback_above):
            assert rows[3]["val_esr"] < 2 * best_before
            continue
        assert rows[3]["val_esr"] > 10 * best_before
        if rollback_above:
            assert rows[3]["event"] == f"spiked: rolled back to epoch {best}, learning rate now 0.005", rows[3]
            for name in state.params:                       # going on from the best epoch's parameters
                assert np.array_equal(state.params[name], state.best_params[name]), name
        else:
            assert not rows[3]["event"]


@pytest.mark.parametrize("undo_floor,rate_after", [(1 / 16, 0.000625), (0.0, 0.0003125)])
def test_undone_batches_cut_the_rate_down_to_the_floor(tmp_path, monkeypatch, undo_floor, rate_after):
    """Five batches of epoch 2 spike, none right after another: each is undone and halves
    the rate, but with the floor (TrainConfig.undo_floor) not below 1/16 of it (4 halvings),
    where without it (0, as before) the fifth halves it again. Epoch 3 trains at that rate."""
    one_a_batch = dataclasses.replace(DEVICE, batch=1)
    SpikeAt(monkeypatch, tmp_path, lambda per_epoch: {per_epoch + b for b in (2, 4, 6, 8, 10)}, one_a_batch)
    state = small_run(epochs=3)
    state.train = dataclasses.replace(state.train, undo_floor=undo_floor, rollback_above=0.0)
    train_run(state, small_data(), one_a_batch, tmp_path / "run", {})
    rows = read_history(tmp_path / "run" / "history.csv")
    assert rows[1]["event"] == f"5 batch(es) spiked: undone, learning rate now {rate_after:.3g}", rows[1]
    assert rows[2]["lr"] == pytest.approx(rate_after) and not rows[2]["event"]


@pytest.mark.parametrize("undo_floor,rate_after", [(0.5, 0.005), (0.0, 0.0025)])
def test_two_spikes_in_a_row_go_back_to_the_best_epoch_down_to_the_floor(tmp_path, monkeypatch, undo_floor,
                                                                         rate_after):
    """Two batches of epoch 2 in a row spike: the first is undone, the second sends the run
    back to its best epoch, each halving the rate, but not below the floor (here a half of
    it: one cut); with no floor the second halves it again."""
    one_a_batch = dataclasses.replace(DEVICE, batch=1)
    SpikeAt(monkeypatch, tmp_path, lambda per_epoch: {per_epoch + 4, per_epoch + 5}, one_a_batch)
    state = small_run(epochs=3)
    state.train = dataclasses.replace(state.train, undo_floor=undo_floor, rollback_above=0.0)
    train_run(state, small_data(), one_a_batch, tmp_path / "run", {})
    rows = read_history(tmp_path / "run" / "history.csv")
    assert rows[1]["event"] == f"2 batch(es) spiked: back to epoch 1 after two in a row, learning rate now " \
                               f"{rate_after:.3g}"
    assert rows[2]["lr"] == pytest.approx(rate_after)


@pytest.mark.parametrize("judged", [True, False])
def test_going_back_judges_the_next_batches_against_the_best_epoch(tmp_path, monkeypatch, judged):
    """Two batches of epoch 2 in a row spike and send the run back to epoch 1; the batch
    right after spikes as well. It is judged against the losses the guard kept in epoch 1
    (Progress.best_losses) and undone. With nothing to judge it against until 3 batches are
    kept (as before those losses were kept: judged False) it goes through, and epoch 2 ends
    far above its best."""
    one_a_batch = dataclasses.replace(DEVICE, batch=1)
    SpikeAt(monkeypatch, tmp_path, lambda per_epoch: {per_epoch + 4, per_epoch + 5, per_epoch + 6}, one_a_batch)
    if not judged:      # restart() as it was before best_losses: the median afresh
        from lstm_core.spikes import BatchGuard

        monkeypatch.setattr(BatchGuard, "restart", lambda self: (self.recent.clear(),
                                                                 setattr(self.progress, "spikes_in_a_row", 0)))
    state = small_run(epochs=2)
    state.train = dataclasses.replace(state.train, rollback_above=0.0)
    train_run(state, small_data(), one_a_batch, tmp_path / "run", {})
    rows = read_history(tmp_path / "run" / "history.csv")
    undone = 3 if judged else 2
    assert rows[1]["event"].startswith(f"{undone} batch(es) spiked: back to epoch 1 after two in a row"), rows[1]
    if judged:
        assert rows[1]["val_esr"] < 2 * rows[0]["val_esr"]
    else:
        assert rows[1]["val_esr"] > 10 * rows[0]["val_esr"]


def test_going_back_twice_with_nothing_kept_cuts_past_the_floor(tmp_path, monkeypatch):
    """Four batches of epoch 2 spike in a row: undone (half), back to epoch 1 (the floor,
    here a half of the rate), undone (held at the floor), and back again with no batch
    kept since the first going back: the rate is too high even at the best epoch, so this
    cut goes past the floor (0.00125), and the guard judges nothing until 3 are kept."""
    one_a_batch = dataclasses.replace(DEVICE, batch=1)
    SpikeAt(monkeypatch, tmp_path, lambda per_epoch: {per_epoch + b for b in (4, 5, 6, 7)}, one_a_batch)
    state = small_run(epochs=2)
    state.train = dataclasses.replace(state.train, undo_floor=0.25, rollback_above=0.0)
    train_run(state, small_data(), one_a_batch, tmp_path / "run", {})
    rows = read_history(tmp_path / "run" / "history.csv")
    assert rows[1]["event"] == "4 batch(es) spiked: back to epoch 1 after two in a row, learning rate now 0.00125"
    assert state.progress.back_limit is None


@pytest.mark.parametrize("why", ["spiked", "probe"])
def test_going_back_for_the_epoch_or_the_probe_restarts_the_guard(tmp_path, monkeypatch, why):
    """The run goes back to its best epoch for a reason of its own, not the batch guard's:
    an epoch whose val ESR spiked (scripted, 7 times the best), or the probe seeing a jump
    (scripted, once). The guard goes back with it: it judges the next batches against the
    best epoch's losses (Progress.back_limit), its median started afresh. Were it not told,
    its median would go on over batches of parameters the run has thrown away."""
    import lstm_core.probe

    if why == "spiked":
        scripted_validation(monkeypatch, [2., 1., 7.])
    else:
        monkeypatch.setattr(lstm_core.probe, "PROBE_EVERY", 0.5)     # every few batches (as in the probe tests below)
        calls = []

        def jumps_once(probe, candidates):
            calls.append(len(candidates))
            return 50.0 if len(calls) == 1 else None

        monkeypatch.setattr(lstm_core.probe.SpikeProbe, "jumped", jumps_once)
    state = small_run(epochs=3)
    state.train = dataclasses.replace(state.train, rollback_above=6.0, probe_batches=why == "probe")
    train_run(state, small_data(), DEVICE, tmp_path / "run", {})
    rows = read_history(tmp_path / "run" / "history.csv")
    progress = state.progress
    if why == "spiked":
        assert rows[2]["event"] == "spiked: rolled back to epoch 2, learning rate now 0.005", rows[2]
        assert progress.recent_losses == []               # the run ended right there: nothing kept since
        assert len(progress.best_losses) == 5 and progress.back_limit == 10 * max(progress.best_losses)
    else:
        assert rows[2]["event"].startswith("probe 50 times the best: rolled back to epoch 2"), rows[2]
        assert calls and progress.back_limit is not None  # set at going back; kept losses refill the median after


def test_the_guard_restarts_judged_against_the_best_epochs_losses():
    """After going back, until 3 batches are kept, a batch is judged against 10 times the
    highest loss of the best epoch's; going back again before a batch is kept (stuck), or
    with none kept (an older checkpoint), nothing is judged until 3 are kept."""
    from lstm_core.run import Progress
    from lstm_core.spikes import BatchGuard

    progress = Progress(recent_losses=[5.0, 6.0, 7.0], best_losses=[1.0, 3.0, 2.0], spikes_in_a_row=1)
    guard = BatchGuard(progress)
    guard.restart()
    assert progress.recent_losses == [] and progress.spikes_in_a_row == 0
    assert guard.limit() == 30.0                        # 10 times the highest, not the median (20)
    assert guard.spiked(31.0, armed=True) and guard.stuck      # nothing kept since going back
    assert not guard.spiked(25.0, armed=True) and not guard.spiked(1.0, armed=True)
    assert guard.limit() == 30.0 and not guard.stuck    # two kept: still the best's limit
    assert not guard.spiked(2.0, armed=True)
    assert guard.limit() == 20.0                        # three kept: 10 times their median
    guard.restart()
    assert guard.spiked(31.0, armed=True) and guard.stuck     # went back, kept nothing since
    guard.restart()
    assert progress.back_limit is None and guard.limit() is None and not guard.spiked(1e9, armed=True)
    assert progress.kept_losses == [25.0, 1.0, 2.0, 1e9]    # the last kept, going back or not
    progress.best_losses = [1.0, 3.0]                   # fewer than 3: no limit
    guard.restart()
    assert guard.limit() is None
    older = Progress.from_dict({k: v for k, v in Progress(recent_losses=[1.0] * 3).to_dict().items()
                                if k not in ("best_losses", "kept_losses", "back_limit")})
    guard = BatchGuard(older)
    guard.restart()
    assert guard.limit() is None and not guard.spiked(20.0, armed=True) and older.recent_losses == [20.0]


def test_the_best_epochs_losses_go_through_the_checkpoint(tmp_path):
    """A resumed run judges going back as the run straight through would."""
    state = small_run()
    state.progress.best_losses, state.progress.back_limit = [0.5, 0.25, 0.125], 5.0
    state.progress.kept_losses = [0.75, 0.5]
    save_checkpoint(tmp_path, state, {})
    resumed, _ = load_checkpoint(tmp_path)
    assert resumed.progress.best_losses == [0.5, 0.25, 0.125] and resumed.progress.back_limit == 5.0
    assert resumed.progress.kept_losses == [0.75, 0.5]


def test_an_undone_batch_never_raises_the_rate():
    """The floor holds an undone batch's cut up, and leaves a rate that roll-backs already
    took below it where it is."""
    from lstm_core.schedule import undo_cut

    assert undo_cut(0.01, 0.01, 1 / 16) == 0.005
    assert undo_cut(0.001, 0.01, 1 / 16) == 0.000625
    assert undo_cut(0.000625, 0.01, 1 / 16) == 0.000625
    assert undo_cut(0.0001, 0.01, 1 / 16) == 0.0001
    assert undo_cut(0.0001, 0.01, 0.0) == 0.00005


def test_a_run_whose_probe_acts_resumes_to_where_one_straight_through_ends(tmp_path, monkeypatch):
    """The probe is paced by the audio trained and its own work, not by the clock
    (probe.py): probing every few batches here, it catches a spike injected into epoch 4 at
    the same batch in a run straight through and in one stopped after epoch 3 and resumed,
    and the two end alike."""
    import lstm_core.probe

    monkeypatch.setattr(lstm_core.probe, "PROBE_EVERY", 0.5)    # every few batches of these (2000 samples each)
    spike = SpikeAt(monkeypatch, tmp_path, lambda per_epoch: 3 * per_epoch + 5)          # epoch 4, batch 5
    probes = []
    jumped = lstm_core.probe.SpikeProbe.jumped

    def counted(probe, candidates):
        probes.append(len(candidates))
        return jumped(probe, candidates)

    monkeypatch.setattr(lstm_core.probe.SpikeProbe, "jumped", counted)

    def fresh(epochs):
        state = small_run(epochs=epochs)
        state.train = dataclasses.replace(state.train, guard_batches=False, probe_batches=True)
        return state

    data = small_data()
    spike.restart()
    straight = fresh(5)
    train_run(straight, data, DEVICE, tmp_path / "straight", {})
    straight_probes, probes[:] = len(probes), []
    spike.restart()
    train_run(fresh(3), data, DEVICE, tmp_path / "resumed", {})
    resumed, _ = load_checkpoint(tmp_path / "resumed")
    resumed.rule = dataclasses.replace(resumed.rule, epochs=5)
    train_run(resumed, data, DEVICE, tmp_path / "resumed", {})

    rows = read_history(tmp_path / "straight" / "history.csv")
    assert rows[3]["event"].startswith("probe "), rows[3]                 # it acted, in epoch 4
    assert straight_probes == len(probes) > 3    # epochs 3 to 5 probed, within them too; as many resumed
    assert [row["event"] for row in read_history(tmp_path / "resumed" / "history.csv")] == [row["event"] for row in rows]
    assert [row["val_esr"] for row in resumed.progress.history] == [row["val_esr"] for row in straight.progress.history]
    for name in straight.params:
        assert np.array_equal(resumed.params[name], straight.params[name]), name
        assert np.array_equal(resumed.best_params[name], straight.best_params[name]), name


def test_a_spike_in_the_first_two_epochs_is_not_rolled_back(tmp_path, monkeypatch):
    """Early epochs swing widely and go on to new bests (the demo): a spike in epoch 2
    stands (run.SETTLING_EPOCHS), the rate untouched. Epoch 3, which goes on from it, is
    judged: still more than 6 times the best, it is rolled back to epoch 1 (a spike in a
    settling epoch once carried on to 12.9 times the best in the fourth, RESULTS.md "Epoch 3
    judged, and a climb rolled back")."""
    SpikeAt(monkeypatch, tmp_path, lambda per_epoch: per_epoch + 5)                      # epoch 2, batch 5
    state = small_run(epochs=3)
    state.train = dataclasses.replace(state.train, guard_batches=False, rollback_above=6.0)
    train_run(state, small_data(), DEVICE, tmp_path / "run", {})
    rows = read_history(tmp_path / "run" / "history.csv")
    assert rows[1]["val_esr"] > 10 * rows[0]["val_esr"]
    assert not rows[0]["event"] and not rows[1]["event"] and rows[2]["lr"] == rows[0]["lr"]   # epoch 3 at the rate
    assert rows[2]["val_esr"] > 6 * rows[0]["val_esr"]
    assert rows[2]["event"] == "spiked: rolled back to epoch 1, learning rate now 0.005"


def scripted_validation(monkeypatch, ratios: list, best: float = 1e-3):
    """Every epoch's val ESR replaced by the next of ``ratios`` times ``best`` (the
    parameters are still trained and scored; only the figure the run judges is set)."""
    import lstm_core.run

    real, values = lstm_core.run.validation_scores, iter(ratios)

    def scripted(*args, **kwargs):
        _, each, passes = real(*args, **kwargs)
        return next(values) * best, each, passes

    monkeypatch.setattr(lstm_core.run, "validation_scores", scripted)


def test_an_epoch_that_climbs_a_second_time_is_rolled_back(tmp_path, monkeypatch):
    """Worse than the epoch before, which was worse than the best, and more than
    CLIMB_ABOVE times the best: rolled back to the best epoch, the rate halved. Not a jump
    straight from the best, nor a fall, nor the first epoch after a roll-back (it went on
    from the best again); each below the spike's 6 times, so only the climb rule acts."""
    from lstm_core.run import CLIMB_ABOVE

    c = CLIMB_ABOVE
    assert c + 0.8 < 6.0
    #         1   2  3: from the best  4: falls  5: climbs  6: after a roll-back  7: climbs  8
    ratios = [2., 1., c + 0.5,         c + 0.4,  c + 0.45,  c + 0.6,             c + 0.7,   0.9]
    scripted_validation(monkeypatch, ratios)
    state = small_run(epochs=len(ratios))
    state.train = dataclasses.replace(state.train, guard_batches=False, rollback_above=6.0)
    train_run(state, small_data(), DEVICE, tmp_path / "run", {})
    rows = read_history(tmp_path / "run" / "history.csv")
    assert [row["event"] for row in rows] == [
        "", "", "", "", "climbing: rolled back to epoch 2, learning rate now 0.005", "",
        "climbing: rolled back to epoch 2, learning rate now 0.0025", ""]
    assert state.progress.best_epoch == 8


def test_rollback_above_0_turns_the_climb_rule_off_too(tmp_path, monkeypatch):
    """--rollback-above 0 never rolls back a spike, and so never a climb either."""
    from lstm_core.run import CLIMB_ABOVE

    scripted_validation(monkeypatch, [2., 1., 1.1, CLIMB_ABOVE + 0.5])
    state = small_run(epochs=4)
    state.train = dataclasses.replace(state.train, guard_batches=False, rollback_above=0.0)
    train_run(state, small_data(), DEVICE, tmp_path / "run", {})
    assert not any(row["event"] for row in read_history(tmp_path / "run" / "history.csv"))


def test_older_checkpoints_roll_back_as_their_schedule_did():
    """Before rollback_above, the constant schedule never rolled a spike back and the
    others did at 10 times the best; a stored TrainConfig without it keeps that."""
    from lstm_core.run import _stored_train_config

    stored = TrainConfig().to_dict()
    del stored["rollback_above"]
    assert _stored_train_config(stored).rollback_above == 0.0
    assert _stored_train_config({**stored, "schedule": "plateau"}).rollback_above == 10.0
    assert _stored_train_config({**stored, "rollback_above": 4.0}).rollback_above == 4.0


def test_older_checkpoints_warm_up_from_zero_as_they_began():
    """A stored TrainConfig from before prewarm goes on warming up from zero; one that has
    it keeps its own."""
    from lstm_core.run import _stored_train_config

    stored = TrainConfig().to_dict()
    assert stored["prewarm"] > 0                                  # the default does prewarm
    assert _stored_train_config(stored).prewarm == stored["prewarm"]
    del stored["prewarm"]
    assert _stored_train_config(stored).prewarm == 0


def test_older_checkpoints_undo_batches_without_a_floor_as_they_began():
    """A stored TrainConfig from before undo_floor goes on halving the rate for every batch
    undone, with no floor; one that has it keeps its own."""
    from lstm_core.run import _stored_train_config

    stored = TrainConfig().to_dict()
    assert stored["undo_floor"] > 0                               # the default has a floor
    assert _stored_train_config({**stored, "undo_floor": 0.25}).undo_floor == 0.25
    del stored["undo_floor"]
    assert _stored_train_config(stored).undo_floor == 0.0


def test_older_checkpoints_go_on_without_the_probe_as_they_began():
    """A stored TrainConfig from before probe_batches goes on without the probe after each
    batch (probe.py); one that has it keeps its own."""
    from lstm_core.run import _stored_train_config

    stored = TrainConfig().to_dict()
    assert stored["probe_batches"]                                # the default probes
    assert _stored_train_config(stored).probe_batches
    del stored["probe_batches"]
    assert not _stored_train_config(stored).probe_batches


def test_older_checkpoints_record_the_forget_bias_they_began_with():
    """A stored TrainConfig from before chrono says 0 (its model began with the forget bias +1)."""
    from lstm_core.run import _stored_train_config

    stored = TrainConfig(chrono=50.0).to_dict()
    assert _stored_train_config(stored).chrono == 50.0
    del stored["chrono"]
    assert _stored_train_config(stored).chrono == 0.0


def test_a_new_run_starts_from_the_chrono_initialisation_its_config_asks_for():
    """new_run draws the gate biases TrainConfig.chrono asks for, every weight as without it."""
    model = ModelConfig(hidden_size=8)
    rule = StopRule(epochs=1)
    plain = new_run(model, TrainConfig(chrono=0.0), rule, {}, seed=3).params
    chrono = new_run(model, TrainConfig(chrono=50.0), rule, {}, seed=3).params
    assert np.all(plain["lstm0.b"][16:24] == 1.0)
    assert not np.allclose(chrono["lstm0.b"][16:24], 1.0)
    assert np.array_equal(chrono["lstm0.b"][8:16], -chrono["lstm0.b"][16:24])     # input = -forget
    assert np.array_equal(plain["lstm0.W_h"], chrono["lstm0.W_h"])


def test_the_run_hands_its_knob_jitter_and_blend_to_the_data(tmp_path):
    """TrainConfig.knob_jitter and knob_blend reach every epoch's batches (a capture set's windows)."""
    data = small_data()
    asked = []
    real = data.epoch_batches

    def recording(segment, warmup, batch, rng, knob_jitter=0.0, knob_blend=0.0):
        asked.append((knob_jitter, knob_blend))
        return real(segment, warmup, batch, rng, knob_jitter, knob_blend)

    data.epoch_batches = recording
    state = small_run(epochs=2)
    state.train = dataclasses.replace(state.train, knob_jitter=0.07, knob_blend=0.3)
    train_run(state, data, DEVICE, tmp_path, {})
    assert asked == [(0.07, 0.3), (0.07, 0.3)]


def test_a_resumed_run_guards_its_batches_as_one_run_straight_through(tmp_path, monkeypatch):
    """The guard's recent losses are in the checkpoint: a spike in the second batch after a
    resume is undone as it is in one run straight through (with an empty memory the guard
    would not yet be armed there), and the two runs end equal."""
    spike = SpikeAt(monkeypatch, tmp_path, lambda per_epoch: 2 * per_epoch + 2)   # epoch 3, batch 2
    data = small_data()
    straight = small_run(epochs=3)
    train_run(straight, data, DEVICE, tmp_path / "straight", {})
    spike.restart()
    train_run(small_run(epochs=2), data, DEVICE, tmp_path / "resumed", {})
    resumed, _ = load_checkpoint(tmp_path / "resumed")
    resumed.rule = dataclasses.replace(resumed.rule, epochs=3)
    train_run(resumed, data, DEVICE, tmp_path / "resumed", {})
    assert straight.progress.history[2]["event"].startswith("1 batch(es) spiked: undone")
    assert [row["event"] for row in resumed.progress.history] == [row["event"] for row in straight.progress.history]
    for name in straight.params:
        assert np.array_equal(resumed.params[name], straight.params[name]), name


def test_a_first_epoch_that_diverges_still_leaves_a_model(tmp_path, monkeypatch):
    import lstm_core.run

    real = lstm_core.run.train_window

    def poisoned(params, config, adam, x, target, train, workspace=None, gpu_loop="step"):
        loss = real(params, config, adam, x, target, train, workspace, gpu_loop)
        params["out.b"][0] = np.inf
        return loss

    monkeypatch.setattr(lstm_core.run, "train_window", poisoned)
    state = small_run(epochs=1)
    reporter = Recorder()
    train_run(state, small_data(), DEVICE, tmp_path, {}, reporter)
    params, _, meta = load_model(tmp_path / "model.npz")
    assert meta["epoch"] == 0 and math.isfinite(meta["val_esr"])
    assert any("the first epoch diverged" in note for note in reporter.notes)


def test_validation_is_scored_from_a_warmed_up_state(tmp_path):
    """Validation runs over the training audio before it first (input only), so its
    output equals the exact sequential run over the whole recording, which a cold start
    at the validation audio's first sample does not."""
    from lstm_core.inference import process_parallel, process_sequential
    from lstm_core.run import predict_validation

    data = small_data()
    state = small_run(epochs=1)
    train_run(state, data, DEVICE, tmp_path, {})
    whole = np.concatenate([data.x_train, data.x_val])
    exact, _ = process_sequential(state.params, state.model, whole)
    exact = exact[data.x_train.size:]
    warm = predict_validation(state.params, state.model, data.validation[0], DEVICE, np)
    cold = process_parallel(state.params, state.model, data.x_val, np, DEVICE.validation_parts, DEVICE.overlap)

    def error_db(y):
        return 10 * np.log10(np.sum((y - exact) ** 2) / np.sum(exact ** 2))

    assert error_db(warm) < -80 and error_db(cold) > error_db(warm) + 20


def test_every_epoch_moves_the_window_grid(rng):
    """The grid's offset is drawn from a whole segment, even when the pair holds a whole
    number of windows (nothing left over): the first window starts somewhere new."""
    from audio_io.windows import epoch_batches

    segment, warmup = 100, 20
    x = np.arange(warmup + 10 * segment, dtype=np.float32)        # exactly 10 windows, nothing spare
    firsts = set()
    for _ in range(40):
        starts = [int(xw[warmup, 0, :].min()) for xw, _ in epoch_batches(x, x, segment, warmup, 64, rng)]
        firsts.add(min(starts) - warmup)
    assert len(firsts) > 20 and max(firsts) < segment and min(firsts) >= 0


def test_a_last_slice_of_one_sample_joins_the_one_before():
    """warmup + tbptt + 1 steps: no 0/0 loss, no update from an empty pre-emphasised slice."""
    from lstm_core.adam import AdamState
    from lstm_core.losses import loss_norms
    from lstm_core.training import slices, train_window

    train = TrainConfig(warmup=10, tbptt=20)
    assert slices(31, train) == [(10, 31)]
    assert slices(32, train) == [(10, 30), (30, 32)]
    assert float(loss_norms(np.zeros((1, 3), np.float32)).energy) > 0     # a 1-step target: no 0/0
    state = small_run()
    x = np.random.default_rng(0).standard_normal((31, 1, 2)).astype(np.float32)
    loss = train_window(state.params, state.model, AdamState(), x, np.tanh(x[:, 0]), train)
    assert math.isfinite(float(loss)) and all(np.isfinite(v).all() for v in state.params.values())



def test_whichever_scores_better_is_kept_the_average_or_the_parameters(tmp_path, monkeypatch):
    """Validation made to favour one candidate: model.npz then holds that one, and says
    whether it is the running average."""
    import lstm_core.run

    real = lstm_core.run.validation_scores
    for favoured in ("average", "parameters"):
        state = small_run(epochs=2, average=0.9)

        def biased(params, *args, **kwargs):
            overall, each, passes = real(params, *args, **kwargs)
            is_average = params is state.adam.average
            return (overall * (0.5 if is_average == (favoured == "average") else 2.0)), each, passes

        monkeypatch.setattr(lstm_core.run, "validation_scores", biased)
        train_run(state, small_data(), DEVICE, tmp_path / favoured, {})
        params, _, meta = load_model(tmp_path / favoured / "model.npz")
        kept = state.adam.average if favoured == "average" else state.params
        assert meta["averaged"] == (favoured == "average") and state.progress.best_epoch == 2
        for name in params:
            assert np.array_equal(params[name], kept[name]), name


@pytest.mark.parametrize("processes", [1, 2])
def test_the_model_kept_is_the_better_of_the_parameters_and_their_running_average(tmp_path, processes):
    """With TrainConfig.average, validation scores the parameters and Adam's running
    average of them; model.npz holds the better, with its val ESR. With two processes
    the two are scored side by side, one in the worker: the same choice."""
    from lstm_core.run import validation_errors

    data = small_data()
    device = dataclasses.replace(DEVICE, processes=processes)
    for epochs in (1, 2):
        state = small_run(epochs=epochs, average=0.9)
        train_run(state, data, device, tmp_path / str(epochs), {})
        assert state.progress.best_epoch == epochs          # (so the state now is the best epoch's)
        scores = [(validation_errors(params, state.model, data.validation, DEVICE, np)[0], params)
                  for params in (state.params, state.adam.average)]
        assert scores[0][0] != scores[1][0]
        esr, better = min(scores, key=lambda item: item[0])
        params, _, meta = load_model(tmp_path / str(epochs) / "model.npz")
        scored_in_one_process = esr if processes == 1 else pytest.approx(esr, rel=1e-6)   # BLAS may round otherwise
        assert meta["val_esr"] == scored_in_one_process
        for name in params:
            assert np.array_equal(params[name], better[name]), name


def fake_clock(monkeypatch, batch: float, validation: float) -> dict:
    """lstm_core.run on a clock where a training batch takes ``batch`` seconds and a
    validation ``validation`` seconds (and nothing else takes time). Returns the clock."""
    import types

    import lstm_core.run

    clock = {"now": 0.0}
    real_window, real_validation = lstm_core.run.train_window, lstm_core.run.validation_scores

    def slow_window(*args, **kwargs):
        clock["now"] += batch
        return real_window(*args, **kwargs)

    def slow_validation(*args, **kwargs):
        clock["now"] += validation
        return real_validation(*args, **kwargs)

    monkeypatch.setattr(lstm_core.run, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"]))
    monkeypatch.setattr(lstm_core.run, "train_window", slow_window)
    monkeypatch.setattr(lstm_core.run, "validation_scores", slow_validation)
    return clock


def test_a_budget_is_a_limit_the_last_batch_and_validation_do_not_overshoot(tmp_path, monkeypatch):
    """On a clock where a batch takes 1 s and a validation 0.5 s (12 batches an epoch), a
    run stops before a batch and the validation after it would end past the budget: within
    the budget every time, and once a validation has been timed, less than a batch and a
    validation before it. (Stopping only once past the budget ends up to 1.5 s late.) In the
    first epoch the validation's time is a guess from the training's pace, on the safe side."""
    clock = fake_clock(monkeypatch, batch=1.0, validation=0.5)
    for budget in (2.5, 6.2, 6.7, 11.9, 14.0, 17.3, 20.0, 23.9):
        clock["now"] = 0.0
        state = small_run(epochs=1000)
        state.rule = StopRule(epochs=1000, budget=budget, patience=None)
        assert train_run(state, small_data(), DEVICE, tmp_path / str(budget), {}) == "budget"
        assert state.progress.seconds <= budget, (budget, state.progress.seconds)
        if state.progress.epoch > 1:
            assert state.progress.seconds > budget - 1.5, (budget, state.progress.seconds)


def test_a_run_that_stopped_short_of_its_budget_stays_stopped_when_resumed(tmp_path, monkeypatch):
    """Stopping before the budget (so as not to overshoot it) still counts as having
    reached it: a resume with the same budget trains no more, a larger budget goes on."""
    fake_clock(monkeypatch, batch=1.0, validation=0.5)
    state = small_run(epochs=1000)
    state.rule = StopRule(epochs=1000, budget=20.0, patience=None)
    assert train_run(state, small_data(), DEVICE, tmp_path, {}) == "budget"
    assert state.progress.seconds < 20.0
    resumed, _ = load_checkpoint(tmp_path)
    assert resumed.rule.reached(resumed.progress) == "budget"
    assert dataclasses.replace(resumed.rule, budget=30.0).reached(resumed.progress) is None


def test_an_input_gain_trains_as_if_the_input_were_that_much_louder(monkeypatch):
    """TrainConfig.input_gain g (train.py --input-level) steps the audio column of the
    input weights g times further: the same path, in float64, as training on the input
    made g times louder from a start whose column is g times smaller (the same starting
    model), that column g times smaller throughout. A model without the skip, which would
    hear the louder input directly. Adam's epsilon
    (1e-8, beside gradients g times smaller on one side) is the one difference: at this
    test's tiny gradients it moves the weights by 0.5 %, so it is set to 1e-30 here."""
    monkeypatch.setattr("lstm_core.training.adam_step", functools.partial(adam_step, eps=1e-30))
    g = 30.0
    config = ModelConfig(hidden_size=8, skip=False)
    rng = np.random.default_rng(3)
    x = 0.03 * rng.standard_normal((64 + 3 * 32, 1, 4))            # (T, I, B): a quiet input
    target = np.tanh(20.0 * x[:, 0, :]) * 0.5                        # (T, B): a lot of gain
    train = TrainConfig(warmup=64, tbptt=32)
    gained = init_params(config, np.random.default_rng(0), np.float64)
    quiet = {k: v.copy() for k, v in gained.items()}
    louder = {k: v.copy() for k, v in gained.items()}
    louder["lstm0.W_x"] = louder["lstm0.W_x"] / g
    adams = AdamState(), AdamState(), AdamState()
    for _ in range(4):
        train_window(louder, config, adams[0], x * g, target, train)
        train_window(gained, config, adams[1], x, target, dataclasses.replace(train, input_gain=g))
        train_window(quiet, config, adams[2], x, target, train)
    assert np.allclose(gained["lstm0.W_x"], g * louder["lstm0.W_x"], rtol=1e-12, atol=0)
    for name in ("lstm0.W_h", "lstm0.b", "out.W", "out.b"):
        assert np.allclose(gained[name], louder[name], rtol=1e-12, atol=1e-15), name
        assert not np.allclose(quiet[name], louder[name], rtol=1e-3), name     # the gain changed the path


def test_the_input_gain_brings_a_quieter_input_to_the_level_asked():
    """input_gain_for(rms, level): 10^(level/20) / rms, never below 1 (a louder input, or
    level -inf, is left as it is), at most MAX_INPUT_GAIN (silence)."""
    assert input_gain_for(0.01, -20.0) == pytest.approx(10.0)
    assert input_gain_for(0.01, 0.0) == pytest.approx(100.0)
    assert input_gain_for(0.5, -20.0) == 1.0
    assert input_gain_for(0.01, -math.inf) == 1.0 and input_gain_for(0.0, -math.inf) == 1.0
    assert input_gain_for(0.0, -20.0) == input_gain_for(1e-9, 0.0) == MAX_INPUT_GAIN


def test_a_fresh_run_with_an_input_gain_starts_where_one_without_does():
    """new_run draws the same parameters with and without an input gain (it changes the
    steps, not the start: a clean filter wants the start near the linear region); the gain
    is in the checkpoint's config."""
    model = ModelConfig(input_size=2, hidden_size=8)
    rule = StopRule(epochs=1, budget=None, patience=None)
    plain = new_run(model, TrainConfig(), rule, {}, seed=4)
    gained = new_run(model, TrainConfig(input_gain=7.0), rule, {}, seed=4)
    for name in plain.params:
        assert np.array_equal(gained.params[name], plain.params[name]), name
    assert gained.train.to_dict()["input_gain"] == 7.0
    with pytest.raises(ValueError, match="input gain"):
        TrainConfig(input_gain=0.0)
