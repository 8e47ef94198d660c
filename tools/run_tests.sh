#!/usr/bin/env bash
# Set up the environment (idempotent), run the lint gate (flake8, isort,
# yapf: tools/lint.sh) and the test suite on CPU. Extra arguments go to
# pytest, e.g. `bash tools/run_tests.sh tests/test_ops -x`; MMVIS_LINT=0
# skips the lint gate (CI never sets it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
if [[ "${MMVIS_LINT:-1}" != 0 ]]; then
  bash "$ROOT/tools/lint.sh"
fi
exec "${MMVIS_VENV:-$ROOT/.venv}/bin/python" -m pytest tests -q "$@"
