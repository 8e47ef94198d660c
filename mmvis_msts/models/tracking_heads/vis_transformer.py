"""The DETR-style transformer flow of a VIS head, as a template method.

Shapes use the package notation (``mmvis_msts``): B clips, T frames, Q
queries, L levels, Ld decoder layers, S tokens of one frame over all levels,
C channels. Frames are folded into the batch (B*T) for every per-frame
computation.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.detectors.deformable_detr import DeformableDETR
from torch import Tensor

from mmvis_msts.ops import LevelShapes


def frame_sizes(img_metas: List[dict],
                like: Tensor,
                xy: bool = False) -> Tensor:
    """The unpadded ``img_shape`` of every frame as a tensor.

    Frames of one size (every clip of one video) give one row expanded to
    ``like.size(0)`` rows: a traced ONNX export then takes the number of
    rows, and with it T, from the features instead of baking the metas'
    count in as a constant (``export_onnx(dynamic_frames=True)``).

    Args:
        img_metas (list[dict]): B*T frame metas, clip-major.
        like (Tensor): (B*T, ...) tensor of the frames, for the row count,
            dtype and device.
        xy (bool): (w, h) instead of (h, w). Defaults to False.

    Returns:
        Tensor: (B*T, 2) sizes in ``like``'s dtype.
    """
    sizes = [
        tuple(meta['img_shape'][1::-1] if xy else meta['img_shape'][:2])
        for meta in img_metas
    ]
    if len(set(sizes)) == 1:
        return like.new_tensor(sizes[:1]).expand(like.size(0), 2).contiguous()
    return like.new_tensor(sizes)


def any_padded(img_metas: List[dict]) -> bool:
    """Whether any frame is smaller than the padded batch input."""
    return any(
        tuple(meta['img_shape'][:2]) != tuple(meta['batch_input_shape'])
        for meta in img_metas)


class VISTransformerMixin:
    """``pre_transformer -> forward_encoder -> pre_decoder ->
    forward_decoder``, passing keyword dicts between the stages, as mmdet's
    ``DetectionTransformer`` does for images.

    The encoder and the decoder are built from config, so
    ``SeqFormerEncoder``/``MSSTSEncoder`` and ``SeqFormerDecoder``/
    ``TemporalAttnDecoder`` swap in at one stage each. A head using this
    mixin owns ``positional_encoding``, ``level_embed`` (L, C),
    ``query_embedding`` (Q, 2C), ``reference_points_fc``, ``encoder``,
    ``decoder``, ``reg_branches`` (one box MLP per decoder layer) and
    ``embed_dims``.
    """

    def forward_transformer(self, mlvl_feats: Sequence[Tensor],
                            img_metas: List[dict],
                            num_frames: int) -> Dict[str, Tensor]:
        """Run ``pre_transformer -> encoder -> pre_decoder -> decoder``.

        Args:
            mlvl_feats (Sequence[Tensor]): L maps (B*T, C, H_l, W_l).
            img_metas (list[dict]): B*T frame metas, clip-major.
            num_frames (int): T.

        Returns:
            dict: ``memory``, ``level_shapes``, ``init_reference``
            (B, Q, 2) and the decoder outputs of :meth:`forward_decoder`.
        """
        encoder_inputs, decoder_inputs = self.pre_transformer(
            mlvl_feats, img_metas, num_frames)
        encoder_outputs = self.forward_encoder(**encoder_inputs)
        tmp_dec_in, head_inputs = self.pre_decoder(**encoder_outputs)
        decoder_inputs.update(tmp_dec_in)
        decoder_outputs = self.forward_decoder(**decoder_inputs)
        head_inputs.update(decoder_outputs)
        return head_inputs

    def pre_transformer(self, mlvl_feats: Sequence[Tensor],
                        img_metas: List[dict],
                        num_frames: int) -> Tuple[dict, dict]:
        """Flatten the levels; build padding masks, positions, valid ratios.

        The level sizes travel twice: as ``spatial_shapes``, the (L, 2)
        tensor on the features' device that the deformable-attention kernel
        indexes with, and as ``level_shapes``, the same sizes as Python ints
        for everything that splits or reshapes by level. Reading them back
        from the tensor (``tolist``, iterating it) would be a device-to-host
        copy on a GPU, a sync per layer, and a graph break for
        ``torch.compile``. For the same reason whether any frame is padded
        is decided here, from the metas: ``feat_mask`` is None when none is.

        Returns:
            tuple[dict, dict]: Encoder inputs (``feat`` (B*T, S, C),
            ``feat_mask`` (B*T, S) or None, ``feat_pos``, ``spatial_shapes``
            (L, 2), ``level_shapes``, ``level_start_index`` (L,),
            ``valid_ratios`` (B*T, L, 2), ``num_frames``) and the decoder
            inputs known so far.
        """
        feat0 = mlvl_feats[0]
        input_h, input_w = img_metas[0]['batch_input_shape']
        # (B*T, 2) unpadded (h, w) of every frame
        hw = frame_sizes(img_metas, feat0)
        rows = torch.arange(input_h, device=feat0.device)
        cols = torch.arange(input_w, device=feat0.device)
        # True on padding, as DETR
        masks = (rows[None, :, None] >= hw[:, 0, None, None]) | \
            (cols[None, None, :] >= hw[:, 1, None, None])

        feat_flatten, pos_flatten, mask_flatten = [], [], []
        mlvl_masks, level_shapes = [], []
        for lvl, feat in enumerate(mlvl_feats):
            bt, c, h, w = feat.shape
            mask = F.interpolate(
                masks[None].float(), size=(h, w)).to(torch.bool)[0]
            pos = self.positional_encoding(mask).to(feat.dtype)
            # [B*T, C, h, w] -> [B*T, h*w, C]
            feat_flatten.append(feat.flatten(2).transpose(1, 2))
            pos_flatten.append(
                pos.flatten(2).transpose(1, 2) +
                self.level_embed[lvl].view(1, 1, -1))
            mask_flatten.append(mask.flatten(1))
            mlvl_masks.append(mask)
            # int(): a size is a tensor while tracing (ONNX export)
            level_shapes.append((int(h), int(w)))
        level_shapes = tuple(level_shapes)
        spatial_shapes = torch.as_tensor(
            level_shapes, dtype=torch.long, device=feat0.device)
        level_start_index = torch.cat((spatial_shapes.new_zeros(
            (1, )), spatial_shapes.prod(1).cumsum(0)[:-1]))
        # per frame, not frame 0 only as SeqFormer (frames of a clip share
        # their size, so the result is the same there)
        valid_ratios = torch.stack(
            [DeformableDETR.get_valid_ratio(m) for m in mlvl_masks],
            1).to(feat0.dtype)
        feat_mask = torch.cat(mask_flatten, 1) if any_padded(img_metas) \
            else None
        common = dict(
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios,
            num_frames=num_frames)
        encoder_inputs = dict(
            feat=torch.cat(feat_flatten, 1),
            feat_mask=feat_mask,
            feat_pos=torch.cat(pos_flatten, 1),
            level_shapes=level_shapes,
            **common)
        decoder_inputs = dict(memory_mask=feat_mask, **common)
        return encoder_inputs, decoder_inputs

    def forward_encoder(self, feat: Tensor, feat_mask: Optional[Tensor],
                        feat_pos: Tensor, spatial_shapes: Tensor,
                        level_shapes: LevelShapes, level_start_index: Tensor,
                        valid_ratios: Tensor, num_frames: int) -> dict:
        """Encode every frame (frames folded into the batch).

        Returns:
            dict: ``memory`` (B*T, S, C), ``level_shapes``, ``num_frames``.
        """
        memory = self.encoder(
            query=feat,
            query_pos=feat_pos,
            key_padding_mask=feat_mask,
            spatial_shapes=spatial_shapes,
            level_shapes=level_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios,
            num_frames=num_frames)
        return dict(
            memory=memory, level_shapes=level_shapes, num_frames=num_frames)

    def pre_decoder(self, memory: Tensor, level_shapes: LevelShapes,
                    num_frames: int) -> Tuple[dict, dict]:
        """Split the query embedding and predict the initial references.

        Returns:
            tuple[dict, dict]: Decoder inputs (``query``/``query_pos``
            (B, Q, C), ``memory``, ``reference_points`` (B, Q, 2)) and head
            inputs (``memory``, ``level_shapes``, ``init_reference``).
        """
        batch_size = memory.size(0) // num_frames
        query_pos, query = torch.split(
            self.query_embedding.weight, self.embed_dims, dim=1)
        query_pos = query_pos.unsqueeze(0).expand(batch_size, -1, -1)
        query = query.unsqueeze(0).expand(batch_size, -1, -1)
        reference_points = self.reference_points_fc(query_pos).sigmoid()
        decoder_inputs = dict(
            query=query,
            query_pos=query_pos,
            memory=memory,
            reference_points=reference_points)
        head_inputs = dict(
            memory=memory,
            level_shapes=level_shapes,
            init_reference=reference_points)
        return decoder_inputs, head_inputs

    def forward_decoder(self, query: Tensor, query_pos: Tensor, memory: Tensor,
                        memory_mask: Optional[Tensor],
                        reference_points: Tensor, spatial_shapes: Tensor,
                        level_start_index: Tensor, valid_ratios: Tensor,
                        num_frames: int) -> dict:
        """Decode instance and per-frame box queries.

        Returns:
            dict: ``inter_instance`` (Ld, B, Q, C), ``inter_box``
            (Ld, B, T, Q, C) and ``inter_bbox_preds`` (Ld, B, T, Q, 4), the
            boxes each layer predicts (``decoder`` refines them layer by
            layer with ``reg_branches``).
        """
        inter_instance, inter_box, inter_bbox_preds = self.decoder(
            query=query,
            query_pos=query_pos,
            value=memory,
            key_padding_mask=memory_mask,
            reference_points=reference_points,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios,
            num_frames=num_frames,
            reg_branches=self.reg_branches)
        return dict(
            inter_instance=inter_instance,
            inter_box=inter_box,
            inter_bbox_preds=inter_bbox_preds)
