"""The race of two starts (lstm_core/race.py) and the heat it rests on (train_run's ``heat``),
on run.py's fake clock: a batch takes 1 s, a validation 0.5 s."""

import math
import os
import tempfile

import numpy as np
import pytest

import lstm_core.race as race
from lstm_core.files.atomic import temporary_prefix
from lstm_core.files.history import read_history
from lstm_core.files.npz import load_model
from lstm_core.run import Reporter, StopRule, load_checkpoint, train_run
from lstm_core.training import ENVELOPE_CHRONO, TrainConfig, segment_samples

from test_run import DEVICE, RATE, fake_clock, small_data, small_run

BUDGET = 300.0          # seconds on the fake clock: heats of 30 s


class Told(Reporter):
    """Which epochs a Reporter is told as the run's, and which as the rival heat's."""

    def __init__(self):
        self.epochs, self.rivals = [], []

    def epoch(self, row, improved):
        self.epochs.append(row["epoch"])

    def rival_epoch(self, row, improved):
        self.rivals.append(row["epoch"])


def raced_run(tmp_path, monkeypatch, margin: float, reporter=None):
    """A fresh run raced with MARGIN ``margin`` (0: the chrono start wins, inf: the
    forget-gate bias +1 does): (the winner, its folder)."""
    fake_clock(monkeypatch, batch=1.0, validation=0.5)
    monkeypatch.setattr(race, "MARGIN", margin)
    state = small_run(epochs=1000)
    state.rule = StopRule(epochs=1000, budget=BUDGET, patience=None)
    folder = tmp_path / "run"
    return race.race_starts(state, 1, small_data(), DEVICE, folder, {}, reporter), folder


@pytest.mark.parametrize("margin, chrono", [(0.0, ENVELOPE_CHRONO), (math.inf, 0.0)])
def test_the_winner_s_files_are_the_run_s_and_the_loser_s_time_is_spent(tmp_path, monkeypatch, margin, chrono):
    told = Told()
    winner, folder = raced_run(tmp_path, monkeypatch, margin, told)
    assert winner.train.chrono == chrono
    # Heat 1's epochs are told as the run's, heat 2's as the rival's (a sweep reports only the former).
    assert told.epochs == list(range(1, len(told.epochs) + 1)) == told.rivals and told.epochs
    heat = race.HEAT_SHARE * BUDGET
    held = winner.progress.race
    assert held["won"] == chrono and held["starts"] == [0.0, ENVELOPE_CHRONO] and held["heat"]["budget"] == heat
    assert all(0 < seconds <= heat for seconds in held["seconds"])
    assert winner.progress.seconds == pytest.approx(sum(held["seconds"]))
    # The folder holds the winner's files and nothing of the other heat; model.npz says how the race went.
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.npz", "history.csv", "model.npz"]
    _, _, meta = load_model(folder / "model.npz")
    assert meta["train"]["chrono"] == chrono and meta["race"] == held and meta["epoch"] == winner.progress.best_epoch
    best_row = read_history(folder / "history.csv")[winner.progress.best_epoch - 1]
    assert meta["trained_seconds"] == pytest.approx(best_row["seconds"])
    assert meta["val_esr"] == pytest.approx(best_row["val_esr"], rel=1e-5)
    resumed, _ = load_checkpoint(folder)
    assert resumed.train.chrono == chrono and resumed.progress.race == held
    assert resumed.progress.seconds == pytest.approx(winner.progress.seconds)
    rows = read_history(folder / "history.csv")
    assert "race: " in rows[-1]["event"]
    # The rows' seconds are the run's wall time: the second heat's come after the first's.
    assert rows[-1]["seconds"] == pytest.approx(winner.progress.seconds if chrono else held["seconds"][0])
    assert rows[0]["seconds"] > (held["seconds"][0] if chrono else 0)
    # ...and the winner goes on to the budget, the race's time counted in it.
    assert train_run(winner, small_data(), DEVICE, folder, {}) == "budget"
    assert winner.progress.seconds <= BUDGET and len(read_history(folder / "history.csv")) > len(rows)
    _, _, meta = load_model(folder / "model.npz")
    assert meta["race"] == held


def test_a_heat_s_epoch_is_capped_and_drawn_afresh_from_the_whole_capture():
    """HeatData: each epoch the first ``windows`` windows of the data's shuffled epoch (the
    last batch cut short, contiguous), drawn from across the whole training audio over the
    epochs; a capture with fewer windows is seen whole."""
    from audio_io.dataset import Dataset
    from audio_io.pair import Pair
    from lstm_core.training import segment_samples

    n = 3 * 8000
    x = (np.arange(n) / n).astype(np.float32)         # each sample tells where it lies
    data = Dataset(x[:20000], x[:20000], x[20000:], x[20000:], Pair(x, x, 8000))
    segment, warmup = segment_samples(DEVICE.segment, 8000, 100), 100
    whole = data.window_count(segment, warmup)
    capped = race.HeatData(data, 10)
    assert capped.window_count(segment, warmup) == 10 < whole and capped.rate == 8000
    assert race.HeatData(data, whole + 5).window_count(segment, warmup) == whole
    rng, starts = np.random.default_rng(0), []
    for _ in range(30):
        batches = list(capped.epoch_batches(segment, warmup, 4, rng))
        assert [b[0].shape[-1] for b in batches] == [4, 4, 2] and all(b[0].flags.c_contiguous for b in batches)
        epoch = np.concatenate([np.round(b[0][0, 0] * n) for b in batches])
        assert len(set(epoch)) == 10                    # ten different windows in an epoch
        starts.extend(epoch)
    assert min(starts) < 0.1 * 20000 and max(starts) > 0.85 * 20000 - segment - warmup
    uncapped = sum(b[0].shape[-1] for b in race.HeatData(data, 10_000).epoch_batches(segment, warmup, 4, rng))
    assert whole - 1 <= uncapped <= whole              # a whole epoch (one window fewer on some grid offsets)


def test_a_heat_s_epoch_over_a_capture_set_is_the_set_s_own_epoch_cut_short(tmp_path):
    """HeatData over a capture set (CaptureDataset, with a run's default knob noise and
    blending; the rows share their dry take, so windows are blended, none jittered): the
    windows of the set's own epoch from the same generator, knob input and targets alike,
    the first 10 of them, in batches of 4, 4 and 2."""
    from audio_io.capture_set import read_capture_set
    from audio_io.dataset import load_capture_dataset
    from test_knobs import write_set

    write_set(tmp_path, [{"drive": d} for d in (0, 2, 4)], seconds=3)
    data = load_capture_dataset(read_capture_set(tmp_path / "set.csv"))
    segment, warmup = segment_samples(DEVICE.segment, data.rate, 100), 100
    capped = race.HeatData(data, 10)
    assert capped.window_count(segment, warmup) == 10 < data.window_count(segment, warmup)
    defaults = TrainConfig()
    knob_args = defaults.knob_jitter, defaults.knob_blend
    whole = list(data.epoch_batches(segment, warmup, 4, np.random.default_rng(3), *knob_args))
    heat = list(capped.epoch_batches(segment, warmup, 4, np.random.default_rng(3), *knob_args))
    assert [x.shape[1:] for x, _ in heat] == [(2, 4), (2, 4), (2, 2)]
    for part in (0, 1):                              # x (T, 2, B): the audio and the knob; y (T, B)
        assert np.array_equal(np.concatenate([b[part] for b in heat], -1),
                              np.concatenate([b[part] for b in whole], -1)[..., :10])
    knobs = np.concatenate([x[:, 1] for x, _ in heat], -1)
    assert np.unique(np.round(knobs[0], 6)).size > 1     # windows from more than one setting


def test_a_long_capture_s_heats_are_capped_epochs_and_the_winner_trains_whole_ones(tmp_path, monkeypatch):
    """With HEAT_AUDIO made 0.5 s (10 windows of the small data's 46 or 47), each heat is HEAT_EPOCHS
    epochs of 3 batches on the fake clock (3.5 s each with the validation), far within its
    30 s; the race says so, and the run that goes on trains whole epochs of 12 batches."""
    monkeypatch.setattr(race, "HEAT_AUDIO", 0.5)
    told = Told()
    winner, folder = raced_run(tmp_path, monkeypatch, 0.0, told)      # chrono wins: its rows follow heat 1's time
    held = winner.progress.race
    assert told.epochs == told.rivals == [1, 2, 3]
    assert held["heat"] == {"budget": race.HEAT_SHARE * BUDGET, "epochs": race.HEAT_EPOCHS, "windows": 10}
    assert held["seconds"] == pytest.approx([3 * 3.5, 3 * 3.5])
    assert race.heat_text(held["heat"]) == "30 s or 3 epochs"
    assert train_run(winner, small_data(), DEVICE, folder, {}, heat=StopRule(epochs=4)) == "heat"
    rows = read_history(folder / "history.csv")
    assert [round(b["seconds"] - a["seconds"], 6) for a, b in zip(rows, rows[1:])] == [3.5, 3.5, 12.5]


def test_a_race_begun_before_heats_were_capped_resumes_as_it_began(tmp_path, monkeypatch):
    """A checkpoint from before the cap holds a heat of a budget alone ({"budget", "epochs":
    1000}): its race goes on with whole epochs (12.5 s each here) until the 30 s cut the
    third short."""
    fake_clock(monkeypatch, batch=1.0, validation=0.5)
    monkeypatch.setattr(race, "HEAT_AUDIO", 0.5)
    monkeypatch.setattr(race, "MARGIN", math.inf)        # the forget bias +1 goes on: its rows are heat 1's
    state = small_run(epochs=1000)
    state.rule = StopRule(epochs=1000, budget=BUDGET, patience=None)
    state.progress.race = {"heat": {"budget": 30.0, "epochs": 1000}, "decided": False}
    told = Told()
    winner = race.race_starts(state, 1, small_data(), DEVICE, tmp_path / "run", {}, told)
    assert told.epochs == told.rivals == [1, 2, 3] and winner.train.chrono == 0.0
    assert [row["seconds"] for row in winner.progress.history][:2] == pytest.approx([12.5, 25.0])
    assert all(25.0 < seconds <= 30.0 for seconds in winner.progress.race["seconds"])
    assert winner.progress.race["heat"] == {"budget": 30.0, "epochs": 1000}


def test_the_heat_rule_is_epochs_or_a_share_of_the_budget_whichever_first():
    assert race.heat_rule(StopRule(epochs=50, patience=None)) == StopRule(epochs=race.HEAT_EPOCHS, patience=None)
    assert race.heat_rule(StopRule(budget=600.0)) == StopRule(epochs=race.HEAT_EPOCHS, budget=60.0, patience=None)
    assert race.heat_text({"budget": None, "epochs": 3, "windows": 96}) == "3 epochs"
    assert race.heat_text({"budget": 60.0, "epochs": 1000}) == "60 s"     # a race begun before the cap


@pytest.mark.parametrize("rule", [StopRule(epochs=3, patience=None), StopRule(budget=90.0, patience=None)])
def test_a_run_too_short_to_race_trains_from_the_forget_gate_bias_unraced(tmp_path, monkeypatch, rule):
    """At most HEAT_EPOCHS epochs in all, or a budget under MIN_RACE_BUDGET: no race, and
    model.npz says none."""
    fake_clock(monkeypatch, batch=1.0, validation=0.5)
    state = small_run()
    state.rule = rule
    assert not race.long_enough(rule) and race.long_enough(StopRule(epochs=race.HEAT_EPOCHS + 1))
    assert race.long_enough(StopRule(budget=race.MIN_RACE_BUDGET))
    run, reason = race.train_to_end(state, 1, small_data(), DEVICE, tmp_path, {}, race=True)
    assert run is state and reason == ("epochs" if rule.budget is None else "budget")
    assert state.progress.race is None and state.train.chrono == 0.0
    _, _, meta = load_model(tmp_path / "model.npz")
    assert "race" not in meta and "race" not in read_history(tmp_path / "history.csv")[0]["event"]


def test_a_heat_stops_before_its_limit_while_the_schedule_runs_to_the_budget(tmp_path, monkeypatch):
    """train_run with a heat of 30 s under the budget schedule: it stops with "heat" within 30 s, and
    the rate it trained at is still near the full rate (the cosine over 300 s, not over 30)."""
    import dataclasses

    fake_clock(monkeypatch, batch=1.0, validation=0.5)
    state = small_run(epochs=1000)
    state.train = dataclasses.replace(state.train, schedule="budget")
    state.rule = StopRule(epochs=1000, budget=BUDGET, patience=None)
    assert train_run(state, small_data(), DEVICE, tmp_path, {}, heat=StopRule(budget=30.0)) == "heat"
    assert 25.0 < state.progress.seconds <= 30.0 and state.progress.budget_stop is None
    assert state.rule.reached(state.progress) is None                  # the run itself goes on
    assert all(row["lr"] > 0.95 * state.train.lr for row in state.progress.history)


def test_only_a_fresh_run_from_the_forget_gate_bias_is_raced(tmp_path):
    state = small_run()
    state.train = state.train.__class__(**{**state.train.to_dict(), "chrono": 7.0})
    with pytest.raises(ValueError, match="fresh run"):
        race.race_starts(state, 1, small_data(), DEVICE, tmp_path, {})


class LossesFrom:
    """train_window as it is, but from the first batch of epoch ``epoch`` on it reports each
    batch's loss ``factor`` times higher: the guard sees the loss level jump and stay (as
    when a batch it let through had already put the parameters off)."""

    def __init__(self, monkeypatch, tmp_path, epoch: int, factor: float):
        import lstm_core.run

        self.real, self.factor, self.batches, self.start = lstm_core.run.train_window, factor, 0, math.inf
        monkeypatch.setattr(lstm_core.run, "train_window", self)
        train_run(small_run(epochs=1), small_data(), DEVICE, tmp_path / "count", {})
        self.start, self.batches = (epoch - 1) * self.batches + 1, 0

    def __call__(self, *args, **kwargs):
        self.batches += 1
        loss = self.real(*args, **kwargs)
        return loss * self.factor if self.batches >= self.start else loss


def test_batches_that_spike_twice_in_a_row_go_back_to_the_best_epoch_and_the_run_goes_on(tmp_path, monkeypatch):
    """Every loss 100 times higher from epoch 3 on. The first such batch is undone; the second
    takes the run back to its best epoch, whose losses the next are judged against (spikes.py):
    the third is undone and the fourth goes back again, each halving the rate (0.005, 0.0025,
    0.00125, 0.000625). Having gone back twice without keeping a batch, the guard learns the
    new level afresh instead of undoing every later batch at an ever lower rate (until
    2026-12-02 the rate fell to 4e-8 and nothing was learned again)."""
    LossesFrom(monkeypatch, tmp_path, epoch=3, factor=100.0)
    state = small_run(epochs=6)
    train_run(state, small_data(), DEVICE, tmp_path / "run", {})
    rows = read_history(tmp_path / "run" / "history.csv")
    best = 1 + min(range(2), key=lambda i: rows[i]["val_esr"])
    assert rows[2]["event"] == f"4 batch(es) spiked: back to epoch {best} after two in a row, learning rate now " \
                               f"0.000625"
    assert all(not row["event"] for row in rows[3:]), rows
    assert all(math.isfinite(row["train_loss"]) for row in rows[3:])
    assert state.base_lr == 0.000625 and np.isfinite(rows[-1]["val_esr"])


class StopAfter(Reporter):
    """Ctrl-C after the ``count``-th epoch told, of the run or of a race's second heat (its
    files are saved by then), as train.py's user would press it."""

    def __init__(self, count: int):
        self.count = count

    def epoch(self, row, improved):
        self.count -= 1
        if self.count == 0:
            raise KeyboardInterrupt

    rival_epoch = epoch


def same_model_files(a, b) -> dict:
    """Assert that the model.npz in folders ``a`` and ``b`` agree, weights and metadata (but
    the date they were written); returns the metadata."""
    (params_a, _, meta_a), (params_b, _, meta_b) = load_model(a / "model.npz"), load_model(b / "model.npz")
    assert {**meta_a, "date": ""} == {**meta_b, "date": ""}
    assert all(np.array_equal(params_a[name], params_b[name]) for name in params_a)
    return meta_a


def to_the_end(state, folder, reporter=None):
    """What capture.session does with a fresh or resumed run (train_to_end)."""
    return race.train_to_end(state, 1, small_data(), DEVICE, folder, {}, reporter, race=not state.progress.epoch)[0]


@pytest.mark.parametrize("margin", [0.0, math.inf])
@pytest.mark.parametrize("stop_after, capped", [(3, False), (5, False), (2, True), (5, True)])
def test_a_run_interrupted_anywhere_in_its_race_resumes_to_the_same_end(tmp_path, monkeypatch, margin, stop_after,
                                                                         capped):
    """Heats of HEAT_EPOCHS (3) epochs, a run of 6 (on the fake clock, so that seconds agree
    too), stopped and resumed from its checkpoint, ends exactly as the run straight
    through, whichever start wins, model.npz and history.csv alike. With whole heat epochs
    it is stopped after the 3rd or 5th epoch told (at heat 1's end, in heat 2, whose epochs
    are told as rival epochs; within an uncapped heat 1 the run is train_run's, whose resume
    test_run.py checks); with heat epochs capped at 10 windows of the small data's 46 or 47
    (HEAT_AUDIO 0.5 s), after the 2nd or 5th, and resumed with HEAT_AUDIO back at its
    default, so that only the cap its checkpoint holds can make the resumed heats draw as
    the run straight through drew them."""
    from test_run import assert_same_state

    fake_clock(monkeypatch, batch=1.0, validation=0.5)
    monkeypatch.setattr(race, "MARGIN", margin)
    heat_audio = race.HEAT_AUDIO
    if capped:
        monkeypatch.setattr(race, "HEAT_AUDIO", 0.5)
    before = tmp_path / "straight" / ".race-kept"        # a fresh run never deletes a folder of this name
    before.mkdir(parents=True)
    (before / "checkpoint.npz").write_bytes(b"kept")
    straight = to_the_end(small_run(epochs=6), tmp_path / "straight")
    assert straight.progress.race["decided"] and straight.progress.epoch == 6
    assert (before / "checkpoint.npz").read_bytes() == b"kept"
    with pytest.raises(KeyboardInterrupt):
        to_the_end(small_run(epochs=6), tmp_path / "stopped", StopAfter(stop_after))
    assert not list((tmp_path / "stopped").glob(".race-*"))            # heat 2's folder is gone
    killed = tmp_path / "stopped" / ".race-killed"                      # as kill -9 in heat 2 leaves one
    killed.mkdir()
    (killed / "checkpoint.npz").write_bytes(b"heat 2, cut off")
    handle, _ = tempfile.mkstemp(dir=killed, prefix=temporary_prefix("model.npz"), suffix=".npz")   # atomic.py's
    os.close(handle)
    not_ours = tmp_path / "stopped" / ".race-notes"                     # a folder holding anything else
    not_ours.mkdir()
    (not_ours / "notes.txt").write_text("mine")
    resumed, _ = load_checkpoint(tmp_path / "stopped")
    assert race.racing(resumed) and resumed.progress.heat_over == (stop_after >= race.HEAT_EPOCHS)
    windows = race.heat_windows(RATE, segment_samples(DEVICE.segment, RATE, resumed.train.tbptt))
    assert resumed.progress.race["heat"]["windows"] == windows == (10 if capped else 960)
    monkeypatch.setattr(race, "HEAT_AUDIO", heat_audio)
    resumed = to_the_end(resumed, tmp_path / "stopped")
    # Only a run resumed after its first heat can have had its own second heat killed.
    assert killed.exists() == (stop_after < race.HEAT_EPOCHS) and (not_ours / "notes.txt").read_text() == "mine"
    assert_same_state(straight, resumed)
    assert read_history(tmp_path / "stopped" / "history.csv") == read_history(tmp_path / "straight" / "history.csv")
    assert same_model_files(tmp_path / "straight", tmp_path / "stopped")["race"]["decided"]


@pytest.mark.parametrize("margin", [0.0])       # the chrono start wins: model.npz changes start
def test_a_run_interrupted_between_the_decision_s_writes_resumes_to_the_same_end(tmp_path, monkeypatch, margin):
    """Ctrl-C after the decision wrote model.npz and history.csv but before its checkpoint:
    the checkpoint still says heat 1 is over, the resume runs heat 2 again and writes all
    three from the winner, as the run straight through did."""
    from test_run import assert_same_state

    fake_clock(monkeypatch, batch=1.0, validation=0.5)
    monkeypatch.setattr(race, "MARGIN", margin)
    straight = to_the_end(small_run(epochs=6), tmp_path / "straight")
    real_save = race.save_checkpoint

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(race, "save_checkpoint", interrupted)
    with pytest.raises(KeyboardInterrupt):
        to_the_end(small_run(epochs=6), tmp_path / "stopped")
    monkeypatch.setattr(race, "save_checkpoint", real_save)
    resumed, _ = load_checkpoint(tmp_path / "stopped")
    assert race.racing(resumed) and resumed.progress.heat_over
    assert_same_state(straight, to_the_end(resumed, tmp_path / "stopped"))
    same_model_files(tmp_path / "straight", tmp_path / "stopped")


@pytest.mark.parametrize("margin, chrono", [(0.0, ENVELOPE_CHRONO), (math.inf, 0.0)])
def test_ctrl_c_after_the_race_leaves_the_outcome_of_the_run_that_went_on(tmp_path, monkeypatch, margin, chrono):
    """train.py's run (capture.run_capture) stopped by Ctrl-C in the run that goes on after
    its race: the Outcome's progress is that run's, the one its checkpoint holds, whichever
    start won (heat 1's own run, three epochs old, when the chrono start went on, before)."""
    from capture import CaptureConfig, run_capture
    from helpers import write_pair

    fake_clock(monkeypatch, batch=1.0, validation=0.5)
    monkeypatch.setattr(race, "MARGIN", margin)
    data = small_data()
    dry, wet = write_pair(tmp_path, data.pair.input, data.pair.target, RATE, subtype="FLOAT")
    config = CaptureConfig(input=str(dry), target=str(wet), out=str(tmp_path / "run"), hidden=4, epochs=8,
                           warmup=100, prewarm=100, tbptt=100, batch=4, segment=0.05, processes=1)
    # Told: heat 1's 3 epochs, heat 2's 3 (as rival epochs), then the winner's 4th and 5th.
    outcome = run_capture(config, StopAfter(2 * race.HEAT_EPOCHS + 2))
    saved, _ = load_checkpoint(tmp_path / "run")
    assert outcome.interrupted is not None and saved.progress.race["won"] == chrono
    assert outcome.progress.epoch == saved.progress.epoch == race.HEAT_EPOCHS + 2
    assert outcome.progress.to_dict() == saved.progress.to_dict()


def test_a_run_whose_patience_ends_within_its_first_heat_is_not_raced(tmp_path, monkeypatch):
    """Patience 1 and a val ESR that only grows: the run stops after epoch 2, within its
    first heat of 3; it says there was no race, and its checkpoint says none is under way."""
    import lstm_core.run

    scores = iter(range(1, 100))
    monkeypatch.setattr(lstm_core.run, "validation_scores", lambda *args, **kwargs: (0.1 * next(scores), {}, 1))
    state = small_run(epochs=10)
    state.rule = StopRule(epochs=10, patience=1)
    told = []

    class Notes(Reporter):
        def note(self, text):
            told.append(text)

    run, reason = race.train_to_end(state, 1, small_data(), DEVICE, tmp_path, {}, Notes(), race=True)
    assert run is state and reason == "patience" and state.progress.epoch == 2
    assert told[-1] == "race: the run stopped within its first heat, so there was no race"
    resumed, _ = load_checkpoint(tmp_path)
    assert resumed.progress.race is None and not race.racing(resumed)
