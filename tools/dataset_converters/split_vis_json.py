"""Split a YouTube-VIS-format (COCO-video) json into train / held-out parts.

Holds out annotated training videos to measure a local AP (the official
valid splits have no public ground truth). Splits by video; ids unchanged.

Example::

    python tools/dataset_converters/split_vis_json.py \\
        data/youtube_vis_2019/annotations/youtube_vis_2019_train.json \\
        --num-holdout 200 --seed 0 \\
        --train-out data/youtube_vis_2019/annotations/ytvis19_train_sub.json \\
        --holdout-out data/youtube_vis_2019/annotations/ytvis19_holdout.json
"""
import argparse
from typing import List, Optional

from mmvis_msts.datasets.converters import (load_json, save_vis_json,
                                            split_vis_json)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('ann_file', help='json to split')
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(
        '--num-holdout', type=int, help='number of videos to hold out')
    group.add_argument(
        '--holdout-videos', nargs='+', help='names of the videos to hold out')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the random pick')
    parser.add_argument('--train-out', required=True, help='training json')
    parser.add_argument('--holdout-out', required=True, help='held-out json')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    train, holdout = split_vis_json(
        load_json(args.ann_file),
        num_holdout=args.num_holdout,
        holdout_names=args.holdout_videos,
        seed=args.seed)
    for path, part in ((args.train_out, train), (args.holdout_out, holdout)):
        save_vis_json(part, path)


if __name__ == '__main__':
    main()
