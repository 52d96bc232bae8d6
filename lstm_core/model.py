"""The audio model: stacked LSTM layers, a linear output layer and the input skip.

    x (T, I, B) -> LSTM layer 0 -> ... -> LSTM layer L-1 -> h (T, H, B) -> y (T, B)

Parameters are one flat dict of arrays, named ``lstm{l}.W_x``, ``lstm{l}.W_h``,
``lstm{l}.b`` and ``out.W``, ``out.b``, so checkpoints, export, the optimizer and the
gradient checker treat every parameter alike. The recurrent state is a pair of arrays
``(h, c)``, each (L, H, B).

Initialisation (why these numbers):
  * W_x, W_h uniform in +-1/sqrt(H), as PyTorch and Keras do: pre-activations start of
    order one, so no gate starts saturated.
  * forget-gate bias +1 (Gers et al. 2000; Jozefowicz et al. 2015): the cell starts by
    keeping most of its memory, so gradients survive over the long windows audio needs.
  * or, with ``chrono`` = T > 0 (TrainConfig.chrono, train.py --chrono; train.py races
    it against the +1 bias by default, lstm_core/race.py),
    the "chrono" initialisation of C. Tallec and Y. Ollivier, "Can recurrent neural
    networks warp time?", ICLR 2018: each cell's forget bias is log(u), u drawn uniformly
    from [1, T - 1], and its input bias -log(u). A cell then starts as a leaky average of
    its candidate (input gate = 1 - forget gate, so its state stays within the
    candidate's range) with a time constant of about u samples: the untrained layer holds
    memories from 1 to T samples long, where the +1 bias gives every cell the same few
    samples and a state that sums its candidate up to 1.9 times. It taught effects with
    an envelope (an amp's sag, a compressor) faster and effects with little memory far
    slower (RESULTS.md "Chrono initialisation"), so a run tries both (race.py).
  * the output weights start small (0.1/sqrt(H)): with the skip on, the untrained model
    is almost exactly a wire (y = x), the natural starting point for an audio effect.
  * an input gain g (TrainConfig.input_gain, train.py --input-level) leaves the start as
    it is; input_step_scale makes Adam's steps on the audio column of the first layer's
    W_x g times longer (see there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, asdict

import numpy as np

from .backend import array_module
from .cuda_kernels import DEFAULT_LOOP
from .lstm import PARAM_NAMES as LSTM_PARAM_NAMES
from .lstm import lstm_backward, lstm_forward
from .output import output_backward, output_forward


@dataclass(frozen=True)
class ModelConfig:
    input_size: int = 1       # I: the audio sample, plus any conditioning inputs
    hidden_size: int = 32     # H: 32 is the literature's sweet spot for amps and pedals
    num_layers: int = 1       # L
    skip: bool = True         # add the input sample to the output

    def __post_init__(self):
        for name in ("input_size", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
        if not isinstance(self.skip, (bool, np.bool_)):
            raise ValueError(f"skip must be true or false, got {self.skip!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return cls(**{k: data[k] for k in ("input_size", "hidden_size", "num_layers", "skip")})


def param_shapes(config: ModelConfig) -> dict:
    """Name -> shape of every parameter, in a fixed order."""
    H, G = config.hidden_size, 4 * config.hidden_size
    shapes = {}
    for layer in range(config.num_layers):
        inputs = config.input_size if layer == 0 else H
        shapes[f"lstm{layer}.W_x"] = (G, inputs)
        shapes[f"lstm{layer}.W_h"] = (G, H)
        shapes[f"lstm{layer}.b"] = (G,)
    shapes["out.W"] = (1, H)
    shapes["out.b"] = (1,)
    return shapes


INPUT_WEIGHTS = "lstm0.W_x"    # (G, I): the first layer's input weights; column 0 weighs the audio


def valid_chrono(chrono: float) -> bool:
    """Whether ``chrono`` is a T init_params takes: 0 (off), or a finite T of at least 3
    samples (u is drawn from [1, T - 1]). TrainConfig, train.py and a sweep's grid ask here."""
    return chrono == 0.0 or 3.0 <= chrono < math.inf


def init_params(config: ModelConfig, rng: np.random.Generator, dtype=np.float32, chrono: float = 0.0) -> dict:
    """Fresh parameters on the host (move them with backend.to_device). See module doc.

    chrono: T of the chrono initialisation (at least 3 samples), or 0 for the forget-gate
        bias +1. Its draws come after all the others, so every weight is the same either way."""
    if not valid_chrono(chrono):
        raise ValueError(f"chrono must be 0 or at least 3 samples, got {chrono!r}")
    H = config.hidden_size
    bound = 1.0 / np.sqrt(H)
    params = {}
    for name, shape in param_shapes(config).items():
        if name.endswith(".b"):
            value = np.zeros(shape)
        else:
            value = rng.uniform(-bound, bound, size=shape)
        params[name] = value
    for layer in range(config.num_layers):
        params[f"lstm{layer}.b"][2 * H : 3 * H] = 1.0      # forget gate (rows o, i, f, g)
    params["out.W"] *= 0.1
    for layer in range(config.num_layers if chrono else 0):
        forget = np.log(rng.uniform(1.0, chrono - 1.0, size=H))
        params[f"lstm{layer}.b"][2 * H : 3 * H] = forget
        params[f"lstm{layer}.b"][H : 2 * H] = -forget         # input gate: c starts as a leaky average of g
    return {name: value.astype(dtype) for name, value in params.items()}


def input_step_scale(params: dict, input_gain: float) -> dict | None:
    """Adam's step factor for an input gain g (TrainConfig.input_gain): {INPUT_WEIGHTS:
    (1, I) array, g for the audio column and 1 for any knob's, on the parameters' device};
    None when g is 1 (nothing to scale).

    Why: a quiet recording (guitar DI at -29 dBFS RMS, say) barely moves the gates, and an
    effect with a lot of gain needs input weights hundreds of Adam steps away. Adam's step
    does not depend on a gradient's scale, so steps g times longer on W_x's audio column
    follow the same path as feeding the LSTM the input made g times louder from a start
    whose audio column is g times smaller, the same starting model (the skip still adds
    the input as it is; equal up to Adam's epsilon and without gradient clipping,
    tests/test_run.py). The model starts as a fresh one would, near its linear region,
    which a clean filter needs (a start g times larger as well, as --normalize-input gave
    before 2026-12-01's new defaults, learned the low-pass about 2 times worse: RESULTS.md
    "New defaults"), and the model, its skip and its files stay as they are."""
    if input_gain == 1.0:
        return None
    W_x = params[INPUT_WEIGHTS]
    xp = array_module(W_x)
    scale = xp.ones((1, W_x.shape[1]), dtype=W_x.dtype)
    scale[0, 0] = input_gain
    return {INPUT_WEIGHTS: scale}


def layer_params(params: dict, layer: int) -> dict:
    return {name: params[f"lstm{layer}.{name}"] for name in LSTM_PARAM_NAMES}


def zero_state(config: ModelConfig, batch: int, xp=np, dtype=np.float32):
    """(h, c), each (L, H, B), all zero."""
    shape = (config.num_layers, config.hidden_size, batch)
    return xp.zeros(shape, dtype=dtype), xp.zeros(shape, dtype=dtype)


def model_forward(params: dict, config: ModelConfig, x, state, workspace=None, gpu_loop: str = DEFAULT_LOOP):
    """Run the model over one window.

    Args:
        params: the parameter dict.
        config: the model's sizes and skip.
        x: (T, I, B) input.
        state: (h, c), each (L, H, B): the state the window starts from.
        workspace: buffers to reuse (see workspace.py), or None.
        gpu_loop: how a GPU runs the recurrence ("step" or "window", cuda_kernels).

    Returns:
        y: (T, B) output.
        state_T: (h, c), each (L, H, B): the final state, new arrays, for the next window.
        cache: what model_backward needs.
    """
    xp = array_module(x)
    h0, c0 = state
    layer_input = x
    caches, h_final, c_final = [], [], []
    for layer in range(config.num_layers):
        scope = None if workspace is None else workspace.scope(f"lstm{layer}")
        layer_input, (h_T, c_T), cache = lstm_forward(layer_input, layer_params(params, layer), h0[layer], c0[layer],
                                                      workspace=scope, gpu_loop=gpu_loop)
        caches.append(cache)
        h_final.append(h_T)
        c_final.append(c_T)
    y, out_cache = output_forward(layer_input, {"W": params["out.W"], "b": params["out.b"]}, x, config.skip)
    return y, (xp.stack(h_final), xp.stack(c_final)), (config, caches, out_cache, workspace)


def model_backward(dy, cache, dstate_T=None):
    """Backpropagate dy (T, B) through the window of ``cache``.

    Args:
        dy: (T, B) gradient of the loss with respect to y.
        cache: from model_forward.
        dstate_T: (dh, dc), each (L, H, B), gradient reaching the final state from a
            later window, or None (truncation: the usual case).

    Returns:
        grads: dict, same names and shapes as params.
        dx: (T, I, B) gradient with respect to the input.
        dstate0: (dh0, dc0), each (L, H, B), gradient with respect to the initial state.
    """
    xp = array_module(dy)
    config, caches, out_cache, workspace = cache
    out_grads, dh = output_backward(dy, out_cache, workspace)
    grads = {"out.W": out_grads["W"], "out.b": out_grads["b"]}
    dh0, dc0 = [None] * config.num_layers, [None] * config.num_layers
    for layer in range(config.num_layers - 1, -1, -1):
        dh_T = dc_T = None
        if dstate_T is not None:
            dh_T, dc_T = dstate_T[0][layer], dstate_T[1][layer]
        layer_grads, dh, (dh0[layer], dc0[layer]) = lstm_backward(dh, caches[layer], dh_T, dc_T)
        for name, value in layer_grads.items():
            grads[f"lstm{layer}.{name}"] = value
    dx = dh                     # the first layer's input gradient
    if config.skip:
        dx = dx.copy()
        dx[:, 0, :] += dy
    return grads, dx, (xp.stack(dh0), xp.stack(dc0))
