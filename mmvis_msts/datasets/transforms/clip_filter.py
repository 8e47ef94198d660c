"""Reject training clips left without any instance by augmentation."""
from typing import Dict, List, Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class DropEmptyClip(BaseTransform):
    """Return None for a clip whose frames hold no non-ignored instance.

    Random crops can cut every object out of a clip. SeqFormer then draws a
    new sample; returning None here makes mmengine's dataset do the same
    (``BaseDataset.__getitem__`` refetches a random index, training only).
    Place it after the per-frame ``TransformBroadcaster`` and before
    ``PackTrackInputs``.

    Required keys: ``gt_bboxes_labels`` (list of T arrays); optional
    ``gt_ignore_flags`` (list of T bool arrays).
    """

    def transform(self, results: Dict[str, List]) -> Optional[Dict]:
        """Pass the clip through, or None if it has no instance.

        Args:
            results (dict[str, list]): Per-frame lists.

        Returns:
            dict | None: ``results`` unchanged, or None.
        """
        labels = results['gt_bboxes_labels']
        ignore_flags = results.get('gt_ignore_flags',
                                   [np.zeros(len(x), bool) for x in labels])
        for frame_ignore in ignore_flags:
            if not np.all(np.asarray(frame_ignore, dtype=bool)):
                return results
        return None
