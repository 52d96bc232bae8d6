"""lstm_core: a from-scratch LSTM for audio effects, on NumPy or CuPy.

Files, one idea each: backend (NumPy or CuPy), devices (every device-dependent setting,
passed as arguments), lstm (the layer, forward and truncated BPTT), cuda_kernels (the GPU
kernels: a launch per step, or one per window), output (read-out and skip), model (the
stack), losses, adam, gradcheck, training (one window's updates), parallel (a batch shared
across processes), workspace (buffers kept between windows), run (a training run: its
state, its checkpoint, and the function that trains it), inference (running a model over
long audio), chunks (parallel chunks made exact), split_run (their columns shared across
processes), example (a two-second first look), and files/ (every file a model lives in,
and the one atomic writer).

It takes arrays and a sample rate and knows nothing of audio files; it imports no other
package of the project.
"""

__version__ = "0.1.0"
