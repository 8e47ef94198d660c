#!/usr/bin/env bash
# The main job: set up, generate the synthetic data, train the tiny MS-STS
# VIS config on CPU, evaluate it on the val split (100 unseen videos) and
# render a video of its predictions on a val clip. Prints the val mAP and the
# wall time of every stage at the end. See docs/main_job.md.
#
# Usage: bash tools/run_main_job.sh [extra --cfg-options for train.py ...]
#
# Environment:
#   WORK_DIR      outputs (default: work_dirs/main_job)
#   DATA_ROOT     synthetic data set (default: data/synthetic_vis)
#   CONFIG        config (default: the tiny MS-STS synthetic config)
#   GEN_ARGS      extra generator arguments, e.g. "--num-train 2000"
#                 (a change of settings needs --force, which regenerates)
#   GEN_WORKERS   generator processes (default: 2)
#   SKIP_SETUP=1  skip tools/setup_env.sh (environment already checked)
#   VIDEO_INDEX   val video to render (default: 0)
#   SCORE_THR     draw predictions scoring at least this (default: 0.2)
#   MMVIS_VENV    virtual environment (default: .venv, as setup_env.sh)
#   OMP_NUM_THREADS  torch threads of training (default: the cores other
#                 processes leave idle when training starts, at least 1;
#                 see below)
#   BF16          train in bfloat16 autocast (tools/train.py --bf16): auto
#                 (default: on where the CPU has AVX512-BF16 or AMX, off
#                 where bfloat16 would be emulated), 1 or 0
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONFIG="${CONFIG:-configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py}"
WORK_DIR="${WORK_DIR:-work_dirs/main_job}"
DATA_ROOT="${DATA_ROOT:-data/synthetic_vis}"
GEN_ARGS="${GEN_ARGS:-}"
GEN_WORKERS="${GEN_WORKERS:-2}"
VIDEO_INDEX="${VIDEO_INDEX:-0}"
# the tiny model's scores are low (about 0.3 for a found object)
SCORE_THR="${SCORE_THR:-0.2}"
VENV="${MMVIS_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

export PYTHONUNBUFFERED=1

# bfloat16 where the CPU computes it natively: the same val AP within the
# seed spread, faster steps (docs/main_job.md, "bfloat16")
BF16="${BF16:-auto}"
if [[ "$BF16" == auto ]]; then
  if grep -qw -E 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null; then
    BF16=1
  else
    BF16=0
  fi
fi
case "$BF16" in
  1) PRECISION=(--bf16) ;;
  0) PRECISION=() ;;
  *) echo "BF16 must be auto, 1 or 0, got '$BF16'" >&2; exit 2 ;;
esac

declare -a STAGES=() TIMES=()
log() { printf '\033[1;32m[main-job]\033[0m %s\n' "$*"; }

# How long each stage usually takes on 2 CPU cores with the default config:
# docs/main_job.md's runs of the current config (backbone strides 4/8/16), in
# bfloat16 on an idle machine with 2 threads (train 600 s, 637 s in all) and
# beside one training run (data 4 s, train 784 s, test 20 s, render 5 s:
# 813 s), and the runs of the config before, whose training step was
# 1.34x faster, in float32 beside one benchmark job (train 1,157 s) and beside
# four other jobs (train 3,090-3,172 s, test 86 s); the set-up as measured in
# tools/setup_env.sh's header. A machine shared with other jobs takes longer.
declare -A USUAL=(
  [train]="about 10-55 min (bfloat16: 600 s on an idle 2-core AMD EPYC with 2 threads, 748 s with 1; 784 s beside one training run; float32 with an older config: 1,157 s beside one job, 3,170 s beside four)"
  [test]="about 20-90 s (20 s, 30 s and 86 s measured)"
  [render]="about 10-30 s"
)
SETUP_COLD="18 to about 35 min with a cold pip cache (mmcv build 15-31 min; 24 min in all on a fresh machine)"
SETUP_WARM="3-5 min with pip's cache warm"
if [[ "${SKIP_SETUP:-0}" == 1 ]]; then
  NOW_SETUP="skipped (SKIP_SETUP=1)"
elif [[ -f "$VENV/.mmvis_setup_stamp" ]]; then
  NOW_SETUP="ready .venv"
  USUAL[setup]="seconds (import check; more if the requirements changed)"
else
  NOW_SETUP="no ready .venv"
  USUAL[setup]="$SETUP_COLD, $SETUP_WARM"
fi
if [[ -f "$DATA_ROOT/preview.png" ]]; then
  NOW_DATA="check of $DATA_ROOT"
  USUAL[data]="about 5 s to check"
else
  NOW_DATA="generating $DATA_ROOT"
  USUAL[data]="about 15 s to generate"
fi
log "usual durations on 2 CPU cores (default config; docs/main_job.md):"
printf '  %-6s: %s\n' \
  setup "seconds with a ready .venv (this run: $NOW_SETUP)"
printf '          %s\n' "first run: $SETUP_COLD" "first run: $SETUP_WARM"
printf '  %-6s: %s\n' \
  data "about 15 s to generate, 5 s to check (this run: $NOW_DATA)" \
  train "${USUAL[train]}" test "${USUAL[test]}" render "${USUAL[render]}" \
  total "about 11-55 min after the set-up (637 s on an idle 2-core AMD EPYC, 813 s beside one training run)"
[[ "$CONFIG" == configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py && \
   $# -eq 0 ]] ||
  log "(figures for the default config and options; this run: $CONFIG $*)"

if ((${#PRECISION[@]})); then
  log "training in bfloat16 autocast (BF16=1; BF16=0 for float32)"
else
  log "training in float32 (BF16=0: set so, or no native bfloat16 on this CPU)"
fi

stage() {  # stage NAME COMMAND...: run, time and record a stage
  local name="$1" start end
  shift
  log "stage '$name' (usually ${USUAL[$name]:-?}): $*"
  start=$(date +%s)
  "$@"
  end=$(date +%s)
  STAGES+=("$name")
  TIMES+=("$((end - start))")
  log "stage '$name' done in $((end - start)) s"
}

JOB_START=$(date +%s)
if [[ "${SKIP_SETUP:-0}" != 1 ]]; then
  stage setup bash tools/setup_env.sh
fi
[[ -x "$PY" ]] || { echo "no python at $PY: run tools/setup_env.sh" >&2; exit 1; }

# idempotent: returns at once when $DATA_ROOT holds these settings; the
# preview (a contact sheet of val videos with their masks) is drawn once
PREVIEW=()
[[ -f "$DATA_ROOT/preview.png" && " $GEN_ARGS " != *" --force "* ]] || \
  PREVIEW=(--preview)
# shellcheck disable=SC2086
stage data "$PY" tools/misc/generate_synthetic_vis.py --out "$DATA_ROOT" \
  --workers "$GEN_WORKERS" "${PREVIEW[@]}" $GEN_ARGS

DATA_OPTS=(
  "train_dataloader.dataset.data_root=$DATA_ROOT/"
  "val_dataloader.dataset.data_root=$DATA_ROOT/"
  "test_dataloader.dataset.data_root=$DATA_ROOT/"
)
# Torch threads: every core that is idle when training starts. On an idle
# 2-core machine a main-job step with 2 threads is 1.37x faster than with 1
# (the loader's worker needs about 6 % of a core), but beside one busy
# process it is 3.3x slower (an OpenMP thread waits for the busy core), so
# a busy core is left out, and CPUThreadsHook drops a thread while another
# process takes a core during training (mmvis_msts/utils/machine_info.py;
# docs/benchmarks.md, "Two torch threads on an idle machine").
if [[ -z "${OMP_NUM_THREADS:-}" ]]; then
  read -r OMP_NUM_THREADS IDLE_CORES CORES < <("$PY" mmvis_msts/utils/machine_info.py) || true
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
  log "torch threads: $OMP_NUM_THREADS ($IDLE_CORES of $CORES cores idle; OMP_NUM_THREADS=N overrides)"
else
  log "torch threads: $OMP_NUM_THREADS (OMP_NUM_THREADS)"
fi
# A fresh training every time: the iteration budget starts from zero. No
# validation inside training: the test stage evaluates the last checkpoint.
stage train "$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" \
  "${PRECISION[@]}" --cfg-options "train_dataloader.dataset.data_root=$DATA_ROOT/" \
  val_dataloader=None val_cfg=None val_evaluator=None "$@"

CKPT="$(cat "$WORK_DIR/last_checkpoint")"
[[ -f "$CKPT" ]] || { echo "no checkpoint at '$CKPT'" >&2; exit 1; }

TEST_LOG="$WORK_DIR/test.log"
stage test bash -c 'set -o pipefail; "$0" tools/test.py "$1" "$2" --work-dir "$3" \
  --cfg-options "${@:4}" 2>&1 | tee "$3/test.log"' \
  "$PY" "$CONFIG" "$CKPT" "$WORK_DIR" "${DATA_OPTS[@]}"

stage render "$PY" tools/analysis_tools/render_predictions.py "$CONFIG" \
  "$CKPT" --video-index "$VIDEO_INDEX" --score-thr "$SCORE_THR" \
  --out "$WORK_DIR/demo" \
  --cfg-options "${DATA_OPTS[@]}"
JOB_END=$(date +%s)

# the metric line of mmengine: "... youtube_vis/segm_mAP: 0.xxx ..."
metric() {
  grep -o "youtube_vis/segm_$1: [0-9.]*" "$TEST_LOG" | tail -1 | \
    awk '{print $2}'
}
echo
log '================ summary ================'
printf '  val mAP     : %s\n' "$(metric mAP)"
printf '  val mAP_50  : %s\n' "$(metric mAP_50)"
printf '  val mAP_75  : %s\n' "$(metric mAP_75)"
for i in "${!STAGES[@]}"; do
  printf '  %-8s    : %4d s\n' "${STAGES[$i]}" "${TIMES[$i]}"
done
printf '  total       : %4d s (%d min)\n' "$((JOB_END - JOB_START))" \
  "$(((JOB_END - JOB_START + 59) / 60))"
printf '  checkpoint  : %s\n' "$CKPT"
printf '  test log    : %s\n' "$TEST_LOG"
printf '  demo video  : %s\n' "$WORK_DIR/demo.mp4"
printf '  demo frames : %s\n' "$WORK_DIR/demo.png"
printf '  data preview: %s\n' "$DATA_ROOT/preview.png"
