"""benchmarks/step_breakdown.py runs end to end and takes the step apart."""

import pytest

from lstm_core.backend import gpu_unavailable_reason

from helpers import run

PARTS = ["step", "forward", "forward+backward", "adam", "step, no average", "step, no pre-emph."]


def test_the_breakdown_times_every_part_of_a_step_on_the_cpu():
    code, stdout, stderr = run("benchmarks/step_breakdown.py", "--quick", "--device", "cpu")
    assert code == 0, stderr
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in stdout.splitlines()
            if line.startswith("| 8 ")]
    assert [row[3] for row in rows] == PARTS
    assert all(float(row[4]) > 0 for row in rows)
    assert [bool(row[5]) for row in rows] == [name.startswith("step") for name in PARTS]   # samples/s: steps only


@pytest.mark.skipif(not gpu_unavailable_reason(), reason="a GPU is usable here")
def test_asking_for_a_gpu_where_there_is_none_is_one_line():
    code, stdout, stderr = run("benchmarks/step_breakdown.py", "--quick", "--device", "gpu")
    assert code == 2 and not stdout
    assert stderr.strip().startswith("step_breakdown.py: --device gpu was asked for") and "\n" not in stderr.strip()
