"""The probe after every batch (lstm_core/probe.py): what it scores, and when it calls a jump.

Its use in a run (a spike injected into one batch, caught before the epoch's validation)
is in test_run.py, test_a_batch_that_spikes_is_undone_before_validation."""

import math
import time

import numpy as np

from lstm_core.probe import PROBE_ABOVE, PROBE_SECONDS, PROBE_SHARE, SpikeProbe, probe_part
from lstm_core.run import ValidationPart


class Scores:
    """A scorer whose ESR of a parameter dict is its "esr" entry; counts its calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, params):
        self.calls.append(params["name"])
        return params["esr"]


def model(name, esr):
    return {"name": name, "esr": esr}


def test_no_best_no_judgement():
    scores = Scores()
    probe = SpikeProbe(scores, floor=1e-9)
    assert probe.jumped([model("params", 1e6)]) is None and not scores.calls
    probe.keep_best(model("best", math.nan))            # a best whose probe is not a number judges nothing
    assert probe.jumped([model("params", 1e6)]) is None


def test_a_jump_is_the_better_candidate_over_the_limit():
    scores = Scores()
    probe = SpikeProbe(scores, floor=1e-9)
    probe.keep_best(model("best", 1e-4))
    below = PROBE_ABOVE * 0.99e-4
    above = PROBE_ABOVE * 1.01e-4
    assert probe.jumped([model("params", 50 * above), model("average", below)]) is None
    assert scores.calls[1:] == ["average"]              # the average below the limit: the parameters not scored
    scores.calls.clear()
    assert probe.jumped([model("params", below), model("average", 50 * above)]) is None
    assert scores.calls == ["average", "params"]
    ratio = probe.jumped([model("params", 2 * above), model("average", math.inf)])
    assert math.isclose(ratio, 2 * PROBE_ABOVE * 1.01)   # the better one over the best's
    assert math.isclose(probe.jumped([model("params", above)]), PROBE_ABOVE * 1.01)
    assert probe.jumped([model("params", math.nan)]) == math.inf   # a probe that is not a number is a jump


def test_a_best_of_zero_counts_as_the_floor():
    probe = SpikeProbe(Scores(), floor=1e-6)
    probe.keep_best(model("best", 0.0))
    assert probe.jumped([model("params", PROBE_ABOVE * 0.9e-6)]) is None
    assert probe.jumped([model("params", PROBE_ABOVE * 2e-6)]) is not None


def test_the_probed_stretch_is_the_first_scored_part_cut_short():
    rate = 8000
    n = int(PROBE_SECONDS * rate)
    audio = [np.arange(3 * n, dtype=np.float32) + k for k in range(3)]
    parts = [ValidationPart(audio[0], -audio[0], history=np.ones(10, np.float32), name="a", held_out=True),
             ValidationPart(audio[1], -audio[1], history=np.zeros(10, np.float32), controls=(0.5,), name="b"),
             ValidationPart(audio[2], -audio[2], name="c")]
    part = probe_part(parts, rate)
    assert part.name == "b" and part.controls == (0.5,)
    assert np.array_equal(part.x, audio[1][:n]) and np.array_equal(part.y, -audio[1][:n])
    assert np.array_equal(part.history, np.zeros(10))   # its warm-up kept
    assert probe_part(parts[:1], rate) is None          # every part held out: nothing to probe


def test_the_probe_runs_once_the_training_since_pays_for_it():
    """At most PROBE_SHARE of the training time goes to probes: after a probe, the next one
    is due once the batches since took 1 / PROBE_SHARE times what it took."""
    def slow(params):
        time.sleep(0.002)
        return params["esr"]

    probe = SpikeProbe(slow, floor=1e-9)
    assert not probe.due                                 # nothing trained since
    probe.trained(1e-6)
    assert probe.due                                     # what a probe costs is not known yet
    probe.keep_best(model("best", 1.0))
    assert probe.jumped([model("params", 1.0)]) is None
    cost = probe.seconds
    assert cost >= 0.002 and probe.unprobed == 0 and not probe.due
    probe.trained(0.9 * cost / PROBE_SHARE)
    assert not probe.due
    probe.trained(0.2 * cost / PROBE_SHARE)
    assert probe.due
