"""Per-clip GT targets of a VIS head, built from per-frame GT.

Shapes use the package notation (``mmvis_msts``): T frames, N instances of
a clip, H_4 and W_4 the size of the predicted masks (``mask_out_stride``).
"""
from typing import List, Tuple

import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample, TrackDataSample, TrackSampleList
from mmdet.structures.bbox import bbox_xyxy_to_cxcywh, get_box_tensor
from mmengine.structures import InstanceData
from torch import Tensor


def build_clip_gts(batch_data_samples: TrackSampleList, mask_out_stride: int,
                   mask_size: Tuple[int, int],
                   supervise_absent_boxes: bool) -> List[InstanceData]:
    """Per-clip GT tracks from per-frame GT (as ``Mask2FormerTrackHead``).

    Instances are identified across frames by ``instances_ids``; a clip's
    tracks are sorted by id.

    Args:
        batch_data_samples (list[TrackDataSample]): B clips with
            ``gt_instances`` per frame (``labels``, ``bboxes`` xyxy pixels,
            ``masks``, ``instances_ids``).
        mask_out_stride (int): Stride of the predicted masks; GT masks are
            sub-sampled at offset ``mask_out_stride // 2`` (SeqFormer).
        mask_size (tuple[int, int]): Expected (H_4, W_4).
        supervise_absent_boxes (bool): Supervise the boxes of frames where
            an instance is absent (towards a zero box, SeqFormer) instead of
            masking them out.

    Returns:
        list[InstanceData]: Per clip, N tracks: ``labels`` (N,), ``bboxes``
        (N, T, 4) normalised (cx, cy, w, h), zero where absent; ``valid``
        (N, T) presence; ``box_valid`` (N, T) frames supervised for boxes;
        ``masks`` (N, T, H_4, W_4) float; ``instances_ids`` (N, T), -1 where
        absent.
    """
    return [
        _clip_gt(sample, mask_out_stride, mask_size, supervise_absent_boxes)
        for sample in batch_data_samples
    ]


def _clip_gt(sample: TrackDataSample, mask_out_stride: int,
             mask_size: Tuple[int, int],
             supervise_absent_boxes: bool) -> InstanceData:
    """GT tracks of one clip; see :func:`build_clip_gts`."""
    frames = [sample[i] for i in range(len(sample))]
    num_frames = len(frames)
    device = frames[0].gt_instances.labels.device
    # (sum of per-frame N,) frame index of every per-frame instance
    frame_inds = torch.cat([
        torch.full((len(f.gt_instances), ), t, device=device)
        for t, f in enumerate(frames)
    ]).long()
    ids = torch.cat([f.gt_instances.instances_ids for f in frames])
    labels = torch.cat([f.gt_instances.labels for f in frames])
    # xyxy pixels -> normalised cxcywh by each frame's unpadded size
    scales = torch.tensor([[f.img_shape[1], f.img_shape[0]] * 2
                           for f in frames],
                          dtype=torch.float32,
                          device=device)
    boxes = torch.cat(
        [get_box_tensor(f.gt_instances.bboxes).float() for f in frames])
    boxes = bbox_xyxy_to_cxcywh(boxes / scales[frame_inds])
    masks = torch.cat([
        frame_gt_masks(f, mask_out_stride, mask_size, device) for f in frames
    ])

    uniq_ids, inst_inds = torch.unique(ids, return_inverse=True)
    num_insts = len(uniq_ids)
    video_labels = labels.new_zeros(num_insts)
    video_labels[inst_inds] = labels
    video_boxes = boxes.new_zeros(num_insts, num_frames, 4)
    video_boxes[inst_inds, frame_inds] = boxes
    valid = torch.zeros(num_insts, num_frames, dtype=torch.bool, device=device)
    valid[inst_inds, frame_inds] = True
    video_masks = masks.new_zeros(num_insts, num_frames, *mask_size)
    video_masks[inst_inds, frame_inds] = masks
    video_ids = ids.new_full((num_insts, num_frames), -1)
    video_ids[inst_inds, frame_inds] = ids
    box_valid = torch.ones_like(valid) if supervise_absent_boxes else valid
    return InstanceData(
        labels=video_labels,
        bboxes=video_boxes,
        valid=valid,
        box_valid=box_valid,
        masks=video_masks,
        instances_ids=video_ids)


def frame_gt_masks(frame: DetDataSample, mask_out_stride: int,
                   mask_size: Tuple[int, int], device: torch.device) -> Tensor:
    """One frame's GT masks sub-sampled to the mask output stride.

    Args:
        frame (DetDataSample): A frame with ``gt_instances.masks`` (N, H, W)
            at the unpadded or the padded input size.
        mask_out_stride (int): Stride of the predicted masks.
        mask_size (tuple[int, int]): Expected (H_4, W_4).
        device (torch.device): Device of the result.

    Returns:
        Tensor: (N, H_4, W_4) float.
    """
    masks = frame.gt_instances.masks
    if not isinstance(masks, Tensor):
        masks = masks.to_tensor(dtype=torch.bool, device=device)
    input_h, input_w = frame.batch_input_shape
    # pad to the padded input size when the preprocessor did not
    masks = F.pad(masks.float(),
                  (0, input_w - masks.shape[-1], 0, input_h - masks.shape[-2]))
    start = mask_out_stride // 2
    masks = masks[:, start::mask_out_stride, start::mask_out_stride]
    if tuple(masks.shape[-2:]) != tuple(mask_size):
        raise RuntimeError(
            f'GT masks of input size {(input_h, input_w)} at stride '
            f'{mask_out_stride} give {tuple(masks.shape[-2:])}, predictions '
            f'are {tuple(mask_size)}; pad inputs to a multiple of 32')
    return masks


def clip_class_maps(clip_gt: InstanceData, num_classes: int) -> Tensor:
    """Per frame and class, the union of a clip's GT masks of that class.

    Args:
        clip_gt (InstanceData): One clip's tracks (:func:`build_clip_gts`):
            ``labels`` (N,), ``masks`` (N, T, H_4, W_4).
        num_classes (int): K.

    Returns:
        Tensor: (T, K, H_4, W_4) float maps in {0, 1}.
    """
    masks = clip_gt.masks.float()
    one_hot = F.one_hot(clip_gt.labels, num_classes).to(masks.dtype)
    # visible masks of one frame do not overlap; the clamp covers GT that do
    return torch.einsum('nk,nthw->tkhw', one_hot, masks).clamp(max=1)
