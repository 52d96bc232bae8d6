#!/usr/bin/env bash
# The GPU work of issue 4 in a few commands, for a machine lent for a short while
# (10 minutes a command, 30 in all, nothing installable there but carried wheels).
#
#   benchmarks/gpu_session.sh prepare        here, where pip reaches a registry: fetch the
#                                            wheels the GPU machine lacks (soundfile and
#                                            its cffi) into .whl/, kept out of git
#   benchmarks/gpu_session.sh STAGE [LOGS]   on the GPU machine, from the repository root,
#                                            with .whl/ carried along; one stage a command:
#     tests       the GPU-equals-CPU tests, then the whole suite (its xp fixture runs every
#                 numerical test on CuPy too)
#     quick       cpu_vs_gpu.py --quick: every system runs, nothing is kept (about a minute)
#     throughput  training samples/s, NumPy to PyTorch CUDA, against the 2-core NumPy figure
#     inference   x real time on 3 minutes of 44.1 kHz audio
#     quality     val ESR against training seconds, CPU defaults against GPU defaults
#     lease       issue 18's checks in one command, each step under its own time limit and
#                 the whole within LEASE_SECONDS (default 450): the GPU tests; throughput at
#                 H 32, B 1024; where a step's time goes (step_breakdown.py: forward, backward,
#                 Adam, and the host's time to enqueue each, at H 32/64, B 64/1024); quality
#                 at 15 and 30 s on 120 s of audio (GPU batch 64, the
#                 default, and 256); inference at H 32/64; then the whole suite (pytest-xdist,
#                 -n 14 -v, so that a time-out still names each result; --dist loadgroup, so
#                 that the Ray sweeps run one at a time), whose train.py runs take the GPU
#                 (--device auto). Each step's exit status goes to LOGS/gpu.txt. Its plot
#                 (one point) stays behind: at most 8 files come back from a lent machine.
#
# Each stage leaves its log, and RESULTS.md and the plot as --write left them, in LOGS
# (default: $OUT where it is set, else benchmarks/out). Copy the new section of RESULTS.md
# and the plot into the repository by hand: the GPU machine keeps nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

stage=${1:?"usage: benchmarks/gpu_session.sh prepare|tests|quick|throughput|inference|quality|lease [LOGS]"}
NUMPY_REFERENCE=1.15e6      # our NumPy path at H=32, B=1024 on the 2-core build machine (benchmarks/README.md)
WHEEL_PYTHON=3.12           # the GPU machines' python3

if [ "$stage" = prepare ]; then
    mkdir -p .git/info
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version "$WHEEL_PYTHON" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl soundfile cffi pycparser
    echo "carry .whl with each GPU command"
    exit 0
fi

logs=${2:-${OUT:-benchmarks/out}}
mkdir -p "$logs"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$logs/gpu.txt" || true

bench() {   # the benchmark with --write, its files copied next to the log
    python3 benchmarks/cpu_vs_gpu.py "$@" --write --results "$logs/RESULTS.md" --plot "$logs/throughput_vs_batch.png"
}

case $stage in
    tests)      # both runs happen, whatever the first finds; the exit status is the worse of the two
        status=0
        python3 -m pytest -q -rs tests/test_gpu_matches_cpu.py tests/test_cuda_kernels.py 2>&1 \
            | tee "$logs/tests_gpu.log" || status=$?
        timeout 420 python3 -m pytest -q -x -rs 2>&1 | tee "$logs/tests_all.log" || status=$?
        exit "$status" ;;
    quick)
        python3 benchmarks/cpu_vs_gpu.py --quick 2>&1 | tee "$logs/quick.log" ;;
    throughput)
        bench --part throughput --numpy-reference "$NUMPY_REFERENCE" 2>&1 | tee "$logs/throughput.log" ;;
    inference)
        bench --part inference 2>&1 | tee "$logs/inference.log" ;;
    quality)
        bench --part quality 2>&1 | tee "$logs/quality.log" ;;
    lease)      # at most 8 files come back from a lent machine: gpu.txt, six logs, RESULTS.md
        deadline=$((SECONDS + ${LEASE_SECONDS:-450}))
        step() {    # step NAME LIMIT COMMAND...: run under min(LIMIT, time left), log, record the status
            local name=$1 limit=$2; shift 2
            local left=$((deadline - SECONDS))
            if [ "$left" -lt 20 ]; then echo "$name: skipped, ${left} s left" >> "$logs/gpu.txt"; return; fi
            [ "$limit" -gt "$left" ] && limit=$left
            local started=$SECONDS code=0
            timeout -k 15 "$limit" "$@" > "$logs/$name.log" 2>&1 || code=$?
            echo "$name: exit $code in $((SECONDS - started)) s (limit $limit s)" | tee -a "$logs/gpu.txt"
        }
        python3 -c "import sys, numpy, cupy; print(sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__, 'CUDA runtime', cupy.cuda.runtime.runtimeGetVersion())" >> "$logs/gpu.txt" 2>&1 || true
        bench=(python3 benchmarks/cpu_vs_gpu.py --write --results "$logs/RESULTS.md" --plot /tmp/throughput_vs_batch.png)
        step tests_gpu 100 python3 -m pytest -q -rs tests/test_gpu_matches_cpu.py tests/test_cuda_kernels.py \
            tests/test_backend.py tests/test_bench_cpu_vs_gpu.py
        step throughput 60 "${bench[@]}" --part throughput --hidden 32 --batch 1024 --repeats 9 \
            --numpy-reference "$NUMPY_REFERENCE" --systems numpy cupy cupy-step torch-cuda torch-cuda-tf32
        step breakdown 40 python3 benchmarks/step_breakdown.py --device gpu --hidden 32 64 --batch 64 1024
        step quality 150 "${bench[@]}" --part quality --budgets 15 30 --quality-seconds 120 --gpu-batch 64 256
        step inference 40 "${bench[@]}" --part inference --hidden 32 64 --systems cupy cupy-step torch-cuda
        step tests_all 200 python3 -m pytest -rs -v -n 14 --dist loadgroup -p no:cacheprovider -W ignore::UserWarning
        grep -q "exit [^0]\|skipped" "$logs/gpu.txt" && exit 1 || exit 0 ;;
    *)
        echo "unknown stage '$stage': prepare, tests, quick, throughput, inference, quality or lease" >&2
        exit 2 ;;
esac
