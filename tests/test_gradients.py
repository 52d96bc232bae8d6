"""The gradient-check suite: analytical gradients against central finite differences.

Every case checks every parameter, the initial state (h0, c0) and the input, in float64,
with a worst relative error below 1e-6 (lstm_core.gradcheck defines it, robust near zero).
"""

import numpy as np
import pytest

from lstm_core.backend import to_device
from lstm_core.gradcheck import check_gradients
from lstm_core.lstm import lstm_backward, lstm_forward
from lstm_core.model import model_backward, model_forward

from helpers import loss_of, make_model, make_window

TOLERANCE = 1e-6

# (name, T, layers, inputs, skip, loss, warmup)
CASES = [
    ("one_step", 1, 1, 1, True, "mse", 0),
    ("window_24", 24, 1, 1, True, "mse", 0),
    ("two_layers", 20, 2, 1, True, "esr", 0),
    ("input_size_3", 20, 1, 3, True, "mse", 0),
    ("no_skip", 20, 1, 1, False, "mse", 0),
    ("esr", 20, 1, 1, True, "esr", 0),
    ("esr_pre_emphasis", 20, 1, 1, True, "esr_pre", 0),
    ("esr_dc", 20, 1, 1, True, "esr_dc", 0),
    ("esr_pre_emphasis_dc", 20, 1, 1, True, "esr_pre_dc", 0),
    ("esr_pre_emphasis_dc_plain", 20, 1, 1, True, "esr_pre_dc_plain", 0),
    ("warmup_prefix", 24, 1, 1, True, "esr_pre_dc", 8),
    ("warmup_prefix_plain", 24, 1, 1, True, "esr_pre_dc_plain", 8),
    ("two_layers_inputs_warmup_no_skip", 22, 2, 2, False, "esr_pre_dc", 6),
]


def _model_check(xp, config, params, x, target, h0, c0, loss_fn):
    """Worst relative error per checked array, for the model's loss on one window."""
    def loss():
        y, _, _ = model_forward(params, config, x, (h0, c0))
        return loss_fn(y, target)[0]

    y, _, cache = model_forward(params, config, x, (h0, c0))
    _, dy = loss_fn(y, target)
    grads, dx, (dh0, dc0) = model_backward(dy, cache)
    arrays = dict(params, h0=h0, c0=c0, x=x)
    analytic = dict(grads, h0=dh0, c0=dc0, x=dx)
    return check_gradients(loss, arrays, analytic)


@pytest.mark.parametrize("name,T,layers,inputs,skip,loss,warmup", CASES, ids=[c[0] for c in CASES])
def test_model_gradients(xp, rng, name, T, layers, inputs, skip, loss, warmup):
    config, params = make_model(rng, xp, hidden=4, layers=layers, inputs=inputs, skip=skip)
    x, target, h0, c0 = make_window(rng, xp, config, T, B=3)
    errors = _model_check(xp, config, params, x, target, h0, c0, loss_of(loss, warmup))
    assert set(errors) >= set(params) | {"h0", "c0", "x"}
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOLERANCE, f"{name}: worst {worst} {errors[worst]:.2e} in {errors}"


def test_window_starting_from_previous_window(xp, rng):
    """Window 2 starts from window 1's final state; its gradient, including the one for
    that state, checks against finite differences with the state held constant."""
    config, params = make_model(rng, xp, hidden=5, layers=2)
    x1, _, h0, c0 = make_window(rng, xp, config, 16, B=2)
    x2, target2, _, _ = make_window(rng, xp, config, 20, B=2)
    _, (h1, c1), _ = model_forward(params, config, x1, (h0, c0))
    errors = _model_check(xp, config, params, x2, target2, h1, c1, loss_of("esr_pre_dc"))
    assert max(errors.values()) < TOLERANCE, errors


@pytest.mark.parametrize("T", [1, 21])
def test_layer_gradients_with_gradient_from_a_later_window(xp, rng, T):
    """The layer alone, under a random-weighted-sum loss that also reads the final state:
    checks the incoming (dh_T, dc_T) path of the truncated BPTT API."""
    H, I, B = 5, 2, 3
    to = lambda a: to_device(a, xp)  # noqa: E731
    params = {"W_x": to(rng.standard_normal((4 * H, I))), "W_h": to(0.7 * rng.standard_normal((4 * H, H))),
              "b": to(rng.standard_normal(4 * H))}
    x, h0, c0 = to(rng.standard_normal((T, I, B))), to(rng.standard_normal((H, B))), to(rng.standard_normal((H, B)))
    w_h, w_hT, w_cT = to(rng.standard_normal((T, H, B))), to(rng.standard_normal((H, B))), to(rng.standard_normal((H, B)))

    def loss():
        h, (h_T, c_T), _ = lstm_forward(x, params, h0, c0)
        return (w_h * h).sum() + (w_hT * h_T).sum() + (w_cT * c_T).sum()

    _, _, cache = lstm_forward(x, params, h0, c0)
    grads, dx, (dh0, dc0) = lstm_backward(w_h, cache, w_hT, w_cT)
    errors = check_gradients(loss, dict(params, x=x, h0=h0, c0=c0), dict(grads, x=dx, h0=dh0, c0=dc0))
    assert max(errors.values()) < TOLERANCE, errors


def test_losses_stay_bounded_on_digital_silence(xp):
    """A slice of silent target must not divide by almost nothing (see SILENCE_POWER)."""
    from lstm_core.losses import esr_loss

    target = xp.zeros((256, 3))
    y = xp.full((256, 3), 1e-4)                       # a model output just above silence
    loss, dy = esr_loss(y, target, pre_emphasis_coef=0.95, dc_weight=1.0)
    assert float(loss) < 1.0 and float(abs(dy).max()) < 10.0   # with a 1e-10 floor: ~3e2 and ~3e3
