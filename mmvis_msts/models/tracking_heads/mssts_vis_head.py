"""The VIS head of SeqFormer and MS-STS VIS: layers and predictions.

Shapes use the package notation (``mmvis_msts``): B clips, T frames, Q
queries, K classes, N instances, L levels, Ld decoder layers, S tokens of
one frame over all levels, C channels. Frames are folded into the batch
(B*T) for every per-frame computation.
"""
from typing import List, Sequence

import torch
import torch.nn as nn
from mmdet.models.layers import SinePositionalEncoding
from mmdet.models.layers.transformer import MLP
from mmdet.registry import MODELS
from mmdet.structures import TrackSampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import bias_init_with_prob
from torch import Tensor

from mmvis_msts.ops import LevelShapes
from .base_vis_head import BaseVISHead
from .vis_records import VISHeadOutputs
from .vis_transformer import VISTransformerMixin, frame_sizes


@MODELS.register_module()
class MSSTSVISHead(VISTransformerMixin, BaseVISHead):
    """Video instance segmentation head of SeqFormer and MS-STS VIS.

    Where each job lives (docs/design.md §2):

    - the transformer flow (encoder, decoder) is the template method of
      :class:`VISTransformerMixin`; the encoder and decoder come from
      config, so the MS-STS encoder and the temporal-attention decoder swap
      in there;
    - the prediction branches (class, box, dynamic mask parameters) are
      here, in :meth:`forward`, which returns a :class:`VISHeadOutputs`;
    - GT targets, matching, losses and post-processing are in
      :class:`BaseVISHead`.

    Args:
        num_classes (int): Number of object classes K (no background).
        encoder (dict): Encoder config (``SeqFormerEncoder``/``MSSTSEncoder``).
        decoder (dict): Decoder config (``SeqFormerDecoder``/
            ``TemporalAttnDecoder``).
        mask_head (dict): ``DynamicConvMaskHead`` config.
        loss_cls, loss_bbox, loss_iou, loss_mask, loss_dice (dict): Loss
            configs; see :class:`BaseVISHead` (SeqFormer's are in
            ``configs/_base_/models/seqformer_r50.py``).
        num_queries (int): Number of instance queries Q. Defaults to 300.
        num_feature_levels (int): Number of input levels L. Defaults to 4.
        positional_encoding (dict): ``SinePositionalEncoding`` arguments.
        supervise_absent_boxes (bool): See :class:`BaseVISHead`. Defaults to
            False.
        loss_sem (dict, optional): See :class:`BaseVISHead`; adds
            ``sem_branch``, a 1x1 conv to K class logits on the finest
            encoder map, run in training only. Defaults to None.
        autocast (bool): Let an enclosing autocast (bfloat16 training with
            ``BF16OptimWrapper`` or bfloat16 inference) reach the head.
            False runs the head in float32 whatever the caller set, so that
            only the backbone and neck run in bfloat16: at the tiny configs'
            64 channels the casts cost more than bfloat16's matrix products
            save (docs/benchmarks.md, "bfloat16"). Defaults to True.
        train_cfg (dict, optional): ``assigner`` config. Defaults to None.
        test_cfg (dict, optional): See :class:`BaseVISHead`. Defaults to
            None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(
        self,
        num_classes: int,
        encoder: ConfigType,
        decoder: ConfigType,
        mask_head: ConfigType,
        loss_cls: ConfigType,
        loss_bbox: ConfigType,
        loss_iou: ConfigType,
        loss_mask: ConfigType,
        loss_dice: ConfigType,
        num_queries: int = 300,
        num_feature_levels: int = 4,
        positional_encoding: ConfigType = dict(
            num_feats=128, normalize=True, offset=-0.5),
        supervise_absent_boxes: bool = False,
        loss_sem: OptConfigType = None,
        autocast: bool = True,
        train_cfg: OptConfigType = None,
        test_cfg: OptConfigType = None,
        init_cfg: OptMultiConfig = None,
    ) -> None:
        if num_classes < 1 or num_queries < 1:
            raise ValueError('num_classes and num_queries must be >= 1, got '
                             f'{num_classes} and {num_queries}')
        super().__init__(
            num_classes=num_classes,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            loss_iou=loss_iou,
            loss_mask=loss_mask,
            loss_dice=loss_dice,
            supervise_absent_boxes=supervise_absent_boxes,
            loss_sem=loss_sem,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=init_cfg)
        self.num_queries = num_queries
        self.num_feature_levels = num_feature_levels
        self.autocast = autocast
        self.positional_encoding = SinePositionalEncoding(
            **positional_encoding)
        self.encoder = MODELS.build(encoder)
        self.decoder = MODELS.build(decoder)
        self.mask_head = MODELS.build(mask_head)
        self.embed_dims = self.decoder.embed_dims
        self._check_sizes()
        self._init_layers()

    def _check_sizes(self) -> None:
        """Raise a ValueError naming the first inconsistent size."""
        num_feats = self.positional_encoding.num_feats
        if num_feats * 2 != self.embed_dims:
            raise ValueError('positional_encoding.num_feats * 2 must equal '
                             f'the decoder embed_dims {self.embed_dims}, got '
                             f'num_feats={num_feats}')
        if self.mask_head.num_levels > self.num_feature_levels:
            raise ValueError(f'mask_head uses {self.mask_head.num_levels} '
                             f'levels but only {self.num_feature_levels} '
                             'exist')

    def _init_layers(self) -> None:
        """Embeddings, reference projection and per-layer branches."""
        # split into query_pos and query in pre_decoder
        self.query_embedding = nn.Embedding(self.num_queries,
                                            self.embed_dims * 2)
        # zeros, not torch.empty: init_weights draws it, but a model built
        # without init_weights (init_model without a checkpoint) would keep
        # whatever the allocator held, NaN and inf included
        self.level_embed = nn.Parameter(
            torch.zeros(self.num_feature_levels, self.embed_dims))
        self.reference_points_fc = nn.Linear(self.embed_dims, 2)
        num_layers = self.decoder.num_layers
        # separate (not shared) branches per layer, initialised identically,
        # as Deformable DETR with box refinement
        self.cls_branches = nn.ModuleList(
            nn.Linear(self.embed_dims, self.num_classes)
            for _ in range(num_layers))
        self.reg_branches = nn.ModuleList(
            MLP(self.embed_dims, self.embed_dims, 4, 3)
            for _ in range(num_layers))
        self.sem_branch = None
        if self.loss_sem is not None:
            self.sem_branch = nn.Conv2d(self.embed_dims, self.num_classes, 1)

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
        cls_init = self.cls_branches[0]
        reg_init = self.reg_branches[0]
        nn.init.constant_(cls_init.bias, bias_init_with_prob(0.01))
        if self.sem_branch is not None:
            nn.init.constant_(self.sem_branch.bias, bias_init_with_prob(0.01))
        nn.init.zeros_(reg_init.layers[-1].weight)
        nn.init.zeros_(reg_init.layers[-1].bias)
        for cls_branch, reg_branch in zip(self.cls_branches[1:],
                                          self.reg_branches[1:]):
            cls_branch.load_state_dict(cls_init.state_dict())
            reg_branch.load_state_dict(reg_init.state_dict())
        # first layer's boxes start small (sigmoid(-2) ~ 0.12 of the image)
        nn.init.constant_(self.reg_branches[0].layers[-1].bias[2:], -2.0)

    def forward(self, x: Sequence[Tensor],
                batch_data_samples: TrackSampleList) -> VISHeadOutputs:
        """Run the transformer and every prediction branch.

        All parameterised computation happens here (the dynamic mask convs
        in the loss and in post-processing are parameter-free), so a model
        wrapper that only hooks ``forward`` sees every trainable parameter.

        Args:
            x (Sequence[Tensor]): L neck maps (B*T, C, H_l, W_l), clip-major.
            batch_data_samples (list[TrackDataSample]): B clips of T frames.

        Returns:
            VISHeadOutputs: The predictions of every decoder layer.
        """
        device_type = x[0].device.type
        if not self.autocast and torch.is_autocast_enabled(device_type):
            with torch.autocast(device_type, enabled=False):
                return self.forward([f.float() for f in x], batch_data_samples)
        img_metas = self._frame_metas(batch_data_samples)
        if len(x) != self.num_feature_levels:
            raise ValueError(f'expected {self.num_feature_levels} feature '
                             f'levels, got {len(x)}')
        if x[0].size(0) != len(img_metas):
            raise ValueError(f'features hold {x[0].size(0)} frames but the '
                             f'data samples {len(img_metas)}')
        # T from the features' shape, not from the samples: a traced export
        # then takes any number of frames (export_onnx(dynamic_frames=True))
        num_frames = x[0].size(0) // len(batch_data_samples)
        outs = self.forward_transformer(x, img_metas, num_frames)
        mlvl_memory = self._memory_to_maps(outs['memory'],
                                           outs['level_shapes'])
        inter_bbox_preds = outs['inter_bbox_preds']
        # the boxes that entered each layer: the initial points for layer
        # 0, the previous layer's boxes after
        references = [
            outs['init_reference'][:, None].expand(-1, num_frames, -1, -1),
            *inter_bbox_preds[:-1].detach()
        ]
        inter_instance = outs['inter_instance']
        # (B*T, C_m, H_8, W_8) -> (B, T, C_m, H_8, W_8)
        mask_feats = self.mask_head.mask_features(
            mlvl_memory[:self.mask_head.num_levels]).unflatten(
                0, (len(batch_data_samples), num_frames))
        input_w = img_metas[0]['batch_input_shape'][1]
        # int(): a size is a tensor while tracing (ONNX export), and the
        # stride is a constant of the clip's layout
        mask_feat_stride = int(round(input_w / int(mask_feats.size(-1))))
        return VISHeadOutputs(
            cls_scores=torch.stack([
                branch(query)
                for branch, query in zip(self.cls_branches, inter_instance)
            ]),
            bbox_preds=inter_bbox_preds,
            instance_queries=inter_instance[-1],
            mask_params=self.mask_head.dynamic_params(inter_instance),
            mask_centres=torch.stack([ref[..., :2] for ref in references]),
            mask_feats=mask_feats,
            mask_feat_stride=mask_feat_stride,
            mask_out_stride=mask_feat_stride // self.mask_head.upsample_factor,
            img_sizes=frame_sizes(img_metas, x[0], xy=True).view(
                len(batch_data_samples), num_frames, 2),
            mlvl_memory=mlvl_memory,
            sem_logits=(self.sem_branch(mlvl_memory[0])
                        if self.sem_branch is not None and self.training else
                        None))

    def mask_logits(self, head_outs: VISHeadOutputs, layer_id: int,
                    clip_inds: Tensor, query_inds: Tensor) -> Tensor:
        """Mask logits of selected (clip, query) pairs of one layer.

        Args:
            head_outs (VISHeadOutputs): Output of :meth:`forward`.
            layer_id (int): Decoder layer.
            clip_inds (Tensor): (N,) clip index of each instance.
            query_inds (Tensor): (N,) query index of each instance.

        Returns:
            Tensor: (N, T, H_4, W_4) logits at the mask output stride.
        """
        centres = head_outs.mask_centres[layer_id]
        return self.mask_head(
            mask_feats=head_outs.mask_feats[clip_inds],
            params=head_outs.mask_params[layer_id][clip_inds, query_inds],
            # (B, T, Q, 2) -> (N, T, 2)
            centres=centres[clip_inds, :, query_inds],
            img_sizes=head_outs.img_sizes[clip_inds],
            mask_feat_stride=head_outs.mask_feat_stride)

    @staticmethod
    def _memory_to_maps(memory: Tensor,
                        level_shapes: LevelShapes) -> List[Tensor]:
        """(B*T, S, C) -> L maps (B*T, C, H_l, W_l)."""
        chunks = memory.split([h * w for h, w in level_shapes], dim=1)
        return [
            chunk.transpose(1, 2).reshape(memory.size(0), -1, h, w)
            for chunk, (h, w) in zip(chunks, level_shapes)
        ]

    @staticmethod
    def _frame_metas(batch_data_samples: TrackSampleList) -> List[dict]:
        """Clip-major frame metas; every clip must have the same T."""
        lengths = {len(sample) for sample in batch_data_samples}
        if len(lengths) != 1:
            raise ValueError('all clips of a batch need the same number of '
                             f'frames, got {sorted(lengths)}')
        return [
            sample[i].metainfo for sample in batch_data_samples
            for i in range(len(sample))
        ]
