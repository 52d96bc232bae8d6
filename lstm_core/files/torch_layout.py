"""Our parameters in the layout other tools use, and back: PyTorch's LSTM conventions.

Both plugin formats (.nam and AIDA-X/RTNeural JSON) store an LSTM layer the way PyTorch
does, with the gate blocks stacked as input, forget, cell candidate, output (i, f, g, o)
and one bias (PyTorch's b_ih + b_hh, summed). Ours stacks them o, i, f, g (see lstm.py:
the three sigmoid gates form one slice), so converting is a permutation of (H, ...)
blocks: no arithmetic, and the weights come back bit for bit.

A layer in the torch layout is a dict of host arrays:
    W_ih (G, I)   input weights      W_hh (G, H)   recurrent weights      bias (G,)
gate blocks in the order i, f, g, o. The read-out is head_W (1, H), head_b (1,).
"""

from __future__ import annotations

import numpy as np

from ..model import ModelConfig

# TORCH_FROM_OURS[k]: which of our gate blocks (o=0, i=1, f=2, g=3) is torch's block k (i, f, g, o).
TORCH_FROM_OURS = (1, 2, 3, 0)
OURS_FROM_TORCH = tuple(TORCH_FROM_OURS.index(k) for k in range(4))     # (3, 0, 1, 2)


def _reorder_blocks(array: np.ndarray, order) -> np.ndarray:
    """Rows of ``array`` (G, ...) regrouped as 4 blocks of H, block k taken from order[k]."""
    blocks = np.split(np.asarray(array), 4, axis=0)
    return np.ascontiguousarray(np.concatenate([blocks[k] for k in order], axis=0))


def to_torch_layout(params: dict, config: ModelConfig) -> tuple[list, np.ndarray, np.ndarray]:
    """(layers, head_W (1, H), head_b (1,)) from our parameter dict (host arrays)."""
    layers = []
    for layer in range(config.num_layers):
        layers.append({
            "W_ih": _reorder_blocks(params[f"lstm{layer}.W_x"], TORCH_FROM_OURS),
            "W_hh": _reorder_blocks(params[f"lstm{layer}.W_h"], TORCH_FROM_OURS),
            "bias": _reorder_blocks(params[f"lstm{layer}.b"], TORCH_FROM_OURS),
        })
    return layers, np.asarray(params["out.W"]), np.asarray(params["out.b"])


def from_torch_layout(layers: list, head_W, head_b) -> dict:
    """Our parameter dict (float32) from torch-layout layers and the read-out."""
    params = {}
    for index, layer in enumerate(layers):
        params[f"lstm{index}.W_x"] = _reorder_blocks(layer["W_ih"], OURS_FROM_TORCH)
        params[f"lstm{index}.W_h"] = _reorder_blocks(layer["W_hh"], OURS_FROM_TORCH)
        params[f"lstm{index}.b"] = _reorder_blocks(layer["bias"], OURS_FROM_TORCH)
    params["out.W"] = np.asarray(head_W).reshape(1, -1)
    params["out.b"] = np.asarray(head_b).reshape(1)
    return {name: value.astype(np.float32) for name, value in params.items()}
