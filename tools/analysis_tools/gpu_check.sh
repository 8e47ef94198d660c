#!/usr/bin/env bash
# One prepared run of the op checks that need a GPU, for a lent GPU machine
# (a bare copy of this repo, python3 with a CUDA build of torch, no network).
# Meant to finish well inside 8 minutes; every step has its own time limit,
# cut to what is left of the whole run's budget (GPU_CHECK_BUDGET seconds,
# default 540: the device tool runs a command for at most 600 s), so a slow
# step shortens the steps after it instead of the run overshooting.
#
#   1. builds mmvis_msts._ext with CUDA in place, for the GPU's architecture
#      (TORCH_CUDA_ARCH_LIST from the device unless set);
#   2. runs tests/test_ops (the CUDA cases included);
#   3. runs tools/analysis_tools/benchmark_ops.py on the GPU (mmcv's CUDA op
#      as the baseline when mmcv.ops imports, else ours alone);
#   4. where the full package imports (compiled mmcv), runs
#      tools/analysis_tools/benchmark_vis.py: the R-50 models in float32 and
#      bfloat16 autocast, inference and a training step, and MS-STS VIS
#      inference in bfloat16 under torch.compile;
#   5. writes logs and results under "${OUT:-gpu_results}".
#
# The op needs mmengine and mmdet (for its registry) but not compiled mmcv.
# When the machine lacks them, carry them as wheels in .whl/ (made here with
# `bash tools/analysis_tools/gpu_check.sh --download-wheels`): they are
# installed into a temporary folder. When the full package cannot be imported
# (its model code needs compiled mmcv), the checks import the ops through a
# temporary package that holds only mmvis_msts/ops and the built extension.
#
# Usage:
#   bash tools/analysis_tools/gpu_check.sh              # on the GPU machine
#   bash tools/analysis_tools/gpu_check.sh --dry-run    # here: same steps on CPU
#   bash tools/analysis_tools/gpu_check.sh --download-wheels  # here, networked
#   (then name .whl in the device run's carry)
# Environment: OUT (results folder), PYTHON (default python3), CUDA_HOME,
#   TORCH_CUDA_ARCH_LIST, MAX_JOBS, GPU_CHECK_BUDGET.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-python3}"
# absolute, since the checks run from another folder (keep venv symlinks)
[[ "${PY}" == */* ]] && PY="$(cd "$(dirname "${PY}")" && pwd)/$(basename "${PY}")"
WHEELS="${ROOT}/.whl"

if [[ "${1:-}" == "--download-wheels" ]]; then
  # Pure-Python packages the op's import needs beyond the GPU image's
  # (torch, numpy, opencv, matplotlib, rich, pyyaml, scipy are there), for
  # its Python 3.12; mmcv-lite is mmcv without compiled ops.
  set -e
  mkdir -p "${WHEELS}"
  grep -qx '/.whl/' "${ROOT}/.git/info/exclude" 2>/dev/null ||
    echo '/.whl/' >> "${ROOT}/.git/info/exclude"
  "${PY}" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "${WHEELS}" mmcv-lite==2.1.0 mmengine==0.10.7 mmdet==3.3.0 \
    addict==2.4.0 yapf==0.43.0 termcolor==3.3.0 platformdirs==4.14.8
  ls -l "${WHEELS}"
  exit 0
fi

DEVICE=cuda
if [[ "${1:-}" == "--dry-run" ]]; then
  DEVICE=cpu
elif [[ $# -gt 0 ]]; then
  echo "unknown argument: $1 (see the header of $0)" >&2
  exit 2
fi

mkdir -p "${OUT:-gpu_results}"
OUT_DIR="$(cd "${OUT:-gpu_results}" && pwd)"
exec > >(tee "${OUT_DIR}/gpu_check.log") 2>&1
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mmvis_gpu_check.XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT
FAILED=()
step() { echo; echo "== $(date +%T) $*"; }
DEADLINE=$((SECONDS + ${GPU_CHECK_BUDGET:-540}))
# limit N: a step's time limit, N seconds or what is left of the budget
# (at least 10, so that a step past the budget fails fast and says so)
limit() {
  local left=$((DEADLINE - SECONDS))
  (( left < 10 )) && left=10
  echo $(( $1 < left ? $1 : left ))
}

# -- 0. environment ------------------------------------------------------------
step "environment (${DEVICE})"
if [[ "${DEVICE}" == cuda ]]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  ARCH="$("${PY}" -c 'import torch; assert torch.cuda.is_available(), "torch sees no GPU"; print("%d.%d" % torch.cuda.get_device_capability())')" ||
    { echo "FAILED: ${PY} has no CUDA-enabled torch"; exit 1; }
  export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-${ARCH}}"
  if [[ -z "${CUDA_HOME:-}" ]]; then
    NVCC="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
    export CUDA_HOME="$(dirname "$(dirname "$(readlink -f "${NVCC}")")")"
  fi
  echo "TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST} CUDA_HOME=${CUDA_HOME}"
fi
"${PY}" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)'

# -- 1. carried wheels ---------------------------------------------------------
if compgen -G "${WHEELS}/*.whl" > /dev/null; then
  step "installing carried wheels from .whl/ into ${WORK}/site"
  "${PY}" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --target "${WORK}/site" "${WHEELS}"/*.whl ||
    { echo "FAILED: could not install the carried wheels"; exit 1; }
  export PYTHONPATH="${WORK}/site${PYTHONPATH:+:${PYTHONPATH}}"
fi

# -- 2. build ------------------------------------------------------------------
step "building mmvis_msts._ext in place"
BUILD_ENV=(MAX_JOBS="${MAX_JOBS:-$(nproc)}")
[[ "${DEVICE}" == cuda ]] && BUILD_ENV+=(FORCE_CUDA=1)
(cd "${ROOT}" && env "${BUILD_ENV[@]}" timeout "$(limit 300)" "${PY}" setup.py build_ext --inplace) \
  > "${OUT_DIR}/build.log" 2>&1 ||
  { grep -E -A5 '(error|Error)[: ]' "${OUT_DIR}/build.log" | head -n 60
    echo "FAILED: build (see build.log)"; exit 1; }
grep -E 'Compiling mmvis_msts._ext' "${OUT_DIR}/build.log"

# -- 3. import the ops -----------------------------------------------------------
# Checks run outside the repo root so that `mmvis_msts` resolves through
# PYTHONPATH: the real package, or the ops-only overlay below.
BASE_PYTHONPATH="${PYTHONPATH:-}"
export PYTHONPATH="${ROOT}${BASE_PYTHONPATH:+:${BASE_PYTHONPATH}}"
if ! (cd "${WORK}" && "${PY}" -c 'import mmvis_msts') > "${OUT_DIR}/import_package.log" 2>&1; then
  step "the full package does not import here (see import_package.log); using an ops-only package"
  tail -n 1 "${OUT_DIR}/import_package.log"
  mkdir -p "${WORK}/overlay/mmvis_msts"
  echo '"""mmvis_msts with only its ops (made by gpu_check.sh)."""' \
    > "${WORK}/overlay/mmvis_msts/__init__.py"
  ln -s "${ROOT}/mmvis_msts/ops" "${WORK}/overlay/mmvis_msts/ops"
  ln -s "${ROOT}"/mmvis_msts/_ext*.so "${WORK}/overlay/mmvis_msts/"
  export PYTHONPATH="${WORK}/overlay${BASE_PYTHONPATH:+:${BASE_PYTHONPATH}}"
fi
(cd "${WORK}" && "${PY}" -c "
import mmvis_msts.ops as ops
print('ops from', ops.__file__, '| kernel for ${DEVICE}:', ops.ext_available('${DEVICE}'))
assert ops.ext_available('${DEVICE}'), 'the ${DEVICE} kernel is not built'
") || { echo "FAILED: mmvis_msts.ops does not import (carry mmengine/mmdet wheels, see the header)"; exit 1; }

# -- 4. tests ---------------------------------------------------------------------
step "tests/test_ops"
PYTEST_ARGS=(-q -p no:cacheprovider -rs --junitxml="${OUT_DIR}/test_ops.xml")
if ! (cd "${WORK}" && "${PY}" -c 'import mmcv.ops') > /dev/null 2>&1; then
  echo "mmcv.ops does not import here: deselecting the comparison with mmcv's" \
    "module and the build through mmdet's registry (it imports mmdet.models)"
  PYTEST_ARGS+=(-k 'not matches_mmcv and not mmdet_registry')
fi
# in worker processes where pytest-xdist is there: a test that crashes the
# interpreter is then reported by name and the others still run
if (cd "${WORK}" && "${PY}" -c 'import xdist') > /dev/null 2>&1; then
  PYTEST_ARGS+=(-p xdist -n 4)
fi
(cd "${WORK}" && timeout "$(limit 120)" "${PY}" -m pytest "${ROOT}/tests/test_ops" "${PYTEST_ARGS[@]}") \
  2>&1 | tee "${OUT_DIR}/test_ops.log" | tail -n 25
[[ "${PIPESTATUS[0]}" -eq 0 ]] || FAILED+=(tests)

# -- 5. benchmark -----------------------------------------------------------------
step "benchmark on ${DEVICE}"
BENCH_ARGS=(--device "${DEVICE}" --out "${OUT_DIR}/benchmark_ops_${DEVICE}.md")
[[ "${DEVICE}" == cpu ]] && BENCH_ARGS+=(--repeat 1 --shapes decoder)
(cd "${WORK}" && timeout "$(limit 60)" "${PY}" "${ROOT}/tools/analysis_tools/benchmark_ops.py" "${BENCH_ARGS[@]}") \
  > "${OUT_DIR}/benchmark.log" 2>&1 || FAILED+=(benchmark)
cat "${OUT_DIR}/benchmark_ops_${DEVICE}.md" 2>/dev/null || tail -n 20 "${OUT_DIR}/benchmark.log"

# -- 6. model benchmark -----------------------------------------------------------
# MS-STS VIS, SeqFormer and Mask2Former-VIS R-50 in float32 and bfloat16
# autocast (docs/benchmarks.md); the model code needs compiled mmcv, so this
# step runs only where the full package imports.
step "model benchmark on ${DEVICE}"
if [[ "${PYTHONPATH}" == "${WORK}/overlay"* ]]; then
  echo "skipped: the full package does not import here (import_package.log);" \
    "the models need mmcv with its compiled ops" | tee "${OUT_DIR}/benchmark_vis_skipped.txt"
else
  if [[ "${DEVICE}" == cuda ]]; then
    VIS_ARGS=(--preset r50 --models msts msts_bf16 seqformer seqformer_bf16 m2f m2f_bf16
              --tasks infer5 train5 --repeats 3 --threads 4)
    VIS_LIMIT=180
    # torch.compile (inductor) of MS-STS VIS in bfloat16, inference only: its
    # first call compiles, so it gets its own limit and out-dir, and a
    # failure or time-out there loses none of the figures above
    COMPILE_ARGS=(--preset r50 --models msts_bf16 msts_bf16_compile --tasks infer5
                  --repeats 3 --threads 4)
    COMPILE_LIMIT=150
  else  # the dry run: the tiny configs, tiny input
    VIS_ARGS=(--preset tiny --models msts msts_bf16 --size 64 96 --tasks infer2 train2
              --repeats 1 --warmup 0 --threads 1)
    VIS_LIMIT=120
    COMPILE_ARGS=(--preset tiny --models msts msts_compile --size 64 96 --tasks infer2
                  --repeats 1 --threads 1)
    COMPILE_LIMIT=240
  fi
  (cd "${WORK}" && timeout "$(limit "${VIS_LIMIT}")" "${PY}" "${ROOT}/tools/analysis_tools/benchmark_vis.py" \
    --device "${DEVICE}" "${VIS_ARGS[@]}" --out-dir "${OUT_DIR}/benchmark_vis") \
    > "${OUT_DIR}/benchmark_vis.log" 2>&1 || FAILED+=(model-benchmark)
  cat "${OUT_DIR}/benchmark_vis/benchmark_vis.md" 2>/dev/null || tail -n 20 "${OUT_DIR}/benchmark_vis.log"
  step "model benchmark under torch.compile on ${DEVICE}"
  (cd "${WORK}" && timeout "$(limit "${COMPILE_LIMIT}")" "${PY}" "${ROOT}/tools/analysis_tools/benchmark_vis.py" \
    --device "${DEVICE}" "${COMPILE_ARGS[@]}" --out-dir "${OUT_DIR}/benchmark_vis_compile") \
    > "${OUT_DIR}/benchmark_vis_compile.log" 2>&1 || FAILED+=(model-benchmark-compile)
  cat "${OUT_DIR}/benchmark_vis_compile/benchmark_vis.md" 2>/dev/null \
    || tail -n 20 "${OUT_DIR}/benchmark_vis_compile.log"
fi

step "results in ${OUT_DIR}: $(ls "${OUT_DIR}" | tr '\n' ' ')"
if [[ ${#FAILED[@]} -gt 0 ]]; then
  echo "FAILED: ${FAILED[*]}"
  exit 1
fi
echo "OK: build, tests and benchmarks passed on ${DEVICE}"
