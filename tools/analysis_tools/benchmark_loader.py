"""Benchmark the DataLoader's hand-over: how long training waits in next().

mmengine logs as ``data_time`` everything between two training steps, most
of it the training loader's ``next()``. This tool builds the config's train
loader once per setting (a tensor sharing strategy and a number of
workers), then, in rounds that visit every setting in turn, busy-works the
main process for ``--step-time`` seconds (standing in for a training step,
so that the workers have the next batch ready, as they do in training) and
times ``next()``. With workers, what remains is the hand-over of a finished
batch to the main process; with ``0`` workers it is making the batch
in-process. Medians per setting and their ratio to the first setting go to
``<out-dir>/benchmark_loader.{json,md}``.

Each loader's workers fork while its own strategy is set, and a worker
sends every tensor by the strategy it was forked with; the main process
receives by whatever the sender chose. So the settings run side by side in
one process.

Example (the table of docs/benchmarks.md, "The DataLoader's hand-over"):
    OMP_NUM_THREADS=1 python tools/analysis_tools/benchmark_loader.py \\
        configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py \\
        --strategies file_descriptor file_system --workers 1 0
"""
import argparse
import datetime
import json
import os
import os.path as osp
import statistics
import sys
import time
from typing import Dict, Iterator, List, Tuple

import torch
import torch.multiprocessing as torch_mp

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, REPO_ROOT)

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from mmvis_msts.engine import VISRunner  # noqa: E402
from mmvis_msts.engine.atomic_files import write_text_atomic  # noqa: E402
from mmvis_msts.engine.runner import set_sharing_strategy  # noqa: E402
from mmvis_msts.utils.machine_info import cpu_model  # noqa: E402

# (strategy, workers); the strategy of an in-process loader is unused
Setting = Tuple[str, int]
IN_PROCESS = 'in-process'


def parse_args(argv: List[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Time the train loader\'s next() per tensor sharing '
        'strategy and worker count, interleaved')
    parser.add_argument('config', help='training config')
    parser.add_argument(
        '--strategies',
        nargs='+',
        default=['file_descriptor', 'file_system'],
        help='tensor sharing strategies of the loaders with workers')
    parser.add_argument(
        '--workers',
        type=int,
        nargs='+',
        default=[1, 0],
        help='worker counts; 0 makes the batches in the main process')
    parser.add_argument(
        '--step-time',
        type=float,
        default=0.4,
        help='seconds of busy work before each next() (about the main '
        'job\'s training step)')
    parser.add_argument(
        '--rounds', type=int, default=8, help='rounds over the settings')
    parser.add_argument(
        '--batches',
        type=int,
        default=5,
        help='timed batches per setting and round')
    parser.add_argument(
        '--warmup',
        type=int,
        default=3,
        help='untimed batches per setting before the first round (at '
        'least 1: the first also gives the storage count)')
    parser.add_argument(
        '--out-dir',
        default='work_dirs/benchmark_loader',
        help='folder of benchmark_loader.json and .md')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='config overrides, e.g. train_dataloader.batch_size=2')
    return parser.parse_args(argv)


def settings_of(args: argparse.Namespace) -> List[Setting]:
    """Every strategy with every positive worker count, and in-process
    once if 0 is among the worker counts, in the order given."""
    settings = []
    for workers in args.workers:
        if workers < 0:
            raise ValueError(f'--workers takes counts >= 0, got {workers}')
        if workers == 0:
            settings.append((IN_PROCESS, 0))
        else:
            settings.extend((s, workers) for s in args.strategies)
    return list(dict.fromkeys(settings))


def label(setting: Setting) -> str:
    strategy, workers = setting
    if workers == 0:
        return 'no workers (batches made in the main process)'
    return f'{strategy}, {workers} worker{"s" if workers > 1 else ""}'


def storages_of(batch) -> int:
    """Distinct non-empty tensor storages in ``batch``: a worker hands
    each over on its own (``file_system`` shares the empty ones too,
    ``file_descriptor`` sends those inline; they are not counted)."""
    seen = set()

    def walk(obj) -> None:
        if isinstance(obj, torch.Tensor):
            if obj.untyped_storage().nbytes() > 0:
                seen.add(obj.untyped_storage().data_ptr())
        elif isinstance(obj, dict):
            for value in obj.values():
                walk(value)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                walk(value)
        elif hasattr(obj, '__dict__'):
            # mmengine data elements keep their fields in __dict__
            walk(vars(obj))

    walk(batch)
    return len(seen)


def start_loaders(cfg: Config,
                  settings: List[Setting]) -> Dict[Setting, Iterator]:
    """One iterator per setting, its workers forked under its strategy."""
    iterators = {}
    for strategy, workers in settings:
        loader_cfg = cfg.train_dataloader.copy()
        loader_cfg.num_workers = workers
        loader_cfg.persistent_workers = workers > 0
        if workers > 0:
            set_sharing_strategy(strategy)
        loader = VISRunner.build_dataloader(loader_cfg, seed=0)
        iterators[(strategy, workers)] = _endless(loader, iter(loader))
    return iterators


def _endless(loader, first: Iterator) -> Iterator:
    """``first`` (an iterator of ``loader``, its workers started), then
    the batches of ``loader`` epoch after epoch."""
    yield from first
    while True:
        yield from loader


def busy(seconds: float) -> None:
    """Keep this core busy, as a training step would."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def run(args: argparse.Namespace) -> Dict:
    # the arguments first: a bad one fails before the config is read
    if args.warmup < 1:
        raise ValueError(f'--warmup takes at least 1, got {args.warmup}')
    settings = settings_of(args)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    before = torch_mp.get_sharing_strategy()
    try:
        iterators = start_loaders(cfg, settings)
    finally:
        torch_mp.set_sharing_strategy(before)
    waits = {s: [] for s in settings}
    storages = {}
    for setting, it in iterators.items():
        storages[setting] = storages_of(next(it))
        for _ in range(args.warmup - 1):
            next(it)
    for _ in range(args.rounds):
        for setting, it in iterators.items():
            for _ in range(args.batches):
                busy(args.step_time)
                start = time.perf_counter()
                next(it)
                waits[setting].append(time.perf_counter() - start)
    first = statistics.median(waits[settings[0]])
    rows = []
    for setting in settings:
        med = statistics.median(waits[setting])
        rows.append(
            dict(
                setting=label(setting),
                strategy=setting[0],
                workers=setting[1],
                median_ms=1e3 * med,
                mean_ms=1e3 * statistics.mean(waits[setting]),
                max_ms=1e3 * max(waits[setting]),
                storages_per_batch=storages[setting],
                first_over_this=first / med,
                waits_ms=[1e3 * w for w in waits[setting]]))
    return dict(
        config=args.config,
        date=datetime.date.today().isoformat(),
        machine=cpu_model(),
        torch_threads=torch.get_num_threads(),
        step_time_s=args.step_time,
        rounds=args.rounds,
        batches=args.batches,
        batch_size=cfg.train_dataloader.batch_size,
        rows=rows)


def markdown(results: Dict) -> str:
    lines = [
        f'Train loader of `{results["config"]}`, '
        f'batch size {results["batch_size"]}; {results["machine"]}, '
        f'{results["date"]}; {results["rounds"]} rounds x '
        f'{results["batches"]} batches per setting after '
        f'{results["step_time_s"]} s of busy work each.', '',
        '| setting | median wait (ms) | mean (ms) | max (ms) | tensor '
        'storages per batch | first setting\'s median / this |',
        '|---|---|---|---|---|---|'
    ]
    for row in results['rows']:
        lines.append(f'| {row["setting"]} | {row["median_ms"]:.1f} | '
                     f'{row["mean_ms"]:.1f} | {row["max_ms"]:.1f} | '
                     f'{row["storages_per_batch"]} | '
                     f'{row["first_over_this"]:.2f}x |')
    return '\n'.join(lines) + '\n'


def main(argv: List[str] = None) -> None:
    args = parse_args(argv)
    results = run(args)
    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.join(args.out_dir, 'benchmark_loader')
    write_text_atomic(stem + '.json', json.dumps(results, indent=2))
    table = markdown(results)
    write_text_atomic(stem + '.md', table)
    print(table)


if __name__ == '__main__':
    main()
