"""Convert raw YouTube-VIS-format annotations (OVIS, YouTube-VIS 2019/2021/
2022) to the COCO-video json that YouTubeVISDataset / OVISDataset load.

Unlike mmdet's youtubevis2coco.py it takes any input and output file name,
so it handles OVIS's ``annotations_{train,valid}.json``.

Example::

    python tools/dataset_converters/ytvis_raw_to_cocovid.py \\
        data/ovis/annotations_train.json data/ovis/annotations/ovis_train.json
"""
import argparse
from typing import List, Optional

from mmvis_msts.datasets.converters import (convert_raw_vis, load_json,
                                            save_json)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('raw', help='raw json (videos with file_names)')
    parser.add_argument('out', help='output COCO-video json')
    args = parser.parse_args(argv)
    out = convert_raw_vis(load_json(args.raw), source=args.raw)
    save_json(out, args.out)
    print(f'{args.out}: {len(out["videos"])} videos, '
          f'{len(out["images"])} frames, '
          f'{len(out["annotations"])} masks')


if __name__ == '__main__':
    main()
