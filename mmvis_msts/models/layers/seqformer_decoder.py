"""SeqFormer decoder: one instance query and T per-frame box queries.

Mapping of SeqFormer's ``DeformableTransformerDecoderLayer`` parameters
(``decoder.layers.<i>.`` prefix on both sides) for a checkpoint converter:

==============================  ==========================================
SeqFormer                       mmvis-msts
==============================  ==========================================
self_attn.{in_proj_*,out_proj}  self_attn.attn.{in_proj_*,out_proj}
self_attn_box.*                 self_attn_box.attn.*
cross_attn.*                    cross_attn.* (same names, incl.
                                output_proj_box)
norm2 / norm1 / norm3           norms.0 / norms.1 / norms.2
norm2_box / norm1_box /         norms_box.0 / norms_box.1 / norms_box.2
norm3_box
linear1 / linear2               ffn.layers.0.0 / ffn.layers.1
linear1_box / linear2_box       ffn_box.layers.0.0 / ffn_box.layers.1
time_attention_weights          time_attention_weights
==============================  ==========================================

Dropout placement differs from SeqFormer in one training-time detail: the
instance-path cross-attention output is dropped out per frame before the
time-weighted sum (SeqFormer drops the sum). Eval outputs are identical.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN, MultiheadAttention
from mmdet.models.layers.transformer import inverse_sigmoid
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule, ModuleList
from torch import Tensor, nn

from .seqformer_cross_attention import SeqFormerCrossAttention
from .seqformer_encoder import (LayerStackMixin, check_frame_rows,
                                check_num_frames)


def require_batch_first(cfg: ConfigType, name: str) -> dict:
    """Return a copy of an attention config with ``batch_first=True``.

    Args:
        cfg (dict): Attention config.
        name (str): Config name for the error message.

    Returns:
        dict: The config with ``batch_first=True``.
    """
    if cfg.get('batch_first', True) is not True:
        raise ValueError(f'{name} must have batch_first=True, got {cfg}')
    return dict(cfg, batch_first=True)


def expand_to_frames(x: Tensor, num_frames: int) -> Tensor:
    """Repeat a per-clip tensor for every frame: (B, Q, C) -> (B*T, Q, C).

    Args:
        x (Tensor): (B, Q, C).
        num_frames (int): T.

    Returns:
        Tensor: (B*T, Q, C), clip-major.
    """
    return x.unsqueeze(1).expand(-1, num_frames, -1, -1).flatten(0, 1)


class SeqFormerDecoderLayer(BaseModule):
    """SeqFormer decoder layer (docs/design.md §2.3).

    1. Instance query self-attention (q = k = query + pos) + add & LN.
    2. Box-query self-attention per frame, shared weights, frames folded
       into the batch (:meth:`attend_box_queries`) + add & LN.
    3. Deformable cross-attention per frame, driven by the box query + pos
       and that frame's reference, into that frame's memory; the samples
       go through an instance and a box output projection.
    4. Box path: add & LN, FFN + add & LN.
    5. Instance path: weights softmax over T of ``Linear(C, 1)`` of the
       box queries output by step 4 (after the box FFN, as in SeqFormer;
       :meth:`frame_weights`), weighted sum over frames of the instance
       outputs, add & LN, FFN + add & LN.

    SeqFormer runs the first layer's box self-attention once on the shared
    (B, Q, C) box query before broadcasting it to the frames; here the
    decoder broadcasts first: the same result in eval mode, while in
    training every frame draws its own dropout mask.

    Args:
        self_attn_cfg (dict): mmcv ``MultiheadAttention`` config, used for
            both the instance and the box self-attention (separate weights).
        cross_attn_cfg (dict): :class:`SeqFormerCrossAttention` config.
        ffn_cfg (dict): mmcv ``FFN`` config, used by both paths.
        norm_cfg (dict): Norm config. Defaults to LN.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 self_attn_cfg: ConfigType = dict(
                     embed_dims=256,
                     num_heads=8,
                     attn_drop=0.1,
                     dropout_layer=dict(type='Dropout', drop_prob=0.1),
                     batch_first=True),
                 cross_attn_cfg: ConfigType = dict(
                     embed_dims=256,
                     num_heads=8,
                     num_levels=4,
                     num_points=4,
                     dropout=0.1,
                     batch_first=True),
                 ffn_cfg: ConfigType = dict(
                     embed_dims=256,
                     feedforward_channels=1024,
                     num_fcs=2,
                     ffn_drop=0.1,
                     act_cfg=dict(type='ReLU', inplace=True)),
                 norm_cfg: ConfigType = dict(type='LN'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.self_attn_cfg = require_batch_first(self_attn_cfg,
                                                 'self_attn_cfg')
        self.cross_attn_cfg = require_batch_first(cross_attn_cfg,
                                                  'cross_attn_cfg')
        self.ffn_cfg = ffn_cfg
        self.norm_cfg = norm_cfg
        self._init_layers()

    def _init_layers(self) -> None:
        """Initialize attentions, FFNs, norms and the frame-weight fc."""
        self.self_attn = MultiheadAttention(**self.self_attn_cfg)
        self.self_attn_box = MultiheadAttention(**self.self_attn_cfg)
        self.cross_attn = SeqFormerCrossAttention(**self.cross_attn_cfg)
        self.embed_dims = self.self_attn.embed_dims
        if self.cross_attn.embed_dims != self.embed_dims:
            raise ValueError(
                f'cross_attn_cfg embed_dims={self.cross_attn.embed_dims} '
                f'differs from self_attn_cfg embed_dims={self.embed_dims}')
        self.ffn = FFN(**self.ffn_cfg)
        self.ffn_box = FFN(**self.ffn_cfg)
        self.norms = ModuleList([
            build_norm_layer(self.norm_cfg, self.embed_dims)[1]
            for _ in range(3)
        ])
        self.norms_box = ModuleList([
            build_norm_layer(self.norm_cfg, self.embed_dims)[1]
            for _ in range(3)
        ])
        self.time_attention_weights = nn.Linear(self.embed_dims, 1)

    def attend_box_queries(self, query_box: Tensor,
                           query_pos: Tensor) -> Tensor:
        """Box-query self-attention within each frame + add & LN.

        Args:
            query_box (Tensor): (B, T, Q, C) box queries.
            query_pos (Tensor): (B, Q, C) query position embedding.

        Returns:
            Tensor: (B, T, Q, C).
        """
        bs, num_frames, num_queries, dims = query_box.shape
        x = query_box.reshape(bs * num_frames, num_queries, dims)
        pos = expand_to_frames(query_pos, num_frames)
        x = self.self_attn_box(
            query=x, key=x, value=x, query_pos=pos, key_pos=pos)
        return self.norms_box[0](x).view_as(query_box)

    def frame_weights(self, query_box: Tensor) -> Tensor:
        """Per-frame weights of each instance query.

        Args:
            query_box (Tensor): (B, T, Q, C) updated box queries.

        Returns:
            Tensor: (B, T, Q, 1), softmax over T.
        """
        return self.time_attention_weights(query_box).softmax(dim=1)

    def forward(self, query: Tensor, query_box: Tensor, query_pos: Tensor,
                value: Tensor, key_padding_mask: Tensor,
                reference_points: Tensor, spatial_shapes: Tensor,
                level_start_index: Tensor) -> Tuple[Tensor, Tensor]:
        """Update the instance and box queries.

        Args:
            query (Tensor): (B, Q, C) instance queries.
            query_box (Tensor): (B, T, Q, C) box queries.
            query_pos (Tensor): (B, Q, C) query position embedding, shared
                by all frames.
            value (Tensor): (B*T, S, C) memory, clip-major.
            key_padding_mask (Tensor): (B*T, S) bool, True at padding.
            reference_points (Tensor): (B*T, Q, L, 2 or 4) per-frame
                references, valid-ratio scaled.
            spatial_shapes (Tensor): (L, 2) (H_l, W_l) per level.
            level_start_index (Tensor): (L,) start of each level in S.

        Returns:
            tuple[Tensor, Tensor]: Instance queries (B, Q, C) and box
            queries (B, T, Q, C).
        """
        num_frames = query_box.size(1)
        query = self.self_attn(
            query=query,
            key=query,
            value=query,
            query_pos=query_pos,
            key_pos=query_pos)
        query = self.norms[0](query)
        query_box = self.attend_box_queries(query_box, query_pos)

        inst_out, box_out = self.cross_attn(
            query=query_box.flatten(0, 1),
            query_pos=expand_to_frames(query_pos, num_frames),
            value=value,
            key_padding_mask=key_padding_mask,
            reference_points=reference_points,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index)
        # (B*T, Q, C) -> (B, T, Q, C)
        inst_out = inst_out.view_as(query_box)
        query_box = self.norms_box[1](query_box + box_out.view_as(query_box))
        query_box = self.norms_box[2](self.ffn_box(query_box))

        weights = self.frame_weights(query_box)
        query = self.norms[1](query + (weights * inst_out).sum(dim=1))
        query = self.norms[2](self.ffn(query))
        return query, query_box


def refine_boxes(deltas: Tensor, references: Tensor) -> Tensor:
    """Boxes refined from references by deltas in logit space.

    ``sigmoid(deltas + inverse_sigmoid(references))``; 2-D reference points
    refine the centre only, (w, h) come from the deltas alone.

    Args:
        deltas (Tensor): (..., 4) box branch output.
        references (Tensor): (..., 2) points or (..., 4) boxes
            (cx, cy, w, h) in [0, 1].

    Returns:
        Tensor: (..., 4) boxes (cx, cy, w, h) in [0, 1].
    """
    logits = inverse_sigmoid(references)
    if references.size(-1) == 2:
        logits = F.pad(logits, (0, 2))
    return (deltas + logits).sigmoid()


@MODELS.register_module()
class SeqFormerDecoder(LayerStackMixin, BaseModule):
    """SeqFormer decoder with per-frame iterative box refinement.

    Args:
        num_layers (int): Number of layers Ld (SeqFormer: 6).
        layer_cfg (dict): Config of every layer (keys of
            :class:`SeqFormerDecoderLayer` or of a subclass' layer).
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    layer_type = SeqFormerDecoderLayer

    def __init__(self,
                 num_layers: int,
                 layer_cfg: ConfigType,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_layers = num_layers
        self.layer_cfg = layer_cfg
        self._build_layers()

    @staticmethod
    def scale_references(reference_points: Tensor,
                         valid_ratios: Tensor) -> Tensor:
        """Per-frame references in padded-image coordinates, per level.

        Args:
            reference_points (Tensor): (B, T, Q, 2) points or (B, T, Q, 4)
                boxes, normalized to each frame's valid region.
            valid_ratios (Tensor): (B*T, L, 2) valid (w, h) fractions.

        Returns:
            Tensor: (B*T, Q, L, 2 or 4).
        """
        dims = reference_points.size(-1)
        if dims == 4:
            valid_ratios = torch.cat([valid_ratios, valid_ratios], -1)
        elif dims != 2:
            raise ValueError(f'reference_points must end in 2 or 4 values, '
                             f'got shape {tuple(reference_points.shape)}')
        return reference_points.flatten(0, 1)[:, :, None] * \
            valid_ratios[:, None]

    def forward(self, query: Tensor, query_pos: Tensor, value: Tensor,
                key_padding_mask: Tensor, reference_points: Tensor,
                spatial_shapes: Tensor, level_start_index: Tensor,
                valid_ratios: Tensor, num_frames: int,
                reg_branches: nn.ModuleList) -> Tuple[Tensor, Tensor, Tensor]:
        """Decode instance and per-frame box queries.

        Args:
            query (Tensor): (B, Q, C) initial query (tgt); both the instance
                query and every frame's box query start from it.
            query_pos (Tensor): (B, Q, C) query position embedding.
            value (Tensor): (B*T, S, C) encoder memory, clip-major.
            key_padding_mask (Tensor): (B*T, S) bool, True at padding.
            reference_points (Tensor): (B, Q, 2) initial references in
                [0, 1], shared by all frames.
            spatial_shapes (Tensor): (L, 2) (H_l, W_l) per level.
            level_start_index (Tensor): (L,) start of each level in S.
            valid_ratios (Tensor): (B*T, L, 2) per-frame valid ratios.
            num_frames (int): Frames per clip T (any value at test time).
            reg_branches (nn.ModuleList): One box MLP per layer mapping
                (..., C) box queries to (..., 4) deltas in logit space.

        Returns:
            tuple[Tensor, Tensor, Tensor]:

            - inter_instance (Tensor): (Ld, B, Q, C) instance queries after
              each layer.
            - inter_box (Tensor): (Ld, B, T, Q, C) box queries after each
              layer.
            - inter_bbox_preds (Tensor): (Ld, B, T, Q, 4) boxes
              (cx, cy, w, h) in [0, 1] predicted by each layer. Layer l + 1
              refines the boxes of layer l, detached (no gradient through
              the references across layers, as Deformable DETR).
        """
        bs = query.size(0)
        if check_num_frames(value.size(0), num_frames) != bs:
            raise ValueError(f'value has {value.size(0)} frames, expected '
                             f'B*T = {bs}*{num_frames}')
        check_frame_rows(valid_ratios, 'valid_ratios', value.size(0))
        if len(reg_branches) != self.num_layers:
            raise ValueError(f'need one reg branch per layer '
                             f'({self.num_layers}), got {len(reg_branches)}')
        query_box = query.unsqueeze(1).expand(-1, num_frames, -1, -1)
        reference_points = reference_points.unsqueeze(1).expand(
            -1, num_frames, -1, -1)
        inter_instance, inter_box, inter_bbox_preds = [], [], []
        for layer, reg_branch in zip(self.layers, reg_branches):
            query, query_box = layer(
                query=query,
                query_box=query_box,
                query_pos=query_pos,
                value=value,
                key_padding_mask=key_padding_mask,
                reference_points=self.scale_references(reference_points,
                                                       valid_ratios),
                spatial_shapes=spatial_shapes,
                level_start_index=level_start_index)
            bbox_preds = refine_boxes(reg_branch(query_box), reference_points)
            reference_points = bbox_preds.detach()
            inter_instance.append(query)
            inter_box.append(query_box)
            inter_bbox_preds.append(bbox_preds)
        return (torch.stack(inter_instance), torch.stack(inter_box),
                torch.stack(inter_bbox_preds))
