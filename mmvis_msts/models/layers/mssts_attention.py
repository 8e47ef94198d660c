"""Multi-scale spatio-temporal split (MS-STS) attention, the encoder branch.

Reconstructed from the paper's Fig. 2 (b)-(d) (no equations are public; see
docs/design.md §3a). Shapes use the package notation (``mmvis_msts``), with
C_i the inner width of the branch:

1. ``in_proj``: Linear C -> C_i (the "Linear layer" of panel (c)); one inner
   width C_i shared by all levels.
2. Intra-scale temporal attention, per level, shared weights: at every
   spatial position the T frames are the tokens.
   ``u = LN(u + Drop(MHA(u)))``, ``z = u + FFN(u)``.
3. Inter-scale temporal attention: level l's T tokens attend to themselves
   and to the T tokens of its coarser neighbour l+1 resampled to level l's
   grid (2T keys); the coarsest level pairs with its own projected raw
   input. Pre-norm: ``h = x + Drop(MHA(LN(x)))``, ``h = h + FFN(LN(h))``.
   Only level l's T tokens are kept, so only they are used as queries.
4. ``out_proj``: Linear C_i -> C, then dropout. The result is summed with the
   deformable-attention output before the encoder layer's add & norm.

Every level's output depends only on intra-scale outputs, not on another
level's inter-scale output, so "coarse to fine" fixes no order: all levels
run in one batched attention call per stage. The coarse tokens' linear
projection is applied after resampling; it commutes with the normalised
bilinear resampling (weights sum to 1), so the inter-scale block owns both
of its projections.

Choices the paper leaves open (docs/design.md §6.1): one branch per encoder
layer, its weights shared by all levels; inputs without position or level
embedding; no temporal embedding (T differs between training and test), so
the branch is equivariant to frame order; C_i = 64, 4 heads, FFN 256 by
default (about 0.14 M parameters per layer at C = 256).

Padding: a padded frame of a position is masked as a key of that position
(a position padded in every frame attends to all its frames, so no row is
fully masked; its output is never read by valid tokens). The coarser map is
resampled with a mask-normalised bilinear interpolation, so padded coarse
cells never leak into valid fine positions.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule, ModuleList
from torch import Tensor, nn

from mmvis_msts.ops import LevelShapes


def fold_time(x: Tensor, num_frames: int) -> Tensor:
    """(B*T, S, C) clip-major frames -> (B*S, T, C) per-position sequences.

    Args:
        x (Tensor): (B*T, S, C) tokens.
        num_frames (int): T.

    Returns:
        Tensor: (B*S, T, C), row ``b * S + s`` holds position s of clip b.
    """
    bt, n, c = x.shape
    return x.view(bt // num_frames, num_frames, n,
                  c).transpose(1, 2).reshape(-1, num_frames, c)


def unfold_time(x: Tensor, num_tokens: int) -> Tensor:
    """Invert :func:`fold_time`: (B*S, T, C) -> (B*T, S, C).

    Args:
        x (Tensor): (B*S, T, C) per-position sequences.
        num_tokens (int): S.

    Returns:
        Tensor: (B*T, S, C) clip-major frames.
    """
    bn, t, c = x.shape
    return x.view(bn // num_tokens, num_tokens, t,
                  c).transpose(1, 2).reshape(-1, num_tokens, c)


def temporal_key_mask(padding: Optional[Tensor]) -> Optional[Tensor]:
    """Key padding mask for per-position temporal attention.

    Args:
        padding (Tensor, optional): (B*S, T) bool, True where the position is
            padding in that frame.

    Returns:
        Tensor or None: (B*S, T) mask with rows that would be fully masked
        cleared (those positions are padding in every frame; attending to
        all frames keeps them finite), or None when ``padding`` is. A mask
        that masks nothing (frames of a clip share their size) is returned
        as it is: testing for that would read it back from the device.
    """
    if padding is None:
        return None
    return padding & ~padding.all(dim=1, keepdim=True)


def resample_masked(x: Tensor, valid: Optional[Tensor],
                    size: Tuple[int, int]) -> Tensor:
    """Bilinear resampling that ignores invalid (padded) source cells.

    Args:
        x (Tensor): (B*T, C, H_c, W_c) source (coarser) map.
        valid (Tensor, optional): (B*T, 1, H_c, W_c) float, 1 at valid cells.
            None means all cells are valid.
        size (tuple[int, int]): Target (H_l, W_l).

    Returns:
        Tensor: (B*T, C, H_l, W_l); each output is a convex combination of
        valid source cells (0 where no valid cell contributes).
    """
    if valid is None:
        return F.interpolate(
            x, size=size, mode='bilinear', align_corners=False)
    num = F.interpolate(
        x * valid, size=size, mode='bilinear', align_corners=False)
    den = F.interpolate(valid, size=size, mode='bilinear', align_corners=False)
    return num / den.clamp(min=1e-6)


class TemporalAttentionBlock(BaseModule):
    """Base of the two temporal attention blocks: multi-head attention over
    frames, dropout and an FFN, plus the norms (and projections) that
    :meth:`_init_layers` of a subclass adds before them.

    Args:
        embed_dims (int): Token width C_i.
        num_heads (int): Attention heads.
        feedforward_channels (int): FFN hidden width.
        dropout (float): Dropout on attention weights, residuals and FFN.
        act_cfg (dict): FFN activation.
        norm_cfg (dict): Norm config.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 feedforward_channels: int,
                 dropout: float,
                 act_cfg: ConfigType = dict(type='ReLU', inplace=True),
                 norm_cfg: ConfigType = dict(type='LN'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self._init_layers(embed_dims, norm_cfg)
        self.attn = nn.MultiheadAttention(
            embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.ffn = FFN(
            embed_dims=embed_dims,
            feedforward_channels=feedforward_channels,
            ffn_drop=dropout,
            act_cfg=act_cfg)

    def _init_layers(self, embed_dims: int, norm_cfg: ConfigType) -> None:
        """Build the subclass' own layers (before attention and FFN).

        Args:
            embed_dims (int): Token width C_i.
            norm_cfg (dict): Norm config.
        """
        raise NotImplementedError


class IntraScaleTemporalAttention(TemporalAttentionBlock):
    """Self-attention over the T frames of each position (Fig. 2 (c)).

    ``u = LN(u + Drop(MHA(u)))``, ``z = u + FFN(u)`` (the figure's
    Attention -> LayerNorm -> FFN; the inter-scale block normalises next).
    Arguments as :class:`TemporalAttentionBlock`.
    """

    def _init_layers(self, embed_dims: int, norm_cfg: ConfigType) -> None:
        """Build the norm after attention."""
        self.norm = build_norm_layer(norm_cfg, embed_dims)[1]

    def forward(self,
                x: Tensor,
                key_padding_mask: Optional[Tensor] = None) -> Tensor:
        """Attend across frames.

        Args:
            x (Tensor): (B*S, T, C_i) one sequence of T frames per position.
            key_padding_mask (Tensor, optional): (B*S, T) bool, True = ignore.

        Returns:
            Tensor: (B*S, T, C_i).
        """
        # need_weights=False takes the scaled_dot_product_attention path
        attn = self.attn(
            x, x, x, key_padding_mask=key_padding_mask, need_weights=False)[0]
        x = self.norm(x + self.dropout(attn))
        return self.ffn(x)


class InterScaleTemporalAttention(TemporalAttentionBlock):
    """Attention of a level's frames over its own and a coarser level's
    frames (Fig. 2 (d)).

    Both inputs get their own linear projection (so the block can tell the
    scales apart), are concatenated along time (2T keys) and go through
    ``h = x + Drop(MHA(LN(x)))``, ``h = h + FFN(LN(h))``. Only the fine
    level's T tokens are kept, so only they are queries. Arguments as
    :class:`TemporalAttentionBlock`.
    """

    def _init_layers(self, embed_dims: int, norm_cfg: ConfigType) -> None:
        """Build the two scale projections and the two pre-norms."""
        self.fine_proj = nn.Linear(embed_dims, embed_dims)
        self.coarse_proj = nn.Linear(embed_dims, embed_dims)
        self.norms = ModuleList(
            [build_norm_layer(norm_cfg, embed_dims)[1] for _ in range(2)])

    def forward(self,
                fine: Tensor,
                coarse: Tensor,
                key_padding_mask: Optional[Tensor] = None) -> Tensor:
        """Attend across frames and the two scales.

        Args:
            fine (Tensor): (B*S, T, C_i) level-l tokens.
            coarse (Tensor): (B*S, T, C_i) partner tokens on level l's grid.
            key_padding_mask (Tensor, optional): (B*S, 2T) bool over
                ``[fine, coarse]``, True = ignore.

        Returns:
            Tensor: (B*S, T, C_i) updated level-l tokens.
        """
        num_frames = fine.size(1)
        x = torch.cat([self.fine_proj(fine), self.coarse_proj(coarse)], dim=1)
        keys = self.norms[0](x)
        x = x[:, :num_frames]
        attn = self.attn(
            keys[:, :num_frames],
            keys,
            keys,
            key_padding_mask=key_padding_mask,
            need_weights=False)[0]
        x = x + self.dropout(attn)
        return self.ffn(self.norms[1](x), identity=x)


@MODELS.register_module()
class MSSTSAttention(BaseModule):
    """MS-STS attention branch of an encoder layer (docs/design.md §3a).

    Args:
        embed_dims (int): Encoder width C. Defaults to 256.
        inner_dims (int): Width C_i of the temporal attentions, shared by all
            levels. Defaults to 64.
        num_heads (int): Heads of both temporal attentions. Defaults to 4.
        feedforward_channels (int): Hidden width of both FFNs. Defaults to
            256.
        dropout (float): Dropout inside the branch and on its output.
            Defaults to 0.1.
        act_cfg (dict): FFN activation. Defaults to ReLU.
        norm_cfg (dict): Norm config. Defaults to LN.
        init_cfg (dict, optional): Initialization config. Defaults to None.

    Note:
        :meth:`init_weights` zero-initialises ``out_proj``, so a freshly
        initialised branch adds nothing and an MS-STS encoder loaded from
        SeqFormer weights starts as that SeqFormer encoder.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 inner_dims: int = 64,
                 num_heads: int = 4,
                 feedforward_channels: int = 256,
                 dropout: float = 0.1,
                 act_cfg: ConfigType = dict(type='ReLU', inplace=True),
                 norm_cfg: ConfigType = dict(type='LN'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if inner_dims % num_heads != 0:
            raise ValueError(f'inner_dims={inner_dims} must be divisible by '
                             f'num_heads={num_heads}')
        self.embed_dims = embed_dims
        self.inner_dims = inner_dims
        block_cfg = dict(
            embed_dims=inner_dims,
            num_heads=num_heads,
            feedforward_channels=feedforward_channels,
            dropout=dropout,
            act_cfg=act_cfg,
            norm_cfg=norm_cfg)
        self.in_proj = nn.Linear(embed_dims, inner_dims)
        self.intra_attn = IntraScaleTemporalAttention(**block_cfg)
        self.inter_attn = InterScaleTemporalAttention(**block_cfg)
        self.out_proj = nn.Linear(inner_dims, embed_dims)
        self.dropout = nn.Dropout(dropout)

    def init_weights(self) -> None:
        """Default init, then a zero ``out_proj`` (the branch starts as a
        no-op)."""
        super().init_weights()
        nn.init.zeros_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, query: Tensor, key_padding_mask: Optional[Tensor],
                level_shapes: LevelShapes, num_frames: int) -> Tensor:
        """Compute the branch output for all frames and levels.

        Args:
            query (Tensor): (B*T, S, C) clip-major tokens of all levels,
                levels ordered fine to coarse (level l+1 is the next-coarser
                neighbour of level l).
            key_padding_mask (Tensor, optional): (B*T, S) bool, True at
                padding; None when no frame is padded.
            level_shapes (LevelShapes): (H_l, W_l) per level.
            num_frames (int): T.

        Returns:
            Tensor: (B*T, S, C) to be added to the deformable-attention
            output.
        """
        num_tokens = query.size(1)
        if sum(h * w for h, w in level_shapes) != num_tokens:
            raise ValueError(f'level_shapes {level_shapes} do not add up to '
                             f'the {num_tokens} tokens of the query')
        padding = None if key_padding_mask is None else fold_time(
            key_padding_mask[..., None], num_frames).squeeze(-1)
        # (B*T, S, C) -> (B*T, S, C_i) -> (B*S, T, C_i)
        raw = self.in_proj(query)
        intra = self.intra_attn(
            fold_time(raw, num_frames), temporal_key_mask(padding))
        intra = unfold_time(intra, num_tokens)
        partner = self._coarser_partners(raw, intra, key_padding_mask,
                                         level_shapes)
        # a partner token is ignored where its fine position is padding
        inter_mask = None if padding is None else temporal_key_mask(
            torch.cat([padding, padding], dim=1))
        out = self.inter_attn(
            fold_time(intra, num_frames), fold_time(partner, num_frames),
            inter_mask)
        out = unfold_time(out, num_tokens)
        return self.dropout(self.out_proj(out))

    @staticmethod
    def _coarser_partners(raw: Tensor, intra: Tensor,
                          key_padding_mask: Optional[Tensor],
                          shapes: LevelShapes) -> Tensor:
        """Coarser-neighbour tokens of every level on that level's grid.

        Args:
            raw (Tensor): (B*T, S, C_i) projected input tokens.
            intra (Tensor): (B*T, S, C_i) intra-scale outputs.
            key_padding_mask (Tensor, optional): (B*T, S) bool padding;
                None when nothing is padded.
            shapes (LevelShapes): (H_l, W_l) per level.

        Returns:
            Tensor: (B*T, S, C_i): for level l < L-1 the intra output of level
            l+1 resampled to (H_l, W_l); for the coarsest level its raw
            projected input.
        """
        sizes = [h * w for h, w in shapes]
        intra_levels = intra.split(sizes, dim=1)
        valid_levels = [None] * len(shapes)
        if key_padding_mask is not None:
            valid_levels = (~key_padding_mask).to(intra.dtype).split(
                sizes, dim=1)
        partners = []
        for level in range(len(shapes) - 1):
            (h, w), (hc, wc) = shapes[level], shapes[level + 1]
            # (B*T, H_c*W_c, C_i) -> (B*T, C_i, H_c, W_c)
            coarse = intra_levels[level + 1].transpose(1, 2).reshape(
                -1, intra.size(2), hc, wc)
            valid = valid_levels[level + 1]
            if valid is not None:
                valid = valid.view(-1, 1, hc, wc)
            # (B*T, C_i, H_l, W_l) -> (B*T, H_l*W_l, C_i)
            partners.append(
                resample_masked(coarse, valid,
                                (h, w)).flatten(2).transpose(1, 2))
        partners.append(raw[:, -sizes[-1]:])
        return torch.cat(partners, dim=1)
