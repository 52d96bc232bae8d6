"""Undoing a batch whose training loss jumps, before it reaches a validation.

Adam at a fixed rate keeps taking steps of about the rate per weight however close the
model is to its best, and now and then a run of them carries the LSTM somewhere much
worse: within one batch (of TBPTT updates) the loss rises by orders of magnitude, and
the next validation shows it (the demo once went from 3e-6 to 0.12). Such a batch is
seen on the host the moment it ends (the CPU's losses are host numbers already), so:

    before each batch    keep a copy of the parameters and Adam (a few thousand numbers)
    after it             a loss above JUMP times the median of the last RECENT accepted
                         batches is a spike: parameters and Adam go back to the copy,
                         and the run's base rate is cut (schedule.CUT)

A spike right after an undone batch means the parameters were off before it began (the
damage came in a batch below the limit, which the guard let through): undoing it again
would return to them at an ever lower rate, and every later batch would spike as well
(the resonant filter from the chrono start froze so, its rate cut to 4e-8 within six
epochs, RESULTS.md "Racing the two starts"). So the run goes back to its best epoch
instead (run.py, as for a spiked epoch, the rate halved again). Neither cut takes the
rate below TrainConfig.undo_floor of the rate given (schedule.undo_cut).

Whenever the run goes back to its best epoch (here, after an epoch that spiked, diverged
or climbed, or on the probe's word), the guard forgets the losses that led away from it
and starts its median afresh, but until it has kept 3 batches of its own it judges each
against the best epoch's: a loss above JUMP times the highest of the last RECENT it had
kept by then (going back or not: an epoch that went back itself kept only a batch or two
since) is a spike. With no judge at all there, a run of batches at 57 times the best
epoch's loss went through (the overdrive's 300 s run, 2026-12-04: epoch 68 trained so,
and epoch 69's validation read 10.2 times its best; RESULTS.md "Going back, judged
against the best epoch"). The highest, not the median: a low-pass's training losses
swing up to 70 times from epoch to epoch at 300 s, and judged against the median of the
best epoch's the run went back 23 times where it had gone back 6, and ended 1.6 times
worse. If the run must go back again before keeping a single batch, the best epoch's own
parameters spiking, the losses may have moved for good (tests/test_race.py makes every
loss 100 times higher from one epoch on) or the rate may be too high even there: the
guard then judges no batch until it has kept 3, and this going back halves the rate even
below the floor.

The guard starts after the first epoch (the first batches fall by orders of magnitude
as a matter of course). On a GPU the loss stays on the device (reading it is a sync per
batch), and run.py's per-epoch roll-back is the only guard.
"""

from __future__ import annotations

import statistics

from .adam import AdamState

JUMP = 10.0       # a batch loss this many times the recent median is a spike
RECENT = 5        # accepted batch losses the median is taken over (at least 3 needed)


class BatchGuard:
    """Keeps the state before each batch, and tells a batch that spiked."""

    def __init__(self, progress):
        self.progress = progress   # the run's Progress: recent_losses, kept_losses, best_losses,
                                   # spikes_in_a_row and back_limit (checkpointed)
        self.recent = progress.recent_losses   # kept in place
        self._params = self._adam = None

    def before(self, params: dict, adam: AdamState):
        """Copy what the next batch will change."""
        self._params = {k: v.copy() for k, v in params.items()}
        self._adam = adam.copy()

    def spiked(self, loss: float, armed: bool) -> bool:
        """Whether the batch just done, of training ``loss``, is to be undone (only when
        ``armed``; a batch not undone joins the recent ones)."""
        limit = self.limit()
        if armed and limit is not None and not loss <= limit:
            self.progress.spikes_in_a_row += 1
            return True
        self.recent[:] = (self.recent + [loss])[-RECENT:]
        self.progress.kept_losses = (self.progress.kept_losses + [loss])[-RECENT:]
        self.progress.spikes_in_a_row = 0
        return False

    def limit(self) -> float | None:
        """The loss above which a batch spikes: JUMP times the median of the recent ones
        once 3 are kept; before that, after going back, the best epoch's limit; else none."""
        if len(self.recent) >= 3:
            return JUMP * statistics.median(self.recent)
        return self.progress.back_limit

    @property
    def again(self) -> bool:
        """Whether the batch that just spiked came right after an undone one (go back
        further than the batch: see the module doc)."""
        return self.progress.spikes_in_a_row >= 2

    @property
    def stuck(self) -> bool:
        """Whether the run went back to its best epoch before and has kept no batch since
        (the rate is then cut past the floor: run.py)."""
        return self.progress.back_limit is not None and not self.recent

    def restart(self):
        """The run went back to its best epoch: the median starts afresh, and until 3
        batches are kept a batch is judged against JUMP times the highest loss kept in the
        best epoch (Progress.best_losses: the last RECENT batches kept by then, going back
        or not); against none where the run is ``stuck``, or where fewer than 3 were kept
        (the starting model, a fine-tune's say, still the best; a run from before they were
        kept)."""
        best = self.progress.best_losses
        self.progress.back_limit = JUMP * max(best) if len(best) >= 3 and not self.stuck else None
        self.recent.clear()
        self.progress.spikes_in_a_row = 0

    def undo(self) -> tuple[dict, AdamState]:
        """The parameters and Adam as they were before the batch."""
        return self._params, self._adam
