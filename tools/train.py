"""Train a video instance segmentation model.

Arguments follow mmdet 3.3's ``tools/train.py`` (``--bf16`` is this
project's)::

    python tools/train.py CONFIG [--work-dir DIR] [--amp | --bf16]
        [--auto-scale-lr] [--resume [CHECKPOINT]] [--cfg-options k=v ...]
        [--launcher {none,pytorch,slurm,mpi}] [--local-rank N]

The runner is built as mmdet's ``tools/train.py`` builds it, from the
config's ``runner_type`` in mmengine's root ``RUNNERS`` (mmengine's
``Runner`` without one). The project's configs name ``'mmdet.VISRunner'``,
which loads ``load_from`` / ``--resume`` checkpoints with
``torch.load(weights_only=True)`` and runs distributed on CPU-only hosts.
"""
import argparse

from mmdet.utils import setup_cache_size_limit_of_dynamo
from mmengine.registry import RUNNERS

from mmvis_msts.utils import (close_dist, load_tool_config, parse_tool_args,
                              set_wrapper_type)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train a video instance segmentation model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument(
        '--amp',
        action='store_true',
        help='float16 automatic mixed precision with a dynamic loss scale '
        '(mmengine\'s AmpOptimWrapper; GPU only)')
    precision.add_argument(
        '--bf16',
        action='store_true',
        help='bfloat16 autocast without loss scaling (BF16OptimWrapper; CPU '
        'or GPU, docs/benchmarks.md "bfloat16")')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the actual total batch size '
        '(needs auto_scale_lr.base_batch_size in the config)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from CHECKPOINT, or without a value from the latest '
        'checkpoint in the work dir')
    return parse_tool_args(
        parser, 'train_cfg.max_iters=100 or key="[a,b]" for lists (no spaces)')


def main() -> None:
    args = parse_args()
    # torch.compile (optional in mmengine) recompiles per input shape;
    # mmdet raises the cache limit the same way.
    setup_cache_size_limit_of_dynamo()

    cfg = load_tool_config(args)

    if args.amp:
        set_wrapper_type(cfg, 'AmpOptimWrapper', loss_scale='dynamic')
    if args.bf16:
        set_wrapper_type(cfg, 'BF16OptimWrapper')

    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise ValueError('--auto-scale-lr needs '
                             'auto_scale_lr=dict(base_batch_size=N) in the '
                             f'config {args.config}.')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    runner = RUNNERS.build(cfg)
    runner.train()
    close_dist()


if __name__ == '__main__':
    main()
