#!/usr/bin/env bash
# GPU check (issue 17): every CUDA path of simclr_core against its CPU reference, an STL10-sized epoch on this
# GPU, and the fast recipe's GPU variant for 3 minutes on CIFAR-10. From the repository root, on any CUDA machine:
#
#   bash benchmarks/gpu_check.sh [--out DIR] [--write-benchmarks] [--cifar FILE.tar.gz] [--python PY] [--no-install]
#                                [--skip-tests] [--skip-bench] [--skip-recipe] [--quick] [--device cuda|cpu]
#
#   1. environment: --python PY, else .venv when it has a CUDA torch, else .venv-gpu made with `pip install -r
#      requirements.txt` (+ pytest); where pip cannot install (no network), the machine's python3 is used if it
#      holds torch (CUDA), torchvision, pytorch-lightning, numba, pillow and pytest (the versions are printed);
#   2. the tests marked `cuda` (tests/test_cuda.py, SIMCLR_REQUIRE_CUDA=1: no skipping);
#   3. the training benchmark, batches 256 and 1024 (simclr_core/bench/gpu_bench.py);
#   4. `train --recipe fast --max-minutes 3 --device cuda` on CIFAR-10 (../shared/data/cifar10-train.tar.gz,
#      --cifar, $GPU_CHECK_CIFAR, or shared/data/ or .gpu-carry/ in the checkout), carved 80/20, then kNN;
#   5. the report: DIR/gpu_check.md (targets, tables), DIR/*.json, DIR/gpu_check.log; --write-benchmarks also
#      replaces the `gpu` block of BENCHMARKS.md (copied to DIR). From a fetched DIR (copied somewhere writable):
#      python -m simclr_core.bench.gpu_bench report --out DIR --write-benchmarks BENCHMARKS.md
#
# DIR is --out, else $OUT, else test-artifacts/gpu-check. Budget: $GPU_CHECK_BUDGET_S (default 470 s) for the
# whole check; the recipe's minutes shrink to what is left. --quick --device cpu runs the plumbing on a CPU.
# Exit status: 0 all checks passed and targets met; 1 a check failed; 2 no usable Python or no CUDA; 3 a target
# was missed or not measured.
set -uo pipefail

START=$(date +%s)
BUDGET_S=${GPU_CHECK_BUDGET_S:-470}
OUT_DIR=${OUT:-test-artifacts/gpu-check}
DEVICE=cuda
QUICK=0 WRITE=0 NO_INSTALL=0 SKIP_TESTS=0 SKIP_BENCH=0 SKIP_RECIPE=0
PY_ARG="" CIFAR="${GPU_CHECK_CIFAR:-}"
RECIPE_MINUTES=3

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT_DIR=$2; shift ;;
        --write-benchmarks) WRITE=1 ;;
        --cifar) CIFAR=$2; shift ;;
        --python) PY_ARG=$2; shift ;;
        --no-install) NO_INSTALL=1 ;;
        --skip-tests) SKIP_TESTS=1 ;;
        --skip-bench) SKIP_BENCH=1 ;;
        --skip-recipe) SKIP_RECIPE=1 ;;
        --quick) QUICK=1 ;;
        --device) DEVICE=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu_check: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ ! -f simclr_core/bench/gpu_bench.py ]; then
    echo "gpu_check: run it from the repository root (bash benchmarks/gpu_check.sh)" >&2
    exit 2
fi
mkdir -p "$OUT_DIR" || exit 2
OUT_DIR=$(cd "$OUT_DIR" && pwd)
LOG="$OUT_DIR/gpu_check.log"
rm -f "$OUT_DIR"/{cuda_tests.txt,gpu_bench.json,recipe.json,gpu_check.md,BENCHMARKS.md}  # this run's results only
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1
TEE_PID=$!
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
FAILED=()

say() { echo; echo "=== [$(($(date +%s) - START)) s] $*"; }
left() { echo $((BUDGET_S - ($(date +%s) - START))); }

# -- 1. environment --------------------------------------------------------------------------------------------
NEEDS='import torch, torchvision, pytorch_lightning, numba, numpy, PIL, pytest'
has_all() { "$1" -c "$NEEDS" >/dev/null 2>&1; }
index_reachable() {  # a configured mirror, or pypi.org answering within 3 s (an offline machine must not wait on pip)
    [ -n "${PIP_INDEX_URL:-}${PIP_FIND_LINKS:-}${PIP_EXTRA_INDEX_URL:-}" ] ||
        "$BASE" -c 'import socket; socket.create_connection(("pypi.org", 443), timeout=3).close()' >/dev/null 2>&1
}
has_cuda() { "$1" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; }

say "environment"
PY=""
if [ -n "$PY_ARG" ]; then
    PY=$PY_ARG
elif [ -x .venv/bin/python ] && has_all .venv/bin/python && { [ "$DEVICE" = cpu ] || has_cuda .venv/bin/python; }; then
    PY=.venv/bin/python
    echo "using .venv (its requirements were installed by make)"
else
    VENV=${GPU_CHECK_VENV:-.venv-gpu}
    BASE=${PYTHON:-python3}
    STAMP="$VENV/.gpu-check-installed"
    WANT=$(cat requirements.txt | sha1sum | cut -c1-40)
    if [ "$NO_INSTALL" = 0 ] && [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ] && ! index_reachable; then
        echo "WARNING: no package index reachable (pypi.org:443, no PIP_INDEX_URL/PIP_FIND_LINKS): pip is not tried"
    elif [ "$NO_INSTALL" = 0 ] && [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
        if [ -x "$VENV/bin/python" ] || "$BASE" -m venv --system-site-packages "$VENV"; then
            echo "pip install -r requirements.txt pytest pytest-timeout into $VENV (pins: $(grep -E '^torch' requirements.txt | tr '\n' ' '))"
            if timeout 420 "$VENV/bin/python" -m pip install -q --disable-pip-version-check --retries 1 --timeout 20 \
                -r requirements.txt pytest pytest-timeout; then
                echo "$WANT" >"$STAMP"
            else
                echo "WARNING: pip could not install requirements.txt here (no network?)"
            fi
        else
            echo "WARNING: $BASE -m venv failed (no ensurepip?)"
        fi
    fi
    if [ "$(cat "$STAMP" 2>/dev/null)" = "$WANT" ] && has_all "$VENV/bin/python"; then
        PY=$VENV/bin/python
    elif has_all "$BASE"; then
        PY=$(command -v "$BASE")
        echo "WARNING: the pins of requirements.txt are NOT applied: using $PY and the packages it already has"
    fi
fi
if [ -z "$PY" ] || ! has_all "$PY"; then
    echo "gpu_check: no Python with: $NEEDS"
    echo "  on an offline machine, carry wheels of what is missing or pass --python PATH"
    exit 2
fi
"$PY" - <<'EOF'
import platform, torch, torchvision, pytorch_lightning, numba
print(f"python {platform.python_version()} ({__import__('sys').executable}); torch {torch.__version__} "
      f"(CUDA build {torch.version.cuda}); torchvision {torchvision.__version__}; "
      f"pytorch-lightning {pytorch_lightning.__version__}; numba {numba.__version__}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, "
          f"bf16 {torch.cuda.is_bf16_supported()}, {torch.cuda.device_count()} visible")
EOF
if [ "$DEVICE" != cpu ] && ! has_cuda "$PY"; then
    echo "gpu_check: no CUDA device visible to $PY (torch.cuda.is_available() is False); nothing to check"
    echo "  (for a CPU run of the plumbing: bash benchmarks/gpu_check.sh --quick --device cpu)"
    exit 2
fi
[ "$DEVICE" != cpu ] && export SIMCLR_REQUIRE_CUDA=1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total,clocks.sm \
    --format=csv,noheader

# -- 2. the tests marked cuda ------------------------------------------------------------------------------------
TESTS_ARGS=(--tests-log /nonexistent)  # skipped: no test row in the report
if [ "$SKIP_TESTS" = 0 ]; then
    say "CUDA checks: pytest -m cuda tests/test_cuda.py"
    timeout -k 10 240 "$PY" -m pytest -m cuda tests/test_cuda.py -q -rs -p no:cacheprovider -o addopts="" \
        2>&1 | tee "$OUT_DIR/cuda_tests.txt"
    TESTS_RC=${PIPESTATUS[0]}
    echo "gpu_check: pytest exit status $TESTS_RC" >>"$OUT_DIR/cuda_tests.txt"
    [ "$TESTS_RC" = 0 ] || FAILED+=("CUDA checks (pytest exit $TESTS_RC)")
    TESTS_ARGS=(--tests-rc "$TESTS_RC" --tests-log "$OUT_DIR/cuda_tests.txt")
fi

# -- 3. the training benchmark ------------------------------------------------------------------------------------
if [ "$SKIP_BENCH" = 0 ]; then
    say "training benchmark: 96 px ResNet-18, bf16 + channels_last, STL10-sized epoch (batches 256, 1024)"
    if [ "$QUICK" = 1 ]; then BENCH=(--quick --batches 8); else BENCH=(--batches 256,1024); fi
    "$PY" -m simclr_core.bench.gpu_bench bench --out "$OUT_DIR" --device "$DEVICE" --timeout 200 "${BENCH[@]}"
    rc=$?
    [ -f "$OUT_DIR/gpu_bench.json" ] || FAILED+=("training benchmark (exit $rc, no gpu_bench.json)")
fi

# -- 4. the fast recipe on CIFAR-10 -------------------------------------------------------------------------------
if [ "$SKIP_RECIPE" = 0 ]; then
    say "fast recipe (GPU variant) on CIFAR-10, then kNN on the carved split"
    if [ -z "$CIFAR" ]; then
        for c in ../shared/data/cifar10-train.tar.gz shared/data/cifar10-train.tar.gz .gpu-carry/cifar10-train.tar.gz; do
            [ -f "$c" ] && CIFAR=$c && break
        done
    fi
    HAS_RECIPE=0
    "$PY" -m simclr_core train --help 2>/dev/null | grep -q -- "--recipe" && HAS_RECIPE=1
    SKIP=""
    if [ "$QUICK" = 1 ]; then  # the plumbing on the built-in shapes: seconds of training
        TRAIN=shapes:train?n=20 TEST=shapes:test?n=10 MINUTES=0.3
        RECIPE=$([ "$HAS_RECIPE" = 1 ] && echo fast || echo "")
        EXTRA=(--image-size 32 --batch-size 32 --epochs 1)
    else
        TRAIN="$CIFAR?split=train" TEST="$CIFAR?split=test" RECIPE=fast EXTRA=()
        MINUTES=$(( ($(left) - 100) / 60 ))
        [ "$MINUTES" -gt "$RECIPE_MINUTES" ] && MINUTES=$RECIPE_MINUTES
        if [ -z "$CIFAR" ]; then
            SKIP="no CIFAR-10 archive: pass --cifar FILE, or put cifar10-train.tar.gz in ../shared/data/ or .gpu-carry/"
        elif [ ! -f "$CIFAR" ]; then
            SKIP="--cifar $CIFAR: no such file"
        elif [ "$HAS_RECIPE" = 0 ]; then
            SKIP="this checkout's train has no --recipe yet (issue 11 adds it); rerun once it has"
        elif [ "$MINUTES" -lt 1 ]; then
            SKIP="only $(left) s of the ${BUDGET_S} s budget left; raise GPU_CHECK_BUDGET_S"
        elif [ "$MINUTES" -lt "$RECIPE_MINUTES" ]; then
            echo "NOTE: $MINUTES min instead of $RECIPE_MINUTES: that is what the ${BUDGET_S} s budget leaves"
        fi
    fi
    if [ -n "$SKIP" ]; then
        echo "SKIPPED: $SKIP"
        "$PY" -m simclr_core.bench.gpu_bench recipe --out "$OUT_DIR" --train-spec - --test-spec - --skip "$SKIP"
    else
        echo "python -m simclr_core train --data '$TRAIN' --recipe ${RECIPE:-<none>} --max-minutes $MINUTES --device $DEVICE"
        "$PY" -m simclr_core.bench.gpu_bench recipe --out "$OUT_DIR" --train-spec "$TRAIN" --test-spec "$TEST" \
            --minutes "$MINUTES" --device "$DEVICE" --recipe "$RECIPE" --timeout $(($(left) + 60)) -- "${EXTRA[@]}"
        rc=$?
        [ -f "$OUT_DIR/recipe.json" ] || FAILED+=("fast recipe run (exit $rc, no recipe.json)")
    fi
fi

# -- 5. the report -----------------------------------------------------------------------------------------------
say "report"
REPORT_ARGS=(--out "$OUT_DIR" "${TESTS_ARGS[@]}")
[ "$WRITE" = 1 ] && REPORT_ARGS+=(--write-benchmarks BENCHMARKS.md)
"$PY" -m simclr_core.bench.gpu_bench report "${REPORT_ARGS[@]}"
CODE=$?
[ "$WRITE" = 1 ] && [ -f BENCHMARKS.md ] && cp BENCHMARKS.md "$OUT_DIR/BENCHMARKS.md"
if [ ${#FAILED[@]} -gt 0 ]; then
    printf 'FAILED: %s\n' "${FAILED[@]}"
    CODE=1
fi
say "done in $(($(date +%s) - START)) s (exit $CODE); files in $OUT_DIR: $(cd "$OUT_DIR" && ls | tr '\n' ' ')"
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null  # the log is complete before the folder is collected
exit $CODE
