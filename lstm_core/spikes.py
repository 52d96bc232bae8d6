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

    def __init__(self, recent: list):
        self.recent = recent       # the run's own list (Progress.recent_losses: checkpointed), kept in place
        self._params = self._adam = None

    def before(self, params: dict, adam: AdamState):
        """Copy what the next batch will change."""
        self._params = {k: v.copy() for k, v in params.items()}
        self._adam = adam.copy()

    def spiked(self, loss: float, armed: bool) -> bool:
        """Whether the batch just done, of training ``loss``, is to be undone (only when
        ``armed``; a batch not undone joins the recent ones)."""
        if armed and len(self.recent) >= 3 and not loss <= JUMP * statistics.median(self.recent):
            return True
        self.recent[:] = (self.recent + [loss])[-RECENT:]
        return False

    def undo(self) -> tuple[dict, AdamState]:
        """The parameters and Adam as they were before the batch."""
        return self._params, self._adam
