"""Adam: one step by hand, clipping, and a state that survives a save and load."""

import io

import numpy as np

from lstm_core.adam import AdamState, adam_step, global_norm
from lstm_core.backend import to_numpy


def test_first_steps_equal_hand_computed_update(xp):
    p0 = np.array([0.5, -1.0, 2.0])
    g1, g2 = np.array([0.1, -0.2, 0.3]), np.array([-0.4, 0.05, 0.2])
    params = {"w": xp.asarray(p0.copy())}
    state = AdamState()
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    adam_step(params, {"w": xp.asarray(g1)}, state, lr, b1, b2, eps)
    # Step 1 by hand: m = 0.1 g, v = 0.001 g^2, m_hat = g, v_hat = g^2: a step of lr * sign(g).
    expected = p0 - lr * g1 / (np.abs(g1) + eps)
    assert np.allclose(to_numpy(params["w"]), expected, rtol=0, atol=1e-15)
    adam_step(params, {"w": xp.asarray(g2)}, state, lr, b1, b2, eps)
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v = b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2
    expected = expected - lr * (m / (1 - b1**2)) / (np.sqrt(v / (1 - b2**2)) + eps)
    assert np.allclose(to_numpy(params["w"]), expected, rtol=0, atol=1e-15)
    assert state.step == 2


def test_clipping_scales_by_global_norm(xp):
    grads = {"a": xp.asarray([3.0, 0.0]), "b": xp.asarray([[4.0]])}
    assert float(global_norm(grads)) == 5.0
    clipped, unclipped = {"a": xp.zeros(2), "b": xp.zeros((1, 1))}, {"a": xp.zeros(2), "b": xp.zeros((1, 1))}
    s1, s2 = AdamState(), AdamState()
    adam_step(clipped, grads, s1, lr=1.0, clip_norm=1.0)
    adam_step(unclipped, grads, s2, lr=1.0)
    # The first moment sees the clipped gradient (a fifth of it), the update direction is the same.
    assert np.allclose(to_numpy(s1.m["a"]), to_numpy(s2.m["a"]) / 5.0)
    assert np.allclose(to_numpy(s1.v["b"]), to_numpy(s2.v["b"]) / 25.0)


def test_state_round_trips_through_npz(xp, rng):
    params = {"w": xp.asarray(rng.standard_normal((3, 4))), "b": xp.asarray(rng.standard_normal(4))}
    state = AdamState()
    for _ in range(3):
        adam_step(params, {k: xp.asarray(rng.standard_normal(v.shape)) for k, v in params.items()}, state, 0.01)

    buffer = io.BytesIO()
    np.savez(buffer, **{k: to_numpy(v) for k, v in state.to_arrays().items()})
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as data:
        loaded = AdamState.from_arrays({k: xp.asarray(data[k]) for k in data.files})
    assert loaded.step == 3 and set(loaded.m) == set(state.m) == set(loaded.v)

    # Continuing from the loaded state gives exactly what continuing the original gives.
    grads = {k: xp.asarray(rng.standard_normal(v.shape)) for k, v in params.items()}
    p_a = {k: v.copy() for k, v in params.items()}
    p_b = {k: v.copy() for k, v in params.items()}
    adam_step(p_a, grads, state, 0.01)
    adam_step(p_b, grads, loaded, 0.01)
    for k in params:
        assert np.array_equal(to_numpy(p_a[k]), to_numpy(p_b[k]))


def test_the_running_average_follows_its_formula_and_round_trips(xp, rng):
    """a starts at the parameters after the first step, then a <- a + (1 - d)(p - a) with
    d = min(decay, (1 + t) / (10 + t)); it is copied with the state and saved with it."""
    params = {"w": xp.asarray(rng.standard_normal((2, 3)))}
    state, decay = AdamState(), 0.5       # the ramp (1 + t) / (10 + t) up to t = 8, then the cap
    expected = None
    for t in range(1, 13):
        adam_step(params, {"w": xp.asarray(rng.standard_normal((2, 3)))}, state, 0.1, average=decay)
        p = to_numpy(params["w"])
        if expected is None:
            expected = p.copy()
        else:
            d = min(decay, (1 + t) / (10 + t))
            expected = expected + (1 - d) * (p - expected)
        assert np.allclose(to_numpy(state.average["w"]), expected, rtol=0, atol=1e-14), t
    assert not np.allclose(to_numpy(state.average["w"]), to_numpy(params["w"]))   # it lags the parameters

    copy = state.copy()
    copy.average["w"] += 1.0
    assert not np.allclose(to_numpy(copy.average["w"]), to_numpy(state.average["w"]))   # an independent copy
    loaded = AdamState.from_arrays({k: xp.asarray(to_numpy(v)) for k, v in state.to_arrays().items()})
    assert np.array_equal(to_numpy(loaded.average["w"]), to_numpy(state.average["w"]))
    assert set(loaded.m) == {"w"}


def test_on_device_moves_every_array(xp, rng):
    """m, v and the running average all land on ``xp``'s device (a GPU resume loads the
    state on the host; an array left behind would fail the first step there)."""
    params = {"w": rng.standard_normal((2, 3))}
    state = AdamState()
    adam_step(params, {"w": rng.standard_normal((2, 3))}, state, 0.1, average=0.9)
    state.on_device(xp)
    assert set(state.to_arrays()) == {"adam.step", "adam.m.w", "adam.v.w", "adam.average.w"}
    for name, value in state.to_arrays().items():
        if name != "adam.step":
            assert isinstance(value, xp.ndarray), name


def test_a_step_scale_lengthens_only_the_steps_it_names(xp):
    """step_scale multiplies the named parameter's step (broadcast over its columns) and
    leaves the moments, and every other parameter, as without it."""
    grads = {"W": xp.asarray([[0.1, -0.2], [0.3, 0.4]]), "b": xp.asarray([0.5, -0.5])}
    plain = {"W": xp.zeros((2, 2)), "b": xp.zeros(2)}
    scaled = {"W": xp.zeros((2, 2)), "b": xp.zeros(2)}
    s1, s2 = AdamState(), AdamState()
    for _ in range(3):
        adam_step(plain, grads, s1, lr=0.01)
        adam_step(scaled, grads, s2, lr=0.01, step_scale={"W": xp.asarray([[30.0, 1.0]])})
    W, W_scaled = to_numpy(plain["W"]), to_numpy(scaled["W"])
    assert np.allclose(W_scaled[:, 0], 30.0 * W[:, 0], rtol=1e-12) and np.abs(W[:, 0]).min() > 0
    assert np.array_equal(W_scaled[:, 1], W[:, 1])
    assert np.array_equal(to_numpy(scaled["b"]), to_numpy(plain["b"]))
    assert np.array_equal(to_numpy(s1.v["W"]), to_numpy(s2.v["W"]))
