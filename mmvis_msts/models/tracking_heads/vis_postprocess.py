"""Post-processing of a VIS head: top-k tracks, masks at the output size.

Shapes use the package notation (``mmvis_msts``): Q queries, K classes, N
kept tracks, T frames, H_4 and W_4 the size of the predicted masks.
"""
from typing import List, Tuple

import torch
import torch.nn.functional as F
from mmdet.structures import TrackDataSample
from mmdet.structures.mask import mask2bbox
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


def mask_probs_at_output_size(mask_logits: Tensor, sample: TrackDataSample,
                              rescale: bool) -> Tensor:
    """Mask logits at the output stride -> probabilities at the frame size.

    Args:
        mask_logits (Tensor): (N, T, H_4, W_4).
        sample (TrackDataSample): The video; its frames must share their
            ``img_shape`` and ``ori_shape``.
        rescale (bool): Return the original frame size (``ori_shape``)
            instead of the resized input size (``img_shape``).

    Returns:
        Tensor: (N, T, H, W) probabilities.
    """
    metas = [sample[i].metainfo for i in range(len(sample))]
    for key in ('img_shape', 'ori_shape'):
        if len({tuple(m[key][:2]) for m in metas}) != 1:
            raise ValueError(f'frames of a video must share {key}')
    input_h, input_w = metas[0]['batch_input_shape']
    img_h, img_w = metas[0]['img_shape'][:2]
    probs = F.interpolate(
        mask_logits,
        size=(input_h, input_w),
        mode='bilinear',
        align_corners=False)[..., :img_h, :img_w]
    if rescale:
        probs = F.interpolate(
            probs,
            size=tuple(metas[0]['ori_shape'][:2]),
            mode='bilinear',
            align_corners=False)
    return probs.sigmoid()


def tracks_to_frame_results(masks: Tensor, scores: Tensor,
                            labels: Tensor) -> List[InstanceData]:
    """Split N tracks into per-frame results with one id per track.

    Args:
        masks (Tensor): (N, T, H, W) bool.
        scores (Tensor): (N,) track scores.
        labels (Tensor): (N,) 0-based labels.

    Returns:
        list[InstanceData]: T frames with ``masks`` (N, H, W), ``bboxes``
        (N, 4) xyxy from the masks, ``scores``, ``labels`` and
        ``instances_id`` (N,) = 0..N-1, the same in every frame.
    """
    track_ids = torch.arange(len(masks), device=masks.device)
    return [
        InstanceData(
            masks=masks[:, t],
            bboxes=mask2bbox(masks[:, t]),
            scores=scores,
            labels=labels,
            instances_id=track_ids) for t in range(masks.size(1))
    ]
