"""Val AP of the whole-video mode against clip-wise windows.

Each mode is one ``runner.test()`` of a checkpoint on a split with ground
truth, in its own process (this script with ``--worker``), with the head's
``test_cfg`` set to that mode. A mode ``W:S`` runs every video window by
window (windows of W frames every S frames, ``clip_mode_min_frames=1``), a
mode ``whole`` runs every video in one pass. Each mode writes
``<out-dir>/<mode>.json`` (its metrics, wall time and frames/s) as soon as it
is done and is skipped when that file exists, so an interrupted comparison
continues where it stopped; ``<out-dir>/modes.md`` is the table of all of
them.

Example (docs/inference.md, the linking accuracy):
    python tools/analysis_tools/compare_inference_modes.py \\
        configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py \\
        work_dirs/main_job/iter_2000.pth --data-root data/synthetic_vis_long \\
        --modes whole 12:6 6:3 3:2 --out-dir work_dirs/modes_long
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

from mmvis_msts.engine.atomic_files import write_text_atomic

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METRIC_KEYS = ('mAP', 'mAP_50', 'mAP_75', 'AR@1', 'AR@10')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Val AP of the whole-video and clip-wise modes')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--data-root',
        help='data set with a val split (annotations/val.json, '
        'val/JPEGImages); default: the config\'s')
    parser.add_argument(
        '--modes',
        nargs='+',
        default=['whole', '12:6', '6:3', '3:2'],
        help="'whole' or WINDOW:STRIDE, e.g. 12:6")
    parser.add_argument(
        '--out-dir',
        default='work_dirs/compare_inference_modes',
        help='one json per mode and the markdown table')
    parser.add_argument(
        '--worker', help=argparse.SUPPRESS)  # one mode, in this process
    return parser.parse_args()


def parse_mode(mode: str) -> Optional[Tuple[int, int]]:
    """``'whole'`` -> None, ``'W:S'`` -> (W, S).

    Raises:
        ValueError: A mode that is neither, naming it.
    """
    if mode == 'whole':
        return None
    try:
        window, stride = (int(v) for v in mode.split(':'))
    except ValueError:
        raise ValueError(f"mode {mode!r}: expected 'whole' or WINDOW:STRIDE "
                         '(e.g. 12:6)') from None
    if not 1 <= stride <= window:
        raise ValueError(f'mode {mode!r}: need 1 <= STRIDE <= WINDOW')
    return window, stride


def mode_options(mode: str, data_root: Optional[str]) -> Dict[str, object]:
    """The config overrides of one mode.

    Args:
        mode (str): ``'whole'`` or ``'W:S'``.
        data_root (str, optional): The data set to test on.

    Returns:
        dict: Dotted config keys to values.
    """
    windows = parse_mode(mode)
    key = 'model.track_head.test_cfg.'
    if windows is None:
        options = {key + 'clip_window': None}
    else:
        options = {
            key + 'clip_window': windows[0],
            key + 'clip_stride': windows[1],
            key + 'clip_mode_min_frames': 1,
        }
    if data_root is not None:
        options['test_dataloader.dataset.data_root'] = \
            data_root.rstrip('/') + '/'
    return options


def run_worker(args: argparse.Namespace) -> None:
    """Test one mode in this process and write its json."""
    sys.path.insert(0, REPO_ROOT)
    from mmengine.config import Config
    from mmengine.registry import RUNNERS

    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(mode_options(args.worker, args.data_root))
    cfg.load_from = args.checkpoint
    cfg.launcher = 'none'
    cfg.work_dir = osp.join(args.out_dir, safe_name(args.worker))
    runner = RUNNERS.build(cfg)
    start = time.perf_counter()
    metrics = runner.test()
    seconds = time.perf_counter() - start
    dataset = runner.test_loop.dataloader.dataset
    num_frames = sum(
        dataset.get_data_info(i)['video_length'] for i in range(len(dataset)))
    result = dict(
        mode=args.worker,
        config=args.config,
        checkpoint=args.checkpoint,
        data_root=args.data_root,
        videos=len(dataset),
        frames=num_frames,
        seconds=round(seconds, 2),
        frames_per_s=round(num_frames / seconds, 2),
        metrics={
            key.rsplit('segm_', 1)[-1]: round(float(value), 4)
            for key, value in metrics.items()
        })
    # atomic: a killed run leaves no half-written result
    write_text_atomic(
        result_path(args.out_dir, args.worker), json.dumps(result, indent=2))


def safe_name(mode: str) -> str:
    """A file name for a mode (``12:6`` -> ``w12_s6``)."""
    windows = parse_mode(mode)
    return 'whole' if windows is None else f'w{windows[0]}_s{windows[1]}'


def result_path(out_dir: str, mode: str) -> str:
    return osp.join(out_dir, f'{safe_name(mode)}.json')


def markdown_table(results: List[dict]) -> str:
    """The table of docs/inference.md: one row per mode."""
    lines = [
        '| mode | ' + ' | '.join(METRIC_KEYS) + ' | frames/s |',
        '|---|' + '---|' * (len(METRIC_KEYS) + 1),
    ]
    for res in results:
        windows = parse_mode(res['mode'])
        name = ('whole video' if windows is None else
                f'window {windows[0]}, stride {windows[1]}')
        values = ' | '.join(f"{res['metrics'].get(key, float('nan')):.3f}"
                            for key in METRIC_KEYS)
        lines.append(f"| {name} | {values} | {res['frames_per_s']:.1f} |")
    return '\n'.join(lines) + '\n'


def main() -> None:
    args = parse_args()
    for mode in args.modes:
        parse_mode(mode)  # fail before any run
    if args.worker is not None:
        run_worker(args)
        return
    os.makedirs(args.out_dir, exist_ok=True)
    results = []
    for mode in args.modes:
        path = result_path(args.out_dir, mode)
        if not osp.exists(path):
            print(f'[compare_inference_modes] testing mode {mode}', flush=True)
            cmd = [
                sys.executable,
                osp.abspath(__file__), args.config, args.checkpoint,
                '--worker', mode, '--out-dir', args.out_dir
            ]
            if args.data_root is not None:
                cmd += ['--data-root', args.data_root]
            subprocess.run(cmd, check=True)
        with open(path) as f:
            results.append(json.load(f))
    table = markdown_table(results)
    with open(osp.join(args.out_dir, 'modes.md'), 'w') as f:
        f.write(table)
    print(table)


if __name__ == '__main__':
    main()
