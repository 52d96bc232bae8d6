"""Workspaces: reused buffers give the same training as fresh ones, and are really reused."""

import numpy as np

from lstm_core.adam import AdamState
from lstm_core.training import TrainConfig, train_window
from lstm_core.workspace import Workspace

from helpers import make_model, make_window


def test_training_with_a_workspace_equals_training_without(rng):
    config, params = make_model(rng, np, hidden=5, layers=2, spread=0.3)
    windows = [make_window(rng, np, config, T=30, B=3)[:2] for _ in range(3)]
    train = TrainConfig(lr=1e-2, warmup=7, tbptt=9, dc_weight=0.5)
    results = []
    for workspace in (None, Workspace()):
        p, adam = {k: v.copy() for k, v in params.items()}, AdamState()
        losses = [float(train_window(p, config, adam, x, y, train, workspace)) for x, y in windows]
        results.append((p, losses))
    (p_fresh, l_fresh), (p_reused, l_reused) = results
    assert l_fresh == l_reused
    for name in params:
        assert np.array_equal(p_fresh[name], p_reused[name]), name


def test_buffers_are_reused_and_grow_when_needed():
    workspace = Workspace()
    a = workspace.empty("A", (10, 4), np.float32, np)
    b = workspace.empty("A", (5, 4), np.float32, np)
    assert np.shares_memory(a, b) and b.shape == (5, 4) and b.flags.c_contiguous
    c = workspace.empty("A", (20, 4), np.float32, np)
    assert not np.shares_memory(a, c) and c.shape == (20, 4)
    scoped = workspace.scope("lstm1").empty("A", (10, 4), np.float32, np)
    assert not np.shares_memory(scoped, c)
