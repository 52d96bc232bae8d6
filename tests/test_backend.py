"""Backend choice: one place decides, clear errors, models move between devices intact."""

import numpy as np
import pytest

from lstm_core.backend import BackendError, get_xp, gpu_unavailable_reason, to_device, to_numpy
from lstm_core.model import ModelConfig, init_params, model_forward, zero_state

from helpers import largest_difference


def test_cpu_is_numpy():
    assert get_xp("cpu") is np


def test_unknown_device_is_an_error():
    with pytest.raises(BackendError, match="unknown device 'tpu'"):
        get_xp("tpu")


@pytest.mark.skipif(not gpu_unavailable_reason(), reason="a GPU is usable here")
def test_gpu_without_gpu_is_an_error_not_a_cpu_run():
    with pytest.raises(BackendError, match="--device gpu"):
        get_xp("gpu")
    assert get_xp("auto") is np


def test_model_moves_between_backends_without_loss(xp, rng):
    """Parameters moved to the backend and back are bit-identical, and the outputs of the
    two backends agree to float32 rounding."""
    config = ModelConfig(hidden_size=8, num_layers=2)
    params = init_params(config, rng)
    moved = {k: to_device(v, xp) for k, v in params.items()}
    back = {k: to_numpy(v) for k, v in moved.items()}
    for k in params:
        assert back[k].dtype == np.float32 and np.array_equal(back[k], params[k])

    x = rng.standard_normal((300, 1, 4)).astype(np.float32)
    y_cpu, _, _ = model_forward(params, config, x, zero_state(config, 4))
    y_dev, _, _ = model_forward(moved, config, to_device(x, xp), zero_state(config, 4, xp))
    y_dev = to_numpy(y_dev)
    assert largest_difference(y_dev, y_cpu) <= 1e-4
