"""Relabel a COCO instances json with YouTube-VIS categories, for joint
training on COCO pseudo-videos (configs/_base_/datasets/
coco_joint_youtube_vis_2019.py).

Keeps the annotations of the COCO classes that SeqFormer maps to YouTube-VIS
classes (see ``mmvis_msts.datasets.converters.coco_to_vis``), drops the
rest and the images left empty, and writes the 40 YouTube-VIS categories.

Example::

    python tools/dataset_converters/coco_to_vis_classes.py \\
        data/coco/annotations/coco_keepfor_ytvis19.json \\
        data/coco/annotations/coco_ytvis2019.json --version 2019
"""
import argparse
from typing import List, Optional

from mmvis_msts.datasets.converters import (COCO_TO_VIS, load_json,
                                            relabel_coco, save_json,
                                            vis_classes)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('coco', help='COCO instances json')
    parser.add_argument('out', help='relabelled json')
    parser.add_argument(
        '--version',
        choices=sorted(COCO_TO_VIS),
        required=True,
        help='YouTube-VIS year whose classes to use')
    args = parser.parse_args(argv)
    out = relabel_coco(
        load_json(args.coco), vis_classes(args.version),
        COCO_TO_VIS[args.version])
    save_json(out, args.out)
    print(f'{args.out}: {len(out["images"])} images, '
          f'{len(out["annotations"])} annotations')


if __name__ == '__main__':
    main()
