"""Ablation of the three MS-STS additions on the tiny main-job setting.

Trains and tests each variant of ``configs/ablation/`` (SeqFormer mode, one
addition each, all three) for every seed at one iteration budget on one data
root, then writes a markdown table::

    python tools/analysis_tools/ablation.py --work-dir work_dirs/ablation \
        --iters 2000 --seeds 0 1 2 [--variants seqformer-mode all-additions] \
        [--data-root data/synthetic_vis_hard] [--bf16]
    python tools/analysis_tools/ablation.py --work-dir work_dirs/ablation \
        --table

Every run has its own work dir ``<work-dir>/<variant>/seed<seed>`` and
writes ``result.json`` (metrics, seconds per iteration, the settings) when
it has trained and tested; a rerun skips the runs that have one, so an
interrupted session loses at most the run in progress. A finished run with
other settings (budget, data root, overrides) is an error, not a skip: use
another ``--work-dir``. Each run is a subprocess (``--run-one``), so runs
share no process state and a failed run leaves the others intact. A run
takes ``OMP_NUM_THREADS`` torch threads when it is set, else the cores that
are idle when it starts (``training_threads`` of
``mmvis_msts/utils/machine_info.py``, as ``tools/run_main_job.sh``), and
its ``result.json`` records them (``torch_threads``).

Budget: ``--iters N`` rescales every iteration count of the schedule by
``N / max_iters`` (the LR warm-up and cosine ends of ``param_scheduler``,
``T_max``, the discriminator's warm-up and ramp), since the configs write
them out for ``max_iters`` at parse time; the schedule keeps its shape.
Validation during training is off (the test after training evaluates the
same split once). ``--bf16`` trains in bfloat16 autocast, as
``tools/train.py --bf16`` (and so the main job, where the CPU computes
bfloat16 natively) does.

Table: per variant, the mean and the sample standard deviation over seeds
of mAP, mAP_50 and mAP_75 (``-`` for the deviation of a single run), and
the mean over seeds of each run's median seconds per training iteration
(mmengine's ``train/time``: data loading plus ``train_step``), and for the
variants with a discriminator its accuracy on real and fake inputs and its
summed loss, averaged over the second half of training (from mmengine's
``vis_data/scalars.json``) and over seeds.
"""
import argparse
import glob
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
from typing import Dict, List, Optional

from mmvis_msts.engine.atomic_files import write_text_atomic
from mmvis_msts.utils.machine_info import training_threads

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'ablation')
# table order; each name is a config file of configs/ablation/
# (no-temporal-decoder: all additions but the one that cost AP on the normal
# split, docs/main_job.md)
VARIANTS = ('seqformer-mode', 'msts-encoder', 'temporal-decoder',
            'discriminator', 'all-additions', 'no-temporal-decoder')
METRICS = ('mAP', 'mAP_50', 'mAP_75')
# the discriminator's logged values the table averages (issue 11's "D
# learns": accuracies above 0.75, summed loss below 1.2)
DISC_KEYS = ('disc_acc_real', 'disc_acc_fake', 'loss_disc')
RESULT = 'result.json'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train and test the MS-STS ablation variants')
    parser.add_argument(
        '--work-dir', required=True, help='one folder per variant and seed')
    parser.add_argument(
        '--table',
        action='store_true',
        help='only write <work-dir>/ablation.md from the finished runs')
    parser.add_argument(
        '--variants',
        nargs='+',
        choices=VARIANTS,
        default=list(VARIANTS),
        help='variants to run (default: all)')
    parser.add_argument(
        '--seeds', nargs='+', type=int, default=[0], help='randomness.seed')
    parser.add_argument(
        '--iters',
        type=int,
        default=None,
        help='training iterations (default: the config\'s max_iters)')
    parser.add_argument(
        '--data-root',
        default=None,
        help='data set root, e.g. data/synthetic_vis_hard (default: the '
        'config\'s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='extra key=value overrides for every run (part of the settings '
        'a finished run must match)')
    parser.add_argument(
        '--bf16',
        action='store_true',
        help='train in bfloat16 autocast, as tools/train.py --bf16 does')
    parser.add_argument(
        '--run-one',
        nargs=2,
        metavar=('VARIANT', 'SEED'),
        help=argparse.SUPPRESS)  # internal: one run, in a subprocess
    return parser.parse_args(argv)


def config_path(variant: str) -> str:
    """The config file of a variant."""
    return osp.join(CONFIG_DIR, f'{variant}.py')


def run_dir(work_dir: str, variant: str, seed: int) -> str:
    """The work dir of one run."""
    return osp.join(work_dir, variant, f'seed{seed}')


def settings(args: argparse.Namespace) -> dict:
    """What a finished run must share with this call to be skipped."""
    wanted = dict(
        iters=args.iters,
        data_root=args.data_root,
        cfg_options=list(args.cfg_options))
    # only when set, so that float32 runs from before the flag still match
    if args.bf16:
        wanted.update(bf16=True)
    return wanted


def scale_schedule(cfg, iters: int) -> None:
    """Rescale every iteration count of the schedule to ``iters``.

    Args:
        cfg (Config): An iteration-based config; changed in place.
        iters (int): The new ``max_iters``.
    """
    base = cfg.train_cfg.max_iters
    ratio = iters / base

    def scaled(n: int) -> int:
        return round(n * ratio)

    for scheduler in cfg.param_scheduler:
        if scheduler.get('by_epoch', True):
            raise ValueError('--iters needs iteration-based schedulers, got '
                             f'{scheduler}')
        begin = scaled(scheduler.get('begin', 0))
        # an interval keeps at least one iteration
        end = max(scaled(scheduler.get('end', base)), begin + 1)
        scheduler.update(begin=begin, end=end)
        if 'T_max' in scheduler:
            scheduler.T_max = end - begin
    cfg.train_cfg.max_iters = iters
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.logger.interval = min(cfg.default_hooks.logger.interval,
                                            iters)
    loss_adv = cfg.model.get('loss_adv')
    if cfg.model.get('discriminator') is not None and loss_adv is not None:
        loss_adv.warmup_iters = scaled(loss_adv.get('warmup_iters', 0))
        loss_adv.ramp_iters = scaled(loss_adv.get('ramp_iters', 0))


def build_config(variant: str, seed: int, work_dir: str,
                 args: argparse.Namespace):
    """The config of one run: variant, seed, precision, budget, data
    root, no validation during training."""
    from mmengine.config import Config, DictAction

    from mmvis_msts.utils.tool_args import set_wrapper_type

    cfg = Config.fromfile(config_path(variant))
    if args.cfg_options:
        # the raw key=value strings are the recorded settings; parse them
        # as tools/train.py does
        options = argparse.ArgumentParser()
        options.add_argument('--o', nargs='+', action=DictAction)
        cfg.merge_from_dict(options.parse_args(['--o', *args.cfg_options]).o)
    cfg.work_dir = work_dir
    cfg.randomness = dict(cfg.get('randomness', {}), seed=seed)
    if args.bf16:
        set_wrapper_type(cfg, 'BF16OptimWrapper')
    if args.iters is not None:
        scale_schedule(cfg, args.iters)
    if args.data_root is not None:
        root = osp.join(args.data_root, '')
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
            cfg[loader].dataset.data_root = root
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    return cfg


def run_one(variant: str, seed: int, args: argparse.Namespace) -> dict:
    """Train and test one variant in this process; write its result."""
    import numpy as np
    import torch
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    work_dir = run_dir(args.work_dir, variant, seed)
    cfg = build_config(variant, seed, work_dir, args)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else \
        Runner.from_cfg(cfg)
    runner.train()
    times = runner.message_hub.get_scalar('train/time').data[0]
    metrics = runner.test()
    result = dict(
        variant=variant,
        seed=seed,
        settings=settings(args),
        max_iters=cfg.train_cfg.max_iters,
        torch_threads=torch.get_num_threads(),
        sec_per_iter=float(np.median(times)),
        metrics={
            name: float(metrics[f'youtube_vis/segm_{name}'])
            for name in METRICS
        })
    # written last and atomically: a result.json is a finished run
    write_text_atomic(osp.join(work_dir, RESULT), json.dumps(result, indent=1))
    return result


def load_result(path: str) -> Optional[dict]:
    """A run's result, or None when it has not finished."""
    if not osp.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def run_env() -> Dict[str, str]:
    """The environment of one run: ``OMP_NUM_THREADS`` as given, else the
    cores idle when the run starts, as ``tools/run_main_job.sh`` picks them
    (a run beside another gets one thread, not a stalling second one)."""
    env = dict(os.environ)
    if not env.get('OMP_NUM_THREADS'):
        env['OMP_NUM_THREADS'] = str(training_threads())
    print(f'[ablation] torch threads: {env["OMP_NUM_THREADS"]}', flush=True)
    return env


def run_all(args: argparse.Namespace) -> None:
    """Run every pending (variant, seed), each in a subprocess."""
    wanted = settings(args)
    for variant in args.variants:
        for seed in args.seeds:
            path = osp.join(run_dir(args.work_dir, variant, seed), RESULT)
            done = load_result(path)
            if done is not None:
                if done['settings'] != wanted:
                    raise SystemExit(
                        f'{path} was run with {done["settings"]}, not '
                        f'{wanted}; use another --work-dir')
                print(f'[ablation] {variant} seed {seed}: done, skipped')
                continue
            print(f'[ablation] {variant} seed {seed}: training', flush=True)
            command = [
                sys.executable,
                osp.abspath(__file__), '--work-dir', args.work_dir,
                '--run-one', variant,
                str(seed)
            ]
            if args.iters is not None:
                command += ['--iters', str(args.iters)]
            if args.data_root is not None:
                command += ['--data-root', args.data_root]
            if args.cfg_options:
                command += ['--cfg-options', *args.cfg_options]
            if args.bf16:
                command.append('--bf16')
            subprocess.run(command, check=True, cwd=REPO_ROOT, env=run_env())


def disc_stats(run_dir: str, max_iters: int) -> Optional[Dict[str, float]]:
    """Means of ``DISC_KEYS`` over the second half of a run's training.

    Read from the ``vis_data/scalars.json`` that mmengine's logger writes in
    the run's (latest) timestamped folder: one line per logged iteration.

    Args:
        run_dir (str): The run's work dir.
        max_iters (int): Its training iterations.

    Returns:
        dict or None: Key -> mean over the logged iterations past
        ``max_iters / 2``; None for a run that logged no discriminator.
    """
    logs = sorted(
        glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json')))
    if not logs:
        return None
    with open(logs[-1]) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rows = [
        r for r in rows
        if r.get('iter', 0) > max_iters / 2 and DISC_KEYS[0] in r
    ]
    if not rows:
        return None
    return {k: statistics.mean(r[k] for r in rows) for k in DISC_KEYS}


def _disc_cell(runs: List[dict]) -> str:
    """``acc real / acc fake, loss`` means over seeds, or ``-``."""
    stats = [r['disc'] for r in runs if r.get('disc')]
    if not stats:
        return '-'
    real, fake, loss = (
        statistics.mean(d[k] for d in stats) for k in DISC_KEYS)
    return f'{real:.2f} / {fake:.2f}, {loss:.3f}'


def _mean_std(values: List[float]) -> str:
    mean = statistics.mean(values)
    if len(values) < 2:
        return f'{mean:.4f} ± -'
    return f'{mean:.4f} ± {statistics.stdev(values):.4f}'


def results_table(results: List[dict]) -> str:
    """Markdown table of finished runs, one row per variant.

    Args:
        results (list[dict]): Contents of ``result.json`` files, with
            ``disc`` (:func:`disc_stats`) where the run had a
            discriminator.

    Returns:
        str: The table, with a line saying what mean and spread are.
    """
    by_variant: Dict[str, List[dict]] = {}
    for result in results:
        by_variant.setdefault(result['variant'], []).append(result)
    lines = [
        'mean ± sample standard deviation over seeds; s/iter: mean over '
        'seeds of the median seconds per training iteration; D: its '
        'accuracy on real / fake and its summed loss, means over the second '
        'half of training and over seeds', '', '| variant | iters | seeds | ' +
        ' | '.join(METRICS) + ' | s/iter | D |',
        '|---|---|---|' + '---|' * len(METRICS) + '---|---|'
    ]
    for variant in VARIANTS:
        runs = sorted(by_variant.get(variant, []), key=lambda r: r['seed'])
        if not runs:
            continue
        iters = sorted({r['max_iters'] for r in runs})
        cells = [_mean_std([r['metrics'][m] for r in runs]) for m in METRICS]
        sec = statistics.mean(r['sec_per_iter'] for r in runs)
        lines.append(f'| {variant} | {"/".join(map(str, iters))} | '
                     f'{",".join(str(r["seed"]) for r in runs)} | ' +
                     ' | '.join(cells) + f' | {sec:.3f} | '
                     f'{_disc_cell(runs)} |')
    return '\n'.join(lines) + '\n'


def write_table(work_dir: str) -> str:
    """Write ``<work_dir>/ablation.md`` from every finished run."""
    results = []
    for variant in VARIANTS:
        if not osp.isdir(osp.join(work_dir, variant)):
            continue
        for name in sorted(os.listdir(osp.join(work_dir, variant))):
            run = osp.join(work_dir, variant, name)
            result = load_result(osp.join(run, RESULT))
            if result is not None:
                result['disc'] = disc_stats(run, result['max_iters'])
                results.append(result)
    table = results_table(results)
    with open(osp.join(work_dir, 'ablation.md'), 'w') as f:
        f.write(table)
    return table


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.run_one is not None:
        import mmvis_msts  # noqa: F401  (registers the project's modules)
        variant, seed = args.run_one
        run_one(variant, int(seed), args)
        return
    if not args.table:
        run_all(args)
    print(write_table(args.work_dir))


if __name__ == '__main__':
    main()
