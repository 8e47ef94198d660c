"""Dynamic-convolution mask head of SeqFormer (CondInst style), batched.

Shapes use the package notation (``mmvis_msts``): B clips, T frames, N
selected instances, C channels, H and W the size of the finest encoder level
used (stride 8, ``mask_feat_stride``, in the default setup).
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.layers.transformer import MLP
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor


def aligned_bilinear(x: Tensor, factor: int) -> Tensor:
    """Upsample by an integer factor (CondInst-style "aligned" bilinear).

    Output pixel ``i`` samples the input at ``(i - factor // 2) / factor``
    with edge replication at the borders, which is the upsampling SeqFormer
    applies to its stride-8 mask logits.

    Args:
        x (Tensor): (N*T, C, H, W), or any batch of maps.
        factor (int): Upsampling factor >= 1.

    Returns:
        Tensor: (N*T, C, H * factor, W * factor).
    """
    if factor < 1 or int(factor) != factor:
        raise ValueError(f'factor must be a positive integer, got {factor}')
    if factor == 1:
        return x
    h, w = x.shape[-2:]
    # replicate one row/column so that align_corners=True interpolation over
    # h+1 samples gives exact multiples of 1/factor between input pixels
    x = F.pad(x, (0, 1, 0, 1), mode='replicate')
    x = F.interpolate(
        x,
        size=(factor * h + 1, factor * w + 1),
        mode='bilinear',
        align_corners=True)
    x = F.pad(x, (factor // 2, 0, factor // 2, 0), mode='replicate')
    return x[..., :factor * h, :factor * w]


class MaskBranch(nn.Module):
    """Conv FPN over the finest encoder levels giving per-frame mask features.

    Coarsest level first: ``conv -> ReLU``, upsample (nearest) and add the
    next finer level, repeat; then the output convs reduce the channels.

    Args:
        in_channels (int): Channels of the encoder levels.
        num_levels (int): How many of the finest levels are fused.
        out_channels (Sequence[int]): Channels of the output convs; the last
            one is the mask-feature width.
    """

    def __init__(self, in_channels: int, num_levels: int,
                 out_channels: Sequence[int]) -> None:
        super().__init__()
        if num_levels < 1 or len(out_channels) < 1:
            raise ValueError('MaskBranch needs num_levels >= 1 and at least '
                             f'one out channel, got {num_levels}, '
                             f'{out_channels}')
        self.num_levels = num_levels
        self.fuse_convs = nn.ModuleList(
            nn.Conv2d(in_channels, in_channels, 3, padding=1)
            for _ in range(num_levels))
        chans = [in_channels, *out_channels]
        self.out_convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 3, padding=1)
            for c_in, c_out in zip(chans[:-1], chans[1:]))

    def init_weights(self) -> None:
        """Kaiming-uniform (a=1) weights and zero biases, as SeqFormer."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Fuse the levels.

        Args:
            feats (Sequence[Tensor]): ``num_levels`` maps
                (B*T, C, H_l, W_l), finest first.

        Returns:
            Tensor: (B*T, out_channels[-1], H_0, W_0).
        """
        if len(feats) != self.num_levels:
            raise ValueError(f'MaskBranch expects {self.num_levels} levels, '
                             f'got {len(feats)}')
        x = F.relu(self.fuse_convs[0](feats[-1]))
        for conv, feat in zip(self.fuse_convs[1:], reversed(feats[:-1])):
            x = feat + F.interpolate(x, size=feat.shape[-2:], mode='nearest')
            x = F.relu(conv(x))
        for conv in self.out_convs:
            x = F.relu(conv(x))
        return x


@MODELS.register_module()
class DynamicConvMaskHead(BaseModule):
    """Instance masks from dynamic 1x1 convs on shared mask features.

    A controller MLP turns each instance query into the weights and biases
    of a small per-instance conv net (``dyn_channels`` wide, ``num_dyn_layers``
    deep, one output channel). Its input is the mask features of a frame plus,
    optionally, two relative-coordinate channels: the instance's box centre
    in that frame minus each feature pixel centre (x, y).

    Relative coordinates: SeqFormer feeds them in raw input pixels
    (``rel_coord_normalize=False``, needed to reproduce its checkpoints).
    ``rel_coord_normalize=True`` divides them by the input image size so they
    lie in [-1, 1] independently of the resolution, which keeps the first
    dynamic layer well conditioned when training from scratch.

    Args:
        in_channels (int): Encoder channels. Defaults to 256.
        num_levels (int): Number of finest encoder levels fused by the mask
            branch. Defaults to 3.
        branch_channels (Sequence[int]): Output conv widths of the mask
            branch; the last is the mask-feature width. Defaults to (64, 8).
        dyn_channels (int): Width of the hidden dynamic convs. Defaults to 8.
        num_dyn_layers (int): Number of dynamic 1x1 convs. Defaults to 3.
        controller_layers (int): Depth of the controller MLP. Defaults to 3.
        use_rel_coords (bool): Append the relative coordinates. Defaults to
            True.
        rel_coord_normalize (bool): See above. Defaults to True.
        upsample_factor (int): Upsampling of the mask logits after the
            dynamic convs (stride 8 -> 4). Defaults to 2.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int = 256,
                 num_levels: int = 3,
                 branch_channels: Sequence[int] = (64, 8),
                 dyn_channels: int = 8,
                 num_dyn_layers: int = 3,
                 controller_layers: int = 3,
                 use_rel_coords: bool = True,
                 rel_coord_normalize: bool = True,
                 upsample_factor: int = 2,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_dyn_layers < 1:
            raise ValueError(f'num_dyn_layers must be >= 1, got '
                             f'{num_dyn_layers}')
        self.use_rel_coords = use_rel_coords
        self.rel_coord_normalize = rel_coord_normalize
        self.upsample_factor = upsample_factor
        self.branch = MaskBranch(in_channels, num_levels, branch_channels)
        first_in = branch_channels[-1] + (2 if use_rel_coords else 0)
        # (in, out) per dynamic layer, e.g. 10->8, 8->8, 8->1
        chans = [first_in] + [dyn_channels] * (num_dyn_layers - 1) + [1]
        self.dyn_shapes: List[Tuple[int,
                                    int]] = list(zip(chans[1:], chans[:-1]))
        # SeqFormer's parameter layout: all weights, then all biases
        self.param_sizes = [o * i for o, i in self.dyn_shapes] + \
            [o for o, _ in self.dyn_shapes]
        self.num_params = sum(self.param_sizes)
        self.controller = MLP(in_channels, in_channels, self.num_params,
                              controller_layers)

    @property
    def num_levels(self) -> int:
        """Number of encoder levels used by the mask branch."""
        return self.branch.num_levels

    def init_weights(self) -> None:
        """Xavier controller with zero biases; branch as SeqFormer."""
        super().init_weights()
        for layer in self.controller.layers:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.branch.init_weights()

    def mask_features(self, feats: Sequence[Tensor]) -> Tensor:
        """Per-frame mask features.

        Args:
            feats (Sequence[Tensor]): Finest ``num_levels`` encoder maps, each
                (B*T, C, H_l, W_l), finest first.

        Returns:
            Tensor: (B*T, C_m, H, W) with H, W of the finest level.
        """
        return self.branch(feats)

    def dynamic_params(self, queries: Tensor) -> Tensor:
        """Controller output.

        Args:
            queries (Tensor): (..., C) instance queries.

        Returns:
            Tensor: (..., num_params) dynamic conv parameters.
        """
        return self.controller(queries)

    def forward(self, mask_feats: Tensor, params: Tensor, centres: Tensor,
                img_sizes: Tensor, mask_feat_stride: int) -> Tensor:
        """Run the dynamic convs for N instances over all their frames.

        Args:
            mask_feats (Tensor): (N, T, C_m, H, W) mask features of each
                instance's clip (gather them with the clip index first).
            params (Tensor): (N, num_params) dynamic parameters.
            centres (Tensor): (N, T, 2) normalised (x, y) box centres.
            img_sizes (Tensor): (N, T, 2) unpadded input (w, h) in pixels.
            mask_feat_stride (int): Input pixels per mask-feature pixel.

        Returns:
            Tensor: (N, T, H * f, W * f) mask logits, f = upsample_factor
            (the mask output stride is ``mask_feat_stride // f``).
        """
        n, t, _, h, w = mask_feats.shape
        x = mask_feats.flatten(3)
        if self.use_rel_coords:
            x = torch.cat([
                self._rel_coords(centres, img_sizes, h, w, mask_feat_stride), x
            ],
                          dim=2)
        splits = params.split(self.param_sizes, dim=1)
        num_layers = len(self.dyn_shapes)
        for i, (c_out, c_in) in enumerate(self.dyn_shapes):
            weight = splits[i].view(n, c_out, c_in)
            bias = splits[num_layers + i].view(n, 1, c_out, 1)
            # (N, o, k) x (N, T, k, HW) -> (N, T, o, HW)
            x = torch.einsum('nok,ntkp->ntop', weight, x) + bias
            if i < num_layers - 1:
                x = F.relu(x)
        logits = aligned_bilinear(x.view(n * t, 1, h, w), self.upsample_factor)
        return logits.view(n, t, *logits.shape[-2:])

    def _rel_coords(self, centres: Tensor, img_sizes: Tensor, h: int, w: int,
                    stride: int) -> Tensor:
        """Box centre minus feature pixel centre, for every pixel.

        Returns:
            Tensor: (N, T, 2, H*W), (x, y) order, in input pixels or, with
            ``rel_coord_normalize``, in units of the image size.
        """
        ys = torch.arange(h, device=centres.device, dtype=centres.dtype)
        xs = torch.arange(w, device=centres.device, dtype=centres.dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
        # pixel centres of the stride-s grid in input pixels, (HW, 2)
        locations = torch.stack(
            [grid_x.flatten(), grid_y.flatten()],
            dim=-1) * stride + stride // 2
        # centre - pixel: (N, T, 1, 2) - (HW, 2) -> (N, T, HW, 2)
        rel = (centres * img_sizes)[:, :, None] - locations
        if self.rel_coord_normalize:
            rel = rel / img_sizes[:, :, None]
        return rel.transpose(2, 3)
