"""Post-processing of a VIS head: top-k tracks, masks at the output size.

Shapes use the package notation (``mmvis_msts``): Q queries, K classes, N
kept tracks, T frames, H_4 and W_4 the size of the predicted masks.

Masks are thresholded one frame at a time in logit space: the logits of a
frame are upsampled (bilinear, to the padded input size, cropped to
``img_shape`` and, with ``rescale``, resized to ``ori_shape``) and compared
with ``logit(mask_thr)``. Since the sigmoid is increasing,
``sigmoid(x) > mask_thr`` and ``x > logit(mask_thr)`` agree except where
float rounding makes ``sigmoid(x)`` equal ``mask_thr``; no (N, T, H, W)
float tensor at the output size is ever held.
"""
import math
from typing import List, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util
import torch
import torch.nn.functional as F
from mmdet.structures.mask import encode_mask_results, mask2bbox
from mmengine.structures import InstanceData
from torch import Tensor


def select_top_tracks(cls_scores: Tensor,
                      max_per_video: int) -> Tuple[Tensor, Tensor, Tensor]:
    """The top-k (query, class) pairs of one video.

    A query may be kept with several classes, as in SeqFormer.

    Args:
        cls_scores (Tensor): (Q, K) class logits of the last layer.
        max_per_video (int): k.

    Returns:
        tuple[Tensor, Tensor, Tensor]: (N,) scores (probabilities, in
        descending order), query indices and 0-based labels, with
        N = min(k, Q * K).
    """
    num_classes = cls_scores.size(-1)
    scores = cls_scores.sigmoid().flatten()
    top_scores, top_inds = scores.topk(min(max_per_video, scores.numel()))
    return top_scores, top_inds // num_classes, top_inds % num_classes


def mask_logit_thr(mask_thr: float) -> float:
    """``logit(mask_thr)``, the threshold of :func:`frame_masks`.

    Args:
        mask_thr (float): Probability threshold in (0, 1).

    Returns:
        float: The same threshold on logits.
    """
    if not 0 < mask_thr < 1:
        raise ValueError(f'mask_thr must lie in (0, 1), got {mask_thr}')
    return math.log(mask_thr / (1 - mask_thr))


def frame_masks(frame_logits: Tensor, metainfo: dict, rescale: bool,
                mask_thr: float) -> Tensor:
    """Mask logits of one frame -> binary masks at the frame's size.

    Args:
        frame_logits (Tensor): (N, H_4, W_4) logits at the output stride.
        metainfo (dict): The frame's ``batch_input_shape``, ``img_shape``
            and ``ori_shape``.
        rescale (bool): Return the original frame size (``ori_shape``)
            instead of the resized input size (``img_shape``).
        mask_thr (float): Probability threshold.

    Returns:
        Tensor: (N, H, W) bool, ``upsampled logits > logit(mask_thr)``.
    """
    input_h, input_w = metainfo['batch_input_shape']
    img_h, img_w = metainfo['img_shape'][:2]
    # (N, H_4, W_4) -> (1, N, H_in, W_in) -> cropped to img_shape
    logits = F.interpolate(
        frame_logits[None],
        size=(input_h, input_w),
        mode='bilinear',
        align_corners=False)[..., :img_h, :img_w]
    if rescale:
        logits = F.interpolate(
            logits,
            size=tuple(metainfo['ori_shape'][:2]),
            mode='bilinear',
            align_corners=False)
    return logits[0] > mask_logit_thr(mask_thr)


def video_frame_masks(mask_logits: Tensor, metainfos: Sequence[dict],
                      rescale: bool, mask_thr: float) -> List[Tensor]:
    """:func:`frame_masks` of every frame of N tracks.

    Args:
        mask_logits (Tensor): (N, T, H_4, W_4) logits.
        metainfos (Sequence[dict]): T frame metainfos.
        rescale (bool): See :func:`frame_masks`.
        mask_thr (float): Probability threshold.

    Returns:
        list[Tensor]: T masks (N, H, W) bool.
    """
    if mask_logits.size(1) != len(metainfos):
        raise ValueError(f'{mask_logits.size(1)} frames of mask logits but '
                         f'{len(metainfos)} frame metainfos')
    return [
        frame_masks(mask_logits[:, t], meta, rescale, mask_thr)
        for t, meta in enumerate(metainfos)
    ]


def nonempty_tracks(masks: Sequence[Tensor]) -> Tensor:
    """Tracks whose mask is non-empty in at least one frame.

    Args:
        masks (Sequence[Tensor]): T masks (N, H, W) bool.

    Returns:
        Tensor: (N,) bool.
    """
    return torch.stack([m.flatten(1).any(1) for m in masks]).any(0)


def frame_result(masks: Tensor, scores: Tensor, labels: Tensor,
                 instances_id: Tensor, as_rle: bool) -> InstanceData:
    """One frame's ``pred_track_instances``.

    Args:
        masks (Tensor): (N, H, W) bool.
        scores (Tensor): (N,) scores.
        labels (Tensor): (N,) 0-based labels.
        instances_id (Tensor): (N,) track ids.
        as_rle (bool): Keep the masks as COCO RLE (``masks_rle``, a list of
            N dicts, see :func:`decode_rle_masks`) instead of ``masks``.

    Returns:
        InstanceData: ``masks`` (N, H, W) bool or ``masks_rle``, ``bboxes``
        (N, 4) xyxy from the masks, ``scores``, ``labels``,
        ``instances_id``.
    """
    result = InstanceData(
        bboxes=mask2bbox(masks),
        scores=scores,
        labels=labels,
        instances_id=instances_id)
    if as_rle:
        result.masks_rle = encode_mask_results(masks.cpu().numpy())
    else:
        result.masks = masks
    return result


def tracks_to_frame_results(masks: Sequence[Tensor], scores: Tensor,
                            labels: Tensor) -> List[InstanceData]:
    """Split N tracks into per-frame results with one id per track.

    Args:
        masks (Sequence[Tensor]): T masks (N, H, W) bool.
        scores (Tensor): (N,) track scores.
        labels (Tensor): (N,) 0-based labels.

    Returns:
        list[InstanceData]: T frames of :func:`frame_result` with ``masks``
        and ``instances_id`` (N,) = 0..N-1, the same in every frame.
    """
    track_ids = torch.arange(len(scores), device=scores.device)
    return [
        frame_result(frame, scores, labels, track_ids, as_rle=False)
        for frame in masks
    ]


def decode_rle_masks(instances: InstanceData, shape: Tuple[int,
                                                           int]) -> Tensor:
    """The (N, H, W) bool masks of a frame whose masks are kept as RLE.

    Args:
        instances (InstanceData): With ``masks_rle`` (N COCO RLE dicts, as
            the clip-wise mode writes them) and ``scores``.
        shape (tuple[int, int]): (H, W) of the frame, for a frame without
            instances.

    Returns:
        Tensor: (N, H, W) bool, on the device of ``instances.scores``.
    """
    device = instances.scores.device
    if len(instances) == 0:
        return torch.zeros((0, *shape), dtype=torch.bool, device=device)
    masks = mask_util.decode(list(instances.masks_rle))  # (H, W, N) uint8
    return torch.from_numpy(np.ascontiguousarray(masks.transpose(2, 0, 1))).to(
        device, torch.bool)
