"""Everything the tests share, in one module:

    how far apart two results are       relative_error, error_db, largest_difference, close
    seeded models, windows and losses   spread_params, make_model, rounding_amplifier, make_window, loss_of
    the reference LSTM                  reference_forward, reference_backward (float64, by hand)
    plugin files built by hand          random_torch_layers, hand_nam, hand_aidax, make_signal, write_json
    the command lines                   ROOT, run, assert_one_line_error, train, model_esr, history, write_pair
"""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from lstm_core.backend import to_device, to_numpy
from lstm_core.losses import esr_loss, mse_loss
from lstm_core.model import ModelConfig, init_params

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- how far apart

def relative_error(y, reference) -> float:
    """||y - reference|| / ||reference|| (2-norms, float64 on the host): for whole signals or
    arrays computed two ways, where float32 rounding makes them differ a little everywhere."""
    y, reference = to_numpy(y).astype(np.float64), to_numpy(reference).astype(np.float64)
    return float(np.linalg.norm(y - reference) / max(np.linalg.norm(reference), 1e-30))


def error_db(y, reference) -> float:
    """relative_error in decibels, 20 log10: the error-to-signal ratio of audio, in dB
    (-600 dB for outputs that are equal to the bit, not a log of 0)."""
    return 20 * np.log10(max(relative_error(y, reference), 1e-30))


def largest_difference(a, b, floor=0.0) -> float:
    """max |a - b| / max(max |b|, floor): the largest entry-wise difference, relative to b's
    largest entry. With floor=1 it is absolute where b is smaller than 1, for values that
    only rounding should tell apart, whatever their size."""
    a, b = to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), floor, np.finfo(np.float64).tiny))


def close(a, b, tol=1e-10) -> bool:
    """a equals b to rounding: largest_difference(a, b, floor=1) <= tol."""
    return largest_difference(a, b, floor=1.0) <= tol


# ----------------------------------------------------------------------------- models, windows, losses

def spread_params(config, rng, spread=0.5, dtype=np.float64, xp=np) -> dict:
    """Fresh parameters pushed away from their small initial values, so every gradient has a
    healthy size compared with the loss (what finite differences need), and a model is not
    almost a wire (what comparisons need)."""
    params = init_params(config, rng, np.float64)
    return {name: to_device(value + spread * rng.standard_normal(value.shape), xp, dtype)
            for name, value in params.items()}


def make_model(rng, xp, hidden=4, layers=1, inputs=1, skip=True, dtype=np.float64, spread=0.5):
    """(config, spread_params) for the sizes given."""
    config = ModelConfig(input_size=inputs, hidden_size=hidden, num_layers=layers, skip=skip)
    return config, spread_params(config, rng, spread, dtype, xp)


def rounding_amplifier(rng, H=32, gain=2.5):
    """(config, float32 parameters): a model whose recurrence amplifies float32 rounding
    about a hundredfold, as trained amp-like models and community captures do
    (lstm_core/precision.py): recurrent weights of gain 2.5, near the edge of chaos.
    With seed 5 it is not chaotic; with seed 2 it is."""
    config = ModelConfig(hidden_size=H)
    params = init_params(config, rng)
    params["lstm0.W_h"][:] = gain * rng.standard_normal((4 * H, H)) / np.sqrt(H)
    params["lstm0.W_x"][:] = rng.standard_normal((4 * H, 1))
    params["out.W"][:] = 1.0 / H
    return config, params


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
    if kind == "esr_pre_dc_plain":
        return lambda y, t: esr_loss(y, t, warmup, pre_emphasis_coef=0.95, dc_weight=0.7, plain_weight=0.3)
    raise ValueError(kind)


# ----------------------------------------------------------------------------- the reference LSTM
#
# A stacked LSTM written to be read, in float64, one layer and one step at a time (as in
# min-char-rnn and CS231n's rnn_layers), forward and backward. It shares no code with
# lstm_core: the optimised model is compared with it (test_reference.py), and so are plugin
# files built by hand (test_model_formats.py). It reads gate rows in the order it is told:
# "ifgo" is PyTorch's and the plugin formats', "oifg" is ours (lstm_core/lstm.py).
#
#     a = W_x x_t + W_h h_{t-1} + b;   i, f, o = sigmoid(a_i, a_f, a_o);   g = tanh(a_g)
#     c_t = f c_{t-1} + i g;   h_t = o tanh(c_t);   y_t = head_W h_t + head_b (+ x_t[0] with the skip)

def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def step_forward(x, h_prev, c_prev, layer, order):
    """One step of one layer. x (I, B); h_prev, c_prev (H, B); layer: W_x (G, I), W_h (G, H),
    b (G,), gate rows in ``order``. Returns h, c (H, B) and the step's cache."""
    a = layer["W_x"] @ x + layer["W_h"] @ h_prev + layer["b"][:, None]          # (G, B)
    gate = dict(zip(order, np.split(a, 4)))
    i, f, o, g = sigmoid(gate["i"]), sigmoid(gate["f"]), sigmoid(gate["o"]), np.tanh(gate["g"])
    c = f * c_prev + i * g
    h = o * np.tanh(c)
    return h, c, (x, h_prev, c_prev, i, f, o, g, c)


def step_backward(dh, dc, cache, layer, order):
    """The step backward: dh, dc (H, B) reach its h and c. Returns dx (I, B), dh_prev,
    dc_prev (H, B) and this step's share of the gradients {W_x, W_h, b}."""
    x, h_prev, c_prev, i, f, o, g, c = cache
    tanh_c = np.tanh(c)
    do = dh * tanh_c
    dc = dc + dh * o * (1 - tanh_c ** 2)
    di, df, dg, dc_prev = dc * g, dc * c_prev, dc * i, dc * f
    da = {"i": di * i * (1 - i), "f": df * f * (1 - f), "o": do * o * (1 - o), "g": dg * (1 - g ** 2)}
    da = np.concatenate([da[name] for name in order])                           # (G, B)
    grads = {"W_x": da @ x.T, "W_h": da @ h_prev.T, "b": da.sum(axis=1)}
    return layer["W_x"].T @ da, layer["W_h"].T @ da, dc_prev, grads


def reference_forward(x, layers, head_W, head_b, skip=False, h0=None, c0=None, order="ifgo"):
    """The whole sequence, step by step.

    Args:
        x: (T, I, B); or (T, I), one sequence.
        layers: a dict a layer: W_x (G, I_l), W_h (G, H), b (G,), gate rows in ``order``.
        head_W: (H,) or (1, H); head_b: (1,).
        skip: add x_t[0] to y_t.
        h0, c0: (L, H, B), or (L, H) with one sequence; None for zeros.
        order: the gate rows' order, a permutation of "ifgo".

    Returns:
        y: (T, B), or (T,) for one sequence.
        (h_T, c_T): the final state, each (L, H, B), or (L, H) for one sequence.
        cache: what reference_backward needs.
    """
    assert sorted(order) == sorted("ifgo"), order
    one = np.ndim(x) == 2
    x = np.atleast_3d(np.asarray(x, np.float64))                                 # (T, I, B)
    layers = [{name: np.asarray(w, np.float64) for name, w in layer.items()} for layer in layers]
    w_out, b_out = np.asarray(head_W, np.float64).reshape(-1), float(np.ravel(head_b)[0])
    T, _, B = x.shape
    zeros = np.zeros((len(layers), w_out.size, B))
    h = list(zeros if h0 is None else np.atleast_3d(np.asarray(h0, np.float64)))
    c = list(zeros if c0 is None else np.atleast_3d(np.asarray(c0, np.float64)))
    y, tops, steps = np.empty((T, B)), [], []                                    # steps[t][l]: one step's cache
    for t in range(T):
        inp, caches = x[t], []
        for l, layer in enumerate(layers):
            h[l], c[l], cache = step_forward(inp, h[l], c[l], layer, order)
            caches.append(cache)
            inp = h[l]
        steps.append(caches)
        tops.append(inp)
        y[t] = w_out @ inp + b_out + (x[t, 0] if skip else 0.0)
    h_T, c_T = np.stack(h), np.stack(c)
    if one:
        y, h_T, c_T = y[:, 0], h_T[..., 0], c_T[..., 0]
    return y, (h_T, c_T), (x, layers, w_out, np.shape(head_W), skip, order, steps, tops)


def reference_backward(dy, cache, dh_T=None, dc_T=None):
    """BPTT by hand, from the last step to the first, every layer each step.

    Args:
        dy: (T, B) gradient reaching y.
        cache: from reference_forward.
        dh_T, dc_T: (L, H, B) gradient reaching the final state (from a later window), or None.

    Returns:
        (dlayers, dhead_W, dhead_b): shaped as forward's layers, head_W and head_b.
        dx: (T, I, B).
        (dh0, dc0): each (L, H, B).
    """
    x, layers, w_out, head_shape, skip, order, steps, tops = cache
    dy = np.asarray(dy, np.float64)
    zeros = np.zeros((len(layers), w_out.size, x.shape[2]))
    dh = list(zeros if dh_T is None else np.array(dh_T, np.float64))
    dc = list(zeros if dc_T is None else np.array(dc_T, np.float64))
    dlayers = [{name: np.zeros_like(w) for name, w in layer.items()} for layer in layers]
    dw_out, db_out, dx = np.zeros_like(w_out), 0.0, np.zeros_like(x)
    for t in reversed(range(len(steps))):
        dw_out += tops[t] @ dy[t]
        db_out += dy[t].sum()
        dinp = np.outer(w_out, dy[t])                                           # reaching the top layer's h_t
        for l in reversed(range(len(layers))):
            dinp, dh[l], dc[l], grads = step_backward(dh[l] + dinp, dc[l], steps[t][l], layers[l], order)
            for name, value in grads.items():
                dlayers[l][name] += value
        dx[t] = dinp
        if skip:
            dx[t, 0] += dy[t]
    return (dlayers, dw_out.reshape(head_shape), np.array([db_out])), dx, (np.stack(dh), np.stack(dc))


# ----------------------------------------------------------------------------- plugin files by hand
#
# Built from the published layouts, not through our exporter, and in PyTorch's gate order,
# so the tests that read them stay independent of our permutation code.

def random_torch_layers(rng, inputs, hidden, count, scale=0.6):
    """(layers, head_W (H,), head_b (1,)) for reference_forward, in PyTorch's layout and gate
    order (W_x is its weight_ih, W_h its weight_hh, b its two biases summed), with
    float32-exact weights large enough to matter."""
    layers = []
    for l in range(count):
        size = inputs if l == 0 else hidden
        layers.append({name: (scale * rng.standard_normal(shape)).astype(np.float32).astype(np.float64)
                       for name, shape in (("W_x", (4 * hidden, size)), ("W_h", (4 * hidden, hidden)),
                                           ("b", (4 * hidden,)))})
    head_W = (0.5 * rng.standard_normal(hidden)).astype(np.float32).astype(np.float64)
    head_b = np.array([0.05])
    return layers, head_W, head_b


def make_signal(n=600, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (0.6 * np.sin(2 * np.pi * t / 37) * np.exp(-t / 400) + 0.1 * rng.standard_normal(n)).astype(np.float32)


def hand_nam(layers, head_W, head_b, h0, c0, inputs=1, **overrides):
    """A .nam object laid out as the format describes, without our exporter."""
    weights = []
    for l, layer in enumerate(layers):
        for row in range(layer["W_x"].shape[0]):                               # [W_ih | W_hh] row-major
            weights += list(layer["W_x"][row]) + list(layer["W_h"][row])
        weights += list(layer["b"]) + list(h0[l]) + list(c0[l])
    weights += list(head_W) + list(head_b)
    document = {"version": "0.5.4", "architecture": "LSTM",
                "config": {"input_size": inputs, "hidden_size": layers[0]["W_h"].shape[1],
                           "num_layers": len(layers)},
                "weights": [float(w) for w in weights], "sample_rate": 48000,
                "metadata": {"name": "by hand", "training": {"validation_esr": 0.02}}}
    document.update(overrides)
    return document


def hand_aidax(layers, head_W, head_b, inputs=1, skip=1, vectors=None):
    """An AIDA-X object laid out as the format describes, without our exporter."""
    H = layers[0]["W_h"].shape[1]
    entries = [{"type": "lstm", "activation": "", "shape": [None, None, H],
                "weights": [layer["W_x"].T.tolist(), layer["W_h"].T.tolist(), layer["b"].tolist()]}
               for layer in layers]
    entries.append({"type": "dense", "activation": "", "shape": [None, None, 1],
                    "weights": [head_W.reshape(H, 1).tolist(), head_b.tolist()]})
    document = {"in_shape": [None, None, inputs], "in_skip": skip, "layers": entries,
                "metadata": {"name": "by hand", "samplerate": 44100}}
    if vectors is not None:
        document["input_batch"], document["output_batch"] = vectors
    return document


def hand_core_audio_ml(layers, head_W, head_b, inputs=1, skip=1, unit="LSTM"):
    """A CoreAudioML (AIDA-X's trainer's PyTorch) object laid out as SimpleRNN saves it,
    without our reader: the summed bias split unevenly between PyTorch's two biases."""
    H = layers[0]["W_h"].shape[1]
    state = {}
    for l, layer in enumerate(layers):
        state[f"rec.weight_ih_l{l}"] = layer["W_x"].tolist()
        state[f"rec.weight_hh_l{l}"] = layer["W_h"].tolist()
        state[f"rec.bias_ih_l{l}"] = (0.25 * layer["b"]).tolist()
        state[f"rec.bias_hh_l{l}"] = (0.75 * layer["b"]).tolist()
    state["lin.weight"], state["lin.bias"] = head_W.reshape(1, H).tolist(), head_b.tolist()
    return {"model_data": {"model": "SimpleRNN", "input_size": inputs, "skip": skip, "output_size": 1,
                           "unit_type": unit, "num_layers": len(layers), "hidden_size": H, "bias_fl": True},
            "state_dict": state}


def write_json(path, document):
    path.write_text(json.dumps(document))
    return path


# ----------------------------------------------------------------------------- the command lines

def run(script, *args, cwd=None, timeout=300):
    """python ROOT/script args... in cwd (default ROOT): (exit code, stdout, stderr)."""
    done = subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def assert_one_line_error(code, stderr, match):
    assert code == 2, stderr
    lines = [line for line in stderr.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr and match in lines[0], stderr


def train(*args, cwd):
    """train.py args..., which must succeed: its stdout."""
    code, out, err = run("train.py", *args, cwd=cwd, timeout=600)
    assert code == 0, err
    return out


def model_esr(run_dir: Path) -> float:
    with np.load(run_dir / "model.npz", allow_pickle=False) as data:
        return json.loads(str(data["config.json"]))["val_esr"]


def history(run_dir: Path) -> list:
    with open(run_dir / "history.csv") as stream:
        return list(csv.DictReader(stream))


def write_pair(folder: Path, dry, wet, rate, subtype="PCM_16"):
    """folder/dry.wav and folder/wet.wav; their paths."""
    sf.write(folder / "dry.wav", dry, rate, subtype=subtype)
    sf.write(folder / "wet.wav", wet, rate, subtype=subtype)
    return folder / "dry.wav", folder / "wet.wav"
