"""It learns: a one-pole low-pass of noise, to a small error, in seconds on the CPU."""

from lstm_core.example import learn_lowpass


def test_learns_one_pole_lowpass_of_noise():
    initial, best, windows, seconds = learn_lowpass(max_windows=600, target_esr=1e-3)
    print(f"one-pole low-pass: val ESR {initial:.3f} -> {best:.2e} after {windows} windows, {seconds:.1f} s")
    assert initial > 0.1          # it started far from the answer...
    assert best < 1e-3            # ...and got there
