"""How a fresh model starts, decided by a race: both starts train a while, the better goes on.

An LSTM cell starts with the forget-gate bias +1 (a memory of about 3 samples), or from
the chrono initialisation (model.init_params: memories of 1 to ENVELOPE_CHRONO samples).
Which learns faster depends on the effect: the chrono start learned the amp-like effect
and the compressor (an envelope: sag, attack and release) 1.5 to 6 times better, and
effects with little memory (filters, overdrives, a fuzz) 2 to 19 times worse, and nothing
measured on the pair beforehand told them apart (RESULTS.md "Chrono initialisation").
A few seconds of training do (RESULTS.md "Racing the two starts"):

    heat 1:  the forget-gate bias +1 trains for HEAT_EPOCHS epochs, or HEAT_SHARE of the
             budget if that comes first, in the run folder, as any run does; a heat's epoch
             is at most HEAT_AUDIO seconds of windows, drawn afresh each epoch from across
             the whole training audio (HeatData)
    heat 2:  the chrono start, from the same seed, for as long, in a folder of its own;
             its epochs are told to the Reporter's rival_epoch, not its epoch
    winner:  the chrono start when its best val ESR is below the other's over MARGIN,
             else the forget-gate bias +1; it goes on in the run folder (model.npz,
             history.csv and checkpoint.npz written from it), the other heat's seconds
             counted as spent (the budget is the whole run's; history.csv's seconds are
             the run's wall time, the second heat's after the first's)

Why heats are short, and their epochs capped: the chrono start's lead on an effect with an
envelope is widest early and narrows as both train (the amp-like effect: 3 times at 12 s,
1.5 times at 30 s), while the forget bias +1 keeps a wide lead on the effects with little
memory (RESULTS.md "Racing the two starts"). On a long capture (216 s of training audio)
with a 600 s budget, heats of a tenth of the budget (60 s: two or three whole epochs, or
about seven capped ones) let the amp-like effect's lead fall under the margin in four runs
of six and handed it to the slower start; three capped epochs (about 25 s on 2 cores) gave it to
chrono in every run, 2.4 to 3.5 times ahead, the compressor to chrono too, and the
low-pass, the overdrive and the resonant filter to the forget bias +1 (RESULTS.md "Short
heats"). The heat that loses costs a long budget less, too.

A run too short to race (a budget under MIN_RACE_BUDGET, whose heats would be 2 epochs or
less on 2 cores, or at most HEAT_EPOCHS epochs in all) trains from the forget-gate bias +1
unraced. The race's cost: with a budget, the losing heat's seconds; without one, nothing of
the run's (--epochs counts the winner's epochs: the run trains HEAT_EPOCHS more in all).
The schedule sees the whole budget all along (train_run's ``heat``). A run interrupted
anywhere in the race resumes to the same end as one straight through (race_starts); one
killed outright (kill -9) in heat 2 leaves that heat's folder (.race-*) behind, and its
resume deletes it (stale_heats, and says so) before it runs heat 2 again in a new one.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from .files.atomic import temporary_prefix
from .files.history import write_history
from .run import (CHECKPOINT_FILE, HISTORY_FILE, MODEL_FILE, Reporter, RunState, StopRule, new_run,
                  save_best_model, save_checkpoint, train_run)
from .training import ENVELOPE_CHRONO, segment_samples

HEAT_SHARE = 0.1           # of the budget, each heat at most
HEAT_EPOCHS = 3            # each heat at most (epochs, not seconds: the same on any machine)
HEAT_AUDIO = 48.0          # seconds: a heat's epoch holds at most this much audio's windows (the 48 s of training
                           # audio the race was measured on); a shorter capture's epochs are whole
MIN_RACE_BUDGET = 100.0    # seconds: a shorter budget is not raced (its heats would be 2 epochs or less on 2 cores)
MARGIN = 1.5               # the chrono start wins when its best val ESR is this many times below the other's
RIVAL_FOLDER = ".race-"    # the prefix of heat 2's temporary folder, inside the run folder


def long_enough(rule: StopRule) -> bool:
    """Whether a run stopped by ``rule`` is long enough to race its starts."""
    return rule.budget >= MIN_RACE_BUDGET if rule.budget is not None else rule.epochs > HEAT_EPOCHS


def heat_rule(rule: StopRule) -> StopRule:
    """How long each start trains before the race is decided, for a run stopped by ``rule``:
    HEAT_EPOCHS epochs, or HEAT_SHARE of its budget if that comes first."""
    return StopRule(epochs=HEAT_EPOCHS, budget=None if rule.budget is None else HEAT_SHARE * rule.budget,
                    patience=None)


def heat_windows(rate: int, segment: int) -> int:
    """The windows of a heat's epoch at most: HEAT_AUDIO seconds of them (``segment``
    loss-carrying samples each, at ``rate``)."""
    return max(1, round(HEAT_AUDIO * rate / segment))


def heat_text(heat: dict) -> str:
    """A heat (race_starts', as a dict) as the run's lines and report say it: "12 s or 3
    epochs", "3 epochs" (a race begun before heats had an epoch limit: "60 s")."""
    said = [f"{heat['budget']:g} s"] if heat.get("budget") else []
    if not said or heat.get("windows"):
        said.append(f"{heat['epochs']} epochs")
    return " or ".join(said)


def start_name(chrono: float) -> str:
    return f"the chrono initialisation over 1 to {chrono:g} samples" if chrono else "the forget-gate bias +1"


def racing(state: RunState) -> bool:
    """Whether ``state`` is a run whose race is under way (a resume goes on with it)."""
    return bool(state.progress.race) and not state.progress.race.get("decided")


def train_to_end(state: RunState, seed: int, data, device, folder, facts: dict, reporter: Reporter | None = None,
                 start_state=None, race: bool = False,
                 going_on: Callable[[RunState], None] | None = None) -> tuple[RunState, str]:
    """What train.py does with a run: the race of its starts where one is due (``race``: a
    fresh run may race; or a run resumed within its race), then train_run to its end.
    Returns (the run, as it goes on after any race; why it stopped). Arguments as train_run's;
    ``going_on(run)``, if given, is told the run that goes on after race_starts (``state``
    itself when the run was not raced after all), so that a caller interrupted later
    (KeyboardInterrupt) knows the run its files hold: the chrono start's, when it won, not
    the ``state`` passed in."""
    if race or racing(state):
        state = race_starts(state, seed, data, device, folder, facts, reporter)
        if going_on is not None:
            going_on(state)
    return state, (state.rule.reached(state.progress)
                   or train_run(state, data, device, folder, facts, reporter, start_state))


def race_starts(state: RunState, seed: int, data, device, folder, facts: dict,
                reporter: Reporter | None = None) -> RunState:
    """The run that goes on after the race: ``state`` (a fresh run from ``seed`` with the
    forget-gate bias +1, chrono 0, or one resumed within its race), trained for its heat in
    ``folder``, or its rival from the chrono start, trained as long; see the module doc.
    ``folder`` then holds the winner's files, and the winner's Progress.race says how it
    went. A fresh run too short to race (long_enough) comes back as it was. Arguments as
    train_run's.

    A run interrupted at any point resumes to the same end as one straight through: heat 1's
    checkpoints say the race is under way, a run resumed after heat 1 ended runs heat 2
    again from the same seed, and the decision writes model.npz, history.csv and last the
    checkpoint that says "decided", each from the winner's state (tests/test_race.py)."""
    reporter = reporter or Reporter()
    if state.train.chrono or (state.progress.epoch and not racing(state)):
        raise ValueError("a race starts from a fresh run with the forget-gate bias +1 (chrono 0)")
    if not racing(state) and not long_enough(state.rule):
        return state
    folder = Path(folder)
    saved_facts = {**facts, "sample_rate": int(data.rate)}
    if state.progress.race is None:           # heat 1's checkpoints say that the race is under way
        heat = heat_rule(state.rule)
        windows = heat_windows(data.rate, segment_samples(device.segment, data.rate, state.train.tbptt))
        state.progress.race = {"heat": {"budget": heat.budget, "epochs": heat.epochs, "windows": windows},
                               "decided": False}
    held = state.progress.race["heat"]
    heat = StopRule(epochs=held["epochs"], budget=held["budget"], patience=None)
    if held.get("windows"):                   # (a race begun before the cap resumes as it began: whole epochs)
        data = HeatData(data, held["windows"])
    rival_chrono = ENVELOPE_CHRONO
    resumed_after_heat_1 = state.progress.heat_over     # heat 2 may have been killed here before
    if not state.progress.heat_over:
        reporter.note(f"race, heat 1 of 2: {start_name(0.0)}, for {heat_text(held)} (then "
                      f"{start_name(rival_chrono)} as long; it goes on if its best val ESR is {MARGIN:g} times "
                      f"lower, else the first does)")
        if train_run(state, data, device, folder, facts, reporter, heat=heat) != "heat":
            state.progress.race = None        # the run ended within its first heat (--patience): unraced
            save_checkpoint(folder, state, saved_facts)
            reporter.note("race: the run stopped within its first heat, so there was no race")
            return state
    rival = new_run(state.model, replace(state.train, chrono=rival_chrono), state.rule, state.options, seed)
    reporter.note(f"race, heat 2 of 2: {start_name(rival_chrono)}")
    if resumed_after_heat_1:
        for stale in stale_heats(folder):
            shutil.rmtree(stale, ignore_errors=True)
            reporter.note(f"race: deleted {stale.name}, the second heat of a run killed before (kill -9)")
    with tempfile.TemporaryDirectory(prefix=RIVAL_FOLDER, dir=folder) as rival_folder:
        train_run(rival, data, device, rival_folder, facts, _Rival(reporter), heat=heat)
    chrono_won = rival.progress.best_esr * MARGIN < state.progress.best_esr
    winner, loser = (rival, state) if chrono_won else (state, rival)
    winner.progress.race = {"starts": [0.0, rival_chrono], "heat": held,
                            "best_esr": [_number(state.progress.best_esr), _number(rival.progress.best_esr)],
                            "seconds": [state.progress.seconds, rival.progress.seconds],
                            "won": winner.train.chrono, "margin": MARGIN, "decided": True}
    winner.progress.heat_over = False
    if chrono_won:                                              # its heat came after the other's: its times too
        for row in winner.progress.history:
            row["seconds"] += loser.progress.seconds
        winner.progress.best_seconds += loser.progress.seconds
    winner.progress.seconds += loser.progress.seconds           # the whole run's time, the race's included
    verdict = (f"race: {start_name(winner.train.chrono)} goes on (best val ESR {rival.progress.best_esr:.3g} "
               f"from the chrono start, {state.progress.best_esr:.3g} from the forget-gate bias +1); "
               f"the other heat's {loser.progress.seconds:.1f} s count in the run's time"
               f"{' and its budget' if winner.rule.budget is not None else ''}")
    if winner.progress.history:
        row = winner.progress.history[-1]
        row["event"] = "; ".join(filter(None, [row.get("event"), verdict]))
    if math.isfinite(winner.progress.best_esr):   # else heat 1's model.npz, if any, is as good as any
        save_best_model(folder, winner, data, facts)
    write_history(folder / HISTORY_FILE, winner.progress.history)
    save_checkpoint(folder, winner, saved_facts)                # last: the race is decided
    reporter.note(verdict)
    return winner


def stale_heats(folder: Path) -> list[Path]:
    """The folders that a second heat killed outright (kill -9) may have left in the run
    folder ``folder``: named RIVAL_FOLDER..., holding nothing but what a run writes
    (model.npz, checkpoint.npz, history.csv, and the temporaries of their atomic writes,
    ".model.npz.*"). A folder holding anything else, or one that cannot be read, is not
    taken for the race's. race_starts deletes them only when it resumes a run whose first
    heat had ended, the one case where its own second heat can have been killed."""
    run_files = (MODEL_FILE, CHECKPOINT_FILE, HISTORY_FILE)

    def written_by_a_run(path: Path) -> bool:
        return path.is_file() and any(path.name == name or path.name.startswith(temporary_prefix(name))
                                      for name in run_files)

    def only_run_files(path: Path) -> bool:
        try:
            return path.is_dir() and all(written_by_a_run(entry) for entry in path.iterdir())
        except OSError:
            return False

    return [path for path in folder.glob(RIVAL_FOLDER + "*") if only_run_files(path)]


class HeatData:
    """The training data (run.TrainingData) as a heat sees it: each epoch the first
    ``windows`` windows of the data's own shuffled epoch (its last batch cut short), so
    that a long capture's heat validates as often as a short one's and still trains on
    windows from all of it. A capture with fewer windows is seen whole."""

    def __init__(self, data, windows: int):
        self.data, self.windows = data, windows
        self.rate, self.validation = data.rate, data.validation

    def window_count(self, segment: int, warmup: int) -> int:
        return min(self.windows, self.data.window_count(segment, warmup))

    def epoch_batches(self, segment: int, warmup: int, batch: int, rng, knob_jitter: float = 0.0,
                      knob_blend: float = 0.0):
        left = self.window_count(segment, warmup)
        for x, y in self.data.epoch_batches(segment, warmup, batch, rng, knob_jitter, knob_blend):
            if x.shape[-1] > left:            # x (T, I, B), y (T, B): the batch's first ``left`` windows
                x, y = np.ascontiguousarray(x[..., :left]), np.ascontiguousarray(y[..., :left])
            left -= x.shape[-1]
            yield x, y
            if left <= 0:                     # before the data builds a batch that would not be used
                return


class _Rival(Reporter):
    """The second heat's Reporter: its lines as the run's, its epochs as rival_epoch (its
    rows are not the run's unless it wins)."""

    def __init__(self, reporter: Reporter):
        self.reporter = reporter

    def note(self, text: str):
        self.reporter.note(text)

    def batch(self, done: int, total: int, seconds: float, loss):
        self.reporter.batch(done, total, seconds, loss)

    def epoch(self, row: dict, improved: bool):
        self.reporter.rival_epoch(row, improved)


def _number(esr: float) -> float | None:
    """An ESR as JSON keeps it (None: no finite epoch)."""
    return esr if math.isfinite(esr) else None
