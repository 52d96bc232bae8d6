"""The probe after every batch (lstm_core/probe.py): what it scores, and when it calls a jump.

Its use in a run (a spike injected into one batch, caught before the epoch's validation)
is in test_run.py, test_a_batch_that_spikes_is_undone_before_validation."""

import math

import numpy as np

from lstm_core.probe import PROBE_ABOVE, PROBE_EVERY, PROBE_SECONDS, SpikeProbe, probe_part
from lstm_core.run import ValidationPart


class Scores:
    """A scorer whose ESR of a parameter dict is its "esr" entry and whose work its "work"
    entry; counts its calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, params):
        self.calls.append(params["name"])
        return params["esr"], params["work"]


def model(name, esr, work=1):
    return {"name": name, "esr": esr, "work": work}


def test_no_best_no_judgement():
    scores = Scores()
    probe = SpikeProbe(scores, floor=1e-9, samples=1)
    assert probe.jumped([model("params", 1e6)]) is None and not scores.calls
    probe.keep_best(model("best", math.nan))            # a best whose probe is not a number judges nothing
    assert probe.jumped([model("params", 1e6)]) is None


def test_a_jump_is_the_better_candidate_over_the_limit():
    scores = Scores()
    probe = SpikeProbe(scores, floor=1e-9, samples=1)
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
    probe = SpikeProbe(Scores(), floor=1e-6, samples=1)
    probe.keep_best(model("best", 0.0))
    assert probe.jumped([model("params", PROBE_ABOVE * 0.9e-6)]) is None
    assert probe.jumped([model("params", PROBE_ABOVE * 2e-6)]) is not None


def test_a_stretch_easier_than_the_whole_is_judged_against_the_whole_validation():
    """The best epoch's val ESR is the reference when it is above its probe: the demo's first
    half second read 1.6e-6 where its whole validation read 1.3e-5, and the probe then read
    16 times its best in an epoch that was a new best (RESULTS.md "The probe judged against
    the whole validation")."""
    probe = SpikeProbe(Scores(), floor=1e-9, samples=1)
    probe.keep_best(model("best", 1e-6), esr=1e-5)
    assert probe.jumped([model("params", 16e-6)]) is None            # 16 times the probe's best, 1.6 the whole's
    assert math.isclose(probe.jumped([model("params", PROBE_ABOVE * 2e-5)]), 2 * PROBE_ABOVE)
    probe.keep_best(model("best", 1e-4), esr=1e-5)                    # a stretch harder than the whole
    assert probe.jumped([model("params", PROBE_ABOVE * 0.9e-4)]) is None
    assert math.isclose(probe.jumped([model("params", PROBE_ABOVE * 2e-4)]), 2 * PROBE_ABOVE)
    probe.keep_best(model("best", 1e-6), esr=math.nan)               # no val ESR to go by: the probe's alone
    assert math.isclose(probe.jumped([model("params", PROBE_ABOVE * 2e-6)]), 2 * PROBE_ABOVE)


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


def test_the_probe_runs_once_the_audio_trained_since_pays_for_it():
    """Paced by audio, not by the clock (so that a resumed run probes after the same
    batches): after a probe, the next one is due once PROBE_EVERY times its work (here
    each scoring's work is its audio, 1000 samples) has been trained; a new epoch starts
    the count again."""
    probe = SpikeProbe(Scores(), floor=1e-9, samples=1000)
    assert not probe.due                                 # nothing trained since
    probe.trained(PROBE_EVERY * 1000 - 1)
    assert not probe.due
    probe.trained(1)
    assert probe.due
    probe.keep_best(model("best", 1.0, work=1000))
    assert probe.jumped([model("params", 1.0, work=1000)]) is None
    assert probe.unprobed == 0 and not probe.due
    probe.trained(PROBE_EVERY * 999)
    probe.new_epoch()
    probe.trained(PROBE_EVERY * 999)
    assert not probe.due


def test_a_probe_that_took_more_work_waits_that_much_longer_within_its_epoch():
    """A model that keeps its state longer than the stretch takes a chunk pass per chunk
    (chunks.py): such probes took 18-33 % of the amp-like effect's epochs when every batch
    was probed (RESULTS.md "The table with the probe as committed, and what the probe costs
    a high-gain amp"). The next probe waits until the audio trained is PROBE_EVERY times the
    work a scoring of the latest probe took (the mean over the parameters it judged); each
    epoch starts from the stretch's own audio, so a resumed run still probes after the same
    batches."""
    probe = SpikeProbe(Scores(), floor=1e-9, samples=1000)
    probe.keep_best(model("best", 1.0, work=1000))
    assert probe.jumped([model("params", 1.0, work=1000)]) is None
    probe.trained(PROBE_EVERY * 1000)
    assert probe.due                                     # a pass's work: the wait as ever
    # Above the limit, so both candidates are scored: the mean of their work.
    assert probe.jumped([model("params", 1.0, work=7000), model("average", 9.0, work=3000)]) is None
    probe.trained(PROBE_EVERY * 5000 - 1)
    assert not probe.due                                 # 5 times the work: 5 times the wait
    probe.trained(1)
    assert probe.due
    assert probe.jumped([model("params", 1.0, work=5000)]) is None
    probe.new_epoch()
    probe.trained(PROBE_EVERY * 1000)
    assert probe.due                                     # a new epoch waits as long as the stretch's audio asks


def test_the_best_s_scoring_does_not_pace_the_probe():
    """A run resumed from its checkpoint scores the best epoch's parameters in its first
    probe (keep_best) where one straight through had scored them already, or never will:
    the two must still probe after the same batches, so only the parameters judged set
    the wait."""
    waits = []
    for best_pending in (True, False):
        probe = SpikeProbe(Scores(), floor=1e-9, samples=1000)
        probe.keep_best(model("best", 1.0, work=1000))
        assert probe.jumped([model("params", 1.0, work=1000)]) is None     # the best scored
        if best_pending:
            probe.keep_best(model("best", 1.0, work=9000))                  # as a resumed run has it
        assert probe.jumped([model("params", 1.0, work=4000)]) is None
        probe.trained(PROBE_EVERY * 4000 - 1)
        waits.append(probe.due)
        probe.trained(1)
        waits.append(probe.due)
    assert waits == [False, True, False, True]


def test_the_probe_reports_its_work_in_samples():
    """run.probe_esr's work is about the stretch's length for a model that forgets within a
    chunk, whether its scoring takes one pass or a second short one, and about a pass per
    chunk's worth for one that never forgets (its cell integrates: forget gate 1 in float32,
    as test_inference's memory models)."""
    from lstm_core.devices import CPU
    from lstm_core.inference import process_chunks, start_state
    from lstm_core.model import ModelConfig, init_params
    from lstm_core.run import probe_esr
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(22050)).astype(np.float32)
    part = ValidationPart(x, x.copy())                   # no history: 5 chunks of 4410 samples
    H = 8
    config = ModelConfig(hidden_size=H)
    works, passes = {}, {}
    for forget_bias in (-3.0, 3.0, 30.0):
        params = init_params(config, np.random.default_rng(1))
        params["lstm0.b"][2 * H :] = [forget_bias] * H + [0.0] * H     # rows o, i, f, g
        params["lstm0.W_h"][2 * H :] = 0.0
        params["out.W"][:] = 1.0 / H
        esr, works[forget_bias] = probe_esr(params, config, part, CPU, np)
        assert math.isfinite(esr)
        passes[forget_bias] = process_chunks(params, config, x, np, start_state(config, 1), 5, CPU.overlap)[2]
    assert passes == {-3.0: 1, 3.0: 2, 30.0: 5}
    assert 22050 <= works[-3.0] < 1.3 * 22050          # one pass
    assert works[3.0] < 1.3 * 22050                     # two passes, the second short: reruns stop once they agree
    assert works[30.0] > 4 * 22050                      # a pass per chunk
