"""Split a VIS model's errors into finding objects and naming them.

Reads a YouTube-VIS results file (``tools/test.py`` writes
``<prefix>.json`` with ``--cfg-options test_evaluator.outfile_prefix=...``)
and the ground truth it was made on, and prints, per GT track, how often
some prediction covers it at mask IoU 0.5 / 0.75 whatever the class, how
often that prediction's class is right, and the confusion matrix
(``mmvis_msts.evaluation.track_errors``).

Example:
    python tools/test.py \
        configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py \
        work_dirs/main_job/iter_2000.pth --work-dir work_dirs/main_job/test \
        --cfg-options test_evaluator.outfile_prefix=work_dirs/main_job/val
    python tools/analysis_tools/analyze_track_errors.py \
        work_dirs/main_job/val.json \
        data/synthetic_vis/annotations/val.json
"""
import argparse

from mmvis_msts.datasets.converters import load_json
from mmvis_msts.evaluation.track_errors import (summarize_track_errors,
                                                track_errors)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Mask recall and class accuracy per GT track')
    parser.add_argument('results', help='YouTube-VIS results json')
    parser.add_argument('ann_file', help='ground-truth json')
    parser.add_argument(
        '--iou-thr',
        type=float,
        default=0.5,
        help='a track counts as found at this mask IoU')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    # load_json names the file when it is missing or not json
    results = load_json(args.results)
    gt = load_json(args.ann_file)
    try:
        errors = track_errors(results, gt)
    except ValueError as e:
        raise SystemExit(f'{args.results}: {e}')
    print(summarize_track_errors(errors, args.iou_thr))


if __name__ == '__main__':
    main()
