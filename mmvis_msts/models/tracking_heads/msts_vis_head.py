"""SeqFormer / MS-STS VIS head: transformer, prediction heads, losses.

Shapes: B clips, T frames per clip, Q queries, K classes, L feature levels,
Ld decoder layers, N flattened tokens of one frame, C channels, n instances.
Frames are folded into the batch (B*T) for every per-frame computation.
"""
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.detectors.deformable_detr import DeformableDETR
from mmdet.models.layers import SinePositionalEncoding
from mmdet.models.layers.transformer import MLP, inverse_sigmoid
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import TrackSampleList
from mmdet.structures.bbox import (bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh,
                                   get_box_tensor)
from mmdet.structures.mask import mask2bbox
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.dist import all_reduce
from mmengine.model import BaseModule, bias_init_with_prob
from mmengine.structures import InstanceData
from torch import Tensor

HeadOutputs = Dict[str, object]


@MODELS.register_module()
class MSSTSVISHead(BaseModule):
    """Video instance segmentation head of SeqFormer and MS-STS VIS.

    Owns the position and level embeddings, the query embedding, the
    reference-point projection, the encoder and decoder (built from config,
    so ``SeqFormerEncoder``/``MSSTSEncoder`` and ``SeqFormerDecoder``/
    ``TemporalAttnDecoder`` swap in by config), per-layer class and box
    branches, the dynamic mask head, Hungarian matching, the losses and the
    post-processing.

    The transformer runs as a template method like mmdet's
    ``DetectionTransformer``: ``pre_transformer -> forward_encoder ->
    pre_decoder -> forward_decoder``, passing keyword dicts between stages.

    Boxes of frames where a GT instance is absent: SeqFormer supervises them
    towards an all-zero box. By default (``supervise_absent_boxes=False``)
    these frames are masked out of the box costs and losses instead, since a
    zero box is no meaningful target; set it to True to reproduce SeqFormer.

    Args:
        num_classes (int): Number of object classes (no background).
        encoder (dict): Encoder config (``SeqFormerEncoder``/``MSSTSEncoder``).
        decoder (dict): Decoder config (``SeqFormerDecoder``/
            ``TemporalAttnDecoder``).
        mask_head (dict): ``DynamicConvMaskHead`` config.
        num_queries (int): Number of instance queries. Defaults to 300.
        num_feature_levels (int): Number of input levels. Defaults to 4.
        positional_encoding (dict): ``SinePositionalEncoding`` arguments.
        loss_cls (dict): Class loss (sigmoid focal).
        loss_bbox (dict): Box L1 loss on normalised (cx, cy, w, h).
        loss_iou (dict): Box GIoU loss.
        loss_mask (dict): Mask loss (sigmoid focal over pixels).
        loss_dice (dict): Mask dice loss.
        supervise_absent_boxes (bool): See above. Defaults to False.
        train_cfg (dict, optional): ``assigner`` config. Defaults to None.
        test_cfg (dict, optional): ``max_per_video`` (top-k (query, class)
            pairs), ``mask_thr`` (probability) and ``drop_empty`` (drop pairs
            whose mask is empty in every frame, as SeqFormer).
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(
        self,
        num_classes: int,
        encoder: ConfigType,
        decoder: ConfigType,
        mask_head: ConfigType,
        num_queries: int = 300,
        num_feature_levels: int = 4,
        positional_encoding: ConfigType = dict(
            num_feats=128, normalize=True, offset=-0.5),
        loss_cls: ConfigType = dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=2.0),
        loss_bbox: ConfigType = dict(type='L1Loss', loss_weight=5.0),
        loss_iou: ConfigType = dict(type='GIoULoss', loss_weight=2.0),
        loss_mask: ConfigType = dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=2.0),
        loss_dice: ConfigType = dict(
            type='DiceLoss',
            use_sigmoid=True,
            activate=True,
            naive_dice=True,
            eps=1.0,
            loss_weight=5.0),
        supervise_absent_boxes: bool = False,
        train_cfg: OptConfigType = None,
        test_cfg: OptConfigType = None,
        init_cfg: OptMultiConfig = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_classes < 1 or num_queries < 1:
            raise ValueError('num_classes and num_queries must be >= 1, got '
                             f'{num_classes} and {num_queries}')
        self.num_classes = num_classes
        self.num_queries = num_queries
        self.num_feature_levels = num_feature_levels
        self.supervise_absent_boxes = supervise_absent_boxes
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg if test_cfg is not None else dict()

        self.positional_encoding = SinePositionalEncoding(
            **positional_encoding)
        self.encoder = MODELS.build(encoder)
        self.decoder = MODELS.build(decoder)
        self.mask_head = MODELS.build(mask_head)
        self.embed_dims = self.decoder.embed_dims
        num_feats = self.positional_encoding.num_feats
        if num_feats * 2 != self.embed_dims:
            raise ValueError('positional_encoding.num_feats * 2 must equal '
                             f'the decoder embed_dims {self.embed_dims}, got '
                             f'num_feats={num_feats}')
        if self.mask_head.num_levels > num_feature_levels:
            raise ValueError(f'mask_head uses {self.mask_head.num_levels} '
                             f'levels but only {num_feature_levels} exist')

        # split into query_pos and tgt in pre_decoder
        self.query_embedding = nn.Embedding(num_queries, self.embed_dims * 2)
        self.level_embed = nn.Parameter(
            torch.empty(num_feature_levels, self.embed_dims))
        self.reference_points_fc = nn.Linear(self.embed_dims, 2)

        num_layers = self.decoder.num_layers
        # separate (not shared) branches per layer, initialised identically,
        # as Deformable DETR with box refinement
        self.cls_branches = nn.ModuleList(
            nn.Linear(self.embed_dims, num_classes) for _ in range(num_layers))
        self.reg_branches = nn.ModuleList(
            MLP(self.embed_dims, self.embed_dims, 4, 3)
            for _ in range(num_layers))

        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_iou = MODELS.build(loss_iou)
        self.loss_mask = MODELS.build(loss_mask)
        self.loss_dice = MODELS.build(loss_dice)
        self.assigner = None
        if train_cfg is not None:
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])

    def init_weights(self) -> None:
        """Initialise as SeqFormer / Deformable DETR (box refine)."""
        # xavier on every transformer matrix first; the sub-modules' own
        # schemes (deformable-attention offsets, zero MS-STS output
        # projection) then run in super().init_weights() on top of it
        for coder in (self.encoder, self.decoder):
            for p in coder.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
        super().init_weights()
        nn.init.xavier_uniform_(self.reference_points_fc.weight)
        nn.init.zeros_(self.reference_points_fc.bias)
        nn.init.normal_(self.level_embed)
        bias_cls = bias_init_with_prob(0.01)
        cls_init = self.cls_branches[0]
        reg_init = self.reg_branches[0]
        nn.init.constant_(cls_init.bias, bias_cls)
        nn.init.zeros_(reg_init.layers[-1].weight)
        nn.init.zeros_(reg_init.layers[-1].bias)
        for cls_branch, reg_branch in zip(self.cls_branches[1:],
                                          self.reg_branches[1:]):
            cls_branch.load_state_dict(cls_init.state_dict())
            reg_branch.load_state_dict(reg_init.state_dict())
        # first layer's boxes start small (sigmoid(-2) ~ 0.12 of the image)
        nn.init.constant_(self.reg_branches[0].layers[-1].bias[2:], -2.0)

    # ------------------------------------------------------------------ #
    # transformer (template method)
    # ------------------------------------------------------------------ #
    def forward_transformer(self, mlvl_feats: Sequence[Tensor],
                            img_metas: List[dict],
                            num_frames: int) -> Dict[str, Tensor]:
        """Run ``pre_transformer -> encoder -> pre_decoder -> decoder``.

        Args:
            mlvl_feats (Sequence[Tensor]): L maps (B*T, C, H_l, W_l).
            img_metas (list[dict]): B*T frame metas, clip-major.
            num_frames (int): T.

        Returns:
            dict: Inputs of :meth:`forward_predictions`.
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

        Returns:
            tuple[dict, dict]: Encoder inputs (``feat`` (B*T, N, C),
            ``feat_mask`` (B*T, N), ``feat_pos``, ``spatial_shapes`` (L, 2),
            ``level_start_index`` (L,), ``valid_ratios`` (B*T, L, 2),
            ``num_frames``) and the decoder inputs known so far.
        """
        feat0 = mlvl_feats[0]
        input_h, input_w = img_metas[0]['batch_input_shape']
        # (B*T, 2) unpadded (h, w) of every frame
        hw = feat0.new_tensor([meta['img_shape'][:2] for meta in img_metas])
        rows = torch.arange(input_h, device=feat0.device)
        cols = torch.arange(input_w, device=feat0.device)
        # True on padding, as DETR
        masks = (rows[None, :, None] >= hw[:, 0, None, None]) | \
            (cols[None, None, :] >= hw[:, 1, None, None])

        feat_flatten, pos_flatten, mask_flatten = [], [], []
        mlvl_masks, spatial_shapes = [], []
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
            spatial_shapes.append((h, w))
        spatial_shapes = torch.as_tensor(
            spatial_shapes, dtype=torch.long, device=feat0.device)
        level_start_index = torch.cat((spatial_shapes.new_zeros(
            (1, )), spatial_shapes.prod(1).cumsum(0)[:-1]))
        # per frame, not frame 0 only as SeqFormer (frames of a clip share
        # their size, so the result is the same there)
        valid_ratios = torch.stack(
            [DeformableDETR.get_valid_ratio(m) for m in mlvl_masks],
            1).to(feat0.dtype)
        feat_mask = torch.cat(mask_flatten, 1)
        common = dict(
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios,
            num_frames=num_frames)
        encoder_inputs = dict(
            feat=torch.cat(feat_flatten, 1),
            feat_mask=feat_mask,
            feat_pos=torch.cat(pos_flatten, 1),
            **common)
        decoder_inputs = dict(memory_mask=feat_mask, **common)
        return encoder_inputs, decoder_inputs

    def forward_encoder(self, feat: Tensor, feat_mask: Tensor,
                        feat_pos: Tensor, spatial_shapes: Tensor,
                        level_start_index: Tensor, valid_ratios: Tensor,
                        num_frames: int) -> dict:
        """Encode every frame (frames folded into the batch).

        Returns:
            dict: ``memory`` (B*T, N, C), ``spatial_shapes``, ``num_frames``.
        """
        memory = self.encoder(
            query=feat,
            query_pos=feat_pos,
            key_padding_mask=feat_mask,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios,
            num_frames=num_frames)
        return dict(
            memory=memory,
            spatial_shapes=spatial_shapes,
            num_frames=num_frames)

    def pre_decoder(self, memory: Tensor, spatial_shapes: Tensor,
                    num_frames: int) -> Tuple[dict, dict]:
        """Split the query embedding and predict the initial references.

        Returns:
            tuple[dict, dict]: Decoder inputs (``query``/``query_pos``
            (B, Q, C), ``memory``, ``reference_points`` (B, Q, 2)) and head
            inputs (``memory``, ``spatial_shapes``, ``init_reference``).
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
            spatial_shapes=spatial_shapes,
            init_reference=reference_points)
        return decoder_inputs, head_inputs

    def forward_decoder(self, query: Tensor, query_pos: Tensor, memory: Tensor,
                        memory_mask: Tensor, reference_points: Tensor,
                        spatial_shapes: Tensor, level_start_index: Tensor,
                        valid_ratios: Tensor, num_frames: int) -> dict:
        """Decode instance and per-frame box queries.

        Returns:
            dict: ``inter_instance`` (Ld, B, Q, C), ``inter_box``
            (Ld, B, T, Q, C), ``inter_references`` (Ld, B, T, Q, 4).
        """
        inter_instance, inter_box, inter_references = self.decoder(
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
            inter_references=inter_references)

    # ------------------------------------------------------------------ #
    # predictions
    # ------------------------------------------------------------------ #
    def forward(self, x: Sequence[Tensor],
                batch_data_samples: TrackSampleList) -> HeadOutputs:
        """Run the transformer and every prediction branch.

        All parameterised computation happens here (the dynamic mask convs
        in the loss and in post-processing are parameter-free), so a model
        wrapper that only hooks ``forward`` sees every trainable parameter.

        Args:
            x (Sequence[Tensor]): L neck maps (B*T, C, H_l, W_l), clip-major.
            batch_data_samples (list[TrackDataSample]): B clips of T frames.

        Returns:
            dict: ``cls_scores`` (Ld, B, Q, K) logits; ``bbox_preds``
            (Ld, B, T, Q, 4) normalised (cx, cy, w, h); ``mask_params``
            (Ld, B, Q, P); ``mask_centres`` (Ld, B, T, Q, 2) normalised box
            centres of the references each layer's masks use; ``mask_feats``
            (B, T, C_m, H_8, W_8); ``mask_stride`` (int, input pixels per
            mask-feature pixel); ``img_sizes`` (B, T, 2) unpadded (w, h);
            ``mlvl_memory`` (L maps (B*T, C, H_l, W_l), the encoder output).
        """
        img_metas, num_frames = self._frame_metas(batch_data_samples)
        if len(x) != self.num_feature_levels:
            raise ValueError(f'expected {self.num_feature_levels} feature '
                             f'levels, got {len(x)}')
        if x[0].size(0) != len(img_metas):
            raise ValueError(f'features hold {x[0].size(0)} frames but the '
                             f'data samples {len(img_metas)}')
        head_inputs = self.forward_transformer(x, img_metas, num_frames)
        outs = self.forward_predictions(**head_inputs)
        batch_size = len(batch_data_samples)
        outs['img_sizes'] = x[0].new_tensor([
            meta['img_shape'][1::-1] for meta in img_metas
        ]).view(batch_size, num_frames, 2)
        mask_feats = outs['mask_feats']
        outs['mask_feats'] = mask_feats.view(batch_size, num_frames,
                                             *mask_feats.shape[1:])
        input_w = img_metas[0]['batch_input_shape'][1]
        outs['mask_stride'] = int(round(input_w / mask_feats.size(-1)))
        return outs

    def forward_predictions(self, memory: Tensor, spatial_shapes: Tensor,
                            init_reference: Tensor, inter_instance: Tensor,
                            inter_box: Tensor,
                            inter_references: Tensor) -> HeadOutputs:
        """Class, box and mask-parameter predictions of every layer.

        Layer l's boxes refine the reference that entered layer l: the
        initial 2-D points for l = 0, ``inter_references[l - 1]`` after.
        """
        num_frames = inter_box.size(2)
        refs = [
            init_reference[:, None].expand(-1, num_frames, -1, -1),
            *inter_references[:-1]
        ]
        cls_scores, bbox_preds = [], []
        for layer_id, ref in enumerate(refs):
            cls_scores.append(self.cls_branches[layer_id](
                inter_instance[layer_id]))
            delta = self.reg_branches[layer_id](inter_box[layer_id])
            ref = inverse_sigmoid(ref)
            if ref.size(-1) == 4:
                delta = delta + ref
            else:
                delta = torch.cat([delta[..., :2] + ref, delta[..., 2:]], -1)
            bbox_preds.append(delta.sigmoid())
        mlvl_memory = self._memory_to_maps(memory, spatial_shapes)
        num_mask_levels = self.mask_head.num_levels
        return dict(
            cls_scores=torch.stack(cls_scores),
            bbox_preds=torch.stack(bbox_preds),
            mask_params=self.mask_head.dynamic_params(inter_instance),
            mask_centres=torch.stack([r[..., :2] for r in refs]),
            mask_feats=self.mask_head.mask_features(
                mlvl_memory[:num_mask_levels]),
            mlvl_memory=mlvl_memory)

    @staticmethod
    def _memory_to_maps(memory: Tensor,
                        spatial_shapes: Tensor) -> List[Tensor]:
        """(B*T, N, C) -> L maps (B*T, C, H_l, W_l)."""
        shapes = spatial_shapes.tolist()
        chunks = memory.split([h * w for h, w in shapes], dim=1)
        return [
            chunk.transpose(1, 2).reshape(memory.size(0), -1, h, w)
            for chunk, (h, w) in zip(chunks, shapes)
        ]

    @staticmethod
    def _frame_metas(
            batch_data_samples: TrackSampleList) -> Tuple[List[dict], int]:
        """Clip-major frame metas and the (common) number of frames."""
        lengths = {len(sample) for sample in batch_data_samples}
        if len(lengths) != 1:
            raise ValueError('all clips of a batch need the same number of '
                             f'frames, got {sorted(lengths)}')
        metas = [
            sample[i].metainfo for sample in batch_data_samples
            for i in range(len(sample))
        ]
        return metas, lengths.pop()

    def mask_logits(self, head_outs: HeadOutputs, layer_id: int,
                    clip_inds: Tensor, query_inds: Tensor) -> Tensor:
        """Mask logits of selected (clip, query) pairs of one layer.

        Args:
            head_outs (dict): Output of :meth:`forward`.
            layer_id (int): Decoder layer.
            clip_inds (Tensor): (n,) clip index of each instance.
            query_inds (Tensor): (n,) query index of each instance.

        Returns:
            Tensor: (n, T, H_4, W_4) logits at the mask output stride.
        """
        centres = head_outs['mask_centres'][layer_id]
        return self.mask_head(
            mask_feats=head_outs['mask_feats'][clip_inds],
            params=head_outs['mask_params'][layer_id][clip_inds, query_inds],
            # (B, T, Q, 2) -> (n, T, 2)
            centres=centres[clip_inds, :, query_inds],
            img_sizes=head_outs['img_sizes'][clip_inds],
            feat_stride=head_outs['mask_stride'])

    # ------------------------------------------------------------------ #
    # training
    # ------------------------------------------------------------------ #
    def loss(self, x: Sequence[Tensor],
             batch_data_samples: TrackSampleList) -> Dict[str, Tensor]:
        """Forward and compute the losses of every decoder layer.

        Returns:
            dict[str, Tensor]: ``loss_{cls,bbox,giou,mask,dice}`` of the last
            layer and ``d{l}.loss_*`` of the earlier layers.
        """
        head_outs = self(x, batch_data_samples)
        losses, _ = self.loss_by_feat(head_outs, batch_data_samples)
        return losses

    def loss_by_feat(
        self, head_outs: HeadOutputs, batch_data_samples: TrackSampleList
    ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
        """Match every layer to the GT and compute its five losses.

        Args:
            head_outs (dict): Output of :meth:`forward`.
            batch_data_samples (list[TrackDataSample]): With ``gt_instances``
                per frame (``labels``, ``bboxes``, ``masks``,
                ``instances_ids``).

        Returns:
            tuple[dict, dict]: The losses, and the foreground maps of the
            last layer for the adversarial loss: ``pred`` (B*T, 1, H_4, W_4)
            pixel-wise max of the matched mask probabilities and ``gt``
            (B*T, 1, H_4, W_4) union of the GT masks.
        """
        if self.assigner is None:
            raise RuntimeError('MSSTSVISHead needs train_cfg.assigner to '
                               'compute losses')
        mask_feats = head_outs['mask_feats']
        out_stride = head_outs['mask_stride'] // self.mask_head.upsample_factor
        mask_size = tuple(s * self.mask_head.upsample_factor
                          for s in mask_feats.shape[-2:])
        gts = self.preprocess_gt(batch_data_samples, out_stride, mask_size)

        num_gts = mask_feats.new_tensor(float(sum(len(g) for g in gts)))
        all_reduce(num_gts, op='mean')
        num_total = max(num_gts.item(), 1.0)

        losses = {}
        num_layers = head_outs['cls_scores'].size(0)
        for layer_id in range(num_layers):
            layer_losses, matched = self._loss_single_layer(
                head_outs, layer_id, gts, num_total)
            prefix = '' if layer_id == num_layers - 1 else f'd{layer_id}.'
            losses.update({prefix + k: v for k, v in layer_losses.items()})

        clip_inds, mask_logits = matched
        num_frames = mask_feats.size(1)
        mask_probs = mask_logits.sigmoid()
        empty = mask_probs.new_zeros(num_frames, *mask_size)
        pred_fg = torch.stack([
            mask_probs[clip_inds == i].amax(0) if len(g) else empty
            for i, g in enumerate(gts)
        ])
        gt_fg = torch.stack(
            [g.masks.amax(0) if len(g) else empty for g in gts])
        fg_maps = dict(
            pred=pred_fg.flatten(0, 1)[:, None],
            gt=gt_fg.flatten(0, 1)[:, None])
        return losses, fg_maps

    def _loss_single_layer(
            self, head_outs: HeadOutputs, layer_id: int,
            gts: List[InstanceData], num_total: float
    ) -> Tuple[Dict[str, Tensor], Tuple[Tensor, Tensor]]:
        """Match and compute the losses of one decoder layer.

        Returns:
            tuple: The five losses, and (clip index (n,), mask logits
            (n, T, H_4, W_4)) of the matched queries.
        """
        cls_scores = head_outs['cls_scores'][layer_id]
        # (B, T, Q, 4) -> (B, Q, T, 4)
        bbox_preds = head_outs['bbox_preds'][layer_id].transpose(1, 2)
        clip_inds, query_inds, gt_inds = self._match(cls_scores, bbox_preds,
                                                     gts)

        labels = cls_scores.new_full(
            cls_scores.shape[:2], self.num_classes, dtype=torch.long)
        gt_labels = torch.cat([g.labels for g in gts])
        gt_boxes = torch.cat([g.bboxes for g in gts])
        gt_valid = torch.cat([g.box_valid for g in gts])
        gt_masks = torch.cat([g.masks for g in gts])
        labels[clip_inds, query_inds] = gt_labels[gt_inds]
        loss_cls = self.loss_cls(
            cls_scores.flatten(0, 1), labels.flatten(), avg_factor=num_total)

        # (n, T, 4); each instance's frames weigh 1 / (its valid frames)
        pred_boxes = bbox_preds[clip_inds, query_inds]
        target_boxes = gt_boxes[gt_inds]
        valid = gt_valid[gt_inds].to(pred_boxes.dtype)
        frame_weights = valid / valid.sum(1, keepdim=True).clamp(min=1)
        loss_bbox = self.loss_bbox(
            pred_boxes,
            target_boxes,
            weight=frame_weights[..., None].expand_as(pred_boxes),
            avg_factor=num_total)
        loss_giou = self.loss_iou(
            bbox_cxcywh_to_xyxy(pred_boxes).flatten(0, 1),
            bbox_cxcywh_to_xyxy(target_boxes).flatten(0, 1),
            weight=frame_weights.flatten(),
            avg_factor=num_total)

        mask_logits = self.mask_logits(head_outs, layer_id, clip_inds,
                                       query_inds)
        if len(gt_inds) == 0:
            # keep the graph connected when no clip has GT
            zero = head_outs['mask_params'][layer_id].sum() * 0
            loss_mask, loss_dice = zero, zero
        else:
            target_masks = gt_masks[gt_inds].to(mask_logits.dtype)
            if target_masks.shape != mask_logits.shape:
                raise RuntimeError(
                    f'GT masks {tuple(target_masks.shape)} do not match the '
                    f'predicted masks {tuple(mask_logits.shape)}')
            num_pixels = mask_logits[0].numel()
            # focal loss averaged over pixels, summed over instances
            loss_mask = self.loss_mask(
                mask_logits.flatten(1),
                target_masks.flatten(1),
                avg_factor=num_total * num_pixels)
            loss_dice = self.loss_dice(
                mask_logits.flatten(1),
                target_masks.flatten(1),
                avg_factor=num_total)
        losses = dict(
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            loss_giou=loss_giou,
            loss_mask=loss_mask,
            loss_dice=loss_dice)
        return losses, (clip_inds, mask_logits)

    def _match(self, cls_scores: Tensor, bbox_preds: Tensor,
               gts: List[InstanceData]) -> Tuple[Tensor, Tensor, Tensor]:
        """Hungarian matching of each clip over whole-clip costs.

        Args:
            cls_scores (Tensor): (B, Q, K) logits.
            bbox_preds (Tensor): (B, Q, T, 4).
            gts (list[InstanceData]): Per-clip GT from :meth:`preprocess_gt`.

        Returns:
            tuple[Tensor]: (n,) clip, query and (batch-flat) GT indices of
            the matched pairs.
        """
        clip_inds, query_inds, gt_inds = [], [], []
        gt_offset = 0
        for clip_id, gt in enumerate(gts):
            pred_instances = InstanceData(
                scores=cls_scores[clip_id], bboxes=bbox_preds[clip_id])
            gt_instances = InstanceData(
                labels=gt.labels, bboxes=gt.bboxes, valid=gt.box_valid)
            assign_result = self.assigner.assign(
                pred_instances=pred_instances, gt_instances=gt_instances)
            pos = torch.nonzero(assign_result.gt_inds > 0).squeeze(1)
            clip_inds.append(torch.full_like(pos, clip_id))
            query_inds.append(pos)
            gt_inds.append(assign_result.gt_inds[pos] - 1 + gt_offset)
            gt_offset += len(gt)
        return torch.cat(clip_inds), torch.cat(query_inds), torch.cat(gt_inds)

    def preprocess_gt(self, batch_data_samples: TrackSampleList,
                      out_stride: int,
                      mask_size: Tuple[int, int]) -> List[InstanceData]:
        """Per-video GT from per-frame GT (as ``Mask2FormerTrackHead``).

        Instances are identified across frames by ``instances_ids``.

        Args:
            batch_data_samples (list[TrackDataSample]): B clips.
            out_stride (int): Stride of the predicted masks; GT masks are
                sub-sampled at offset ``out_stride // 2`` (SeqFormer).
            mask_size (tuple[int, int]): Expected (H_4, W_4).

        Returns:
            list[InstanceData]: Per clip, n instances: ``labels`` (n,),
            ``bboxes`` (n, T, 4) normalised (cx, cy, w, h), zero where
            absent; ``valid`` (n, T) presence; ``box_valid`` (n, T) frames
            supervised for boxes (all when ``supervise_absent_boxes``);
            ``masks`` (n, T, H_4, W_4) float; ``instances_ids`` (n, T), -1
            where absent.
        """
        results = []
        for sample in batch_data_samples:
            frames = [sample[i] for i in range(len(sample))]
            num_frames = len(frames)
            device = frames[0].gt_instances.labels.device
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
            boxes = torch.cat([
                get_box_tensor(f.gt_instances.bboxes).float() for f in frames
            ])
            boxes = bbox_xyxy_to_cxcywh(boxes / scales[frame_inds])
            masks = torch.cat([
                self._gt_masks(f, out_stride, mask_size, device)
                for f in frames
            ])

            uniq_ids, inst_inds = torch.unique(ids, return_inverse=True)
            num_insts = len(uniq_ids)
            video_labels = labels.new_zeros(num_insts)
            video_labels[inst_inds] = labels
            video_boxes = boxes.new_zeros(num_insts, num_frames, 4)
            video_boxes[inst_inds, frame_inds] = boxes
            valid = torch.zeros(
                num_insts, num_frames, dtype=torch.bool, device=device)
            valid[inst_inds, frame_inds] = True
            video_masks = masks.new_zeros(num_insts, num_frames, *mask_size)
            video_masks[inst_inds, frame_inds] = masks
            video_ids = ids.new_full((num_insts, num_frames), -1)
            video_ids[inst_inds, frame_inds] = ids
            box_valid = torch.ones_like(valid) \
                if self.supervise_absent_boxes else valid
            results.append(
                InstanceData(
                    labels=video_labels,
                    bboxes=video_boxes,
                    valid=valid,
                    box_valid=box_valid,
                    masks=video_masks,
                    instances_ids=video_ids))
        return results

    @staticmethod
    def _gt_masks(frame, out_stride: int, mask_size: Tuple[int, int],
                  device: torch.device) -> Tensor:
        """One frame's GT masks sub-sampled to the mask output stride.

        Returns:
            Tensor: (m, H_4, W_4) float.
        """
        masks = frame.gt_instances.masks
        if not isinstance(masks, Tensor):
            masks = masks.to_tensor(dtype=torch.bool, device=device)
        input_h, input_w = frame.batch_input_shape
        # pad to the padded input size when the preprocessor did not
        masks = F.pad(
            masks.float(),
            (0, input_w - masks.shape[-1], 0, input_h - masks.shape[-2]))
        start = out_stride // 2
        masks = masks[:, start::out_stride, start::out_stride]
        if tuple(masks.shape[-2:]) != tuple(mask_size):
            raise RuntimeError(
                f'GT masks of input size {(input_h, input_w)} at stride '
                f'{out_stride} give {tuple(masks.shape[-2:])}, predictions '
                f'are {tuple(mask_size)}; pad inputs to a multiple of 32')
        return masks

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
            list[list[InstanceData]]: Per video, per frame: ``masks`` (N, H,
            W) bool, ``bboxes`` (N, 4) from the masks, ``scores`` (N,),
            ``labels`` (N,) 0-based, ``instances_id`` (N,), the same across
            the frames of a video.
        """
        head_outs = self(x, batch_data_samples)
        return self.predict_by_feat(head_outs, batch_data_samples, rescale)

    def predict_by_feat(self,
                        head_outs: HeadOutputs,
                        batch_data_samples: TrackSampleList,
                        rescale: bool = True) -> List[List[InstanceData]]:
        """Top-k (query, class) pairs of the last layer per video.

        Masks are computed only for the selected queries.
        """
        max_per_video = self.test_cfg.get('max_per_video', 10)
        mask_thr = self.test_cfg.get('mask_thr', 0.5)
        drop_empty = self.test_cfg.get('drop_empty', True)
        cls_scores = head_outs['cls_scores'][-1]
        results = []
        for clip_id, sample in enumerate(batch_data_samples):
            scores = cls_scores[clip_id].sigmoid()
            num_keep = min(max_per_video, scores.numel())
            top_scores, top_inds = scores.flatten().topk(num_keep)
            query_inds = top_inds // self.num_classes
            labels = top_inds % self.num_classes
            mask_logits = self.mask_logits(
                head_outs, -1, query_inds.new_full((num_keep, ), clip_id),
                query_inds)
            masks = self._resize_masks(mask_logits, sample, rescale) > \
                mask_thr
            keep = masks.flatten(1).any(1) if drop_empty else \
                masks.new_ones(num_keep)
            masks = masks[keep]
            frame_results = []
            for frame_id in range(masks.size(1)):
                frame_masks = masks[:, frame_id]
                frame_results.append(
                    InstanceData(
                        masks=frame_masks,
                        bboxes=mask2bbox(frame_masks),
                        scores=top_scores[keep],
                        labels=labels[keep],
                        instances_id=torch.arange(
                            int(keep.sum()), device=masks.device)))
            results.append(frame_results)
        return results

    @staticmethod
    def _resize_masks(mask_logits: Tensor, sample, rescale: bool) -> Tensor:
        """Stride-4 logits -> probabilities at the input or original size.

        Args:
            mask_logits (Tensor): (n, T, H_4, W_4).
            sample (TrackDataSample): The video (frames share their shapes).

        Returns:
            Tensor: (n, T, H, W) probabilities.
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
