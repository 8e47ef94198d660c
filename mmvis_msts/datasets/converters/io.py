"""Json reading and writing for the converters (and json-ready RLE)."""
import json
import os
import os.path as osp
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils


def load_json(path: str) -> Any:
    """Load a json file, naming it in the error if it is missing or bad.

    Args:
        path (str): The file.

    Returns:
        Any: The parsed content.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist')
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f'{path} is not valid json: {error}') from None


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
