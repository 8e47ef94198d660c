#!/usr/bin/env bash
# torchrun launch shared by dist_train.sh and dist_test.sh; source it, then
#   dist_launch SCRIPT GPUS [SCRIPT args...]
# runs tools/SCRIPT on GPUS processes per node with the repository root on
# PYTHONPATH. Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR
# (127.0.0.1), PORT (29500), PYTHON (python).

dist_launch() {
    local tools_dir script gpus
    tools_dir=$(dirname "${BASH_SOURCE[0]}")
    script=$1
    gpus=$2
    shift 2
    PYTHONPATH="$tools_dir/..${PYTHONPATH:+:$PYTHONPATH}" \
    "${PYTHON:-python}" -m torch.distributed.run \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --nproc_per_node="$gpus" \
        --master_port="${PORT:-29500}" \
        "$tools_dir/$script" "$@"
}
