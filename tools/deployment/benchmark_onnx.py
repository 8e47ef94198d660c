"""Speed of onnxruntime against PyTorch eager on the same clip, CPU.

Times the network step (``predict_head_outputs``: frames to the head's
predictions), the part the backends differ in, on a random clip of the
size the ONNX file was exported for. Runs alternate between the backends
(which one goes first alternates too), so load from other jobs on a shared
machine hits both alike; the medians and their ratio are printed, after
the numerical comparison of the two on that clip.

Example:
    python tools/deployment/benchmark_onnx.py \
        configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py \
        work_dirs/onnx/tiny_t5.onnx --threads 2 --runs 20

Without a checkpoint, ``--seed`` must be the export's (both default to 0)
so that both backends hold the same random weights. See
docs/deployment.md.
"""
import argparse
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List

import torch
from mmengine.runner import set_random_seed

from mmvis_msts.apis import init_model
from mmvis_msts.deploy import ORTClipNetwork, compare_networks, example_clip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Time onnxruntime against PyTorch on one clip (CPU)')
    parser.add_argument('config', help='model config file')
    parser.add_argument('onnx', help='ONNX file of export_onnx.py')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        help='checkpoint the file was exported from; without it the '
        'weights are random (seeded as the export)')
    parser.add_argument(
        '--threads', type=int, default=2, help='threads of both backends')
    parser.add_argument(
        '--runs', type=int, default=20, help='timed runs per backend')
    parser.add_argument(
        '--warmup', type=int, default=2, help='untimed runs per backend')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the export')
    return parser.parse_args()


def cpu_name() -> str:
    """The CPU model of /proc/cpuinfo (the platform's name elsewhere)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def interleaved_times(steps: Dict[str, Callable[[], object]], runs: int,
                      warmup: int) -> Dict[str, List[float]]:
    """Seconds per run of each step, the steps taking turns.

    Args:
        steps (dict[str, Callable]): Name -> one run.
        runs (int): Timed runs per step.
        warmup (int): Untimed runs per step first.

    Returns:
        dict[str, list[float]]: Name -> ``runs`` durations.
    """
    for _ in range(warmup):
        for step in steps.values():
            step()
    times = {name: [] for name in steps}
    names = list(steps)
    for i in range(runs):
        # alternate who goes first: neither always runs on a warm cache
        for name in names if i % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return times


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    set_random_seed(args.seed)
    model = init_model(args.config, args.checkpoint)
    network = ORTClipNetwork(args.onnx, num_threads=args.threads)
    network.check_model(model)
    (_, meta), = network.metas
    inputs, video = example_clip(model, meta.num_frames, meta.ori_shape,
                                 args.seed)
    print(compare_networks(model, network, inputs, video).summary())

    def pytorch_step():
        with torch.no_grad():
            return model.predict_head_outputs(inputs, [video])

    times = interleaved_times(
        dict(
            pytorch=pytorch_step,
            onnxruntime=lambda: network(inputs, [video])), args.runs,
        args.warmup)
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    print(f'{meta.num_frames} frames of {meta.ori_shape[0]}x'
          f'{meta.ori_shape[1]} (model input {meta.input_shape[0]}x'
          f'{meta.input_shape[1]}), {args.threads} threads, {args.runs} '
          f'interleaved runs after {args.warmup} warm-up; {cpu_name()}, '
          f'{os.cpu_count()} cores, load average '
          f'{os.getloadavg()[0]:.2f}, torch {torch.__version__}')
    for name, median in medians.items():
        print(f'{name}: median {median * 1000:.1f} ms '
              f'(min {min(times[name]) * 1000:.1f}, max '
              f'{max(times[name]) * 1000:.1f})')
    ratio = medians['pytorch'] / medians['onnxruntime']
    print(f'PyTorch / onnxruntime median time: {ratio:.2f} '
          '(above 1: onnxruntime is faster)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
