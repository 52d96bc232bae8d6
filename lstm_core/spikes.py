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
instead (run.py, as for a spiked epoch, the rate halved again: a quarter of what it was
before the first). Neither cut takes the rate below TrainConfig.undo_floor of the rate
given (schedule.undo_cut).

Whenever the run goes back to its best epoch (here, after a spiked or diverged epoch, or
on the probe's word), the guard judges the next batches against the losses it kept in
that epoch, not against the ones that led away from it, nor against none: a median
started afresh let the first three batches after going back through unjudged, and so
accepted a run of them at 57 times the best epoch's loss (the overdrive's epoch 68 at
300 s, whose validation then read 10.2 times its best; RESULTS.md "Going back, judged
against the best epoch"). Only if it must go back again before it has kept a single
batch, the best epoch's own parameters spiking against its losses, does the guard start
its median afresh: the losses have moved for good, and judging against the old ones
would undo every batch from then on (tests/test_race.py makes every loss 100 times
higher from one epoch on).

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
        self.progress = progress   # the run's Progress: its recent_losses and spikes_in_a_row (checkpointed)
        self.recent = progress.recent_losses   # kept in place
        self._params = self._adam = None

    def before(self, params: dict, adam: AdamState):
        """Copy what the next batch will change."""
        self._params = {k: v.copy() for k, v in params.items()}
        self._adam = adam.copy()

    def spiked(self, loss: float, armed: bool) -> bool:
        """Whether the batch just done, of training ``loss``, is to be undone (only when
        ``armed``; a batch not undone joins the recent ones)."""
        if armed and len(self.recent) >= 3 and not loss <= JUMP * statistics.median(self.recent):
            self.progress.spikes_in_a_row += 1
            return True
        self.recent[:] = (self.recent + [loss])[-RECENT:]
        self.progress.spikes_in_a_row = 0
        self.progress.judging_as_best = False
        return False

    @property
    def again(self) -> bool:
        """Whether the batch that just spiked came right after an undone one (go back
        further than the batch: see the module doc)."""
        return self.progress.spikes_in_a_row >= 2

    def restart(self):
        """The run went back to its best epoch: judge the next batches against the losses
        kept in that epoch (Progress.best_losses), or, where it went back to them before
        and has kept no batch since, against none: the median starts afresh, and judges
        again once 3 batches are kept (so too in a run from before best_losses were kept)."""
        again = self.progress.judging_as_best
        self.recent[:] = [] if again else self.progress.best_losses
        self.progress.judging_as_best = not again and bool(self.recent)
        self.progress.spikes_in_a_row = 0

    def undo(self) -> tuple[dict, AdamState]:
        """The parameters and Adam as they were before the batch."""
        return self._params, self._adam
