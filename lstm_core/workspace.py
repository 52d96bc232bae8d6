"""Buffers kept from one window to the next.

A training window at B = 512, H = 32 needs about 0.8 GB of buffers. Allocated afresh
for every window, the operating system hands over new pages, and the first write to
each page faults: on a small machine that costs as much as the arithmetic. A Workspace
keeps its buffers, so from the second window on the same memory is reused.

The price is aliasing, made explicit: a forward run given a workspace overwrites the
buffers of the previous run with the same workspace, so only the newest cache made with
it may be passed to a backward. The training functions follow that order (forward,
backward, next forward); code that keeps several caches alive passes no workspace.
"""

from __future__ import annotations

import math


class Workspace:
    def __init__(self):
        self._buffers: dict = {}

    def empty(self, key: str, shape: tuple, dtype, xp):
        """An uninitialised array of ``shape``: a view into the buffer kept under ``key``,
        which grows when a larger one is asked for."""
        size = math.prod(shape)
        buffer = self._buffers.get(key)
        if buffer is None or buffer.size < size or buffer.dtype != dtype or not isinstance(buffer, xp.ndarray):
            buffer = xp.empty(size, dtype=dtype)
            self._buffers[key] = buffer
        return buffer[:size].reshape(shape)

    def scope(self, prefix: str) -> "_Scope":
        """The same workspace with ``prefix`` before every key (one per layer)."""
        return _Scope(self, prefix)


class _Scope:
    def __init__(self, workspace: Workspace, prefix: str):
        self._workspace, self._prefix = workspace, prefix

    def empty(self, key, shape, dtype, xp):
        return self._workspace.empty(f"{self._prefix}.{key}", shape, dtype, xp)

    def scope(self, prefix: str) -> "_Scope":
        return _Scope(self._workspace, f"{self._prefix}.{prefix}")


def empty(workspace, key: str, shape: tuple, dtype, xp):
    """xp.empty, or the workspace's buffer for ``key`` when a workspace is given."""
    if workspace is None:
        return xp.empty(shape, dtype=dtype)
    return workspace.empty(key, shape, dtype, xp)
