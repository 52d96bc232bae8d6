"""Run the CUDA step kernels on the CPU: the same source, compiled by the host C++ compiler.

A GPU is lent to this project only now and then, but the kernels' math must be tested on
every run. Their source is plain C++ apart from a few CUDA words, so with those defined
for the host, g++ compiles it into a shared library, and a launch becomes a loop over the
thread index. :class:`HostKernel` takes the same ``(grid, block, args)`` call as a CuPy
RawKernel, so ``lstm_forward(..., kernels=...)`` runs its GPU loops unchanged on NumPy
arrays.

The window kernels keep a block's threads in step with __syncthreads(), which a loop over
the thread index cannot honour. They run with one OS thread per CUDA thread, a block at a
time: __syncthreads() is a pthread barrier over the block's threads, __shared__ memory is
one buffer the block's threads share, and threadIdx is thread-local. A kernel in which
some thread skips a barrier deadlocks here as on the GPU, where it is undefined behaviour;
the launch then fails on a timeout instead of passing.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from lstm_core import cuda_kernels

_HOST_PRELUDE = r"""
#include <cmath>
#include <cstddef>
#include <pthread.h>
using std::tanh;
struct uint3_ { unsigned x, y, z; };
static uint3_ blockIdx, blockDim;
static thread_local uint3_ threadIdx;
#define __global__
#define __device__ static
#define __restrict__
#define __shared__
unsigned char shared_bytes[1 << 16];        // the running block's dynamic shared memory
static pthread_barrier_t block_barrier;
static void __syncthreads() { pthread_barrier_wait(&block_barrier); }
extern "C" void set_thread(unsigned block, unsigned thread, unsigned block_dim) {
    blockIdx.x = block; threadIdx.x = thread; blockDim.x = block_dim;
}
extern "C" void begin_block(unsigned block, unsigned block_dim) {
    static bool started = false;
    if (started) pthread_barrier_destroy(&block_barrier);
    pthread_barrier_init(&block_barrier, nullptr, block_dim);
    started = true;
    blockIdx.x = block; blockDim.x = block_dim;
}
extern "C" void set_thread_index(unsigned thread) { threadIdx.x = thread; }
"""
BLOCK_TIMEOUT = 60.0        # seconds a block's threads may take before the launch counts as hung


def compiler_missing() -> str:
    """Empty when g++ is there, else why the host-kernel tests skip."""
    return "" if shutil.which("g++") else "g++ is not installed"


class HostKernel:
    """One compiled kernel, called like a CuPy RawKernel: kernel(grid, block, args)."""

    def __init__(self, library, name: str, threaded: bool = False):
        self._library = library
        self._function = getattr(library, name)
        self._function.restype = None
        self._threaded = threaded            # a thread per CUDA thread, for kernels with barriers

    def __call__(self, grid, block, args, shared_mem: int = 0):
        if shared_mem > 1 << 16:
            raise ValueError(f"{shared_mem} bytes of shared memory asked for; the host buffer holds 65536")
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
            if self._threaded:
                self._run_block_threaded(block_index, block[0], c_args)
                continue
            for thread in range(block[0]):
                self._library.set_thread(block_index, thread, block[0])
                self._function(*c_args)

    def _run_block_threaded(self, block_index: int, threads: int, c_args: list):
        self._library.begin_block(block_index, threads)

        def cuda_thread(index):
            self._library.set_thread_index(index)     # ctypes releases the GIL during both calls
            self._function(*c_args)

        workers = [threading.Thread(target=cuda_thread, args=(n,), daemon=True) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(BLOCK_TIMEOUT)
            if worker.is_alive():
                raise RuntimeError(f"block {block_index} hung: a thread never reached a __syncthreads()")


_built: dict = {}


def host_kernels(dtype_name: str, loop: str = "step") -> cuda_kernels.Kernels:
    """The kernels compiled for the host, for 'float32' or 'float64', as compile_kernels
    gives them on a GPU for ``loop`` ("step" or "window")."""
    if dtype_name not in _built:
        folder = Path(tempfile.mkdtemp(prefix="lstm_host_cuda_"))
        source = folder / "kernels.cpp"
        source.write_text(_HOST_PRELUDE + cuda_kernels.kernel_source(dtype_name))
        library_path = folder / "kernels.so"
        subprocess.run(["g++", "-O1", "-shared", "-fPIC", "-pthread", "-o", str(library_path), str(source)],
                       check=True, capture_output=True, text=True)
        library = ctypes.CDLL(str(library_path))
        name = lambda base: cuda_kernels.kernel_name(base, dtype_name)  # noqa: E731
        _built[dtype_name] = cuda_kernels.Kernels(
            HostKernel(library, name(cuda_kernels.FORWARD_NAME)),
            HostKernel(library, name(cuda_kernels.BACKWARD_NAME)),
            HostKernel(library, name(cuda_kernels.WINDOW_FORWARD_NAME), threaded=True),
            HostKernel(library, name(cuda_kernels.WINDOW_BACKWARD_NAME), threaded=True),
        )
    kernels = _built[dtype_name]
    return kernels if loop == "window" else kernels._replace(forward_window=None, backward_window=None)
