"""Truncated BPTT is explicit: windows chain through their state, and only the caller
decides whether a gradient crosses from one window into the one before it."""

from lstm_core.lstm import lstm_backward, lstm_forward
from lstm_core.model import model_backward, model_forward

from helpers import close, loss_of, make_model, make_window


def test_window_two_gradient_treats_window_one_state_as_constant(xp, rng):
    """Running window 1 then window 2 gives window 2 the same gradient as a fresh model
    started from window 1's final state, copied in as a constant; full BPTT through both
    windows gives a different one, so the cut is real."""
    config, params = make_model(rng, xp, hidden=6, layers=2)
    x1, _, h0, c0 = make_window(rng, xp, config, 15, B=2)
    x2, target2, _, _ = make_window(rng, xp, config, 15, B=2)
    loss_fn = loss_of("esr_pre_dc")

    _, state1, _ = model_forward(params, config, x1, (h0, c0))
    y2, _, cache2 = model_forward(params, config, x2, state1)
    grads_chained, _, dstate1 = model_backward(loss_fn(y2, target2)[1], cache2)

    constant = (state1[0].copy(), state1[1].copy())
    y2c, _, cache2c = model_forward(params, config, x2, constant)
    grads_constant, _, _ = model_backward(loss_fn(y2c, target2)[1], cache2c)
    for name in params:
        assert close(grads_chained[name], grads_constant[name]), name

    # Full BPTT over the joined window (window 1 as a loss-free warm-up) differs...
    x12 = xp.concatenate([x1, x2])
    target12 = xp.concatenate([xp.zeros_like(target2), target2])
    full = loss_of("esr_pre_dc", warmup=15)
    y12, _, cache12 = model_forward(params, config, x12, (h0, c0))
    grads_full, _, _ = model_backward(full(y12, target12)[1], cache12)
    assert not close(grads_full["lstm0.W_h"], grads_chained["lstm0.W_h"], 1e-6)

    # ...and equals the chained windows once window 2 hands its state gradient back.
    _, _, cache1 = model_forward(params, config, x1, (h0, c0))
    zero_dy = xp.zeros((15, 2), dtype=x1.dtype)
    grads_back, _, _ = model_backward(zero_dy, cache1, dstate_T=dstate1)
    for name in params:
        assert close(grads_full[name], grads_chained[name] + grads_back[name]), name


def test_step_by_step_equals_whole_window(xp, rng):
    """Forward one step at a time equals the whole window; so does the backward, one
    step at a time with the state gradient carried between steps."""
    T, H, I, B = 12, 5, 2, 3
    to = lambda a: xp.asarray(a)  # noqa: E731
    params = {"W_x": to(rng.standard_normal((4 * H, I))), "W_h": to(0.5 * rng.standard_normal((4 * H, H))),
              "b": to(rng.standard_normal(4 * H))}
    x, h0, c0 = to(rng.standard_normal((T, I, B))), to(rng.standard_normal((H, B))), to(rng.standard_normal((H, B)))
    dh = to(rng.standard_normal((T, H, B)))

    h_all, (h_T, c_T), cache = lstm_forward(x, params, h0, c0)
    grads, dx, (dh0, dc0) = lstm_backward(dh, cache)

    h, c, caches, steps = h0, c0, [], []
    for t in range(T):
        h_t, (h, c), cache_t = lstm_forward(x[t : t + 1], params, h, c)
        steps.append(h_t)
        caches.append(cache_t)
    assert close(xp.concatenate(steps), h_all) and close(h, h_T) and close(c, c_T)

    dh_next = dc_next = None
    step_grads, step_dx = [], []
    for t in range(T - 1, -1, -1):
        g, dx_t, (dh_next, dc_next) = lstm_backward(dh[t : t + 1], caches[t], dh_next, dc_next)
        step_grads.append(g)
        step_dx.append(dx_t)
    for name in grads:
        assert close(sum(g[name] for g in step_grads), grads[name]), name
    assert close(xp.concatenate(step_dx[::-1]), dx)
    assert close(dh_next, dh0) and close(dc_next, dc0)


def test_forward_does_not_write_into_inputs(xp, rng):
    config, params = make_model(rng, xp, hidden=4, layers=2)
    x, target, h0, c0 = make_window(rng, xp, config, 10, B=2)
    before = {k: v.copy() for k, v in dict(params, x=x, h0=h0, c0=c0).items()}
    y, state, cache = model_forward(params, config, x, (h0, c0))
    _, dy = loss_of("esr_pre_dc")(y, target)
    dy_before = dy.copy()
    model_backward(dy, cache, dstate_T=(xp.ones_like(h0), xp.ones_like(c0)))
    for name, value in dict(params, x=x, h0=h0, c0=c0).items():
        assert close(value, before[name], 0), name
    assert close(dy, dy_before, 0)


def test_the_warm_up_starts_from_the_state_the_window_end_leaves(xp, rng):
    """training.warm_up: with prewarm P, the state after the warm-up is the one a forward
    run over the window's last P steps (from zero) and then its first ``warmup`` steps
    reaches, column by column; with P = 0 it starts from zero, and the two differ."""
    from lstm_core.model import zero_state
    from lstm_core.training import TrainConfig, warm_up

    config, params = make_model(rng, xp, hidden=6, layers=2, spread=0.8)
    x, _, _, _ = make_window(rng, xp, config, 40, B=3)
    _, elsewhere, _ = model_forward(params, config, x[30:], zero_state(config, 3, xp, x.dtype))
    _, expected, _ = model_forward(params, config, x[:12], elsewhere)
    _, from_zero, _ = model_forward(params, config, x[:12], zero_state(config, 3, xp, x.dtype))

    warmed = warm_up(params, config, x, TrainConfig(warmup=12, prewarm=10))
    assert all(close(a, b) for a, b in zip(warmed, expected))
    assert all(close(a, b) for a, b in zip(warm_up(params, config, x, TrainConfig(warmup=12, prewarm=0)), from_zero))
    assert not close(warmed[1], from_zero[1], 1e-3)              # a 12-step warm-up has not forgotten the start
    # a prewarm longer than the steps after the warm-up runs those steps, never the warm-up's own
    longest = warm_up(params, config, x, TrainConfig(warmup=12, prewarm=1000))
    assert all(close(a, b) for a, b in zip(longest, warm_up(params, config, x, TrainConfig(warmup=12, prewarm=28))))
    _, whole, _ = model_forward(params, config, x, zero_state(config, 3, xp, x.dtype))     # unclamped: all 40 steps
    assert not close(longest[1], model_forward(params, config, x[:12], whole)[1][1], 1e-6)
    # no warm-up, no prewarm: the first scored step starts from zero, as the option says
    assert all(float(xp.abs(part).max()) == 0 for part in warm_up(params, config, x, TrainConfig(warmup=0, prewarm=10)))
