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
#   MMVIS_PROGRESS_INTERVAL  seconds between progress lines of the compiled
#                  builds (default: 30); their full output goes to
#                  $MMVIS_VENV/logs/*.log
#
# Time on 2 cores with a cold pip cache (a fresh clone), measured 2026-12-01 on
# a machine shared with other jobs: about 15 minutes for the mmcv build (77
# files), 18 minutes in all; on a busier machine the build took 31 minutes.
# On a fresh machine (2026-12-01, 20:51 UTC): 23 min 57 s in all, the mmcv
# build 21 min 35 s, the plugin's ops 1 min 23 s.
# Later runs take seconds: pip keeps the built mmcv wheel in its cache (a new
# venv reuses it) and a ready venv is only checked.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMVIS_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
STAMP="$VENV/.mmvis_setup_stamp"

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
fmt_secs() {
  if (($1 < 60)); then printf '%d s' "$1"
  else printf '%d min %02d s' $(($1 / 60)) $(($1 % 60)); fi
}

# Reads a build's verbose output: copies it all to the log file ($2) and
# prints a progress line every $3 seconds (files compiled out of the total
# from ninja's "[i/n]" lines, elapsed time since $4, a rough estimate).
IFS= read -r -d '' PROGRESS_PY <<'PY' || true
# Progress filter for a pip build: stdin is the build's verbose output. Every
# line goes to the log file; the terminal gets one line at most every
# INTERVAL s (files compiled, elapsed time, a rough estimate of what is left)
# from ninja's "[i/n]" lines or, without ninja, the compiler command lines.
import os, re, select, sys, time

label, path, interval, t0 = (sys.argv[1], sys.argv[2], float(sys.argv[3]),
                             float(sys.argv[4]))
NINJA = re.compile(rb'^\s*\[(\d+)/(\d+)\] ')
CC = re.compile(rb'^\s*\S*(c\+\+|g\+\+|gcc|clang\+\+|nvcc) .* -c ')
BUILD = re.compile(rb'running build_ext|[Bb]uilding (wheel|editable)')


def fmt(s):
    s = int(s)
    return f'{s // 60} min {s % 60:02d} s' if s >= 60 else f'{s} s'


def say(msg):
    sys.stdout.write(f'\033[1;34m[setup]\033[0m {label}: {msg}\n')
    sys.stdout.flush()


done = total = plain = 0
t_build = None  # when the compiling started (for the estimate)
last = time.time()
fd, rest = sys.stdin.fileno(), b''
with open(path, 'ab') as log:
    while True:
        wait = max(0.2, interval - (time.time() - last))
        if select.select([fd], [], [], wait)[0]:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            log.write(chunk)
            log.flush()
            *lines, rest = (rest + chunk).split(b'\n')
            for line in lines:
                m = NINJA.match(line)
                if m:
                    if not total:
                        say(f'compiling {int(m[2])} files with ninja')
                    done, total = max(done, int(m[1])), int(m[2])
                elif not total and CC.match(line):
                    plain += 1
                elif t_build is None and BUILD.search(line):
                    t_build = time.time()
        now = time.time()
        if now - last < interval:
            continue
        last, el = now, fmt(now - t0)
        if total:
            msg = f'{done}/{total} files compiled, {el} elapsed'
            if done >= total:
                msg += ', linking and installing'
            elif done >= 3:  # a rough estimate, at the rate so far
                left = (now - (t_build or t0)) / done * (total - done)
                msg += (', under a minute left' if left < 60 else
                        f', about {round(left / 60)} min left')
        elif plain:
            msg = f'{plain} files compiled, {el} elapsed'
        elif t_build:
            msg = f'{el} elapsed, compiling (no file finished yet)'
        else:
            msg = f'{el} elapsed'
        say(msg)
PY

# run_build LABEL LOGFILE COMMAND...: run a compiling pip install with its
# verbose output in LOGFILE and progress lines on the terminal; on failure
# show the first errors and the end of the log and stop.
run_build() {
  local label="$1" logf="$2" start rc=0
  shift 2
  mkdir -p "$(dirname "$logf")"
  : > "$logf"
  log "$label: full output in $logf"
  start=$(date +%s)
  # pipefail: the status is the build's unless the filter itself failed
  "$@" 2>&1 | "$VENV/bin/python" -u -c "$PROGRESS_PY" "$label" "$logf" \
    "${MMVIS_PROGRESS_INTERVAL:-30}" "$start" || rc=$?
  if ((rc != 0)); then
    log "$label FAILED (exit $rc) after $(fmt_secs $(($(date +%s) - start)))"
    echo "---- first errors in $logf:" >&2
    grep -n -m 20 -E ': error:|^\s*error:|FAILED:|^\s*ERROR' "$logf" >&2 ||
      true
    echo "---- last 40 lines of $logf:" >&2
    tail -n 40 "$logf" >&2
    echo "---- full output: $logf" >&2
    exit "$rc"
  fi
  log "$label: done in $(fmt_secs $(($(date +%s) - start)))"
}

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
# the compiling installs: verbose, so that ninja's progress reaches run_build
PIP_V=("$VENV/bin/python" -m pip install --disable-pip-version-check -v)
LOGS="$VENV/logs"

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
  mmcv_label="mmcv build"
  if [[ -n "$("$VENV/bin/python" -m pip cache list mmcv-2.1.0 \
          --format abspath 2>/dev/null)" ]]; then
    mmcv_label="mmcv install"
    log "installing mmcv 2.1.0 from the wheel pip built before (seconds)"
  else
    log "building mmcv 2.1.0 from source: about 15 minutes on 2 cores with a" \
      "cold pip cache (31 on a busy machine); pip keeps the wheel, so later" \
      "installs take seconds"
  fi
  MMCV_WITH_OPS=1 run_build "$mmcv_label" "$LOGS/mmcv-2.1.0-build.log" \
    "${PIP_V[@]}" --no-build-isolation mmcv==2.1.0
fi
log "installing mmengine and mmdet"
"${PIP[@]}" -r "$ROOT/requirements/mminstall.txt"

log "installing mmvis-msts (editable) and compiling its ops (1-4 minutes)"
(cd "$ROOT" && run_build "mmvis-msts ops build" "$LOGS/mmvis-msts-build.log" \
  "${PIP_V[@]}" --no-build-isolation -e .)

check_imports
echo "$HASH" > "$STAMP"
log "environment at $VENV is ready"
