"""The optimised model against the plain reference LSTM of helpers.py, in float64, as llm.c
and micrograd check theirs: the output, the final state, every parameter's gradient, the
input's and the initial state's agree to rounding. The largest difference of each is
printed (pytest -s shows them)."""

import pytest

from lstm_core.backend import to_device, to_numpy
from lstm_core.gradcheck import check_gradients
from lstm_core.model import model_backward, model_forward

from helpers import (largest_difference, make_model, make_window, random_torch_layers, reference_backward,
                     reference_forward)

TOLERANCE = 1e-10
T = 17

# (name, layers, inputs, skip, B, a gradient reaching the final state)
CASES = [
    ("one_layer", 1, 1, True, 3, False),
    ("two_layers_no_skip", 2, 1, False, 2, False),
    ("three_inputs_final_gradient", 1, 3, False, 4, True),
    ("two_layers_three_inputs_final_gradient", 2, 3, True, 3, True),
]


def reference_weights(params, layers):
    """Our parameters as reference_forward takes them (gate rows o, i, f, g)."""
    host = {name: to_numpy(value) for name, value in params.items()}
    return ([{name: host[f"lstm{l}.{name}"] for name in ("W_x", "W_h", "b")} for l in range(layers)],
            host["out.W"], host["out.b"])


@pytest.mark.parametrize("name,layers,inputs,skip,B,final_gradient", CASES, ids=[c[0] for c in CASES])
def test_model_matches_the_reference(xp, rng, name, layers, inputs, skip, B, final_gradient):
    config, params = make_model(rng, xp, hidden=5, layers=layers, inputs=inputs, skip=skip)
    x, _, h0, c0 = make_window(rng, xp, config, T, B)                   # a non-zero initial state
    dy = rng.standard_normal((T, B))
    dh_T, dc_T = (rng.standard_normal(h0.shape), rng.standard_normal(c0.shape)) if final_gradient else (None, None)

    y, (h_T, c_T), cache = model_forward(params, config, x, (h0, c0))
    dstate_T = (to_device(dh_T, xp), to_device(dc_T, xp)) if final_gradient else None
    grads, dx, (dh0, dc0) = model_backward(to_device(dy, xp), cache, dstate_T)
    ours = dict(grads, y=y, h_T=h_T, c_T=c_T, x=dx, h0=dh0, c0=dc0)

    ref_layers, head_W, head_b = reference_weights(params, layers)
    ref_y, (ref_h_T, ref_c_T), ref_cache = reference_forward(to_numpy(x), ref_layers, head_W, head_b, skip,
                                                             to_numpy(h0), to_numpy(c0), order="oifg")
    (dlayers, dhead_W, dhead_b), ref_dx, (ref_dh0, ref_dc0) = reference_backward(dy, ref_cache, dh_T, dc_T)
    reference = {f"lstm{l}.{k}": v for l, layer in enumerate(dlayers) for k, v in layer.items()}
    reference.update({"out.W": dhead_W, "out.b": dhead_b, "y": ref_y, "h_T": ref_h_T, "c_T": ref_c_T,
                      "x": ref_dx, "h0": ref_dh0, "c0": ref_dc0})

    assert set(ours) == set(reference) == set(params) | {"y", "h_T", "c_T", "x", "h0", "c0"}
    differences = {key: largest_difference(ours[key], reference[key]) for key in reference}
    for key, difference in differences.items():
        print(f"{name:40s} {key:10s} largest difference {difference:.1e}")
    worst = max(differences, key=differences.get)
    assert differences[worst] < TOLERANCE, f"{name}: worst {worst} {differences[worst]:.1e}"


def test_the_reference_gradients_against_finite_differences(rng):
    """The reference stands on its own: its backward, in PyTorch's gate order this time,
    checks against central differences (lstm_core.gradcheck) for every weight, the input,
    the initial state, with a gradient reaching the final state too."""
    layers, head_W, head_b = random_torch_layers(rng, inputs=2, hidden=3, count=2)
    x, h0, c0 = rng.standard_normal((6, 2, 2)), rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3, 2))
    w_y, w_h, w_c = rng.standard_normal((6, 2)), rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3, 2))

    def loss():
        y, (h_T, c_T), _ = reference_forward(x, layers, head_W, head_b, True, h0, c0)
        return (w_y * y).sum() + (w_h * h_T).sum() + (w_c * c_T).sum()

    _, _, cache = reference_forward(x, layers, head_W, head_b, True, h0, c0)
    (dlayers, dhead_W, dhead_b), dx, (dh0, dc0) = reference_backward(w_y, cache, w_h, w_c)
    arrays = {f"{l}.{k}": v for l, layer in enumerate(layers) for k, v in layer.items()}
    analytic = {f"{l}.{k}": v for l, layer in enumerate(dlayers) for k, v in layer.items()}
    arrays.update(head_W=head_W, head_b=head_b, x=x, h0=h0, c0=c0)
    analytic.update(head_W=dhead_W, head_b=dhead_b, x=dx, h0=dh0, c0=dc0)
    errors = check_gradients(loss, arrays, analytic)
    assert max(errors.values()) < 1e-6, errors
