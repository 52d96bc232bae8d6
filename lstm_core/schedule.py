"""The learning rate over a run: how a time budget turns into quality.

    constant   the rate given, all run long (the default)
    budget     with a time budget: a half cosine from the rate given down to FLOOR of it
               when the budget runs out; without one, as plateau
    plateau    the rate halved after PLATEAU_EPOCHS epochs without a better val ESR

Under every schedule the run also halves its rate when it rolls back from an epoch that
diverged, spiked or climbed (run.py), and on the CPU when it goes back to its best epoch
after a batch whose probe jumped (probe.py), or undoes a batch whose training loss jumped
or goes back to its best epoch after two in a row (spikes.py; these two not below
TrainConfig.undo_floor of the rate given: ``undo_cut``). The rate in force is
Progress.lr (the base: the rate given, halved by plateaus, roll-backs and the batch
guard) times ``decay`` (the budget's cosine, else 1).

Why they exist: Adam at a fixed 0.01 keeps taking steps of about 0.01 per weight however
close the model is to its best, so late epochs oscillate, sometimes by orders of magnitude;
a rate that falls as the budget runs out spends the first part exploring and the end
settling. Measured by time to quality on five effects (benchmarks/RESULTS.md, 2026-11-30),
the budget cosine won on the low-pass, the resonant filter and the amp-like effect and
lost on the overdrive and, badly, on the compressor (which is still learning when the
rate has fallen), so the constant rate stays the default. Warm restarts (the cosine in
three cycles, 1, 2 and 4 sevenths of the budget) lost to the constant rate on the amp-like
effect in all four runs tried (RESULTS.md "What else was tried for the amp-like effect at
+6", 2026-12-01): at today's defaults it is still learning fast at 120 s and a falling rate
slowed it (the budget cosine lost there too, "A louder input level for high-gain pairs",
though it had won at the defaults of 2026-11-30). So they are not offered. A cool-down
(HOLD 0.8: the full rate for 80 % of the budget, then the cosine) tied the constant rate
there on four pairs of model seed and music (RESULTS.md "The amp-like effect over five
model seeds"), and again at 600 s on a 216 s capture, 1.01 and 1.02 times better on two
seeds (RESULTS.md "A cool-down, longer segments and the rate at 600 s"), presumably because
the running average of the parameters already does what a cool-down would (not tested).
"""

from __future__ import annotations

import math

SCHEDULES = ("constant", "budget", "plateau")
FLOOR = 0.02              # the budget cosine ends at this fraction of the base rate
PLATEAU_EPOCHS = 3        # epochs without a better val ESR before the plateau schedule halves the rate
CUT = 0.5                 # what a plateau, a roll-back or an undone batch (down to undo_cut's floor)
                          # multiplies the base rate by


HOLD = 0.0                # the fraction of the budget spent at the full rate before the cosine begins


def decay(schedule: str, budget: float | None, seconds: float) -> float:
    """The factor on the base rate after ``seconds`` of training."""
    if schedule == "budget" and budget:
        done = min(max((seconds / budget - HOLD) / (1.0 - HOLD), 0.0), 1.0)
        return FLOOR + (1.0 - FLOOR) * 0.5 * (1.0 + math.cos(math.pi * done))
    return 1.0


def undo_cut(base_lr: float, given_lr: float, floor: float) -> float:
    """The base rate after the batch guard acts (undoes a batch, or goes back to the best
    epoch after two in a row): cut by CUT, but not below ``floor`` times the rate given
    (0: no floor), and never raised by it (a rate that the epoch's roll-backs or the probe
    took below the floor stays where it is).

    Why a floor: each undone batch used to halve the rate for good, and a run that undid
    eight (the low-pass and the overdrive in 300 s) went on at 1/256 of it, too slow to
    use the rest of its budget (RESULTS.md "Issue 15 on a second machine", "A floor under
    the batch guard's cut"). An undone batch has not damaged the parameters (they are as
    before it), so it is a weaker sign that the rate is too high than the roll-back of an
    epoch that validation judged, or the probe's, whose cuts have no floor. Two in a row
    keep the floor too: without it they would ratchet the rate down as single ones did
    (the screen with the floor went back after two in a row 12 times in the low-pass's 300 s)."""
    return min(base_lr, max(base_lr * CUT, floor * given_lr))


def plateau_cut(schedule: str, budget: float | None, epoch: int, best_epoch: int, last_cut: int) -> bool:
    """Whether the base rate is halved after ``epoch``: under "plateau" (and "budget"
    without a budget), PLATEAU_EPOCHS epochs after the best one and after the last cut."""
    if schedule == "constant" or (schedule == "budget" and budget):
        return False
    return epoch - max(best_epoch, last_cut) >= PLATEAU_EPOCHS
