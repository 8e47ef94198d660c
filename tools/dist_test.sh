#!/usr/bin/env bash
# Distributed testing through torchrun (see dist_train.sh for the env vars).
#
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
set -euo pipefail

if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py args...]" >&2
    exit 2
fi
# shellcheck source=tools/dist_launch.sh
source "$(dirname "$0")/dist_launch.sh"
dist_launch test.py "$3" "$1" "$2" --launcher pytorch "${@:4}"
