"""Peak memory and speed of the whole-video and clip-wise modes.

Each (mode, length) runs in its own process (this script with
``--worker``), so its peak resident memory (``ru_maxrss``) is its own: the
process builds the model (random weights, which is enough for memory and
speed), then segments a synthetic video of moving discs that is generated
frame by frame (no frame is held up front) through ``inference_video``.
Each run writes ``<out-dir>/runs/<mode>_<frames>.json`` when it is done
and is skipped when that file exists, so an interrupted benchmark continues
where it stopped; a run that fails (e.g. killed for memory) is recorded
with its exit status and the others go on. Then writes
``<out-dir>/benchmark_long_video.json`` and ``.md`` (a table of peak RSS,
RSS before inference and frames/s per mode and length, the peak RSS of
each length relative to the shortest, and the 1-minute load average at the
end of each run: the machine may be shared).

Example (the table of docs/inference.md):
    python tools/analysis_tools/benchmark_long_video.py \\
        configs/msts_vis/msts-vis_r50_8xb1-12e_youtubevis2019.py \\
        --lengths 50 100 200 400 --size 360 640 --window 20 --stride 10 \\
        --out-dir work_dirs/benchmark_long_video
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Dict, List

import numpy as np

from mmvis_msts.engine.atomic_files import write_text_atomic

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODES = ('whole', 'clip')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Peak RSS and frames/s of the two inference modes')
    parser.add_argument('config', help='model config file')
    parser.add_argument(
        '--lengths',
        type=int,
        nargs='+',
        default=[50, 100, 200, 400],
        help='video lengths in frames')
    parser.add_argument(
        '--size',
        type=int,
        nargs=2,
        default=[360, 640],
        metavar=('H', 'W'),
        help='frame size')
    parser.add_argument(
        '--window', type=int, default=20, help='clip-wise window (frames)')
    parser.add_argument(
        '--stride', type=int, default=10, help='clip-wise stride (frames)')
    parser.add_argument(
        '--modes', nargs='+', choices=MODES, default=list(MODES))
    parser.add_argument(
        '--out-dir',
        default='work_dirs/benchmark_long_video',
        help='where the json and the markdown go')
    parser.add_argument(
        '--worker', choices=MODES,
        help=argparse.SUPPRESS)  # one run, in this process
    parser.add_argument('--frames', type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


class SyntheticVideo(Sequence):
    """T frames (H, W, 3) uint8 of two discs on noise, made on access."""

    def __init__(self, num_frames: int, height: int, width: int) -> None:
        self.num_frames, self.height, self.width = num_frames, height, width

    def __len__(self) -> int:
        return self.num_frames

    def __getitem__(self, t: int) -> np.ndarray:
        if not 0 <= t < self.num_frames:
            raise IndexError(t)
        h, w = self.height, self.width
        rng = np.random.default_rng(t)
        frame = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
        ys, xs = np.ogrid[:h, :w]
        for k, colour in enumerate(((0, 190, 250), (250, 90, 0))):
            cx = (w // 4 + 3 * t * (1 - 2 * k)) % w
            cy = h // 3 + k * h // 3
            frame[(ys - cy)**2 + (xs - cx)**2 < (h // 8)**2] = colour
        return frame


def max_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux: KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(args: argparse.Namespace) -> None:
    """One (mode, length) run; prints its figures as one json line."""
    import torch

    from mmvis_msts.apis import inference_video, init_model
    torch.manual_seed(0)
    model = init_model(args.config)
    video = SyntheticVideo(args.frames, *args.size)
    rss_before = max_rss_mib()
    # window 0: one pass, whatever the config's clip-wise settings
    window = args.window if args.worker == 'clip' else 0
    stride = args.stride if args.worker == 'clip' else None
    start = time.perf_counter()
    result = inference_video(model, video, window=window, stride=stride)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            dict(
                mode=args.worker,
                frames=len(result),
                peak_rss_mib=round(max_rss_mib(), 1),
                rss_before_mib=round(rss_before, 1),
                fps=round(len(result) / seconds, 3),
                seconds=round(seconds, 2),
                results_mib=round(results_mib(result), 1),
                load_avg=round(os.getloadavg()[0], 2))))


def results_mib(result) -> float:
    """Memory of the masks the result holds for the caller: the RLE
    strings (clip-wise) or the bool masks (whole video), in MiB."""
    total = 0
    for frame in result.video_data_samples:
        pred = frame.pred_track_instances
        if 'masks_rle' in pred:
            total += sum(len(rle['counts']) for rle in pred.masks_rle)
        else:
            total += pred.masks.numel()  # bool: one byte each
    return total / 2**20


def run_one(args: argparse.Namespace, mode: str, frames: int) -> Dict:
    """One (mode, length) run in its own process, or its saved result."""
    path = osp.join(args.out_dir, 'runs', f'{mode}_{frames}.json')
    if osp.exists(path):
        with open(path) as f:
            return json.load(f)
    cmd = [
        sys.executable,
        osp.abspath(__file__), args.config, '--worker', mode, '--frames',
        str(frames), '--size', *map(str, args.size), '--window',
        str(args.window), '--stride',
        str(args.stride)
    ]
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, capture_output=True, text=True, env=os.environ)
    if proc.returncode != 0:
        print(
            f'{" ".join(cmd)} failed (exit status {proc.returncode}):\n'
            f'{proc.stderr[-3000:]}',
            file=sys.stderr)
        row = dict(mode=mode, frames=frames, failed=proc.returncode)
    else:
        row = json.loads(proc.stdout.strip().splitlines()[-1])
    os.makedirs(osp.dirname(path), exist_ok=True)
    write_text_atomic(path, json.dumps(row))
    return row


def markdown(rows: List[Dict], args: argparse.Namespace) -> str:
    h, w = args.size
    lines = [
        f'`{osp.basename(args.config)}`, random weights, {h}x{w} frames; '
        f'clip-wise: window {args.window}, stride {args.stride}.', '',
        '| mode | frames | peak RSS (MiB) | RSS before inference (MiB) | '
        'peak / peak at shortest | masks held in the result (MiB) | '
        'frames/s | load average |', '|---|---|---|---|---|---|---|---|'
    ]
    for mode in args.modes:
        runs = [r for r in rows if r['mode'] == mode]
        done = [r for r in runs if 'failed' not in r]
        base = done[0]['peak_rss_mib'] if done else None
        for r in runs:
            if 'failed' in r:
                lines.append(f"| {mode} | {r['frames']} | failed (exit "
                             f"status {r['failed']}) | | | | | |")
                continue
            lines.append(f"| {mode} | {r['frames']} | {r['peak_rss_mib']} | "
                         f"{r['rss_before_mib']} | "
                         f"{r['peak_rss_mib'] / base:.2f} | "
                         f"{r.get('results_mib', '')} | {r['fps']} | "
                         f"{r.get('load_avg', '')} |")
    return '\n'.join(lines) + '\n'


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    os.makedirs(args.out_dir, exist_ok=True)
    rows = []
    for mode in args.modes:
        for frames in sorted(args.lengths):
            rows.append(run_one(args, mode, frames))
            print(json.dumps(rows[-1]), flush=True)
    stem = osp.join(args.out_dir, 'benchmark_long_video')
    with open(stem + '.json', 'w') as f:
        json.dump(
            dict(
                config=args.config,
                size=args.size,
                window=args.window,
                stride=args.stride,
                runs=rows),
            f,
            indent=2)
    table = markdown(rows, args)
    with open(stem + '.md', 'w') as f:
        f.write(table)
    print(table)


if __name__ == '__main__':
    main()
