"""lstm_core: a from-scratch LSTM for audio effects, on NumPy or CuPy.

Files, one idea each: backend (NumPy or CuPy), lstm (the layer, forward and truncated
BPTT), cuda_kernels (the GPU kernels: a launch per step, or one per window), output
(read-out and skip), model (the stack), losses, adam, gradcheck, training (one window's updates, the defaults), parallel
(a batch shared across processes), workspace (buffers kept between windows), loop (epochs,
validation, stopping), inference (running a model over long audio), checkpoint (model
and checkpoint files), model_files (any model file in, plugin formats out: torch_layout,
nam_format, aidax_format), example (a two-second first look).
"""

__version__ = "0.1.0"
