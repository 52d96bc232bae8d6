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
    above PROBE_ABOVE times the best epoch's probe
                       the run goes back to its best epoch at half the rate (run.py), before
                       the rest of the epoch is spent going on from the jump; the epoch's
                       validation then scores the parameters the run goes on with

It is off by default (TrainConfig.probe_batches): on issue 15's table it kept every
epoch after the third under 10 times the best, the resonant filter's included, but it
sent the demo back to its best epoch three times in epochs 3 and 4, at 16 and 8 times
its best on the probe, in epochs that were new bests without it; at an eighth of the
rate the demo's best at 60 s was 8 times worse (RESULTS.md "A probe after every batch").
Half a second of one part is presumably too little audio to judge an early epoch by.
When on, it judges from the same epoch as run.py's spike rule (after SETTLING_EPOCHS),
and is off with it too (TrainConfig.rollback_above 0). A probe costs a short
validation: about 60-100 ms on 2 cores, against 1.5-2 s for a batch at the defaults,
so there it runs after every batch. It runs after a batch only once the
training since the last probe took 1 / PROBE_SHARE times what a probe takes, so that it
never costs more than that share of the run (small models and short windows make short
batches), and always after an epoch's last batch, before the epoch's validation. On a
GPU reading its ESR would be a sync per batch, so there only the epoch's rule acts. A
capture set is probed on its first part that is not held out: a jump shows in every
setting. Each jump halves the rate again, as each spiked epoch does.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Callable

PROBE_SECONDS = 0.5   # of validation audio scored after each batch (its warm-up before it is run too)
PROBE_ABOVE = 4.0     # a probe this many times the best epoch's is a jump. Below the epoch rule's 6: on half
                      # a second the probe read 3.1 where the whole validation read 7.3 (RESULTS.md "A probe
                      # after every batch")
PROBE_SHARE = 0.1     # of the training time the probes may take at most (besides one after each epoch)


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
    """The probe's ESR of the best epoch, and whether the parameters jumped from it.

    ``score(params)``: the ESR of one parameter dict on the probed stretch."""

    def __init__(self, score: Callable[[dict], float], floor: float, clock: Callable[[], float] = time.perf_counter):
        self.score = score
        self.clock = clock    # seconds, the clock the run's batches are timed on
        self.floor = floor    # a best probe below this counts as this (a best of 0 would make every probe a jump)
        self.best = None      # the best epoch's probe; None until there is one (nothing to judge against)
        self._best_params = None   # the best epoch's parameters, until the first probe after them scores them
        self.seconds = 0.0    # what the latest probe took
        self.unprobed = 0.0   # seconds of training since the latest probe

    def trained(self, seconds: float):
        """A batch of ``seconds`` was trained (and kept)."""
        self.unprobed += seconds

    @property
    def due(self) -> bool:
        """Whether the training since the last probe took enough to pay for another one."""
        return self.unprobed > 0 and self.unprobed * PROBE_SHARE >= self.seconds

    def keep_best(self, params: dict):
        """``params`` are the run's best now: their probe is what later ones are judged
        against. Scored by the next probe (in its time: none after a run's last epoch);
        ``params`` must not change in place until then (the run keeps copies)."""
        self._best_params = params

    def jumped(self, candidates: list) -> float | None:
        """The probe over the best's when the better of ``candidates`` ([the parameters,
        their average] or [the parameters]) is above PROBE_ABOVE times the best's; None
        when it is not, or when there is no best yet. The last candidate is scored first:
        the average is the better one nearly always once the run settles (the parameters
        jitter around it), and when it is below the limit so is the better one."""
        started = self.clock()
        try:
            if self._best_params is not None:
                value = self.score(self._best_params)
                self.best, self._best_params = (value if math.isfinite(value) else None), None
            if self.best is None:
                return None
            limit = PROBE_ABOVE * max(self.best, self.floor)
            better = math.inf
            for params in reversed(candidates):
                value = self.score(params)
                better = min(better, value if math.isfinite(value) else math.inf)
                if better <= limit:
                    return None
            return better / max(self.best, self.floor)
        finally:
            self.seconds, self.unprobed = self.clock() - started, 0.0
