"""SeqFormer encoder: per-frame multi-scale deformable self-attention.

Frames are folded into the batch: every tensor with a leading ``B*T`` axis is
clip-major (row ``b * T + t`` is frame ``t`` of clip ``b``).

Mapping of SeqFormer's ``DeformableTransformerEncoderLayer`` parameters
(``encoder.layers.<i>.`` prefix on both sides) for a checkpoint converter:
``self_attn.{sampling_offsets,attention_weights,value_proj,output_proj}``
keep their names (drop SeqFormer's unused ``self_attn.output_proj_box``);
``norm1 / norm2`` -> ``norms.0 / norms.1``; ``linear1 / linear2`` ->
``ffn.layers.0.0 / ffn.layers.1``.
"""
from typing import Optional

from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN
from mmdet.models.layers.transformer import (
    DeformableDetrTransformerEncoder, DeformableDetrTransformerEncoderLayer)
from mmdet.registry import MODELS
from mmengine.model import ModuleList
from torch import Tensor

from mmvis_msts.ops import LevelShapes, MSDeformAttn


def check_num_frames(num_clip_frames: int, num_frames: int) -> int:
    """Return the number of clips B of a ``B*T`` batch, checking T divides it.

    Args:
        num_clip_frames (int): Size B*T of the folded batch axis.
        num_frames (int): Frames per clip T.

    Returns:
        int: B.
    """
    if num_frames < 1 or num_clip_frames % num_frames != 0:
        raise ValueError(f'num_frames={num_frames} must be positive and '
                         f'divide the folded batch size B*T='
                         f'{num_clip_frames}')
    return num_clip_frames // num_frames


def check_frame_rows(tensor: Tensor, name: str, num_clip_frames: int) -> None:
    """Check that a per-frame tensor has one row per frame (B*T rows).

    Args:
        tensor (Tensor): (B*T, ...) tensor.
        name (str): Its name for the error message.
        num_clip_frames (int): B*T.
    """
    if tensor.size(0) != num_clip_frames:
        raise ValueError(f'{name} has {tensor.size(0)} rows, expected one '
                         f'per frame (B*T = {num_clip_frames})')


class LayerStackMixin:
    """``num_layers`` layers of ``layer_type`` built from ``layer_cfg``.

    Shared by the encoder and decoder stacks. Their ``init_weights`` runs
    the own scheme of every deformable attention after the default one:
    mmengine's recursive ``init_weights`` skips these modules because they
    mark themselves initialised in their constructor, so a xavier sweep over
    a whole coder (as in Deformable DETR) would otherwise leave their
    sampling offsets and attention weights non-zero.
    """

    layer_type: type

    def _build_layers(self) -> None:
        """Build ``self.layers`` and read ``embed_dims`` off the first."""
        self.layers = ModuleList([
            self.layer_type(**self.layer_cfg) for _ in range(self.num_layers)
        ])
        self.embed_dims = self.layers[0].embed_dims

    def init_weights(self) -> None:
        """Default init, then every deformable attention's own scheme."""
        super().init_weights()
        for m in self.modules():
            if isinstance(m, MSDeformAttn):
                m.init_weights()


class SeqFormerEncoderLayer(DeformableDetrTransformerEncoderLayer):
    """Post-norm encoder layer: deformable self-attention + FFN, per frame.

    ``x = LN(x + Drop(MSDeformAttn(x + pos, x)))``, then
    ``x = LN(x + FFN(x))``. All frames go through one op call.

    Args:
        self_attn_cfg (dict): Config of
            :class:`mmvis_msts.ops.MSDeformAttn`
            (``batch_first=True`` is required). SeqFormer: 256 dims,
            8 heads, 4 levels, 4 points, dropout 0.1.
        ffn_cfg (dict): Config of mmcv ``FFN``. SeqFormer: 1024 channels,
            ReLU, ``ffn_drop=0.1``.
        norm_cfg (dict): Config of the two norms. Defaults to LN.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def _init_layers(self) -> None:
        """Initialize self_attn, ffn and norms."""
        self.self_attn = MSDeformAttn(**self.self_attn_cfg)
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = FFN(**self.ffn_cfg)
        self.norms = ModuleList([
            build_norm_layer(self.norm_cfg, self.embed_dims)[1]
            for _ in range(2)
        ])

    def forward(self,
                query: Tensor,
                query_pos: Tensor,
                key_padding_mask: Optional[Tensor],
                spatial_shapes: Tensor,
                level_shapes: LevelShapes,
                level_start_index: Tensor,
                reference_points: Tensor,
                num_frames: int,
                identity: Optional[Tensor] = None) -> Tensor:
        """Run the layer on all frames at once.

        Args:
            query (Tensor): (B*T, S, C) tokens of all levels.
            query_pos (Tensor): (B*T, S, C) position + level embedding.
            key_padding_mask (Tensor, optional): (B*T, S) bool, True at
                padding; None when no frame is padded.
            spatial_shapes (Tensor): (L, 2) (H_l, W_l) of each level.
            level_shapes (LevelShapes): The same sizes as Python ints.
                Unused here, as ``num_frames``.
            level_start_index (Tensor): (L,) start of each level in S.
            reference_points (Tensor): (B*T, S, L, 2) normalized points,
                valid-ratio scaled per frame.
            num_frames (int): T. Unused here (frames never interact in this
                layer); kept so that layer types are interchangeable.
            identity (Tensor, optional): (B*T, S, C) residual added to the
                attention output before the first norm. Defaults to
                ``query``.

        Returns:
            Tensor: (B*T, S, C) output tokens.
        """
        query = self.self_attn(
            query=query,
            value=query,
            identity=identity,
            query_pos=query_pos,
            key_padding_mask=key_padding_mask,
            reference_points=reference_points,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index)
        query = self.norms[0](query)
        query = self.ffn(query)
        return self.norms[1](query)


@MODELS.register_module()
class SeqFormerEncoder(LayerStackMixin, DeformableDetrTransformerEncoder):
    """SeqFormer encoder: a stack of :class:`SeqFormerEncoderLayer`.

    Frames share all weights and never interact; they are folded into the
    batch so that each layer makes one deformable-attention call for B*T
    frames. Reference points come from each frame's own valid ratios.

    Args:
        num_layers (int): Number of layers (SeqFormer: 6).
        layer_cfg (dict): Config of every layer (keys ``self_attn_cfg``,
            ``ffn_cfg``, ``norm_cfg`` and those of subclasses' layers).
        num_cp (int): Activation checkpointing is not supported; must stay
            -1. Defaults to -1.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    layer_type = SeqFormerEncoderLayer

    def _init_layers(self) -> None:
        """Initialize the layers."""
        if self.num_cp > 0:
            raise ValueError(f'{type(self).__name__} does not support '
                             f'activation checkpointing, got num_cp='
                             f'{self.num_cp}')
        self._build_layers()

    def forward(self, query: Tensor, query_pos: Tensor,
                key_padding_mask: Optional[Tensor], spatial_shapes: Tensor,
                level_shapes: LevelShapes, level_start_index: Tensor,
                valid_ratios: Tensor, num_frames: int) -> Tensor:
        """Encode the multi-scale tokens of every frame of every clip.

        Args:
            query (Tensor): (B*T, S, C) flattened tokens of all levels,
                clip-major.
            query_pos (Tensor): (B*T, S, C) position + level embedding.
            key_padding_mask (Tensor, optional): (B*T, S) bool, True at
                padding; None when no frame is padded.
            spatial_shapes (Tensor): (L, 2) int64 (H_l, W_l) per level, for
                the kernel.
            level_shapes (LevelShapes): The same sizes as Python ints, for
                the reference points and the layers (no device-to-host read
                of ``spatial_shapes``).
            level_start_index (Tensor): (L,) start of each level in S.
            valid_ratios (Tensor): (B*T, L, 2) valid (w, h) fraction of each
                frame at each level.
            num_frames (int): Frames per clip T (any value at test time).

        Returns:
            Tensor: (B*T, S, C) memory.
        """
        check_num_frames(query.size(0), num_frames)
        check_frame_rows(valid_ratios, 'valid_ratios', query.size(0))
        # mmdet's helper iterates the shapes it gets: host ints here
        reference_points = self.get_encoder_reference_points(
            level_shapes, valid_ratios, device=query.device)
        for layer in self.layers:
            query = layer(
                query=query,
                query_pos=query_pos,
                key_padding_mask=key_padding_mask,
                spatial_shapes=spatial_shapes,
                level_shapes=level_shapes,
                level_start_index=level_start_index,
                reference_points=reference_points,
                num_frames=num_frames)
        return query
