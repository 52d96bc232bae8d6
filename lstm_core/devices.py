"""Every setting that depends on where the work runs, in one place.

Training and offline processing take a DeviceSettings as an argument; nothing reads a
module global, and nothing switches one at run time, so a result never depends on what
ran before it in the same process.

                        CPU (NumPy)               GPU (CuPy)
    batch               40 windows                64 windows
    segment             0.5 s                     0.25 s
    processes           one per core              1
    GPU loop            -                         "window" (cuda_kernels: "step" or "window")
    offline blocks      120 s to 240 s, equal     300 s to 600 s, equal (inference.block_length)
    offline chunks      128 (across processes)    4096
    chunk warm-up       256 samples               256 samples
    validation chunks   128 at most (fewer,       32
                        longer ones where a
                        model's memory takes
                        passes: run.py)
    validation warm-up  8192 samples              8192 samples

Why: on the CPU, time to quality was measured on two cores (benchmarks/time_to_quality.py;
RESULTS.md). On a GPU (an H200, 2026-11-30, benchmarks/cpu_vs_gpu.py; RESULTS.md "The
first GPU session"): the window loop trained 2.6-15 times faster than the step loop at
H = 32 (the step loop's time goes to its launches, two a time step); with it, batch 64
reached a better val ESR than one batch of every window (512 asked for; the 96 s of
training audio hold 384) at both 15 s and 30 s on both effects tried, one run each
(overdrive: 3.0e-6 against 5.8e-6 at 15 s; amp-like: 0.070 against 0.169 at 30 s). A
batch of 64 took about 0.19 s against 0.30 s for the 384, so it made 1.6 times as many
updates a second, and those won. The segment (0.25 s) is not yet tuned there. Offline,
the GPU's time goes to the sequential steps (chunk length + warm-up), not to the width of
the batch, so it takes a block of 5 minutes or more (equal blocks of 5 to just under 10
minutes; the 10-minute ones unmeasured) in 4096 chunks at once: 3 minutes of audio ran at
1,112 and 1,324 times real time at H = 32 in two runs (window loop), and 1,225 in a third
(2026-12-04).

Validation runs in the main process, and every epoch scores two models (run.py), so its
chunks count: on 12 s of validation audio an untrained H = 32 model took 0.19 s in 128
chunks against 0.24 to 0.31 s in 32 (2026-11-30); in 256 chunks of 2000 samples it took
5.9 s, their starting states too far from converged for one correction pass, so no
validation chunk is shorter than 4096 samples (run.MIN_VALIDATION_CHUNK). A model with a
long memory wants fewer chunks (next paragraph): a trained amp-like model (H = 40) took
22 passes and 8.7 s in 128 chunks, 3 passes and 3.2 s in 8 (2026-12-03), so a run on
the CPU sizes each validation's chunks by the passes the last one took
(run.next_validation_chunk), and this count is only the most it cuts. (A GPU keeps its 32:
its time goes to the sequential steps, which longer chunks add to.)

The chunk warm-up only guesses each chunk's starting state; the chunks are then
corrected until exact (chunks.py), so a short one pays: on models that forget quickly
(H = 32) 256 samples already put every chunk within float32 rounding of its true state
(one pass), while 8192 samples made a 10 s block take about three times as long
(benchmarks/offline.py). A model with a long memory is another matter: a trained
amp-like model's state carries an envelope for about a second, no warm-up reaches it,
and its chunks are corrected pass after pass, each pass one chunk further, until the
envelope is forgotten. Long blocks pay for that once per block, and long chunks pay for
it less: on two trained amp-like models (H = 32, float64 as precision.py chooses for
them, two processes, 120 s of the offline benchmark's signal, a session script;
RESULTS.md "Offline precision", 2026-11-30) 10 s blocks in 128 chunks took 19 and 23
passes and ran at 4.8x and 3.5x real time, 60 s blocks in 64 chunks 3 passes at 26.6x
and 22.9x (in 128 chunks: 4 and 5 passes, 20.3x and 15.8x). The chunk's length is what
counts, and more chunks make each step's calls carry more columns: 120 s blocks in 128
chunks (0.94 s each, as 60 s in 64) ran every model tried as fast or faster than 60 s in
64, in two alternated runs each on 155 s of audio (RESULTS.md "Offline blocks",
2026-12-01): the amp-like pair 29-35x against 20-27x, a compressor and a resonant filter
44-59x against 33-51x (float64), a low-pass, an overdrive and an initialised model
111-134x against 82-113x (float32). A file is cut into equal blocks
(inference.block_length), since a short last block has short chunks: 155 s as 120 s and
35 s took the amp-like pair 6-7 passes in the tail and ran at 20-25x; as one 155 s
block, 3 passes and 29-35x. 240 s in 256 chunks (0.6 s each) was faster on the float32
models (133-140x) and slower on the amp-like ones (19-25x). A block is the memory that
processing holds (its audio, outputs and chunk inputs), so it stays in the hundreds of
megabytes at most, whatever the file's length. Offline on the CPU the chunks' columns
are shared by the processes (split_run.py): at 64 chunks two processes ran the amp-like
model 1.4 to 1.5 times as fast as one, the low-pass and the initialised model 1.1 to 1.2
times (32 columns a process: the calls' own overhead is much of each step).
Validation's warm-up is another matter: the state before the validation audio is not
known at all, so it runs that long on the training audio before it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from .cuda_kernels import DEFAULT_LOOP, LOOPS

DEVICES = ("cpu", "gpu")


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class DeviceSettings:
    device: str               # "cpu" or "gpu"
    batch: int                # training windows per batch
    segment: float            # seconds of loss-carrying audio per training window
    processes: int            # CPU processes sharing each batch (parallel.py; offline, split_run.py); 1 on the GPU
    gpu_loop: str             # how the GPU runs a window's recurrence (cuda_kernels.LOOPS)
    block_seconds: float      # offline: audio read, processed and written at a time
    parts: int                # offline: parallel chunks of a block (the batch of the forward pass)
    overlap: int              # offline: warm-up samples before each chunk (a guess at its state; exact anyway)
    validation_parts: int     # validation: parallel chunks of the validation audio
    validation_warmup: int    # validation: samples of the audio before it run first (its state is not known)

    def __post_init__(self):
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        if self.gpu_loop not in LOOPS:
            raise ValueError(f"the GPU loop must be one of {LOOPS}, got {self.gpu_loop!r}")
        for name in ("batch", "processes", "parts", "validation_parts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


CPU = DeviceSettings(device="cpu", batch=40, segment=0.5, processes=1, gpu_loop=DEFAULT_LOOP, block_seconds=120.0,
                     parts=128, overlap=256, validation_parts=128, validation_warmup=8192)
GPU = DeviceSettings(device="gpu", batch=64, segment=0.25, processes=1, gpu_loop=DEFAULT_LOOP, block_seconds=300.0,
                     parts=4096, overlap=256, validation_parts=32, validation_warmup=8192)


def device_settings(device: str, **chosen) -> DeviceSettings:
    """The defaults for ``device`` ("cpu" or "gpu"), with every setting in ``chosen`` that
    is not None in their place. The CPU's processes default to one per core."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    base = CPU if device == "cpu" else GPU
    if device == "cpu":
        base = replace(base, processes=available_cores())
    return replace(base, **{name: value for name, value in chosen.items() if value is not None})
