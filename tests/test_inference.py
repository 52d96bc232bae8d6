"""Inference over long audio: chunked sequential is exact; parallel chunks equal it to rounding."""

import numpy as np

from lstm_core.inference import (STEPS_PER_CALL, block_length, process_chunks, process_parallel, process_sequential,
                                 start_state)
from lstm_core.model import ModelConfig, init_params, model_forward, zero_state

from helpers import error_db, rounding_amplifier


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


def _signal(rng, n=40_000):
    """(n,) float32: a slowly swelling tone with some noise, zero mean."""
    t = np.arange(n)
    return (0.4 * np.sin(2 * np.pi * 0.01 * t) * np.sin(2 * np.pi * 0.0003 * t)
            + 0.05 * rng.standard_normal(n)).astype(np.float32)


def _memory_model(rng, forget_bias, H=8):
    """A one-layer model whose cell barely forgets (forget-gate bias ``forget_bias``: +9
    keeps 0.9999 of the cell a step, a memory of about 8000 samples; +30 makes the gate
    exactly 1 in float32, so the cell integrates and two streams' states never meet).
    The cell candidate is tanh(W_x x), zero mean on zero-mean audio, so the cell stays of
    order 1 and float32 rounding stays far below -120 dB."""
    config = ModelConfig(hidden_size=H)
    params = init_params(config, rng)
    params["lstm0.b"][2 * H :] = [forget_bias] * H + [0.0] * H
    params["lstm0.W_h"][2 * H :] = 0.0
    params["out.W"][:] = 1.0 / H
    return config, params


def test_parallel_chunks_equal_sequential_below_minus_120_db(rng):
    config, params = _model(rng)
    x = _signal(rng)
    reference, _ = process_sequential(params, config, x)
    for overlap in (0, 256, 2048):
        assert error_db(process_parallel(params, config, x, parts=16, overlap=overlap), reference) < -120
    # With history, a block in the middle of a stream equals the sequential run over it too.
    middle = process_parallel(params, config, x[20_000:], parts=8, overlap=256, history=x[:20_000])
    assert error_db(middle, reference[20_000:]) < -120


def test_parallel_chunks_are_exact_on_models_that_do_not_forget(rng):
    """A warm-up cannot reach the true state of these models; the correction passes can.
    (The one-pass warm-up before this change came out at -11 dB and -27 dB here.)"""
    x = _signal(rng)
    for forget_bias in (9.0, 30.0):
        config, params = _memory_model(rng, forget_bias)
        reference, (h, c) = process_sequential(params, config, x)
        y, (h_end, c_end), passes = process_chunks(params, config, x, np, start_state(config, 1), 16, 2048)
        assert 2 < passes <= 16, forget_bias                  # the guesses were wrong, more than once
        assert error_db(y, reference) < -120, forget_bias
        assert np.abs(c_end - c).max() < 1e-5 * (1 + np.abs(c).max())
        assert error_db(process_parallel(params, config, x, parts=16, overlap=2048), reference) < -120


def test_parallel_chunks_carry_state_controls_and_initial_state(rng):
    config = ModelConfig(input_size=2, hidden_size=6, num_layers=2)
    params = init_params(config, rng)
    x = _signal(rng, 25_000)
    initial = tuple(0.5 * rng.standard_normal((2, 6)).astype(np.float32) for _ in range(2))
    reference, (h, c) = process_sequential(params, config, x, initial=initial, controls=(0.7,))
    y = process_parallel(params, config, x, parts=12, overlap=128, initial=initial, controls=(0.7,))
    assert error_db(y, reference) < -120
    # Two calls, the state carried, equal one sequential run.
    state = start_state(config, 1, np, initial)
    first, state, _ = process_chunks(params, config, x[:9_999], np, state, 7, 128, controls=(0.7,))
    second, (h_end, c_end), _ = process_chunks(params, config, x[9_999:], np, state, 5, 128, controls=(0.7,))
    assert error_db(np.concatenate([first, second]), reference) < -120
    assert np.abs(h_end - h).max() < 1e-5 and np.abs(c_end - c).max() < 1e-5
    # Inputs shorter than the chunks asked for, down to one sample.
    for n in (1, 5, 31):
        assert error_db(process_parallel(params, config, x[:n], parts=16, overlap=128, initial=initial,
                                         controls=(0.7,)), reference[:n]) < -120


def test_random_models_take_few_passes_and_stay_exact(rng):
    """On ordinary models (random weights, several sizes and depths) the chunks forget
    their guess within a rerun, so two or three passes do."""
    x = _signal(rng, 30_000)
    for seed, (H, layers) in enumerate([(4, 1), (16, 1), (8, 3)]):
        config = ModelConfig(hidden_size=H, num_layers=layers)
        params = init_params(config, np.random.default_rng(seed))
        reference, _ = process_sequential(params, config, x)
        y, _, passes = process_chunks(params, config, x, np, start_state(config, 1), 24, 64)
        assert error_db(y, reference) < -120 and passes <= 3, (H, layers, passes)


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


def test_a_diverged_model_ends_its_passes(rng):
    """NaN states never equal anything by ==; the chunks must still stop (they once looped)."""
    config, params = _model(rng)
    params["lstm0.b"][0] = np.nan
    y, _, passes = process_chunks(params, config, _signal(rng, 5_000), np, start_state(config, 1), 8, 64)
    assert np.isnan(y).all() and passes <= 8


def test_chunks_shared_by_two_processes_give_the_same_result(rng):
    """split_run.SplitRun (process.py on the CPU) runs each call's columns in two processes."""
    from lstm_core.split_run import SplitRun

    config = ModelConfig(input_size=2, hidden_size=8, num_layers=2)
    params = init_params(config, rng)
    x = _signal(rng, 20_000)
    reference, (h, c) = process_sequential(params, config, x, controls=(0.3,))
    with SplitRun(params, config, 2) as runner:
        y, (h_end, c_end), _ = process_chunks(params, config, x, np, start_state(config, 1), 40, 64, (0.3,),
                                              runner=runner)
        assert len(runner._workers) == 1 and runner._workers[0][0].is_alive()
    assert error_db(y, reference) < -120 and np.abs(c_end - c).max() < 1e-5


def test_precision_runs_a_rounding_amplifier_in_float64_and_both_ways_then_agree():
    from lstm_core.precision import LIMIT_DB, offline_dtype

    rng = np.random.default_rng(5)
    config, params = rounding_amplifier(rng)
    x = _signal(rng)
    f32, _ = process_sequential(params, config, x)
    as_float64 = {name: value.astype(np.float64) for name, value in params.items()}
    f64, _ = process_sequential(as_float64, config, x)
    assert f64.dtype == np.float32                       # the output is float32 audio either way
    assert error_db(f32, f64) > -130       # float32 alone moves it this far (a plain model: -140 dB and below)
    dtype, effect = offline_dtype(params, config)
    assert dtype is np.float64 and effect > LIMIT_DB
    # In float64 the parallel chunks give the sequential output to its float32 rounding,
    # also over two calls with the state carried between them.
    assert error_db(process_parallel(as_float64, config, x, parts=16, overlap=256), f64) < -140
    first, state, _ = process_chunks(as_float64, config, x[:17_000], np, start_state(config, 1, np, None, np.float64),
                                     8, 256)
    second, state, _ = process_chunks(as_float64, config, x[17_000:], np, state, 8, 256)
    assert state[0].dtype == np.float64 and error_db(np.concatenate([first, second]), f64) < -140
    # A plain model stays in float32.
    plain_config, plain = _model(rng)
    dtype, effect = offline_dtype(plain, plain_config)
    assert dtype is np.float32 and effect < LIMIT_DB


def test_chunks_agree_to_the_rounding_of_their_own_float_type():
    """Two states 1e-10 apart are the same in float32 (its rounding is 1.2e-7) and
    different in float64 (2.2e-16): float64 chunks are corrected until they agree to
    float64's rounding, not float32's."""
    from lstm_core.chunks import same_state

    base = np.linspace(-2.0, 2.0, 24).reshape(1, 8, 3)
    for dtype, same in ((np.float32, True), (np.float64, False)):
        a = (base.astype(dtype), base.astype(dtype))
        b = ((base + 1e-10).astype(dtype), base.astype(dtype))
        assert same_state(a, b, np).tolist() == [same] * 3, dtype
        assert same_state(a, a, np).all()


def test_blocks_are_equal_and_never_shorter_than_asked_unless_the_stream_is():
    """inference.block_length: equal blocks that cover the stream, each at least the nominal
    length (a short stream: one block of all of it) and under twice it."""
    nominal = 1000
    for total in (1, 999, 1000, 1999, 2000, 2001, 2999, 12_345, 1_000_000):
        length = block_length(total, nominal)
        sizes = [min(length, total - start) for start in range(0, total, length)]
        assert sum(sizes) == total and len(sizes) == max(1, total // nominal), total
        assert max(sizes) - min(sizes) < len(sizes), total            # no short last block
        assert min(sizes) >= min(nominal, total) and max(sizes) < 2 * nominal, total
    assert block_length(0, nominal) >= 1
