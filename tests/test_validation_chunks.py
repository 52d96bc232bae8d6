"""Validation's chunks sized by the passes they take (run.next_validation_chunk): the rule,
the passes it reads off a real model, and a run that keeps the size across epochs and a
resume."""

import dataclasses

import numpy as np
import pytest

from lstm_core.devices import CPU
from lstm_core.inference import process_chunks, start_state
from lstm_core.model import ModelConfig, init_params
from lstm_core.run import (MIN_VALIDATION_CHUNK, ValidationPart, load_checkpoint, next_validation_chunk,
                           predict_validation, shortest_validation_chunk, train_run, validation_scores)

from test_run import DEVICE, small_data, small_run


def test_more_passes_than_three_lengthen_the_chunks_in_proportion_and_fewer_halve_them():
    assert next_validation_chunk(8192, 3) == 8192
    assert next_validation_chunk(4096, 4) == 2 * 4096
    assert next_validation_chunk(4096, 9) == 3 * 4096
    assert next_validation_chunk(4096, 22) == 8 * 4096
    assert next_validation_chunk(32768, 2) == 16384
    assert next_validation_chunk(32768, 1) == 16384
    assert next_validation_chunk(4096, 1) == MIN_VALIDATION_CHUNK        # never shorter than the shortest
    assert next_validation_chunk(16384, 1, shortest=12000) == 12000


def test_the_shortest_chunk_keeps_the_longest_part_within_the_device_s_chunk_count():
    short = ValidationPart(np.zeros(100_000, np.float32), np.zeros(100_000, np.float32))
    long = ValidationPart(np.zeros(600_000, np.float32), np.zeros(600_000, np.float32),
                          history=np.zeros(8192, np.float32))
    assert shortest_validation_chunk([short], CPU) == MIN_VALIDATION_CHUNK
    assert shortest_validation_chunk([short, long], CPU) == 608_192 // CPU.validation_parts
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
    length, so the next validation cuts chunks 4 times as long: 2 of them, 2 passes; the
    output is the same to rounding either way. A model that forgets takes one pass and
    stays at the shortest."""
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(10 * MIN_VALIDATION_CHUNK)).astype(np.float32)
    part = ValidationPart(x, 0.5 * x)
    params, config = memory_model(30.0)
    esr, _, passes = validation_scores(params, config, [part], CPU, np)
    assert passes == process_chunks(params, config, x, np, start_state(config, 1), 10, CPU.overlap)[2] == 10
    chunk = next_validation_chunk(MIN_VALIDATION_CHUNK, passes)
    assert chunk == 4 * MIN_VALIDATION_CHUNK
    longer_esr, _, fewer_passes = validation_scores(params, config, [part], CPU, np, chunk=chunk)
    assert fewer_passes == 2 and longer_esr == pytest.approx(esr, rel=1e-5)
    y = predict_validation(params, config, part, CPU, np)
    assert np.abs(predict_validation(params, config, part, CPU, np, chunk=chunk) - y).max() <= 1e-5 * np.abs(y).max()

    forgets, config = memory_model(-3.0)
    assert validation_scores(forgets, config, [part], CPU, np)[2] == 1
    assert next_validation_chunk(MIN_VALIDATION_CHUNK, 1) == MIN_VALIDATION_CHUNK


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
