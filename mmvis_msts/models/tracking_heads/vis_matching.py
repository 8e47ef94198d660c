"""Hungarian matching of a clip's queries to its GT tracks.

Shapes use the package notation (``mmvis_msts``): B clips, T frames, Q
queries, K classes, N matched pairs.
"""
from typing import List

import torch
from mmdet.models.task_modules import BaseAssigner
from mmengine.structures import InstanceData
from torch import Tensor

from .vis_records import ClipAssignment


def match_clips(assigner: BaseAssigner, cls_scores: Tensor, bbox_preds: Tensor,
                clip_gts: List[InstanceData]) -> ClipAssignment:
    """Match each clip on whole-clip costs (one box track per query).

    Args:
        assigner (BaseAssigner): mmdet's ``HungarianAssigner`` with clip
            costs (``ClipBBoxL2Cost``, ``ClipGIoUCost``, ...).
        cls_scores (Tensor): (B, Q, K) logits of one layer.
        bbox_preds (Tensor): (B, Q, T, 4) boxes of one layer.
        clip_gts (list[InstanceData]): Per-clip GT tracks
            (:func:`build_clip_gts`).

    Returns:
        ClipAssignment: The matched pairs of all clips.
    """
    clip_inds, query_inds, gt_inds = [], [], []
    gt_offset = 0
    for clip_id, gt in enumerate(clip_gts):
        pred_instances = InstanceData(
            scores=cls_scores[clip_id], bboxes=bbox_preds[clip_id])
        gt_instances = InstanceData(
            labels=gt.labels, bboxes=gt.bboxes, valid=gt.box_valid)
        assign_result = assigner.assign(
            pred_instances=pred_instances, gt_instances=gt_instances)
        pos = torch.nonzero(assign_result.gt_inds > 0).squeeze(1)
        clip_inds.append(torch.full_like(pos, clip_id))
        query_inds.append(pos)
        gt_inds.append(assign_result.gt_inds[pos] - 1 + gt_offset)
        gt_offset += len(gt)
    return ClipAssignment(
        clip_inds=torch.cat(clip_inds),
        query_inds=torch.cat(query_inds),
        gt_inds=torch.cat(gt_inds))
