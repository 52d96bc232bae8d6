"""Run the CUDA step kernels on the CPU: the same source, compiled by the host C++ compiler.

A GPU is lent to this project only now and then, but the kernels' math must be tested on
every run. Their source is plain C++ apart from a few CUDA words, so with those defined
for the host, g++ compiles it into a shared library, and a launch becomes a loop over the
thread index. :class:`HostKernel` takes the same ``(grid, block, args)`` call as a CuPy
RawKernel, so ``lstm_forward(..., kernels=...)`` runs its fused GPU loop unchanged on
NumPy arrays.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from lstm_core import cuda_kernels

_HOST_PRELUDE = r"""
#include <cmath>
using std::tanh;
struct uint3_ { unsigned x, y, z; };
static uint3_ blockIdx, threadIdx, blockDim;
#define __global__
#define __device__ static
#define __restrict__
extern "C" void set_thread(unsigned block, unsigned thread, unsigned block_dim) {
    blockIdx.x = block; threadIdx.x = thread; blockDim.x = block_dim;
}
"""


def compiler_missing() -> str:
    """Empty when g++ is there, else why the host-kernel tests skip."""
    return "" if shutil.which("g++") else "g++ is not installed"


class HostKernel:
    """One compiled kernel, called like a CuPy RawKernel: kernel(grid, block, args)."""

    def __init__(self, library, name: str):
        self._library = library
        self._function = getattr(library, name)
        self._function.restype = None

    def __call__(self, grid, block, args):
        c_args = []
        for arg in args:
            if isinstance(arg, np.ndarray):
                if not arg.flags.c_contiguous:
                    raise ValueError("kernel arguments must be C-contiguous, as on the GPU")
                c_args.append(ctypes.c_void_p(arg.ctypes.data))
            elif isinstance(arg, np.int32):
                c_args.append(ctypes.c_int(int(arg)))
            else:
                raise TypeError(f"unsupported kernel argument {type(arg)}")
        for block_index in range(grid[0]):
            for thread in range(block[0]):
                self._library.set_thread(block_index, thread, block[0])
                self._function(*c_args)


_built: dict = {}


def host_kernels(dtype_name: str):
    """(forward, backward) HostKernels for 'float32' or 'float64'."""
    if dtype_name not in _built:
        folder = Path(tempfile.mkdtemp(prefix="lstm_host_cuda_"))
        source = folder / "kernels.cpp"
        source.write_text(_HOST_PRELUDE + cuda_kernels.kernel_source(dtype_name))
        library_path = folder / "kernels.so"
        subprocess.run(["g++", "-O1", "-shared", "-fPIC", "-o", str(library_path), str(source)],
                       check=True, capture_output=True, text=True)
        library = ctypes.CDLL(str(library_path))
        _built[dtype_name] = (
            HostKernel(library, cuda_kernels.kernel_name(cuda_kernels.FORWARD_NAME, dtype_name)),
            HostKernel(library, cuda_kernels.kernel_name(cuda_kernels.BACKWARD_NAME, dtype_name)),
        )
    return _built[dtype_name]
