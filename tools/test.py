"""Test (and evaluate) a video instance segmentation model.

Arguments follow mmdet 3.3's ``tools/test.py``::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out PREFIX]
        [--show] [--show-dir DIR] [--wait-time S] [--compile [BACKEND]]
        [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]
        [--local-rank N]

``--out PREFIX`` writes ``PREFIX.json`` and ``PREFIX.submission_file.zip``
(YouTube-VIS / OVIS server format). For a split without annotations add
``--cfg-options test_evaluator.format_only=True`` to only write those files.
``--compile`` runs the network under ``torch.compile``
(``mmvis_msts.apis.compile_model``; docs/inference.md, "torch.compile").
"""
import argparse

from mmdet.engine.hooks.utils import trigger_visualization_hook
from mmengine.config import Config, ConfigDict
from mmengine.registry import RUNNERS

from mmvis_msts.apis import compile_model
from mmvis_msts.utils import (add_compile_argument, close_dist,
                              load_tool_config, parse_tool_args)

# Metrics that take an ``outfile_prefix`` in the YouTube-VIS format.
VIS_METRICS = ('VISMetric', 'YouTubeVISMetric')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a video instance segmentation model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the dir to save the evaluation metrics and logs')
    parser.add_argument(
        '--out',
        help='prefix of the result files: PREFIX.json and '
        'PREFIX.submission_file.zip (results.json inside)')
    parser.add_argument(
        '--show', action='store_true', help='show the predictions')
    parser.add_argument(
        '--show-dir',
        help='save painted frames under work_dir/<timestamp>/SHOW_DIR')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    add_compile_argument(parser, 'each new video length')
    return parse_tool_args(parser, 'test_evaluator.format_only=True')


def set_outfile_prefix(cfg: Config, prefix: str) -> None:
    """Point every YouTube-VIS metric of ``test_evaluator`` at ``prefix``."""
    if prefix.endswith(('.pkl', '.pickle')):
        raise ValueError(
            f'--out {prefix}: VIS results are written as YouTube-VIS json '
            '(PREFIX.json + PREFIX.submission_file.zip); give a prefix.')
    if prefix.endswith('.json'):
        prefix = prefix[:-len('.json')]
    evaluators = cfg.test_evaluator
    if isinstance(evaluators, (dict, ConfigDict)):
        evaluators = [evaluators]
    vis_metrics = [e for e in evaluators if e.get('type') in VIS_METRICS]
    if not vis_metrics:
        raise ValueError(
            f'--out needs a test_evaluator of type {VIS_METRICS}, the config '
            f'has {[e.get("type") for e in evaluators]}.')
    for metric in vis_metrics:
        metric.outfile_prefix = prefix


def main() -> None:
    args = parse_args()

    cfg = load_tool_config(args)
    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.out is not None:
        set_outfile_prefix(cfg, args.out)

    runner = RUNNERS.build(cfg)
    if args.compile:
        # in place: the checkpoint runner.test() loads keeps its names
        parts = compile_model(runner.model, backend=args.compile)
        runner.logger.info(f'torch.compile ({args.compile}): '
                           f'{", ".join(parts)}; each new video length '
                           'compiles first (minutes at R-50 size on a CPU)')
    runner.test()
    close_dist()


if __name__ == '__main__':
    main()
