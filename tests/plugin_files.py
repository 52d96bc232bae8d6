"""Plugin model files built by hand from the published layouts (not through our exporter),
and a plain reference LSTM to check what we compute from them."""

import json

import numpy as np


# ----------------------------------------------------------------------------- the reference

def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def reference_lstm(x, layers, head_W, head_b, skip=False, h0=None, c0=None):
    """y (N,) of the stacked LSTM for x (N, I), in float64. layers: dicts of W_ih (4H, I_l),
    W_hh (4H, H), bias (4H,), gates i, f, g, o; h0, c0: (L, H) or None (zeros)."""
    H = layers[0]["W_hh"].shape[1]
    h = np.zeros((len(layers), H)) if h0 is None else np.array(h0, np.float64)
    c = np.zeros((len(layers), H)) if c0 is None else np.array(c0, np.float64)
    y = np.empty(len(x))
    for t, sample in enumerate(np.asarray(x, np.float64)):
        inp = sample
        for l, layer in enumerate(layers):
            a = layer["W_ih"] @ inp + layer["W_hh"] @ h[l] + layer["bias"]
            i, f, g, o = sigmoid(a[:H]), sigmoid(a[H:2 * H]), np.tanh(a[2 * H:3 * H]), sigmoid(a[3 * H:])
            c[l] = f * c[l] + i * g
            h[l] = o * np.tanh(c[l])
            inp = h[l]
        y[t] = head_W @ inp + head_b[0] + (sample[0] if skip else 0.0)
    return y


def random_torch_layers(rng, inputs, hidden, count, scale=0.6):
    """Layers in PyTorch's layout with float32-exact weights large enough to matter."""
    layers = []
    for l in range(count):
        size = inputs if l == 0 else hidden
        layers.append({name: (scale * rng.standard_normal(shape)).astype(np.float32).astype(np.float64)
                       for name, shape in (("W_ih", (4 * hidden, size)), ("W_hh", (4 * hidden, hidden)),
                                           ("bias", (4 * hidden,)))})
    head_W = (0.5 * rng.standard_normal(hidden)).astype(np.float32).astype(np.float64)
    head_b = np.array([0.05])
    return layers, head_W, head_b


def make_signal(n=600, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (0.6 * np.sin(2 * np.pi * t / 37) * np.exp(-t / 400) + 0.1 * rng.standard_normal(n)).astype(np.float32)


def relative_error(y, reference):
    return float(np.linalg.norm(y - reference) / np.linalg.norm(reference))


def hand_nam(layers, head_W, head_b, h0, c0, inputs=1, **overrides):
    """A .nam object laid out as the format describes, without our exporter."""
    weights = []
    for l, layer in enumerate(layers):
        for row in range(layer["W_ih"].shape[0]):                   # [W_ih | W_hh] row-major
            weights += list(layer["W_ih"][row]) + list(layer["W_hh"][row])
        weights += list(layer["bias"]) + list(h0[l]) + list(c0[l])
    weights += list(head_W) + list(head_b)
    document = {"version": "0.5.4", "architecture": "LSTM",
                "config": {"input_size": inputs, "hidden_size": layers[0]["W_hh"].shape[1],
                           "num_layers": len(layers)},
                "weights": [float(w) for w in weights], "sample_rate": 48000,
                "metadata": {"name": "by hand", "training": {"validation_esr": 0.02}}}
    document.update(overrides)
    return document


def hand_aidax(layers, head_W, head_b, inputs=1, skip=1, vectors=None):
    """An AIDA-X object laid out as the format describes, without our exporter."""
    H = layers[0]["W_hh"].shape[1]
    entries = [{"type": "lstm", "activation": "", "shape": [None, None, H],
                "weights": [layer["W_ih"].T.tolist(), layer["W_hh"].T.tolist(), layer["bias"].tolist()]}
               for layer in layers]
    entries.append({"type": "dense", "activation": "", "shape": [None, None, 1],
                    "weights": [head_W.reshape(H, 1).tolist(), head_b.tolist()]})
    document = {"in_shape": [None, None, inputs], "in_skip": skip, "layers": entries,
                "metadata": {"name": "by hand", "samplerate": 44100}}
    if vectors is not None:
        document["input_batch"], document["output_batch"] = vectors
    return document


def write_json(path, document):
    path.write_text(json.dumps(document))
    return path
