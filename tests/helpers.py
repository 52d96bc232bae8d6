"""Small builders shared by the tests: seeded models, inputs and loss closures."""

import numpy as np

from lstm_core.backend import to_device
from lstm_core.losses import esr_loss, mse_loss
from lstm_core.model import ModelConfig, init_params


def make_model(rng, xp, hidden=4, layers=1, inputs=1, skip=True, dtype=np.float64, spread=0.5):
    """A model whose weights are pushed away from their small initial values, so every
    gradient has a healthy size compared with the loss (what finite differences need)."""
    config = ModelConfig(input_size=inputs, hidden_size=hidden, num_layers=layers, skip=skip)
    params = init_params(config, rng, np.float64)
    for name in params:
        params[name] = params[name] + spread * rng.standard_normal(params[name].shape)
    return config, {k: to_device(v, xp, dtype) for k, v in params.items()}


def make_window(rng, xp, config, T, B, dtype=np.float64):
    """x (T, I, B), target (T, B), and a non-zero initial state (h, c), each (L, H, B)."""
    x = rng.standard_normal((T, config.input_size, B))
    target = rng.standard_normal((T, B))
    shape = (config.num_layers, config.hidden_size, B)
    h0, c0 = 0.5 * rng.standard_normal(shape), 0.5 * rng.standard_normal(shape)
    return tuple(to_device(a, xp, dtype) for a in (x, target, h0, c0))


def loss_of(kind, warmup=0):
    """A loss function (y, target) -> (loss, dy) by name."""
    if kind == "mse":
        return lambda y, t: mse_loss(y, t, warmup)
    if kind == "esr":
        return lambda y, t: esr_loss(y, t, warmup, pre_emphasis_coef=None)
    if kind == "esr_pre":
        return lambda y, t: esr_loss(y, t, warmup, pre_emphasis_coef=0.95)
    if kind == "esr_pre_dc":
        return lambda y, t: esr_loss(y, t, warmup, pre_emphasis_coef=0.95, dc_weight=0.7)
    if kind == "esr_dc":
        return lambda y, t: esr_loss(y, t, warmup, pre_emphasis_coef=None, dc_weight=0.7)
    raise ValueError(kind)
