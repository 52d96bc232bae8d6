"""The start of a fresh model (model.init_params), the chrono initialisation above all: what
it promises a reader, checked on the biases and on the untrained layer itself."""

import numpy as np
import pytest

from lstm_core.lstm import lstm_forward
from lstm_core.model import ModelConfig, init_params, layer_params
from lstm_core.training import TrainConfig

H = 64


def gate_biases(params, layer=0):
    b = params[f"lstm{layer}.b"]
    return b[H : 2 * H], b[2 * H : 3 * H]                       # input, forget (rows o, i, f, g)


def test_without_chrono_the_forget_bias_is_one_and_the_input_bias_zero():
    i, f = gate_biases(init_params(ModelConfig(hidden_size=H), np.random.default_rng(0)))
    assert np.all(f == 1.0) and np.all(i == 0.0)


@pytest.mark.parametrize("layers", [1, 2])
def test_chrono_draws_forget_biases_over_log_1_to_log_T_minus_1_and_input_biases_opposite(layers):
    T = 200.0
    config = ModelConfig(hidden_size=H, num_layers=layers)
    plain = init_params(config, np.random.default_rng(5))
    params = init_params(config, np.random.default_rng(5), chrono=T)
    for layer in range(layers):
        i, f = gate_biases(params, layer)
        assert np.all(f >= 0.0) and np.all(f <= np.log(T - 1.0) + 1e-6)
        assert f.max() - f.min() > 0.5 * np.log(T - 1.0)        # spread, not one value
        assert np.array_equal(i, -f)
    for name in plain:                                          # every weight drawn as without chrono
        if not name.endswith(".b"):
            assert np.array_equal(plain[name], params[name])


def test_an_untrained_chrono_cell_is_a_leaky_average_with_time_constants_up_to_T():
    """Zero weights but the biases: each cell's c_t = f c_{t-1} + (1 - f) g, a leaky average of
    its candidate (i + f = 1, so c never grows past |g|), f = u / (1 + u): its step response
    1 - f^n reaches 1 - 1/e after 1 / ln(1 + 1/u), about u + 1/2, samples. The cells' times
    spread over 1 to T (the forget bias +1 alone gives every cell about 3 samples)."""
    T, steps = 400.0, 2000
    config = ModelConfig(hidden_size=H)
    params = init_params(config, np.random.default_rng(1), chrono=T)
    layer = {name: value.astype(np.float64) for name, value in layer_params(params, 0).items()}
    layer["W_x"][:] = 0.0
    layer["W_h"][:] = 0.0
    layer["b"][3 * H :] = 10.0                                  # g = tanh(10): a step of about 1 at t = 0
    x = np.zeros((steps, 1, 1))
    zero = np.zeros((H, 1))
    _, _, cache = lstm_forward(x, layer, zero, zero)
    c = cache[2][1:, 4 * H :, 0]                                # (steps, H): c_t of every cell
    assert np.all(c <= np.tanh(10.0) + 1e-12)
    rise = (c >= (1.0 - np.exp(-1.0)) * np.tanh(10.0)).argmax(axis=0) + 1      # steps to 1 - 1/e
    u = np.exp(gate_biases(params)[1].astype(np.float64))
    assert np.array_equal(rise, np.ceil(1.0 / np.log1p(1.0 / u)))
    assert rise.max() > T / 2 and rise.min() < T / 10            # spread over the range, u uniform in [1, T - 1]


@pytest.mark.parametrize("chrono", [-1.0, 1.0, 2.9, np.inf, np.nan])
def test_a_chrono_below_3_samples_or_not_finite_is_refused(chrono):
    with pytest.raises(ValueError, match="chrono must be 0"):
        TrainConfig(chrono=chrono)
    with pytest.raises(ValueError, match="chrono must be 0"):
        init_params(ModelConfig(hidden_size=4), np.random.default_rng(0), chrono=chrono)
