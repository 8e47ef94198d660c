#!/usr/bin/env bash
# Distributed training through torchrun, one process per GPU (per CPU slot on
# hosts without CUDA, where the gloo backend is used).
#
#   tools/dist_train.sh CONFIG GPUS [train.py args...]
#
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
# PYTHON selects the interpreter (default: python).
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [train.py args...]" >&2
    exit 2
fi
# shellcheck source=tools/dist_launch.sh
source "$(dirname "$0")/dist_launch.sh"
dist_launch train.py "$2" "$1" --launcher pytorch "${@:3}"
