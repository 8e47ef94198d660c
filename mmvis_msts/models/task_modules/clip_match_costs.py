"""Whole-clip box match costs for Hungarian matching of video instances.

Shapes use the package notation (``mmvis_msts``): Q queries, N GT instances,
T frames. Each prediction and each GT instance carries one box per frame,
so the costs compare (T, 4) box tracks. Boxes are normalised (cx, cy, w, h)
in [0, 1].
Frames where a GT instance is absent are excluded when ``gt_instances`` has
a ``valid`` field (shape (N, T), bool); without it every frame counts.
"""
from typing import Optional, Union

import torch
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps
from mmengine.structures import InstanceData
from torch import Tensor


def _check_tracks(pred_boxes: Tensor, gt_boxes: Tensor) -> None:
    if pred_boxes.dim() != 3 or gt_boxes.dim() != 3 or \
            pred_boxes.shape[1:] != gt_boxes.shape[1:] or \
            pred_boxes.size(-1) != 4:
        raise ValueError('clip box costs expect predicted boxes (Q, T, 4) and '
                         'GT boxes (N, T, 4) with the same T, got '
                         f'{tuple(pred_boxes.shape)} and '
                         f'{tuple(gt_boxes.shape)}')


def _gt_valid(gt_instances: InstanceData) -> Optional[Tensor]:
    valid = gt_instances.get('valid', None)
    return None if valid is None else valid.to(gt_instances.bboxes.dtype)


class ClipBoxCost:
    """Base of the clip box costs: checks the (Q, T, 4) and (N, T, 4) box
    tracks, reads the optional ``valid`` mask and weights the cost that
    :meth:`track_cost` of a subclass computes.

    Args:
        weight (float): Cost weight. Defaults to 1.
    """

    def __init__(self, weight: Union[float, int] = 1.) -> None:
        self.weight = weight

    def __call__(self,
                 pred_instances: InstanceData,
                 gt_instances: InstanceData,
                 img_meta: Optional[dict] = None,
                 **kwargs) -> Tensor:
        """Compute the cost.

        Args:
            pred_instances (InstanceData): ``bboxes`` (Q, T, 4).
            gt_instances (InstanceData): ``bboxes`` (N, T, 4) and optionally
                ``valid`` (N, T).
            img_meta (dict, optional): Unused.

        Returns:
            Tensor: (Q, N) weighted cost.
        """
        pred_boxes, gt_boxes = pred_instances.bboxes, gt_instances.bboxes
        _check_tracks(pred_boxes, gt_boxes)
        cost = self.track_cost(pred_boxes, gt_boxes, _gt_valid(gt_instances))
        return cost * self.weight

    def track_cost(self, pred_boxes: Tensor, gt_boxes: Tensor,
                   valid: Optional[Tensor]) -> Tensor:
        """Unweighted cost of every pair of box tracks.

        Args:
            pred_boxes (Tensor): (Q, T, 4) predicted tracks.
            gt_boxes (Tensor): (N, T, 4) GT tracks.
            valid (Tensor, optional): (N, T) float, 1 where the GT instance
                is present; None when every frame counts.

        Returns:
            Tensor: (Q, N) cost.
        """
        raise NotImplementedError


@TASK_UTILS.register_module()
class ClipBBoxL2Cost(ClipBoxCost):
    """Euclidean distance between the flattened (T*4) box tracks.

    SeqFormer's matcher calls this cost "L1" but computes ``torch.cdist``
    with p=2; this class reproduces that. With a ``valid`` mask only the
    frames where the GT instance is present contribute to the distance:

    - ``normalize_valid_frames=False`` (SeqFormer): ``sqrt(sum_{t in V}
      d_t)``, d_t the squared distance of frame t. An instance present in
      few frames then costs less than one present in all, at the same
      per-frame error, while :class:`ClipGIoUCost` averages over V.
    - ``True``: ``sqrt(T / |V| * sum_{t in V} d_t)``, the per-frame mean
      scaled back to T frames, so the cost does not depend on how many
      frames an instance is present in, like the GIoU cost and the box
      losses (docs/design.md §5.1).

    The two agree whenever every frame is valid (no ``valid`` mask, or
    ``supervise_absent_boxes=True``), so the switch only matters together
    with ``supervise_absent_boxes=False``.

    Args:
        weight (float): Cost weight. Defaults to 1.
        normalize_valid_frames (bool): Scale the sum over valid frames to T
            frames. Defaults to False.
    """

    def __init__(self,
                 weight: Union[float, int] = 1.,
                 normalize_valid_frames: bool = False) -> None:
        super().__init__(weight)
        self.normalize_valid_frames = normalize_valid_frames

    def track_cost(self, pred_boxes: Tensor, gt_boxes: Tensor,
                   valid: Optional[Tensor]) -> Tensor:
        """See :meth:`ClipBoxCost.track_cost`."""
        if valid is None:
            return torch.cdist(pred_boxes.flatten(1), gt_boxes.flatten(1), p=2)
        # (Q, 1, T, 4) - (1, N, T, 4) -> squared distance over valid frames
        diff = pred_boxes[:, None] - gt_boxes[None]
        sq = (diff.pow(2).sum(-1) * valid[None]).sum(-1)
        if self.normalize_valid_frames:
            # (N,) T / |V_i|; instances absent everywhere cost 0 either way
            sq = sq * (valid.size(1) / valid.sum(1).clamp(min=1))
        return sq.clamp(min=0).sqrt()


@TASK_UTILS.register_module()
class ClipGIoUCost(ClipBoxCost):
    """Negative generalised IoU averaged over the frames of a clip.

    Args:
        weight (float): Cost weight. Defaults to 1.
    """

    def track_cost(self, pred_boxes: Tensor, gt_boxes: Tensor,
                   valid: Optional[Tensor]) -> Tensor:
        """See :meth:`ClipBoxCost.track_cost`."""
        # (T, Q, 4) x (T, N, 4) -> (T, Q, N): one batched GIoU for all frames
        giou = bbox_overlaps(
            bbox_cxcywh_to_xyxy(pred_boxes.transpose(0, 1)),
            bbox_cxcywh_to_xyxy(gt_boxes.transpose(0, 1)),
            mode='giou')
        if valid is None:
            mean_giou = giou.mean(0)
        else:
            # (N, T) -> (T, 1, N); instances absent everywhere get 0
            weights = valid.t()[:, None]
            mean_giou = (giou * weights).sum(0) / weights.sum(0).clamp(min=1)
        return -mean_giou
