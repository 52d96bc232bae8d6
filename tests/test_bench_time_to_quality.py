"""benchmarks/time_to_quality.py: several model seeds give a mean, a range and each seed's
ratio; one seed reads as before."""

import math

import pytest

from benchmarks import time_to_quality as ttq
from lstm_core.training import ENVELOPE_CHRONO


def _points(*values, step=10.0):
    """[(seconds, val ESR)] of a run with an epoch every ``step`` seconds."""
    return [(step * (i + 1), value) for i, value in enumerate(values)]


def _results():
    """Two seeds of "before" and "ours" on one effect, one run each serving both budgets."""
    before = [_points(0.4, 0.2, 0.1), _points(0.3, 0.3, 0.12)]
    ours = [_points(0.1, 0.05, 0.04), _points(0.2, 0.1, 0.08)]
    return {("amp", "before"): {10: before, 30: before}, ("amp", "ours"): {10: ours, 30: ours}}


def test_a_cell_is_the_mean_of_the_seeds_with_their_range():
    assert ttq.cell([0.04]) == "0.04"
    assert ttq.cell([0.04, 0.08]) == "0.06 (0.04-0.08)"
    assert ttq.cell([0.04, math.nan]) == "nan"          # a seed had no epoch within the budget


def test_the_table_and_the_ratios_come_from_each_seeds_best_within_the_budget():
    results = _results()
    assert ttq.seed_bests(results, ("amp", "ours"), 30) == [0.04, 0.08]
    assert ttq.seed_bests(results, ("amp", "before"), 10) == [0.4, 0.3]
    rows = ttq.table(results, [10, 30]).splitlines()
    assert rows[0] == "| effect | ours 10 s | before 10 s | ours 30 s | before 30 s |"
    assert rows[2] == "| amp | 0.15 (0.1-0.2) | 0.35 (0.3-0.4) | 0.06 (0.04-0.08) | 0.11 (0.1-0.12) |"
    (line,) = ttq.ratio_lines(results, [10, 30], [0, 1]).splitlines()
    # before over ours: 0.35 / 0.15 and 0.11 / 0.06 in the mean; per seed 4.00, 1.50 and 2.50, 1.50
    assert line == "- amp, before over ours: 10 s 2.33 (seeds: 4.00, 1.50); 30 s 1.83 (seeds: 2.50, 1.50)"


def test_spikes_are_listed_for_every_seeds_run():
    runs = {("amp", "ours"): {30: [_points(0.1, 0.05, 0.04, 0.5), _points(0.2, 0.1, 0.08, 0.08)]}}
    assert ttq.spike_lines(runs, [3, 4]) == "- amp, ours: 30 s run (seed 3) 12.5, 30 s run (seed 4) 1"
    assert ttq.spike_lines({("amp", "ours"): {30: [_points(0.1, 0.2, 0.3, 0.4)]}}, [0]) == "- amp, ours: 30 s run 4"


def test_a_diverged_epoch_is_no_best_and_the_worst_spike():
    """A run that rolled back a diverged epoch: its NaN is neither a best nor hidden among
    the spikes (Python's min and max would be fooled by a NaN in first place)."""
    run = _points(math.nan, 0.2, 0.1, 0.05, math.nan, 0.04)
    assert ttq.best_within(run, 30) == 0.1 and ttq.best_within(run, 60) == 0.04
    assert math.isnan(ttq.best_within(_points(math.nan), 10))          # no finite epoch within it
    assert ttq.worst_spike(run) == math.inf
    assert ttq.worst_spike(_points(*[math.nan] * 5)) == math.inf        # a run that never got going
    assert ttq.worst_spike(_points(math.nan, 0.2, 0.1, 0.3, 0.05)) == pytest.approx(3.0)


def test_seeds_and_music_are_options():
    args = ttq.parse_args(["--seeds", "0", "1", "2", "--music", "2"])
    assert args.seeds == [0, 1, 2] and args.music == 2
    assert ttq.parse_args([]).seeds == [0] and ttq.parse_args([]).music == 1
    with pytest.raises(SystemExit):
        ttq.parse_args(["--seeds", "one"])


def test_main_runs_every_system_once_per_seed_and_a_budget_schedule_once_per_budget(monkeypatch, capsys):
    """main() with the training replaced by a fake whose val ESR says which seed and budget
    ran it: the systems in turn within a seed, the budget schedule's run per budget, each
    seed's runs in the table's mean and in the spike lines. (ours unraced here, --set
    chrono=0: a raced run's heats are a share of its budget, so it too runs per budget.)"""
    calls = []

    def fake_run_ours(x_train, y_train, x_val, y_val, budget, device, train, hidden, layers, input_level, seed,
                      race):
        calls.append((train.schedule, budget, seed, race))
        return _points(0.5, 0.1 * (seed + 1) / budget * 10, step=budget / 2)   # best: (seed + 1) / budget

    monkeypatch.setattr(ttq, "material", lambda effect, seed=1: (None, None, None, None))
    monkeypatch.setattr(ttq, "linear_fit_esr", lambda x, y: 0.5)
    monkeypatch.setattr(ttq, "run_ours", fake_run_ours)
    assert ttq.main(["--budgets", "10", "20", "--effects", "amp", "--systems", "ours", "budget",
                     "--seeds", "0", "1", "--set", "chrono=0"]) == 0
    assert calls == [("constant", 20, 0, False), ("budget", 10, 0, False), ("budget", 20, 0, False),
                     ("constant", 20, 1, False), ("budget", 10, 1, False), ("budget", 20, 1, False)]
    stdout = capsys.readouterr().out
    # ours: one 20 s run a seed, epochs at 10 and 20 s: best within 10 s is 0.5, within 20 s (seed + 1) / 20;
    # budget: a run per budget, epochs at b/2 and b: within b, (seed + 1) / b
    assert "| amp | 0.5 (0.5-0.5) | 0.15 (0.1-0.2) | 0.075 (0.05-0.1) | 0.075 (0.05-0.1) |" in stdout
    assert "- amp, budget over ours: 10 s 0.30 (seeds: 0.20, 0.40); 20 s 1.00 (seeds: 1.00, 1.00)" in stdout
    assert "- amp, budget: 10 s run (seed 0) 1, 10 s run (seed 1) 1, 20 s run (seed 0) 1, 20 s run (seed 1) 1" in stdout
    assert "- amp, ours: 20 s run (seed 0) 1, 20 s run (seed 1) 1" in stdout
    calls.clear()
    assert ttq.main(["--budgets", "10", "20", "--effects", "amp", "--systems", "ours", "norace", "--seeds", "0"]) == 0
    assert calls == [("constant", 10, 0, True), ("constant", 20, 0, True), ("constant", 20, 0, False)]


def test_only_the_chrono_system_starts_from_the_chrono_initialisation(monkeypatch):
    """chrono starts from ENVELOPE_CHRONO; ours, norace, previous and before from the
    forget-gate bias +1, and ours alone races it against chrono (train.py's default);
    --set chrono, like every --set, reaches the others too, and ours then does not race."""
    started = []

    def fake_run_ours(x_train, y_train, x_val, y_val, budget, device, train, hidden, layers, input_level, seed,
                      race):
        started.append((train.chrono, race))
        return _points(0.5, 0.4)

    monkeypatch.setattr(ttq, "material", lambda effect, seed=1: (None, None, None, None))
    monkeypatch.setattr(ttq, "linear_fit_esr", lambda x, y: 0.5)
    monkeypatch.setattr(ttq, "run_ours", fake_run_ours)
    systems = ["--budgets", "10", "--effects", "amp", "--systems", "ours", "chrono", "norace", "previous", "before"]
    assert ttq.main(systems) == 0
    assert started == [(0.0, True), (ENVELOPE_CHRONO, False), (0.0, False), (0.0, False), (0.0, False)]
    assert ENVELOPE_CHRONO > 0
    started.clear()
    assert ttq.main([*systems, "--set", "chrono=7"]) == 0
    assert started == [(7.0, False), (ENVELOPE_CHRONO, False), (7.0, False), (7.0, False), (7.0, False)]
    with pytest.raises(SystemExit, match="chrono must be 0"):
        ttq.main([*systems, "--set", "chrono=2"])


def test_ours_gets_train_py_s_model_size_for_each_budget_and_h32_keeps_32(monkeypatch, capsys):
    """A high-gain pair: ours (and every system of today's defaults) runs train.py's size
    for each budget (HIGH_GAIN_HIDDEN from HIGH_GAIN_HIDDEN_BUDGET on), so a run per budget
    where the sizes differ; h32 and previous keep 32 and one run serves both budgets. A
    nearly linear pair keeps 32 throughout."""
    from lstm_core.training import HIGH_GAIN_HIDDEN, HIGH_GAIN_HIDDEN_BUDGET

    calls = []

    def fake_run_ours(x_train, y_train, x_val, y_val, budget, device, train, hidden, layers, input_level, seed,
                      race):
        calls.append((budget, hidden))
        return _points(0.5, 0.1, step=budget / 2)

    short, long = HIGH_GAIN_HIDDEN_BUDGET / 2, HIGH_GAIN_HIDDEN_BUDGET
    monkeypatch.setattr(ttq, "material", lambda effect, seed=1: (None, None, None, None))
    monkeypatch.setattr(ttq, "run_ours", fake_run_ours)
    args = ["--budgets", f"{short:g}", f"{long:g}", "--effects", "amp", "--systems", "ours", "h32", "previous",
            "--set", "chrono=0"]
    monkeypatch.setattr(ttq, "linear_fit_esr", lambda x, y: 0.5)
    assert ttq.main(args) == 0
    assert calls == [(short, 32), (long, HIGH_GAIN_HIDDEN), (long, 32), (long, 32)]
    assert f"H=32, or {HIGH_GAIN_HIDDEN} for a high-gain pair" in capsys.readouterr().out
    calls.clear()
    monkeypatch.setattr(ttq, "linear_fit_esr", lambda x, y: 0.1)
    assert ttq.main(args) == 0
    assert calls == [(long, 32)] * 3
    calls.clear()
    assert ttq.main(args + ["--set", "hidden=16"]) == 0
    assert calls == [(long, 16)] * 3                         # --set applies to every system
    assert "ours: train.py's defaults (H=16;" in capsys.readouterr().out


def test_histories_keeps_every_run_s_epochs_under_its_effect_system_seed_and_budget(monkeypatch, tmp_path):
    """--histories hands each of our runs a file named for it; without it none is asked for."""
    asked = []

    def fake_run_ours(*args, history=None):
        asked.append(history)
        return _points(0.5, 0.4)

    monkeypatch.setattr(ttq, "material", lambda effect, seed=1: (None, None, None, None))
    monkeypatch.setattr(ttq, "linear_fit_esr", lambda x, y: 0.5)
    monkeypatch.setattr(ttq, "run_ours", fake_run_ours)
    command = ["--budgets", "10", "20", "--effects", "amp", "--systems", "ours", "--seeds", "3", "--set", "chrono=0"]
    assert ttq.main(command) == 0
    assert asked == [None]                                   # one unraced run serves both budgets
    asked.clear()
    assert ttq.main([*command, "--histories", str(tmp_path / "h")]) == 0
    assert asked == [tmp_path / "h" / "amp-ours-seed3-20s.csv"] and (tmp_path / "h").is_dir()


def test_run_ours_writes_the_run_s_history_with_its_events(tmp_path):
    """A real run of about a second: the file holds one row per epoch, as the points do."""
    import numpy as np

    from lstm_core.devices import device_settings
    from lstm_core.files.history import read_history

    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(3 * ttq.RATE)).astype(np.float32)
    y = np.tanh(2 * x).astype(np.float32)
    cut = int(0.8 * x.size)
    device = device_settings("cpu", batch=4, segment=0.1, processes=1)
    points = ttq.run_ours(x[:cut], y[:cut], x[cut:], y[cut:], 1.0, device, ttq.TrainConfig(), hidden=4,
                          input_level=-math.inf, history=tmp_path / "run.csv")
    rows = read_history(tmp_path / "run.csv")
    assert len(rows) == len(points) >= 1
    assert [row["val_esr"] for row in rows] == pytest.approx([value for _, value in points], rel=1e-5)
    assert "event" in rows[0] and "lr" in rows[0]
