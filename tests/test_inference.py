"""Inference over long audio: chunked sequential is exact; parallel chunks match it."""

import numpy as np

from lstm_core.inference import STEPS_PER_CALL, process_parallel, process_sequential
from lstm_core.model import ModelConfig, init_params, model_forward, zero_state

from helpers import error_db


def _model(rng):
    config = ModelConfig(hidden_size=8, num_layers=2)
    return config, init_params(config, rng)


def test_sequential_equals_one_forward_and_carries_state_across_calls(rng):
    config, params = _model(rng)
    x = (0.5 * rng.standard_normal(2 * STEPS_PER_CALL + 333)).astype(np.float32)
    whole, _, _ = model_forward(params, config, x[:, None, None], zero_state(config, 1))
    y, _ = process_sequential(params, config, x)
    assert np.abs(y - whole[:, 0]).max() < 1e-5
    first, state = process_sequential(params, config, x[:1000])
    second, _ = process_sequential(params, config, x[1000:], state=state)
    assert np.abs(np.concatenate([first, second]) - y).max() < 1e-5


def test_channels_are_separate_streams(rng):
    config, params = _model(rng)
    x = (0.5 * rng.standard_normal((3000, 2))).astype(np.float32)
    y, _ = process_sequential(params, config, x)
    left, _ = process_sequential(params, config, x[:, 0])
    assert y.shape == (3000, 2) and np.abs(y[:, 0] - left).max() < 1e-5


def test_parallel_chunks_match_sequential_below_minus_80_db(rng):
    config, params = _model(rng)
    n = 40_000
    t = np.arange(n)
    x = (0.4 * np.sin(2 * np.pi * 0.01 * t) * np.sin(2 * np.pi * 0.0003 * t)
         + 0.05 * rng.standard_normal(n)).astype(np.float32)
    reference, _ = process_sequential(params, config, x)
    fast = process_parallel(params, config, x, parts=16, overlap=2048)
    assert error_db(fast, reference) < -80
    # With history, a block in the middle of a stream matches too.
    middle = process_parallel(params, config, x[20_000:], parts=8, overlap=2048, history=x[:20_000])
    assert error_db(middle, reference[20_000:]) < -80


def test_wide_batches_take_shorter_calls_with_the_same_result(rng, monkeypatch):
    """run() cuts a wide batch into shorter forward calls to bound their buffers' memory;
    the state carried between calls makes that invisible in the output."""
    from lstm_core import inference

    config, params = _model(rng)
    x = (0.5 * rng.standard_normal((700, 1, 6))).astype(np.float32)
    y_long, state_long = inference.run(params, config, x)
    monkeypatch.setattr(inference, "CALL_BYTES", 1)
    assert inference.steps_per_call(config, 6) == 16
    y_short, state_short = inference.run(params, config, x)
    assert np.abs(y_short - y_long).max() < 1e-6
    assert all(np.abs(a - b).max() < 1e-6 for a, b in zip(state_short, state_long))
    monkeypatch.setattr(inference, "CALL_BYTES", 256 << 20)
    assert inference.steps_per_call(ModelConfig(hidden_size=128), 4096) == 256 * 2**20 // (898 * 4096 * 4)
    assert inference.steps_per_call(ModelConfig(hidden_size=32), 64) == inference.STEPS_PER_CALL
