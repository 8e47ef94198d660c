"""Typed records passed between the stages of a VIS head.

Shapes use the package notation (``mmvis_msts``): B clips, T frames, Q
queries, K classes, N instances, L levels, Ld decoder layers, C channels.
"""
from dataclasses import dataclass, fields, replace
from typing import List, Optional, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor


@dataclass
class VISHeadOutputs:
    """Everything :meth:`MSSTSVISHead.forward` predicts for a batch of clips.

    Only the dynamic mask convs are left to run on selected queries
    (:meth:`MSSTSVISHead.mask_logits`): they are parameter-free given
    ``mask_params``, and most queries never need a mask.

    Attributes:
        cls_scores (Tensor): (Ld, B, Q, K) class logits of every layer.
        bbox_preds (Tensor): (Ld, B, T, Q, 4) normalised (cx, cy, w, h).
        instance_queries (Tensor): (B, Q, C) the last decoder layer's
            instance queries (one per query and clip, pooled over the
            frames): the embedding the clip-wise mode links windows by.
        mask_params (Tensor): (Ld, B, Q, num_params) dynamic conv weights.
        mask_centres (Tensor): (Ld, B, T, Q, 2) normalised (x, y) centres of
            the reference boxes that entered each layer; the relative
            coordinates of the masks are taken from them.
        mask_feats (Tensor): (B, T, C_m, H_8, W_8) shared mask features.
        mask_feat_stride (int): Input pixels per mask-feature pixel (8).
        mask_out_stride (int): Input pixels per predicted-mask pixel (4).
        img_sizes (Tensor): (B, T, 2) unpadded input (w, h) in pixels.
        mlvl_memory (list[Tensor]): L encoder maps (B*T, C, H_l, W_l),
            finest first.
        sem_logits (Tensor, optional): (B*T, K, H_8, W_8) per-pixel class
            logits on the finest encoder map, for the auxiliary ``loss_sem``;
            None unless the head has one and is training.
    """

    cls_scores: Tensor
    bbox_preds: Tensor
    instance_queries: Tensor
    mask_params: Tensor
    mask_centres: Tensor
    mask_feats: Tensor
    mask_feat_stride: int
    mask_out_stride: int
    img_sizes: Tensor
    mlvl_memory: List[Tensor]
    sem_logits: Optional[Tensor] = None

    @property
    def num_layers(self) -> int:
        """Ld, the number of decoder layers with predictions."""
        return self.cls_scores.size(0)

    @property
    def mask_out_size(self) -> Tuple[int, int]:
        """(H_4, W_4), the size of the predicted masks."""
        factor = self.mask_feat_stride // self.mask_out_stride
        h, w = self.mask_feats.shape[-2:]
        return h * factor, w * factor

    def float(self) -> 'VISHeadOutputs':
        """The same outputs with every tensor in float32 (a network run
        under bfloat16 autocast returns some in bfloat16); ``self`` when
        they are float32 already."""
        changed = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Tensor) and value.dtype != torch.float32:
                changed[field.name] = value.float()
            elif isinstance(value, list) and any(m.dtype != torch.float32
                                                 for m in value):
                changed[field.name] = [m.float() for m in value]
        return replace(self, **changed) if changed else self


@dataclass
class ClipAssignment:
    """Matched (clip, query, GT) triples of one decoder layer.

    Attributes:
        clip_inds (Tensor): (N,) clip of each matched pair.
        query_inds (Tensor): (N,) query of each matched pair.
        gt_inds (Tensor): (N,) GT track, indexed into the tracks of all
            clips concatenated in batch order (:meth:`VISTargets.cat`).
    """

    clip_inds: Tensor
    query_inds: Tensor
    gt_inds: Tensor


@dataclass
class VISTargets:
    """GT tracks and the matching of every decoder layer to them.

    Attributes:
        clip_gts (list[InstanceData]): Per clip, the GT tracks of
            :func:`build_clip_gts`.
        assignments (list[ClipAssignment]): One per decoder layer.
        avg_factor (float): Number of GT tracks averaged over processes
            (at least 1), the normaliser of every loss.
    """

    clip_gts: List[InstanceData]
    assignments: List[ClipAssignment]
    avg_factor: float

    def cat(self, key: str) -> Tensor:
        """One field of the GT tracks of all clips, concatenated.

        Args:
            key (str): Field of the tracks, e.g. ``'labels'`` or ``'masks'``.

        Returns:
            Tensor: (sum of N over the clips, ...).
        """
        return torch.cat([gt.get(key) for gt in self.clip_gts])


@dataclass
class ForegroundMaps:
    """Per-frame foreground of the predictions and of the GT.

    Attributes:
        pred (Tensor): (B*T, 1, H_4, W_4) pixel-wise max of the mask
            probabilities of the queries matched in the last layer.
        gt (Tensor): (B*T, 1, H_4, W_4) union of the GT masks.
    """

    pred: Tensor
    gt: Tensor


@dataclass
class WindowCandidates:
    """The top-k (query, class) pairs of one window of a video.

    What the clip-wise mode (``MSSTSVIS``) links across windows
    (``ClipLinker``) and post-processes frame by frame.

    Attributes:
        scores (Tensor): (N,) probabilities, in descending order.
        labels (Tensor): (N,) 0-based labels.
        query_inds (Tensor): (N,) query of each pair.
        embeds (Tensor): (N, D) instance embeddings of the queries.
        mask_logits (Tensor): (N, T, H_4, W_4) logits at the mask output
            stride over the window's T frames.
    """

    scores: Tensor
    labels: Tensor
    query_inds: Tensor
    embeds: Tensor
    mask_logits: Tensor
