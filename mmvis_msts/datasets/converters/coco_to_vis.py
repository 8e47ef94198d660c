"""Relabel COCO annotations with YouTube-VIS categories (joint training)."""
from typing import Dict, Mapping, Sequence

from mmdet.datasets import YouTubeVISDataset

# SeqFormer's COCO -> YouTube-VIS category tables (datasets/coco2seq.py),
# written with names. Both leave out every COCO class without a YouTube-VIS
# counterpart. Deliberate difference: SeqFormer also maps COCO 'mouse' (id
# 74, the computer mouse) to 2019 id 24 ('fox') and to 2021 'mouse' (the
# animal); both are wrong, so it is left out here.
_COMMON = {
    'person': 'person',
    'bicycle': 'motorbike',
    'motorcycle': 'motorbike',
    'airplane': 'airplane',
    'train': 'train',
    'truck': 'truck',
    'boat': 'boat',
    'cat': 'cat',
    'dog': 'dog',
    'horse': 'horse',
    'cow': 'cow',
    'elephant': 'elephant',
    'bear': 'bear',
    'zebra': 'zebra',
    'giraffe': 'giraffe',
    'snowboard': 'snowboard',
    'skateboard': 'skateboard',
    'surfboard': 'surfboard',
    'tennis racket': 'tennis_racket',
}
COCO_TO_VIS = {
    '2019': {
        **_COMMON, 'car': 'sedan'
    },
    '2021': {
        **_COMMON, 'car': 'car',
        'bird': 'bird'
    },
}


def vis_classes(version: str) -> Sequence[str]:
    """The YouTube-VIS class names of one year, in category-id order.

    Args:
        version (str): '2019' or '2021'.

    Returns:
        tuple[str]: The 40 names (label i = category id i + 1).
    """
    # set_dataset_classes writes a class attribute; leave it as it was.
    saved = YouTubeVISDataset.__dict__.get('METAINFO')
    try:
        YouTubeVISDataset.set_dataset_classes(version)
        return YouTubeVISDataset.METAINFO['classes']
    finally:
        if saved is None:
            del YouTubeVISDataset.METAINFO
        else:
            YouTubeVISDataset.METAINFO = saved


def relabel_coco(coco: Dict, classes: Sequence[str],
                 mapping: Mapping[str, str]) -> Dict:
    """Give COCO annotations the categories of a video dataset.

    The output's categories are ``classes`` with ids 1..K (the order
    ``YouTubeVISDataset`` labels them in), so a ``CocoDataset`` built with
    ``metainfo=dict(classes=classes)`` on it yields the video dataset's
    labels. Annotations of unmapped COCO classes are dropped, and so are
    images left without annotations.

    Args:
        coco (dict): A COCO instances json (e.g. SeqFormer's
            ``coco_keepfor_ytvis19.json``).
        classes (Sequence[str]): Target class names.
        mapping (Mapping[str, str]): COCO class name -> target class name.

    Returns:
        dict: The relabelled json (other top-level keys kept).
    """
    unknown = sorted(set(mapping.values()) - set(classes))
    if unknown:
        raise ValueError(f'mapping targets {unknown} are not in the classes')
    target_ids = {name: i + 1 for i, name in enumerate(classes)}
    coco_names = {cat['id']: cat['name'] for cat in coco['categories']}
    annotations = []
    for ann in coco['annotations']:
        name = coco_names.get(ann['category_id'])
        if name is None:
            raise KeyError(f'annotation {ann["id"]} has category_id '
                           f'{ann["category_id"]}, which is not in the '
                           'json categories')
        if name in mapping:
            annotations.append(
                dict(ann, category_id=target_ids[mapping[name]]))
    kept_images = {ann['image_id'] for ann in annotations}
    out = {
        key: value
        for key, value in coco.items()
        if key not in ('categories', 'images', 'annotations')
    }
    out['categories'] = [
        dict(id=target_ids[name], name=name) for name in classes
    ]
    out['images'] = [
        image for image in coco['images'] if image['id'] in kept_images
    ]
    out['annotations'] = annotations
    return out
