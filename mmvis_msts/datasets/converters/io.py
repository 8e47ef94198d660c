"""Json reading and writing for the converters (and json-ready RLE).

``load_json`` is the validation's reader: a malformed or truncated file
raises :class:`VISDatasetError` naming the file, line and column.
"""
import json
import os
import os.path as osp
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils

from ..validation import load_json

__all__ = ['load_json', 'save_json', 'save_vis_json', 'encode_rle']


def save_json(obj: Any, path: str) -> None:
    """Write ``obj`` to ``path`` as json, creating the folder.

    Args:
        obj (Any): Json-serialisable content.
        path (str): Output file.
    """
    folder = osp.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f)


def save_vis_json(ann: dict, path: str) -> None:
    """Write a YouTube-VIS style json and print what it holds.

    Args:
        ann (dict): ``videos``, ``images`` and ``annotations`` lists (and
            the other keys of the format).
        path (str): Output file.
    """
    save_json(ann, path)
    print(f'{path}: {len(ann["videos"])} videos, {len(ann["images"])} '
          f'frames, {len(ann["annotations"])} masks')


def encode_rle(mask: np.ndarray) -> dict:
    """COCO RLE of a binary mask, ready for json.

    Args:
        mask (np.ndarray): (H, W) bool or 0/1 mask.

    Returns:
        dict: ``size`` [H, W] and ``counts`` as a str (pycocotools gives
        bytes); ``pycocotools.mask`` functions accept it as it is.
    """
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(
        size=[int(s) for s in rle['size']], counts=rle['counts'].decode())
