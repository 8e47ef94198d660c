"""Benchmark the main job: val mAP against training minutes, per config.

Trains each config for an iteration budget (tools/train.py, checkpoints every
``--eval-every`` iterations), then evaluates every checkpoint on the val split
(tools/test.py) and writes a markdown table ``iterations, training minutes,
mAP, mAP_50, mAP_75`` per config. Evaluation runs after training, so it does
not slow the training down; the minutes are the wall time from the start of
training to each checkpoint (model building included), and the load average
(``uptime``) before and after each training is recorded because the wall time
depends on what else runs on the machine.

Example (the numbers of docs/main_job.md):
    python tools/analysis_tools/benchmark_main_job.py \
        configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py \
        configs/benchmarks/mask2former-vis_r18-tiny_1xb4-2k_synthetic.py \
        --eval-every 500 --work-dir work_dirs/benchmark_main_job \
        --out work_dirs/benchmark_main_job/curve.md
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys
import time
from typing import Dict, List, Optional

from mmvis_msts.utils.machine_info import cpu_model

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METRIC_RE = re.compile(r'youtube_vis/segm_(mAP|mAP_50|mAP_75): ([0-9.]+)')
ITER_CKPT_RE = re.compile(r'iter_(\d+)\.pth$')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Curve of val mAP against training time per config')
    parser.add_argument('configs', nargs='+', help='config files')
    parser.add_argument(
        '--max-iters',
        type=int,
        default=None,
        help='training iterations (default: each config\'s own max_iters)')
    parser.add_argument(
        '--eval-every',
        type=int,
        default=500,
        help='checkpoint and evaluate every this many iterations')
    parser.add_argument(
        '--work-dir',
        default='work_dirs/benchmark_main_job',
        help='one sub-folder per config')
    parser.add_argument(
        '--out',
        default=None,
        help='markdown file of the tables (default: <work-dir>/curve.md)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='extra key=value overrides for training and testing, as in '
        'tools/train.py')
    parser.add_argument(
        '--skip-train',
        action='store_true',
        help='evaluate the checkpoints already in the work dirs')
    return parser.parse_args()


def load_average() -> str:
    """The 1/5/15-minute load averages, as ``uptime`` prints them."""
    return ' '.join(f'{x:.2f}' for x in os.getloadavg())


def run(cmd: List[str], log_file: str) -> None:
    """Run a tool, streaming its output to the terminal and a log file."""
    print('+', ' '.join(cmd), flush=True)
    with open(log_file, 'w') as log:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True)
        for line in proc.stdout:
            log.write(line)
            if 'Iter(train)' in line or ('Iter(test)' in line
                                         and 'segm_mAP' in line):
                print(line.rstrip()[:160], flush=True)
        if proc.wait() != 0:
            raise RuntimeError(f'{cmd[1]} failed with exit code '
                               f'{proc.returncode}; see {log_file}')


def train(config: str, work_dir: str, max_iters: Optional[int],
          eval_every: int, options: List[str]) -> Dict[str, object]:
    """Train, keeping every checkpoint; returns timing and load records."""
    opts = [
        f'default_hooks.checkpoint.interval={eval_every}',
        'default_hooks.checkpoint.max_keep_ckpts=-1',
        # evaluation happens here, after training
        'val_dataloader=None',
        'val_cfg=None',
        'val_evaluator=None',
    ]
    if max_iters is not None:
        opts.append(f'train_cfg.max_iters={max_iters}')
    load_before = load_average()
    start = time.time()
    run([
        sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
        '--cfg-options', *opts, *options
    ], osp.join(work_dir, 'benchmark_train.log'))
    return dict(
        start=start,
        end=time.time(),
        load_before=load_before,
        load_after=load_average())


def evaluate(config: str, checkpoint: str, work_dir: str,
             options: List[str]) -> Dict[str, float]:
    """mAP, mAP_50 and mAP_75 of one checkpoint on the config's test set."""
    log_file = checkpoint[:-len('.pth')] + '_test.log'
    cmd = [
        sys.executable, 'tools/test.py', config, checkpoint, '--work-dir',
        osp.join(work_dir, 'test')
    ]
    if options:
        cmd += ['--cfg-options', *options]
    run(cmd, log_file)
    with open(log_file) as f:
        metrics = {k: float(v) for k, v in METRIC_RE.findall(f.read())}
    if len(metrics) != 3:
        raise RuntimeError(f'no mAP/mAP_50/mAP_75 in {log_file}')
    return metrics


def checkpoints(work_dir: str) -> List[str]:
    """``iter_<k>.pth`` files of a work dir, by iteration."""
    found = [(int(m.group(1)), osp.join(work_dir, name))
             for name in os.listdir(work_dir)
             if (m := ITER_CKPT_RE.search(name))]
    return [path for _, path in sorted(found)]


def table(config: str, rows: List[Dict[str, object]],
          timing: Optional[Dict[str, object]]) -> str:
    """Markdown table of one config's curve."""
    lines = [f'#### `{osp.relpath(config, REPO_ROOT)}`', '']
    if timing is not None:
        lines += [
            f"Load average (1/5/15 min) before training: "
            f"{timing['load_before']}, after: {timing['load_after']}; "
            f"training wall time {(timing['end'] - timing['start']) / 60:.1f}"
            ' min.', ''
        ]
    lines += [
        '| iterations | training minutes | mAP | mAP_50 | mAP_75 |',
        '|---:|---:|---:|---:|---:|'
    ]
    for row in rows:
        minutes = '-' if row['minutes'] is None else f"{row['minutes']:.1f}"
        lines.append(f"| {row['iter']} | {minutes} | {row['mAP']:.3f} | "
                     f"{row['mAP_50']:.3f} | {row['mAP_75']:.3f} |")
    return '\n'.join(lines) + '\n'


def main() -> None:
    args = parse_args()
    if args.eval_every < 1:
        raise ValueError(f'--eval-every must be >= 1, got {args.eval_every}')
    out = args.out or osp.join(args.work_dir, 'curve.md')
    sections = [
        f'Machine: {cpu_model()}, {os.cpu_count()} CPU cores; '
        f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")}.\n'
    ]
    for config in args.configs:
        config = osp.abspath(config)
        name = osp.splitext(osp.basename(config))[0]
        work_dir = osp.abspath(osp.join(args.work_dir, name))
        os.makedirs(work_dir, exist_ok=True)
        timing = None
        if not args.skip_train:
            timing = train(config, work_dir, args.max_iters, args.eval_every,
                           args.cfg_options)
        rows = []
        for ckpt in checkpoints(work_dir):
            metrics = evaluate(config, ckpt, work_dir, args.cfg_options)
            minutes = None if timing is None else \
                (osp.getmtime(ckpt) - timing['start']) / 60
            rows.append(
                dict(
                    iter=int(ITER_CKPT_RE.search(ckpt).group(1)),
                    minutes=minutes,
                    **metrics))
            print(f'{name} {osp.basename(ckpt)}: {metrics}', flush=True)
        if not rows:
            raise RuntimeError(f'no iter_*.pth checkpoints in {work_dir}')
        sections.append(table(config, rows, timing))
        # write after every config, so a long run leaves partial results
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        with open(out, 'w') as f:
            f.write('\n'.join(sections))
        print(sections[-1], flush=True)
    print(f'Wrote {out}')


if __name__ == '__main__':
    main()
