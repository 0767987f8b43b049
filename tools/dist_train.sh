#!/usr/bin/env bash
# Distributed training through PyTorch's launcher (DDP), one process per GPU:
#   tools/dist_train.sh CONFIG GPUS [train.py flags]
# Several machines: NNODES, NODE_RANK, MASTER_ADDR and PORT, as in mmdet.
# A worker that dies makes torchrun stop the others and exit non-zero; a hung peer
# fails the others' collectives after env_cfg.dist_cfg.timeout seconds (default 1800).
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
cd "$(dirname "$0")/.." || exit 1
PYTHONPATH="$PWD:$PYTHONPATH" \
"$PYTHON" -m torch.distributed.run --nnodes="$NNODES" --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" --nproc_per_node="$GPUS" --master_port="$PORT" \
    tools/train.py "$CONFIG" --launcher pytorch "${@:3}"
