"""Data-parallel training equals serial training: the batch's shares add up exactly."""

import functools
import os

import numpy as np
import pytest

from lstm_core.adam import AdamState
from lstm_core.parallel import ParallelTrainer
from lstm_core.training import TrainConfig, train_window

from helpers import make_model, make_window


@pytest.mark.parametrize("loss, input_gain, prewarm",      # input gain 30: --input-level 0
                         [("esr", 1.0, 8), ("mse", 1.0, 8), ("esr", 30.0, 8), ("esr", 1.0, 0)])
def test_two_processes_equal_one(rng, loss, input_gain, prewarm):
    config, params = make_model(rng, np, hidden=5, layers=2, spread=0.3)
    x, target, _, _ = make_window(rng, np, config, T=26, B=7)     # 7 columns: 3 here, 4 in the worker
    train = TrainConfig(lr=1e-2, warmup=6, tbptt=10, loss=loss, dc_weight=0.5, input_gain=input_gain, prewarm=prewarm)

    serial_params = {k: v.copy() for k, v in params.items()}
    serial_adam = AdamState()
    serial_losses = [float(train_window(serial_params, config, serial_adam, x, target, train)) for _ in range(2)]

    parallel_params = {k: v.copy() for k, v in params.items()}
    parallel_adam = AdamState()
    with ParallelTrainer(config, processes=2, max_steps=26, max_batch=8, dtype=np.float64) as trainer:
        parallel_losses = [float(trainer.train_window(parallel_params, parallel_adam, x, target, train))
                           for _ in range(2)]

    assert parallel_adam.step == serial_adam.step == 4                  # two slices a window
    assert np.allclose(parallel_losses, serial_losses, rtol=1e-12, atol=0)
    for name in params:
        assert not np.allclose(serial_params[name], params[name])       # training moved them
        assert np.allclose(parallel_params[name], serial_params[name], rtol=1e-10, atol=1e-13), name


def test_window_larger_than_the_trainer_is_refused(rng):
    config, params = make_model(rng, np, hidden=3)
    with ParallelTrainer(config, processes=2, max_steps=10, max_batch=4, dtype=np.float64) as trainer:
        x, target, _, _ = make_window(rng, np, config, T=12, B=4)
        with pytest.raises(ValueError, match="exceeds"):
            trainer.train_window(params, AdamState(), x, target, TrainConfig(warmup=0, tbptt=4))


def test_map_runs_the_items_side_by_side_and_keeps_their_order(rng):
    """ParallelTrainer.map: [f(item) ...] in order, the first item here and the second
    in the worker (a third, beyond the workers, here again)."""
    config, _ = make_model(rng, np, hidden=3)
    items = [rng.standard_normal(4) for _ in range(3)]
    with ParallelTrainer(config, processes=2, max_steps=4, max_batch=2) as trainer:
        results = trainer.map(functools.partial(np.multiply, 3.0), items)
        pids = trainer.map(process_id, [0, 1, 2])
        worker = trainer.worker_pids[0]
    for item, result in zip(items, results, strict=True):
        assert np.array_equal(result, 3.0 * item)
    assert pids == [os.getpid(), worker, os.getpid()]


def process_id(_) -> int:
    """A module-level function a worker can be sent: the process it ran in."""
    return os.getpid()


def refuse_negative(value):
    if value < 0:
        raise ValueError(f"{value} is negative")
    return value


def test_a_failed_map_leaves_the_trainer_as_it_was(rng):
    """A map item failing here or in the worker raises, and the next window still trains
    as the serial train_window does (no reply is left in the pipe to be taken for a loss)."""
    from lstm_core.parallel import WorkerError

    config, params = make_model(rng, np, hidden=4)
    x, target, _, _ = make_window(rng, np, config, T=20, B=6)
    train = TrainConfig(lr=1e-2, warmup=4, tbptt=8)
    serial_params, serial_adam = {k: v.copy() for k, v in params.items()}, AdamState()
    serial_loss = float(train_window(serial_params, config, serial_adam, x, target, train))
    with ParallelTrainer(config, processes=2, max_steps=20, max_batch=6, dtype=np.float64) as trainer:
        with pytest.raises(ValueError, match="-1 is negative"):
            trainer.map(refuse_negative, [-1, 2])
        with pytest.raises(WorkerError, match="-2 is negative"):
            trainer.map(refuse_negative, [1, -2])
        assert trainer.map(refuse_negative, [3, 4]) == [3, 4]
        adam = AdamState()
        loss = float(trainer.train_window(params, adam, x, target, train))
    assert loss == pytest.approx(serial_loss, rel=1e-12)
    for name in params:
        assert np.allclose(params[name], serial_params[name], rtol=1e-10, atol=1e-13), name


def square_float32(value):
    """A module-level function a worker can be sent: value squared in float32 (past
    about 1.8e19 it overflows to inf, and NumPy reports the overflow)."""
    return np.multiply(np.full(2, value, np.float32), np.float32(value))


def test_workers_treat_floating_point_errors_as_the_caller_does(rng, capfd):
    """run.py rolls back a diverging epoch under np.errstate(over="ignore", ...); the
    workers follow the caller's settings, so their share of such an epoch stays quiet on
    the user's screen, and warns where the caller asks for warnings."""
    config, params = make_model(rng, np, hidden=4, dtype=np.float32)
    params["lstm0.W_x"][:] = 1e38                     # every pre-activation overflows float32
    x, target, _, _ = make_window(rng, np, config, T=12, B=4)
    x, target = (10.0 * x).astype(np.float32), target.astype(np.float32)
    train = TrainConfig(lr=1e-2, warmup=2, tbptt=5, prewarm=0)
    with ParallelTrainer(config, processes=2, max_steps=12, max_batch=4) as trainer:
        with np.errstate(over="ignore", invalid="ignore"):
            trainer.train_window(params, AdamState(), x, target, train)
            quiet = trainer.map(square_float32, [1.0, 1e30])
        quiet_stderr = capfd.readouterr().err
        with np.errstate(over="warn"):
            loud = trainer.map(square_float32, [1.0, 1e30])       # the overflow is the worker's
        loud_stderr = capfd.readouterr().err
    assert np.isinf(quiet[1]).all() and np.isinf(loud[1]).all()
    assert "RuntimeWarning" not in quiet_stderr, quiet_stderr
    assert "overflow" in loud_stderr
