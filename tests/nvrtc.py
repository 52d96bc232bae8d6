"""Compile CUDA source to PTX with NVRTC, which needs no GPU.

Two routes, whichever is installed: CuPy's own NVRTC binding (cupy-cuda12x[ctk]), or the
NVRTC library from the ``nvidia-cuda-nvrtc-cu12`` wheel (the ``test`` extra installs it
on Linux), called through ctypes.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

OPTIONS = ["-arch=compute_90", "-std=c++14"]


class NvrtcMissing(RuntimeError):
    pass


class CompileError(RuntimeError):
    pass


def _wheel_library():
    try:
        import nvidia.cuda_nvrtc as package
    except ImportError:
        return None
    folders = [Path(p) / "lib" for p in getattr(package, "__path__", [])]
    for folder in folders:
        for candidate in sorted(folder.glob("libnvrtc.so*")):
            if "builtins" not in candidate.name and "alt" not in candidate.name:
                return ctypes.CDLL(str(candidate))
    return None


def _compile_ctypes(library, source: str, name: str) -> str:
    program = ctypes.c_void_p()
    status = library.nvrtcCreateProgram(ctypes.byref(program), source.encode(), name.encode(), 0, None, None)
    if status != 0:
        raise CompileError(f"nvrtcCreateProgram failed with status {status}")
    options = (ctypes.c_char_p * len(OPTIONS))(*[o.encode() for o in OPTIONS])
    status = library.nvrtcCompileProgram(program, len(OPTIONS), options)
    if status != 0:
        size = ctypes.c_size_t()
        library.nvrtcGetProgramLogSize(program, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        library.nvrtcGetProgramLog(program, log)
        raise CompileError(log.value.decode(errors="replace"))
    size = ctypes.c_size_t()
    library.nvrtcGetPTXSize(program, ctypes.byref(size))
    ptx = ctypes.create_string_buffer(size.value)
    library.nvrtcGetPTX(program, ptx)
    library.nvrtcDestroyProgram(ctypes.byref(program))
    return ptx.value.decode()


def _compile_cupy(source: str, name: str) -> str:
    from cupy_backends.cuda.libs import nvrtc

    program = nvrtc.createProgram(source, name, [], [])
    try:
        nvrtc.compileProgram(program, OPTIONS)
    except Exception as exc:
        raise CompileError(f"{exc}\n{nvrtc.getProgramLog(program)}") from None
    ptx = nvrtc.getPTX(program)
    return ptx.decode() if isinstance(ptx, bytes) else ptx


def compile_to_ptx(source: str, name: str = "kernels.cu") -> str:
    """PTX text of ``source``; CompileError with NVRTC's log, or NvrtcMissing."""
    library = _wheel_library()
    if library is not None:
        return _compile_ctypes(library, source, name)
    try:
        import cupy_backends.cuda.libs.nvrtc  # noqa: F401
    except Exception as exc:
        raise NvrtcMissing(f"no NVRTC: install the test extra or cupy-cuda12x[ctk] ({exc})") from None
    return _compile_cupy(source, name)
