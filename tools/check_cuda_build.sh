#!/usr/bin/env bash
# Prove that the CUDA sources of mmvis_msts._ext compile and link, on a
# machine without a GPU.
#
# 1. Creates (once) a separate virtualenv with a CUDA build of torch, so the
#    project's CPU venv is never touched.
# 2. Builds the extension with FORCE_CUDA=1 into a temporary folder outside
#    the source tree (no CUDA .so is left where the CPU venv would import it).
# 3. Imports the built module in that venv, checks `with_cuda`, that the
#    object holds device code for the requested architecture, and runs the
#    CPU kernel of that build once against the PyTorch reference.
#
# Usage: bash tools/check_cuda_build.sh
# Environment (defaults):
#   CUDA_HOME=/usr/local/cuda        toolkit root (the folder with bin/nvcc)
#   TORCH_CUDA_ARCH_LIST=9.0         architectures to compile for
#   MMVIS_CUDA_VENV=<repo>/.venv-cuda
#   MMVIS_CUDA_TORCH=2.14.1          torch release with CUDA to install
#   PYTHON=python3                   interpreter that creates the venv
#   MAX_JOBS=2                       parallel compile jobs
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMVIS_CUDA_VENV:-${ROOT}/.venv-cuda}"
TORCH_VERSION="${MMVIS_CUDA_TORCH:-2.14.1}"
PYTHON="${PYTHON:-python3}"
# torch's own CUDA_HOME guess can pick a folder without nvcc: set it here.
export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
export MAX_JOBS="${MAX_JOBS:-2}"

if [[ ! -x "${CUDA_HOME}/bin/nvcc" ]]; then
  echo "ERROR: no nvcc at ${CUDA_HOME}/bin/nvcc; set CUDA_HOME to the CUDA toolkit root" >&2
  exit 1
fi
echo "== nvcc: $("${CUDA_HOME}/bin/nvcc" --version | tail -n 1)"

# -- 1. the CUDA venv (idempotent) -------------------------------------------
if [[ ! -x "${VENV}/bin/python" ]]; then
  echo "== creating ${VENV}"
  "${PYTHON}" -m venv "${VENV}"
fi
VPY="${VENV}/bin/python"
if ! "${VPY}" - "${TORCH_VERSION}" <<'EOF'
import sys
try:
    import ninja, numpy, psutil, setuptools, torch, wheel  # noqa: F401
except ImportError:
    sys.exit(1)
ok = (torch.__version__.split('+')[0] == sys.argv[1]
      and torch.version.cuda is not None
      and int(setuptools.__version__.split('.')[0]) < 81)
sys.exit(0 if ok else 1)
EOF
then
  echo "== installing torch==${TORCH_VERSION} (CUDA build) into ${VENV}"
  "${VPY}" -m pip install "torch==${TORCH_VERSION}" 'setuptools<81' wheel ninja psutil numpy
fi
"${VPY}" -c "import torch; print('== torch', torch.__version__, 'CUDA', torch.version.cuda)"

# -- 2. build outside the source tree ----------------------------------------
BUILD_DIR="$(mktemp -d "${TMPDIR:-/tmp}/mmvis_cuda_build.XXXXXX")"
trap 'rm -rf "${BUILD_DIR}"' EXIT
echo "== building mmvis_msts._ext with CUDA (arch ${TORCH_CUDA_ARCH_LIST}) in ${BUILD_DIR}"
(
  cd "${ROOT}"
  FORCE_CUDA=1 "${VPY}" setup.py build_ext \
    --build-temp "${BUILD_DIR}/temp" --build-lib "${BUILD_DIR}/lib"
) > "${BUILD_DIR}/build.log" 2>&1 || {
  { grep -E -B2 -A6 '(error|Error)[: ]' "${BUILD_DIR}/build.log" | head -n 80
    tail -n 5 "${BUILD_DIR}/build.log"; } >&2
  echo "FAILED: the CUDA build of mmvis_msts._ext did not compile" >&2
  exit 1
}
grep -E 'Compiling mmvis_msts._ext' "${BUILD_DIR}/build.log"
if grep -E -q '(warning|Warning).*ops/csrc' "${BUILD_DIR}/build.log"; then
  echo "== compiler warnings in ops/csrc:"
  grep -E '(warning|Warning).*ops/csrc' "${BUILD_DIR}/build.log" | sort -u
fi
SO="$(find "${BUILD_DIR}/lib" -name '_ext*.so' | head -n 1)"
[[ -n "${SO}" ]] || { echo "FAILED: no _ext*.so under ${BUILD_DIR}/lib" >&2; exit 1; }
new_so="$(find "${ROOT}/mmvis_msts" -name '_ext*.so' -newer "${BUILD_DIR}" -print)"
if [[ -n "${new_so}" ]]; then
  echo "FAILED: the build wrote ${new_so} into the source tree" >&2
  exit 1
fi

# -- 3. inspect and load the built module -------------------------------------
# nvcc must have been asked for device code of every requested architecture
for arch in ${TORCH_CUDA_ARCH_LIST//;/ }; do
  sm="${arch%+PTX}"
  sm="sm_${sm//./}"
  grep -q "code=${sm}" "${BUILD_DIR}/build.log" || {
    echo "FAILED: no nvcc command built ${sm} code" >&2; exit 1; }
done
# the object holds a fat binary and a launch stub per kernel and dtype
objdump -h "${SO}" | grep -q '\.nv_fatbin' || {
  echo "FAILED: ${SO} has no .nv_fatbin section (no device code)" >&2; exit 1; }
KERNELS="$(nm -C "${SO}" | grep -E ' [TtWw] .*ms_deform_attn_(forward|backward)_cuda_kernel<' \
  | sed -E 's/.*(ms_deform_attn_[a-z]+_cuda_kernel<[^>]*>).*/\1/' | sort -u)"
echo "== kernels compiled:" ${KERNELS}
[[ "$(echo "${KERNELS}" | grep -c .)" -eq 8 ]] || {
  echo "FAILED: expected forward and backward kernels for 4 dtypes" >&2; exit 1; }
if [[ -x "${CUDA_HOME}/bin/cuobjdump" ]]; then
  echo "== device code: $("${CUDA_HOME}/bin/cuobjdump" --list-elf "${SO}" | grep -o 'sm_[0-9a-z]*' | sort -u | tr '\n' ' ')"
fi

"${VPY}" - "${SO}" <<'EOF'
import importlib.util
import sys

import torch

spec = importlib.util.spec_from_file_location('_ext', sys.argv[1])
ext = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ext)
assert ext.with_cuda is True, 'the module was built without CUDA'
for name in ('ms_deform_attn_forward', 'ms_deform_attn_backward'):
    assert hasattr(ext, name), f'missing {name}'
# Self-contained check of the CPU kernel in this build (the package itself
# needs mmdet, which this venv lacks): a point at a pixel centre with
# attention weight 1 returns that pixel's value exactly.
shapes = torch.tensor([[4, 5], [2, 3]])
starts = torch.tensor([0, 20])
value = torch.rand(1, 26, 2, 3, dtype=torch.float64)
loc = torch.zeros(1, 2, 2, 2, 1, 2, dtype=torch.float64)
attn = torch.zeros(1, 2, 2, 2, 1, dtype=torch.float64)
picks = [(0, 3, 2), (1, 1, 0)]  # (level, y, x) sampled by query 0 and 1
for q, (level, y, x) in enumerate(picks):
    height, width = shapes[level].tolist()
    loc[0, q, :, level, 0] = torch.tensor([(x + 0.5) / width, (y + 0.5) / height],
                                          dtype=torch.float64)
    attn[0, q, :, level, 0] = 1
out = ext.ms_deform_attn_forward(value, shapes, starts, loc, attn, 64)
expected = torch.stack([value[0, int(starts[level]) + y * shapes[level, 1] + x]
                        for level, y, x in picks]).flatten(1)[None]
err = (out - expected).abs().max().item()
assert err < 1e-12, f'CPU kernel of the CUDA build is off by {err}'
print(f'== import ok: with_cuda={ext.with_cuda}, CPU kernel exact at pixel centres')
EOF
echo "OK: mmvis_msts._ext compiles and links with CUDA (TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST})"
