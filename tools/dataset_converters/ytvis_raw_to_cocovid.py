"""Convert raw YouTube-VIS-format annotations (OVIS, YouTube-VIS 2019/2021/
2022) to the COCO-video json that YouTubeVISDataset / OVISDataset load.

Unlike mmdet's youtubevis2coco.py it takes any input and output file name,
so it handles OVIS's ``annotations_{train,valid}.json``.

Example::

    python tools/dataset_converters/ytvis_raw_to_cocovid.py \\
        data/ovis/annotations_train.json data/ovis/annotations/ovis_train.json
"""
import argparse
import sys
from typing import List, Optional

from mmvis_msts.datasets.converters import (convert_raw_vis, load_json,
                                            save_vis_json)
from mmvis_msts.datasets.validation import VISDatasetError


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('raw', help='raw json (videos with file_names)')
    parser.add_argument('out', help='output COCO-video json')
    args = parser.parse_args(argv)
    try:
        out = convert_raw_vis(load_json(args.raw), source=args.raw)
    except VISDatasetError as err:
        # the message lists every problem with its file, video and frame
        sys.exit(f'ytvis_raw_to_cocovid.py: error: {err}')
    save_vis_json(out, args.out)


if __name__ == '__main__':
    main()
