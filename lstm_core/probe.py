"""Catching a jump in the batch it happens in: a short stretch of validation scored after every batch.

run.py rolls back an epoch whose validation jumped, but only once the epoch has ended:
the history, the progress line and the report show the jump, and the batches after it
went on from it. A jump comes within one batch (a resonant filter's epoch went from
0.6 to 18 times its best on this probe in the epoch's last batch, and its validation
showed 17 times: RESULTS.md "A probe after every batch"), and the batch guard
(spikes.py) cannot see it in the training loss, which swings by 10 times from batch
to batch with the audio each batch draws. A fixed stretch of audio does not swing so:

    after a batch      score the first PROBE_SECONDS of the validation audio (after the
                       warm-up its validation runs) with Adam's running average of the
                       parameters and, only if that is above the limit, the parameters
                       themselves; the better of them is the probe, as in validation
    above PROBE_ABOVE times the best epoch's probe, or its val ESR when that is larger
                       the run goes back to its best epoch at half the rate (run.py), before
                       the rest of the epoch is spent going on from the jump; the epoch's
                       validation then scores the parameters the run goes on with

Judged against its own best alone, it sent the demo back to its best epoch three times in
epochs 3 and 4 that were new bests without it: its first half second read 1.6e-6 where
the whole validation read 1.3e-5, and then 16 and 8 times that, a change the whole
validation did not show (RESULTS.md "A probe after every batch"). A stretch so much
easier than the rest swings by more than the whole does; against the whole validation's
best as well, a jump must take the stretch itself past PROBE_ABOVE times what the whole
validation reached (RESULTS.md "The probe judged against the whole validation").

It judges from the same epoch as run.py's spike rule (after SETTLING_EPOCHS), and is off
with it too (TrainConfig.rollback_above 0). A probe costs a short validation: about
60-100 ms on 2 cores on the table's pairs (a high-gain amp's: 230-480 ms, below),
against 1.5-2 s for a batch at the defaults. It is paced by its work: it runs after a
batch only once the audio trained since the last probe (warm-ups included) is
PROBE_EVERY times the work a scoring of the latest probe took (the mean over the
parameters it judged; the best epoch's, scored in the first probe after a new best, are
left out, since a resumed run scores them where one straight through may not; before an
epoch's first probe, the stretch's audio, its warm-up included). The work is the model
steps the scoring ran over the chunks' passes (chunks.py) times the chunks side by side
(run.probe_esr): about the stretch's length on a model that forgets within a chunk (one
pass, and short reruns), and as many times that as there are chunks on one that keeps
its state longer than the stretch. A batch at the defaults is 34 times a one-pass
probe's audio, so on a model that forgets it runs after every batch; where batches are
short (small batches, short windows) it costs a small share of the run. It always runs
after an epoch's last batch, before the epoch's validation. A sample of the probe cost
about 1.5 times a trained one (2-3 us against 1.4-1.9 us, H = 32, 2 cores, on models
that forget): at PROBE_EVERY 20 a probe takes about 8 % of the training it follows where
batches are short (up to about 11 % on those figures, and twice that when the parameters
are scored too). The amp-like effect trained at +6 dBFS keeps its state longer than the
stretch: on a long capture validated on a file of its own (so with no warm-up) its
scorings took 4 or 5 passes over the 5 chunks, a work of 82,790-111,530 samples for a
stretch of 22,050. Paced by the stretch's audio alone it ran after every batch there, and
its probes took 18 to 33 % of each epoch's training while the machine ran fast (RESULTS.md
"The table with the probe as committed, and what the probe costs a high-gain amp");
paced by its work it ran after 6 of the traced epoch's 11 batches (RESULTS.md "The probe
paced by its work"). It is paced by audio and work rather than by the clock so that a run
resumed from its checkpoint probes after the same batches, and ends exactly where one
straight through ends (tests/test_run.py): the work depends on the parameters judged
alone, and each epoch starts afresh. On a GPU reading its ESR would be a sync per batch,
so there only the epoch's rule acts. A capture set is probed on its first part that is
not held out: a jump shows in every setting. Each jump halves the rate again, as each
spiked epoch does.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Callable

PROBE_SECONDS = 0.5   # of validation audio scored after a batch (its warm-up before it is run too)
PROBE_ABOVE = 4.0     # a probe this many times the best epoch's (or its val ESR, if larger) is a jump. Below
                      # the epoch rule's 6: on half a second the probe read 3.1 where the whole validation
                      # read 7.3 (RESULTS.md "A probe after every batch")
PROBE_EVERY = 20      # a probe once the audio trained since the last is this many times a scoring's work (and
                      # after each epoch's last batch): at the defaults (40 windows of 26112 samples a batch,
                      # 0.7 s of audio a probe) after every batch on a model that forgets within a chunk


def probe_part(parts: list, rate: float):
    """The stretch probed: the first of ``parts`` (run.ValidationPart) not held out, its
    audio cut to the first PROBE_SECONDS (its history, the warm-up, kept); None when every
    part is held out."""
    scored = [part for part in parts if not part.held_out]
    if not scored:
        return None
    n = max(1, int(PROBE_SECONDS * rate))
    return replace(scored[0], x=scored[0].x[:n], y=scored[0].y[:n])


class SpikeProbe:
    """The best epoch's probe and val ESR, and whether the parameters jumped from them.

    ``score(params)``: (the ESR of one parameter dict on the probed stretch, the work the
    scoring took: the samples its model steps amount to, run.probe_esr)."""

    def __init__(self, score: Callable[[dict], tuple[float, float]], floor: float, samples: int,
                 clock: Callable[[], float] = time.perf_counter):
        self.score = score
        self.samples = samples  # of audio a probe runs (the stretch and its warm-up)
        self.clock = clock    # seconds, the clock probes are timed on (for the budget's look-ahead)
        self.floor = floor    # a best probe below this counts as this (a best of 0 would make every probe a jump)
        self.best = None      # the best epoch's probe; None until there is one (nothing to judge against)
        self.best_esr = 0.0   # the best epoch's val ESR: a probe is judged against the larger of it and self.best
        self._best_params = None   # the best epoch's parameters, until the first probe after them scores them
        self.seconds = 0.0    # what the latest probe took (the budget's look-ahead counts it)
        self.unprobed = 0     # samples trained since the latest probe (or the epoch's start)
        self.work = samples   # the work a candidate's scoring took in this epoch's latest probe (their mean; the
                              # stretch's audio before one)

    def trained(self, samples: int):
        """A batch of ``samples`` (warm-ups included) was trained, and kept."""
        self.unprobed += samples

    @property
    def due(self) -> bool:
        """Whether the audio trained since the last probe is enough to pay for another one."""
        return self.unprobed >= PROBE_EVERY * self.work

    def new_epoch(self):
        """An epoch starts: what was trained before counts no more (a diverged epoch ends
        unprobed), so that the probes of an epoch depend on that epoch alone."""
        self.unprobed, self.work = 0, self.samples

    def keep_best(self, params: dict, esr: float = 0.0):
        """``params`` are the run's best now, with val ESR ``esr``: their probe, or ``esr``
        when that is larger, is what later ones are judged against. Scored by the next
        probe (in its time: none after a run's last epoch); ``params`` must not change in
        place until then (the run keeps copies)."""
        self._best_params, self.best_esr = params, esr if math.isfinite(esr) else 0.0

    def jumped(self, candidates: list) -> float | None:
        """The probe over the reference (the larger of the best's probe and val ESR) when
        the better of ``candidates`` ([the parameters, their average] or [the parameters])
        is above PROBE_ABOVE times it; None when it is not, or when there is no best yet.
        The last candidate is scored first: the average is the better one nearly always
        once the run settles (the parameters jitter around it), and when it is below the
        limit so is the better one."""
        started = self.clock()
        # The work of each candidate's scoring. The best's is left out: a run resumed from its
        # checkpoint scores the best where one straight through may not, and the pacing must
        # not tell the two apart.
        works = []
        try:
            if self._best_params is not None:
                value, _ = self.score(self._best_params)
                self.best, self._best_params = (value if math.isfinite(value) else None), None
            if self.best is None:
                return None
            reference = max(self.best, self.best_esr, self.floor)
            limit = PROBE_ABOVE * reference
            better = math.inf
            for params in reversed(candidates):
                value, work = self.score(params)
                works.append(work)
                better = min(better, value if math.isfinite(value) else math.inf)
                if better <= limit:
                    return None
            return better / reference
        finally:
            self.seconds, self.unprobed = self.clock() - started, 0
            if works:
                self.work = sum(works) / len(works)
