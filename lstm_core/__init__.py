"""lstm_core: a from-scratch LSTM for audio effects, on NumPy or CuPy.

Files, one idea each: backend (NumPy or CuPy), lstm (the layer, forward and truncated
BPTT), output (read-out and skip), model (the stack), losses, adam, gradcheck, training
(a window's update and a fit over arrays), cuda_kernels (the fused GPU step kernels).
"""

__version__ = "0.1.0"
