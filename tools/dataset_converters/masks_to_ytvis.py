"""Convert per-frame instance-id mask PNGs to a YouTube-VIS json.

Layout: ``<masks>/<video>/<frame>.png`` (indexed/palette or 8/16-bit grey
PNGs, pixel value = instance id, 0 = background, ``--ignore-value`` =
unlabelled), ``<images>/<video>/<frame>.jpg`` and a class map (JSON or CSV,
see ``mmvis_msts.datasets.converters.load_class_map``). Without ``--masks``
it lists every frame of ``--images`` with no annotations, for running a
trained model on new videos.

Examples::

    python tools/dataset_converters/masks_to_ytvis.py \\
        --masks data/my_vis/Annotations --images data/my_vis/JPEGImages \\
        --class-map data/my_vis/classes.json \\
        --out data/my_vis/annotations/train.json \\
        --holdout 5 --holdout-out data/my_vis/annotations/holdout.json

    python tools/dataset_converters/masks_to_ytvis.py \\
        --images data/my_vis/new_videos --class-map data/my_vis/classes.json \\
        --out data/my_vis/annotations/new_videos.json
"""
import argparse
from typing import List, Optional

from mmvis_msts.datasets.converters import (convert_frame_videos,
                                            convert_mask_videos,
                                            load_class_map, save_vis_json,
                                            split_vis_json)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--masks',
        help='mask video folders (omit to list unannotated frames only)')
    parser.add_argument('--images', required=True, help='frame folders')
    parser.add_argument('--class-map', help='class map (.json or .csv)')
    parser.add_argument('--out', required=True, help='output json')
    parser.add_argument(
        '--categories',
        nargs='+',
        help='category names in id order (required for a CSV class map or '
        'without one; overrides the JSON list)')
    parser.add_argument(
        '--ignore-value',
        default='255',
        help="mask value of unlabelled pixels, or 'none' (default: 255)")
    parser.add_argument(
        '--holdout',
        type=int,
        default=0,
        help='number of videos to hold out (with ground truth) for a local '
        'AP; they go to --holdout-out instead of --out')
    parser.add_argument('--holdout-out', help='json of the held-out videos')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the held-out pick')
    args = parser.parse_args(argv)
    if args.holdout and not args.holdout_out:
        parser.error('--holdout needs --holdout-out')
    if args.masks and not args.class_map:
        parser.error('--masks needs --class-map')
    if not args.masks and args.holdout:
        parser.error('--holdout needs --masks (ground truth)')
    if not args.class_map and not args.categories:
        parser.error('give --class-map or --categories')
    return args


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.masks:
        ignore_value = (None if args.ignore_value.lower() == 'none' else int(
            args.ignore_value))
        ann = convert_mask_videos(
            args.masks,
            args.images,
            args.class_map,
            categories=args.categories,
            ignore_value=ignore_value)
    else:
        categories = args.categories or load_class_map(args.class_map)[0]
        ann = convert_frame_videos(args.images, categories)
    parts = [(args.out, ann)]
    if args.holdout:
        train, holdout = split_vis_json(
            ann, num_holdout=args.holdout, seed=args.seed)
        parts = [(args.out, train), (args.holdout_out, holdout)]
    for path, part in parts:
        save_vis_json(part, path)


if __name__ == '__main__':
    main()
