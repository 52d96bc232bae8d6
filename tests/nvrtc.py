"""Compile CUDA source with NVRTC, which needs no GPU: to PTX (does it compile?), and to
sm_90 machine code with ptxas' report of each kernel's registers, stack and spills (will
it launch with the block size we give it?).

Two routes, whichever is installed: CuPy's own NVRTC binding (cupy-cuda12x[ctk]), or the
NVRTC library from the ``nvidia-cuda-nvrtc-cu12`` wheel (the ``test`` extra installs it
on Linux), called through ctypes.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

OPTIONS = ["-arch=compute_90", "-std=c++14"]     # virtual architecture: PTX only
ARCH = "sm_90"                                    # a real one (H100, H200): machine code and its resources


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


def _log(library, program) -> str:
    size = ctypes.c_size_t()
    library.nvrtcGetProgramLogSize(program, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    library.nvrtcGetProgramLog(program, log)
    return log.value.decode(errors="replace")


def _compile_ctypes(library, source: str, name: str, options: list, output: str):
    program = ctypes.c_void_p()
    status = library.nvrtcCreateProgram(ctypes.byref(program), source.encode(), name.encode(), 0, None, None)
    if status != 0:
        raise CompileError(f"nvrtcCreateProgram failed with status {status}")
    try:
        c_options = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
        if library.nvrtcCompileProgram(program, len(options), c_options) != 0:
            raise CompileError(_log(library, program))
        get_size, get = ((library.nvrtcGetPTXSize, library.nvrtcGetPTX) if output == "ptx"
                         else (library.nvrtcGetCUBINSize, library.nvrtcGetCUBIN))
        size = ctypes.c_size_t()
        get_size(program, ctypes.byref(size))
        result = ctypes.create_string_buffer(size.value)
        get(program, result)
        return result.raw[: size.value], _log(library, program)
    finally:
        library.nvrtcDestroyProgram(ctypes.byref(program))


def _compile_cupy(source: str, name: str, options: list, output: str):
    from cupy_backends.cuda.libs import nvrtc

    program = nvrtc.createProgram(source, name, [], [])
    try:
        nvrtc.compileProgram(program, options)
    except Exception as exc:
        raise CompileError(f"{exc}\n{nvrtc.getProgramLog(program)}") from None
    result = nvrtc.getPTX(program) if output == "ptx" else nvrtc.getCUBIN(program)
    log = nvrtc.getProgramLog(program)
    return (result.encode() if isinstance(result, str) else result), log


def _compile(source: str, name: str, options: list, output: str):
    """(PTX or CUBIN bytes, NVRTC's log) through whichever NVRTC is installed."""
    library = _wheel_library()
    if library is not None:
        return _compile_ctypes(library, source, name, options, output)
    try:
        import cupy_backends.cuda.libs.nvrtc  # noqa: F401
    except Exception as exc:
        raise NvrtcMissing(f"no NVRTC: install the test extra or cupy-cuda12x[ctk] ({exc})") from None
    return _compile_cupy(source, name, options, output)


def compile_to_ptx(source: str, name: str = "kernels.cu") -> str:
    """PTX text of ``source``; CompileError with NVRTC's log, or NvrtcMissing."""
    ptx, _ = _compile(source, name, OPTIONS, "ptx")
    return ptx.rstrip(b"\0").decode()


class Resources(NamedTuple):
    """What ptxas reports for one kernel compiled for a real GPU architecture."""

    registers: int          # per thread
    stack_bytes: int        # local memory a thread uses for its stack frame
    spill_bytes: int        # stores + loads of registers spilled to local memory


_ENTRY = re.compile(r"Function properties for (\w+)\s*\n.*?(\d+) bytes stack frame, (\d+) bytes spill stores, "
                    r"(\d+) bytes spill loads.*?Used (\d+) registers", re.S)


def _compile_log(source: str, name: str, options: list) -> str:
    return _compile(source, name, options, "cubin")[1]


def resource_report(source: str, arch: str = ARCH, name: str = "kernels.cu") -> dict:
    """{kernel name: Resources} from compiling ``source`` to machine code for ``arch``
    (sm_90: the H100 and H200) with ptxas' verbose report; no GPU needed.

    The compile runs in a fresh process: in one where CuPy had already compiled a kernel,
    NVRTC's log came back empty (CuPy 14.2, CUDA runtime 13.2, on an H200, 2026-11-30; the same
    call gave the full report before CuPy's first compile in that process)."""
    options = [f"-arch={arch}", "-std=c++14", "-Xptxas=-v"]
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        log = pool.submit(_compile_log, source, name, options).result()
    report = {match[0]: Resources(int(match[4]), int(match[1]), int(match[2]) + int(match[3]))
              for match in _ENTRY.findall(log)}
    if not report:
        raise CompileError(f"no resource report in NVRTC's log:\n{log}")
    return report
