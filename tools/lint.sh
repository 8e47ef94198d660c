#!/usr/bin/env bash
# Lint gate: flake8, isort and yapf, configured as mmdet 3.3 configures them
# (setup.cfg's [flake8], [isort] and [yapf] sections; versions pinned in
# requirements/tests.txt, installed by tools/setup_env.sh). Exits non-zero on
# any finding.
#
# Usage: bash tools/lint.sh          check only
#        bash tools/lint.sh --fix    sort the imports and format the code in
#                                    place (isort, yapf), then check again
#                                    (flake8's findings are fixed by hand)
# Extra arguments replace the default paths, e.g. tools/lint.sh mmvis_msts/ops
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${MMVIS_VENV:-$ROOT/.venv}/bin"
FIX=0
if [[ "${1:-}" == --fix ]]; then
  FIX=1
  shift
fi
PATHS=("$@")
((${#PATHS[@]})) || PATHS=(mmvis_msts configs tools tests setup.py)

log() { printf '\033[1;35m[lint]\033[0m %s\n' "$*"; }
for tool in flake8 isort yapf; do
  [[ -x "$BIN/$tool" ]] || {
    echo "no $tool in $BIN: run bash tools/setup_env.sh" >&2
    exit 2
  }
done

if ((FIX)); then
  log "isort (in place): ${PATHS[*]}"
  "$BIN/isort" "${PATHS[@]}"
  log "yapf (in place): ${PATHS[*]}"
  "$BIN/yapf" --in-place --recursive "${PATHS[@]}"
fi

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

"$BIN/flake8" "${PATHS[@]}" > "$OUT/flake8" 2>&1
flake8_rc=$?
# isort: the diff on stdout, one "ERROR: <file> Imports are incorrectly
# sorted" line per file on stderr
"$BIN/isort" --check-only --diff "${PATHS[@]}" > "$OUT/isort" 2> "$OUT/isort.err"
isort_rc=$?
"$BIN/yapf" --diff --recursive "${PATHS[@]}" > "$OUT/yapf" 2>&1
yapf_rc=$?

n_flake8=$(grep -cE '^[^:]+:[0-9]+:[0-9]+: ' "$OUT/flake8")
n_isort=$(grep -c 'ERROR: ' "$OUT/isort.err")
n_yapf=$(grep -c '^+++ ' "$OUT/yapf")
cat "$OUT/flake8" "$OUT/isort.err" "$OUT/isort" "$OUT/yapf"

echo
log "flake8: $n_flake8 findings (exit $flake8_rc)"
log "isort : $n_isort files with unsorted imports (exit $isort_rc)"
log "yapf  : $n_yapf files to reformat (exit $yapf_rc)"
if ((flake8_rc || isort_rc || yapf_rc)); then
  ((isort_rc || yapf_rc)) &&
    log "fix the imports and the formatting with: bash tools/lint.sh --fix"
  ((flake8_rc)) &&
    log "fix flake8's findings by hand (file:line:column: code above)"
  exit 1
fi
log "clean"
