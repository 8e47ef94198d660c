"""Annotation converters (plain functions; the CLIs are in
tools/dataset_converters/)."""
from .coco_to_vis import COCO_TO_VIS, relabel_coco, vis_classes
from .io import encode_rle, load_json, save_json, save_vis_json
from .masks_to_ytvis import (convert_frame_videos, convert_mask_videos,
                             load_class_map, read_id_mask)
from .split_vis import split_vis_json
from .ytvis_raw import convert_raw_vis

__all__ = [
    'COCO_TO_VIS', 'relabel_coco', 'vis_classes', 'encode_rle', 'load_json',
    'save_json', 'save_vis_json', 'convert_frame_videos',
    'convert_mask_videos', 'load_class_map', 'read_id_mask', 'split_vis_json',
    'convert_raw_vis'
]
