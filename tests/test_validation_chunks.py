"""Validation's chunks sized by the passes they take (run.next_validation_chunk): the rule,
the passes it reads off a real model, and a run that keeps the size across epochs and a
resume."""

import dataclasses

import numpy as np
import pytest

from lstm_core.devices import CPU
from lstm_core.inference import process_chunks, start_state
from lstm_core.model import ModelConfig, init_params
from audio_io.dataset import Dataset
from audio_io.pair import Pair
from lstm_core.run import (MIN_VALIDATION_CHUNK, VALIDATION_PASSES, ValidationPart, load_checkpoint,
                           next_validation_chunk, predict_validation, shortest_validation_chunk, train_run,
                           validation_scores)

from test_run import DEVICE, small_data, small_run


def test_more_passes_than_three_lengthen_the_chunks_in_proportion_and_one_halves_them():
    """0 is the device's cut, whose longest part's chunk is ``shortest``."""
    assert next_validation_chunk(0, 4) == 2 * MIN_VALIDATION_CHUNK
    assert next_validation_chunk(0, 9) == 3 * MIN_VALIDATION_CHUNK
    assert next_validation_chunk(0, 22) == 8 * MIN_VALIDATION_CHUNK
    assert next_validation_chunk(0, 5, shortest=5000) == 10_000          # from the longest part's chunk
    assert next_validation_chunk(8192, 4) == 16384
    for passes in (2, 3):                                   # kept: no 2, 4, 2, 4 back and forth
        assert next_validation_chunk(32768, passes) == 32768 and next_validation_chunk(0, passes) == 0
    assert next_validation_chunk(32768, 1) == 16384
    assert next_validation_chunk(30_000, 1, shortest=12_000) == 15_000
    assert next_validation_chunk(8192, 1) == 0                           # back to the device's cut...
    assert next_validation_chunk(16384, 1, shortest=12_000) == 0         # ...never below it
    assert next_validation_chunk(0, 1) == 0


def test_the_shortest_chunk_keeps_the_longest_part_within_the_device_s_chunk_count():
    short = ValidationPart(np.zeros(100_000, np.float32), np.zeros(100_000, np.float32))
    long = ValidationPart(np.zeros(600_000, np.float32), np.zeros(600_000, np.float32),
                          history=np.zeros(8192, np.float32))
    assert shortest_validation_chunk([short], CPU) == MIN_VALIDATION_CHUNK
    assert shortest_validation_chunk([short, long], CPU) == 608_192 // CPU.validation_parts
    longer_history = dataclasses.replace(long, history=np.zeros(50_000, np.float32))   # only the warm-up is run
    assert CPU.validation_warmup == 8192
    assert shortest_validation_chunk([longer_history], CPU) == 608_192 // CPU.validation_parts
    assert shortest_validation_chunk([], CPU) == MIN_VALIDATION_CHUNK


def memory_model(forget_bias: float, H: int = 8) -> tuple:
    """A model whose cell forgets quickly (a negative forget bias) or integrates (+30: a
    forget gate of 1 in float32), as tests/test_probe.py builds them."""
    config = ModelConfig(hidden_size=H)
    params = init_params(config, np.random.default_rng(1))
    params["lstm0.b"][2 * H :] = [forget_bias] * H + [0.0] * H     # rows o, i, f, g
    params["lstm0.W_h"][2 * H :] = 0.0
    params["out.W"][:] = 1.0 / H
    return params, config


def test_a_model_that_never_forgets_lengthens_its_chunks_and_scores_the_same():
    """An integrating cell takes a pass per chunk: 10 passes in 10 chunks of the shortest
    length, so the next validation cuts chunks 4 times as long: 2 of them, 2 passes, which
    keep that length; the output is the same to rounding either way. Of two parts, the one
    in more chunks, with more passes, counts. A model that forgets takes one pass."""
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(10 * MIN_VALIDATION_CHUNK)).astype(np.float32)
    part = ValidationPart(x, 0.5 * x)
    params, config = memory_model(30.0)
    esr, _, passes = validation_scores(params, config, [part], CPU, np)
    assert passes == process_chunks(params, config, x, np, start_state(config, 1), 10, CPU.overlap)[2] == 10
    chunk = next_validation_chunk(0, passes)
    assert chunk == 4 * MIN_VALIDATION_CHUNK
    longer_esr, _, fewer_passes = validation_scores(params, config, [part], CPU, np, chunk=chunk)
    assert fewer_passes == 2 and longer_esr == pytest.approx(esr, rel=1e-5)
    assert next_validation_chunk(chunk, fewer_passes) == chunk
    short = ValidationPart(x[: 2 * MIN_VALIDATION_CHUNK], 0.5 * x[: 2 * MIN_VALIDATION_CHUNK], name="short")
    assert validation_scores(params, config, [short], CPU, np)[2] == 2
    assert validation_scores(params, config, [short, part], CPU, np)[2] == 10
    y = predict_validation(params, config, part, CPU, np)
    assert np.abs(predict_validation(params, config, part, CPU, np, chunk=chunk) - y).max() <= 1e-5 * np.abs(y).max()

    forgets, config = memory_model(-3.0)
    assert validation_scores(forgets, config, [part], CPU, np)[2] == 1


def test_a_run_sizes_each_validation_by_the_last_one_s_passes_and_a_resume_goes_on_from_it(tmp_path, monkeypatch):
    """Validation made to report 7 passes every time: each epoch's validation cuts chunks 3
    times as long as the last one's, the parameters and their average alike, and a run
    resumed after epoch 2 goes on from its checkpoint's size."""
    import lstm_core.run

    real, seen = lstm_core.run.validation_scores, []

    def seven_passes(*args, **kwargs):
        chunk = args[6] if len(args) > 6 else kwargs.get("chunk", MIN_VALIDATION_CHUNK)
        seen.append(chunk)
        overall, each, _ = real(*args, **kwargs)
        return overall, each, 7

    monkeypatch.setattr(lstm_core.run, "validation_scores", seven_passes)
    first = small_run(epochs=2, average=0.9)                  # two candidates a validation
    train_run(first, small_data(), DEVICE, tmp_path, {})
    assert seen == [MIN_VALIDATION_CHUNK] * 2 + [3 * MIN_VALIDATION_CHUNK] * 2
    assert first.progress.validation_chunk == 9 * MIN_VALIDATION_CHUNK

    seen.clear()
    resumed, _ = load_checkpoint(tmp_path)
    resumed.rule = dataclasses.replace(resumed.rule, epochs=3)
    train_run(resumed, small_data(), DEVICE, tmp_path, {})
    assert seen == [9 * MIN_VALIDATION_CHUNK] * 2 and resumed.progress.validation_chunk == 27 * MIN_VALIDATION_CHUNK


@pytest.mark.parametrize("processes", [1, 2])
def test_a_run_of_a_model_that_never_forgets_validates_in_longer_chunks_in_either_layout(tmp_path, processes):
    """A run from an integrating cell (trained at a rate too small to change that) on 6 s
    of validation: its first validation takes a pass per chunk, the next cuts longer
    chunks, the same with the two candidates scored side by side in two processes (the
    worker's passes come back) as in one."""
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(8 * 8000)).astype(np.float32)
    y = np.tanh(2 * x).astype(np.float32)
    data = Dataset(x[:16000], y[:16000], x[16000:], y[16000:], Pair(x, y, 8000))
    state = small_run(epochs=2, average=0.9)
    state.train = dataclasses.replace(state.train, lr=1e-9)
    H = state.model.hidden_size
    state.params["lstm0.b"][2 * H : 3 * H] = 30.0             # the forget gate: 1 in float32
    state.params["lstm0.W_h"][2 * H : 3 * H] = 0.0
    train_run(state, data, dataclasses.replace(DEVICE, processes=processes), tmp_path, {})
    samples = data.validation[0].x.size + min(CPU.validation_warmup, data.validation[0].history.size)
    assert samples // MIN_VALIDATION_CHUNK > VALIDATION_PASSES       # the first validation's chunks: more passes
    assert MIN_VALIDATION_CHUNK < state.progress.validation_chunk
    assert samples // state.progress.validation_chunk <= VALIDATION_PASSES
