#!/usr/bin/env bash
# Set up the environment (idempotent) and run the test suite on CPU.
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh tests/test_ops -x`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
exec "${MMVIS_VENV:-$ROOT/.venv}/bin/python" -m pytest tests -q "$@"
