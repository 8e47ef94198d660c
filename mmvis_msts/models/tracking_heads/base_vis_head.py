"""Base of query-based VIS heads: targets, losses and post-processing.

Shapes use the package notation (``mmvis_msts``): B clips, T frames, Q
queries, K classes, N instances, Ld decoder layers, H_4 and W_4 the size of
the predicted masks.
"""
import functools
from abc import ABCMeta, abstractmethod
from typing import Callable, Dict, List, Sequence

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import TrackSampleList
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.dist import all_reduce
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from .vis_matching import match_clips
from .vis_postprocess import (nonempty_tracks, select_top_tracks,
                              tracks_to_frame_results, video_frame_masks)
from .vis_records import (ClipAssignment, ForegroundMaps, VISHeadOutputs,
                          VISTargets, WindowCandidates)
from .vis_targets import build_clip_gts, clip_class_maps


def in_float32(method: Callable) -> Callable:
    """Run a head method on float32 outputs with autocast off.

    For the methods that take :class:`VISHeadOutputs` after the network
    (matching, losses, the discriminator's maps, test-time selection): a
    forward under bfloat16 autocast (``BF16OptimWrapper``, inference in
    ``torch.autocast``) returns some outputs in bfloat16, and autocast would
    run the matcher's and the mask head's matrix products in bfloat16 too.
    In float32 the Hungarian solver gets an array it can read (numpy has no
    bfloat16), the losses sum over pixels without bfloat16's 8-bit
    mantissa, and the test-time results are float32 as without autocast.
    A caller that passes the same outputs to several of these methods casts
    them once itself (``VISHeadOutputs.float()`` of float32 outputs is a
    no-op).
    """

    @functools.wraps(method)
    def run(self, head_outs: VISHeadOutputs, *args, **kwargs):
        device_type = head_outs.mask_feats.device.type
        with torch.autocast(device_type, enabled=False):
            return method(self, head_outs.float(), *args, **kwargs)

    return run


class BaseVISHead(BaseModule, metaclass=ABCMeta):
    """Targets, losses and post-processing of a clip-level VIS head.

    A subclass predicts, for every decoder layer, class logits per query,
    one box per query and frame and dynamic mask parameters
    (:meth:`forward` -> :class:`VISHeadOutputs`), and turns selected
    queries into mask logits (:meth:`mask_logits`). This class matches every
    layer to the GT tracks, computes the five losses per layer and selects
    the top-k tracks at test time, like mmdet's ``DETRHead`` does for
    images:

    ``loss = loss_by_feat(forward(x), get_targets(forward(x), samples))``,
    ``predict = predict_by_feat(forward(x), samples)``.

    Args:
        num_classes (int): Number of object classes K (no background).
        loss_cls (dict): Class loss (sigmoid focal).
        loss_bbox (dict): Box L1 loss on normalised (cx, cy, w, h).
        loss_iou (dict): Box GIoU loss.
        loss_mask (dict): Mask loss (sigmoid focal over pixels).
        loss_dice (dict): Mask dice loss.
        supervise_absent_boxes (bool): Supervise the boxes of frames where a
            GT instance is absent towards an all-zero box (SeqFormer) instead
            of masking them out of the box costs and losses, since a zero box
            is no meaningful target. Defaults to False.
        loss_sem (dict, optional): Auxiliary per-pixel class loss (sigmoid
            focal, one-hot targets) on ``sem_logits``, the subclass's class
            logits on the finest encoder map, against the union of the GT
            masks of each class (docs/design.md §7). Training only; None
            (SeqFormer) adds no loss. Defaults to None.
        train_cfg (dict, optional): ``assigner`` config. Defaults to None.
        test_cfg (dict, optional): ``max_per_video`` (top-k (query, class)
            pairs, default 10; per window in the clip-wise mode),
            ``mask_thr`` (probability, default 0.5) and ``drop_empty`` (drop
            pairs whose mask is empty in every frame, as SeqFormer; default
            True); the clip-wise mode of ``MSSTSVIS`` reads ``clip_window``,
            ``clip_stride`` and ``clip_mode_min_frames`` here too.
            Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 num_classes: int,
                 loss_cls: ConfigType,
                 loss_bbox: ConfigType,
                 loss_iou: ConfigType,
                 loss_mask: ConfigType,
                 loss_dice: ConfigType,
                 supervise_absent_boxes: bool = False,
                 loss_sem: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.supervise_absent_boxes = supervise_absent_boxes
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg if test_cfg is not None else dict()
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_iou = MODELS.build(loss_iou)
        self.loss_mask = MODELS.build(loss_mask)
        self.loss_dice = MODELS.build(loss_dice)
        self.loss_sem = None if loss_sem is None else MODELS.build(loss_sem)
        self.assigner = None
        if train_cfg is not None:
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])

    @abstractmethod
    def forward(self, x: Sequence[Tensor],
                batch_data_samples: TrackSampleList) -> VISHeadOutputs:
        """Predictions of every decoder layer for B clips."""

    @abstractmethod
    def mask_logits(self, head_outs: VISHeadOutputs, layer_id: int,
                    clip_inds: Tensor, query_inds: Tensor) -> Tensor:
        """(N, T, H_4, W_4) mask logits of selected (clip, query) pairs."""

    # ------------------------------------------------------------------ #
    # training
    # ------------------------------------------------------------------ #
    def loss(self, x: Sequence[Tensor],
             batch_data_samples: TrackSampleList) -> Dict[str, Tensor]:
        """Forward, match and compute the losses of every decoder layer.

        Args:
            x (Sequence[Tensor]): L neck maps (B*T, C, H_l, W_l).
            batch_data_samples (list[TrackDataSample]): B clips with GT.

        Returns:
            dict[str, Tensor]: See :meth:`loss_by_feat`.
        """
        # float32 once for both methods (``in_float32``)
        head_outs = self(x, batch_data_samples).float()
        targets = self.get_targets(head_outs, batch_data_samples)
        return self.loss_by_feat(head_outs, targets)

    @in_float32
    def get_targets(self, head_outs: VISHeadOutputs,
                    batch_data_samples: TrackSampleList) -> VISTargets:
        """GT tracks of every clip and the matching of every layer.

        Args:
            head_outs (VISHeadOutputs): Output of :meth:`forward`.
            batch_data_samples (list[TrackDataSample]): With
                ``gt_instances`` per frame (``labels``, ``bboxes``,
                ``masks``, ``instances_ids``).

        Returns:
            VISTargets: Tracks, one assignment per layer, loss normaliser.
        """
        if self.assigner is None:
            raise RuntimeError(f'{type(self).__name__} needs '
                               'train_cfg.assigner to compute losses')
        clip_gts = build_clip_gts(batch_data_samples,
                                  head_outs.mask_out_stride,
                                  head_outs.mask_out_size,
                                  self.supervise_absent_boxes)
        num_gts = head_outs.mask_feats.new_tensor(
            float(sum(len(gt) for gt in clip_gts)))
        all_reduce(num_gts, op='mean')
        assignments = [
            match_clips(
                self.assigner,
                head_outs.cls_scores[layer_id],
                # (B, T, Q, 4) -> (B, Q, T, 4)
                head_outs.bbox_preds[layer_id].transpose(1, 2),
                clip_gts) for layer_id in range(head_outs.num_layers)
        ]
        return VISTargets(
            clip_gts=clip_gts,
            assignments=assignments,
            avg_factor=max(num_gts.item(), 1.0))

    @in_float32
    def loss_by_feat(self, head_outs: VISHeadOutputs,
                     targets: VISTargets) -> Dict[str, Tensor]:
        """The five losses of every decoder layer.

        Args:
            head_outs (VISHeadOutputs): Output of :meth:`forward`.
            targets (VISTargets): Output of :meth:`get_targets`.

        Returns:
            dict[str, Tensor]: ``loss_{cls,bbox,giou,mask,dice}`` of the last
            layer and ``d{l}.loss_*`` of the earlier layers; ``loss_sem``
            with an auxiliary class loss.
        """
        losses = {}
        last = head_outs.num_layers - 1
        for layer_id in range(head_outs.num_layers):
            layer_losses = self._loss_single_layer(head_outs, layer_id,
                                                   targets)
            prefix = '' if layer_id == last else f'd{layer_id}.'
            losses.update({prefix + k: v for k, v in layer_losses.items()})
        if self.loss_sem is not None:
            losses['loss_sem'] = self._semantic_loss(head_outs, targets)
        return losses

    def _semantic_loss(self, head_outs: VISHeadOutputs,
                       targets: VISTargets) -> Tensor:
        """``loss_sem``: per pixel of the finest encoder map, the class of
        the GT mask it lies in (the class maps average-pooled from the mask
        output stride to the map's), averaged over pixels."""
        logits = head_outs.sem_logits
        if logits is None:
            raise RuntimeError(f'{type(self).__name__} has loss_sem but its '
                               'forward returned no sem_logits')
        maps = torch.cat(
            [clip_class_maps(gt, self.num_classes) for gt in targets.clip_gts])
        maps = F.adaptive_avg_pool2d(maps, logits.shape[-2:])
        # (B*T, K, H, W) -> (B*T*H*W, K)
        logits, maps = (
            t.permute(0, 2, 3, 1).flatten(0, 2) for t in (logits, maps))
        return self.loss_sem(logits, maps, avg_factor=len(logits))

    def _loss_single_layer(self, head_outs: VISHeadOutputs, layer_id: int,
                           targets: VISTargets) -> Dict[str, Tensor]:
        """The five losses of one decoder layer; see :meth:`loss_by_feat`."""
        match = targets.assignments[layer_id]
        avg_factor = targets.avg_factor
        cls_scores = head_outs.cls_scores[layer_id]
        labels = cls_scores.new_full(
            cls_scores.shape[:2], self.num_classes, dtype=torch.long)
        labels[match.clip_inds, match.query_inds] = \
            targets.cat('labels')[match.gt_inds]
        loss_cls = self.loss_cls(
            cls_scores.flatten(0, 1), labels.flatten(), avg_factor=avg_factor)

        # (B, T, Q, 4) -> (N, T, 4); an instance's frames weigh
        # 1 / (its valid frames)
        pred_boxes = head_outs.bbox_preds[layer_id].transpose(
            1, 2)[match.clip_inds, match.query_inds]
        target_boxes = targets.cat('bboxes')[match.gt_inds]
        valid = targets.cat('box_valid')[match.gt_inds].to(pred_boxes.dtype)
        frame_weights = valid / valid.sum(1, keepdim=True).clamp(min=1)
        loss_bbox = self.loss_bbox(
            pred_boxes,
            target_boxes,
            weight=frame_weights[..., None].expand_as(pred_boxes),
            avg_factor=avg_factor)
        loss_giou = self.loss_iou(
            bbox_cxcywh_to_xyxy(pred_boxes).flatten(0, 1),
            bbox_cxcywh_to_xyxy(target_boxes).flatten(0, 1),
            weight=frame_weights.flatten(),
            avg_factor=avg_factor)
        loss_mask, loss_dice = self._mask_losses(head_outs, layer_id, match,
                                                 targets)
        return dict(
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            loss_giou=loss_giou,
            loss_mask=loss_mask,
            loss_dice=loss_dice)

    def _mask_losses(self, head_outs: VISHeadOutputs, layer_id: int,
                     match: ClipAssignment,
                     targets: VISTargets) -> List[Tensor]:
        """Focal (averaged over pixels) and dice loss of the matched masks."""
        if len(match.gt_inds) == 0:
            # keep the graph connected when no clip has GT
            zero = head_outs.mask_params[layer_id].sum() * 0
            return [zero, zero]
        mask_logits = self.mask_logits(head_outs, layer_id, match.clip_inds,
                                       match.query_inds)
        target_masks = targets.cat('masks')[match.gt_inds].to(
            mask_logits.dtype)
        if target_masks.shape != mask_logits.shape:
            raise RuntimeError(
                f'GT masks {tuple(target_masks.shape)} do not match the '
                f'predicted masks {tuple(mask_logits.shape)}')
        num_pixels = mask_logits[0].numel()
        # focal loss averaged over pixels, summed over instances
        loss_mask = self.loss_mask(
            mask_logits.flatten(1),
            target_masks.flatten(1),
            avg_factor=targets.avg_factor * num_pixels)
        loss_dice = self.loss_dice(
            mask_logits.flatten(1),
            target_masks.flatten(1),
            avg_factor=targets.avg_factor)
        return [loss_mask, loss_dice]

    @in_float32
    def foreground_maps(self,
                        head_outs: VISHeadOutputs,
                        targets: VISTargets,
                        num_unmatched: int = 0) -> ForegroundMaps:
        """Predicted and GT foreground of every frame (last layer).

        The input of an auxiliary foreground/background discriminator
        (docs/design.md §3c), built so that the two maps differ in shape and
        placement only, not in how their values are made:

        - both are binary at the mask-output stride: the GT union, and the
          pixel-wise max over the selected queries of their masks
          thresholded at probability 0.5 (the test-time rule), with a
          straight-through gradient (the gradient of the probability);
        - the selected queries are the matched ones, weight 1, and the
          ``num_unmatched`` unmatched queries of each clip with the highest
          scores, weighted by their score (max class probability, with
          gradient), so that confident false positives show in the map
          while the many low-score queries do not.

        Masks are computed again here (a few 1x1 convs per selected query)
        so that the losses stay independent of it.

        Args:
            head_outs (VISHeadOutputs): Output of :meth:`forward`.
            targets (VISTargets): Output of :meth:`get_targets`.
            num_unmatched (int): Unmatched queries per clip in the predicted
                map. Defaults to 0.

        Returns:
            ForegroundMaps: (B*T, 1, H_4, W_4) maps; ``pred`` carries the
            gradient of the selected mask logits and scores.
        """
        match = targets.assignments[-1]
        scores = head_outs.cls_scores[-1].sigmoid().amax(-1)  # (B, Q)
        matched = torch.zeros_like(scores, dtype=torch.bool)
        matched[match.clip_inds, match.query_inds] = True
        num_clips, num_queries = scores.shape
        # unmatched queries by score; matched ones rank last and are dropped
        ranked = scores.detach().masked_fill(matched, -1).topk(
            min(num_unmatched, num_queries), dim=1).indices
        ranked_clips = torch.arange(
            num_clips, device=scores.device)[:, None].expand_as(ranked)
        keep = ~matched[ranked_clips, ranked]
        clip_inds = torch.cat([match.clip_inds, ranked_clips[keep]])
        query_inds = torch.cat([match.query_inds, ranked[keep]])
        weights = torch.cat([
            scores.new_ones(len(match.clip_inds)), scores[ranked_clips[keep],
                                                          ranked[keep]]
        ])
        probs = self.mask_logits(head_outs, -1, clip_inds,
                                 query_inds).sigmoid()
        hard = (probs > 0.5).to(probs.dtype) - probs.detach() + probs
        masks = hard * weights[:, None, None, None]
        num_frames = head_outs.mask_feats.size(1)
        empty = head_outs.mask_feats.new_zeros(num_frames,
                                               *head_outs.mask_out_size)
        pred = torch.stack([
            masks[clip_inds == i].amax(0) if (clip_inds == i).any() else empty
            for i in range(num_clips)
        ])
        gt = torch.stack([
            gt.masks.amax(0) if len(gt) else empty for gt in targets.clip_gts
        ])
        return ForegroundMaps(
            pred=pred.flatten(0, 1)[:, None], gt=gt.flatten(0, 1)[:, None])

    # ------------------------------------------------------------------ #
    # inference
    # ------------------------------------------------------------------ #
    def predict(self,
                x: Sequence[Tensor],
                batch_data_samples: TrackSampleList,
                rescale: bool = True) -> List[List[InstanceData]]:
        """Segment and track the instances of whole videos.

        Args:
            x (Sequence[Tensor]): L neck maps (B*T, C, H_l, W_l).
            batch_data_samples (list[TrackDataSample]): B videos.
            rescale (bool): Return masks at each frame's ``ori_shape``
                instead of the resized input size. Defaults to True.

        Returns:
            list[list[InstanceData]]: Per video, per frame: see
            :func:`tracks_to_frame_results`.
        """
        head_outs = self(x, batch_data_samples)
        return self.predict_by_feat(head_outs, batch_data_samples, rescale)

    def predict_by_feat(self,
                        head_outs: VISHeadOutputs,
                        batch_data_samples: TrackSampleList,
                        rescale: bool = True) -> List[List[InstanceData]]:
        """Top-k (query, class) pairs of the last layer of every video.

        Masks are computed only for the selected queries.

        Args:
            head_outs (VISHeadOutputs): Output of :meth:`forward`.
            batch_data_samples (list[TrackDataSample]): B videos.
            rescale (bool): See :meth:`predict`. Defaults to True.

        Returns:
            list[list[InstanceData]]: See :meth:`predict`.
        """
        results = []
        for clip_id, sample in enumerate(batch_data_samples):
            cands = self.window_candidates(head_outs, clip_id)
            masks = self.frame_masks(
                cands.mask_logits,
                [sample[i].metainfo for i in range(len(sample))], rescale)
            keep = self.kept_tracks(masks)
            results.append(
                tracks_to_frame_results([m[keep] for m in masks],
                                        cands.scores[keep],
                                        cands.labels[keep]))
        return results

    @in_float32
    def window_candidates(self,
                          head_outs: VISHeadOutputs,
                          clip_id: int = 0) -> WindowCandidates:
        """The top-k (query, class) pairs of one clip, last layer.

        The whole video in :meth:`predict_by_feat`, one window of it in
        the clip-wise mode of ``MSSTSVIS``. The instance embedding of a
        query is the last decoder layer's instance query, which the class,
        box and mask branches all read.

        Args:
            head_outs (VISHeadOutputs): Output of :meth:`forward`.
            clip_id (int): Clip of the batch. Defaults to 0.

        Returns:
            WindowCandidates: N = min(``max_per_video``, Q * K) pairs with
            mask logits at the output stride.
        """
        scores, query_inds, labels = select_top_tracks(
            head_outs.cls_scores[-1, clip_id],
            self.test_cfg.get('max_per_video', 10))
        mask_logits = self.mask_logits(head_outs, -1,
                                       torch.full_like(query_inds, clip_id),
                                       query_inds)
        return WindowCandidates(
            scores=scores,
            labels=labels,
            query_inds=query_inds,
            embeds=head_outs.instance_queries[clip_id, query_inds],
            mask_logits=mask_logits)

    def kept_tracks(self, masks: Sequence[Tensor]) -> Tensor:
        """The tracks post-processing keeps.

        Args:
            masks (Sequence[Tensor]): T masks (N, H, W) bool of N tracks.

        Returns:
            Tensor: (N,) bool; with ``test_cfg.drop_empty`` (default True)
            the tracks whose mask is non-empty in some frame, else all.
        """
        if self.test_cfg.get('drop_empty', True):
            return nonempty_tracks(masks)
        return masks[0].new_ones(len(masks[0]), dtype=torch.bool)

    def frame_masks(self, mask_logits: Tensor, metainfos: Sequence[dict],
                    rescale: bool) -> List[Tensor]:
        """Binary masks at the output size, one frame at a time.

        Args:
            mask_logits (Tensor): (N, T, H_4, W_4) logits.
            metainfos (Sequence[dict]): The T frames' metainfos.
            rescale (bool): See :meth:`predict`.

        Returns:
            list[Tensor]: T masks (N, H, W) bool, thresholded at
            ``test_cfg.mask_thr`` in logit space
            (:func:`~.vis_postprocess.frame_masks`).
        """
        return video_frame_masks(mask_logits, metainfos, rescale,
                                 self.test_cfg.get('mask_thr', 0.5))
