#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment and install everything:
# torch, mmengine 0.10.7, mmcv 2.1.0 (built from source), mmdet 3.3.0 and this
# plugin with its compiled ops. Idempotent: on a ready environment whose inputs
# have not changed it only checks the imports and returns in seconds.
#
# Environment:
#   MMVIS_VENV     where the environment lives (default: .venv in the repo)
#   PYTHON         interpreter that creates it (default: python3.11)
#   TORCH_SPEC     torch requirement when torch is not installed yet
#                  (default: torch==2.13.0, the CPU wheel on CPU machines)
#   FORCE_CUDA=1, TORCH_CUDA_ARCH_LIST, MAX_JOBS   passed to the op builds
#   MMVIS_WITH_OPS=0   install the plugin without compiling its ops
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMVIS_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
STAMP="$VENV/.mmvis_setup_stamp"

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

# Everything that decides what gets installed or compiled.
inputs_hash() {
  (cd "$ROOT" && cat setup.py requirements/*.txt \
      $(find ops/csrc -type f | sort) 2>/dev/null
   echo "$TORCH_SPEC ${FORCE_CUDA:-} ${TORCH_CUDA_ARCH_LIST:-} ${MMVIS_WITH_OPS:-1}"
  ) | sha256sum | cut -d' ' -f1
}

check_imports() {
  "$VENV/bin/python" - <<'PY'
import mmcv, mmdet, mmengine, torch
import mmcv.ops  # noqa: F401  (needs mmcv._ext)
import mmvis_msts
from mmvis_msts.ops import ext_available
print(f'torch {torch.__version__}, mmengine {mmengine.__version__}, '
      f'mmcv {mmcv.__version__}, mmdet {mmdet.__version__}, '
      f'mmvis_msts {mmvis_msts.__version__}, compiled ops: {ext_available()}')
PY
}

HASH="$(inputs_hash)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" ]] && check_imports; then
  log "environment at $VENV is ready"
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtual environment $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)

if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  log "installing $TORCH_SPEC"
  "${PIP[@]}" "$TORCH_SPEC"
fi
# After torch: torch pulls a setuptools without pkg_resources, which mmcv's
# setup.py and mmengine 0.10.7 still import.
log "installing build requirements"
"${PIP[@]}" -r "$ROOT/requirements/build.txt"
"${PIP[@]}" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"

if ! "$VENV/bin/python" -c 'import mmcv.ops' 2>/dev/null; then
  log "building mmcv 2.1.0 from source (about 6 minutes on 2 cores; pip caches the wheel)"
  MMCV_WITH_OPS=1 "${PIP[@]}" --no-build-isolation mmcv==2.1.0
fi
log "installing mmengine and mmdet"
"${PIP[@]}" -r "$ROOT/requirements/mminstall.txt"

log "installing mmvis-msts (editable) and compiling its ops"
(cd "$ROOT" && "${PIP[@]}" --no-build-isolation -e .)

check_imports
echo "$HASH" > "$STAMP"
log "environment at $VENV is ready"
