"""Mask-conditioned multi-scale PatchGAN discriminator (training only).

Shapes use the package notation (``mmvis_msts``): B*T frames, C channels,
L levels, H_s and W_s the size at stride s.
"""
from typing import List, Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn


def condition_on_mask(x: Tensor, mask: Tensor) -> Tensor:
    """``[x * M, x * (1 - M), M]``: every channel of ``x`` split by the mask.

    The discriminator never sees ``x`` without the mask: a pixel's features
    arrive either in the foreground or the background half, weighted by the
    mask, so real and fake inputs differ in every channel wherever their
    masks differ (docs/design.md §3c).

    Args:
        x (Tensor): (B*T, C, H, W) features.
        mask (Tensor): (B*T, 1, H, W) foreground in [0, 1].

    Returns:
        Tensor: (B*T, 2C + 1, H, W).
    """
    return torch.cat([x * mask, x * (1 - mask), mask], dim=1)


@MODELS.register_module()
class FgBgDiscriminator(BaseModule):
    """PatchGAN on mask-conditioned frames and encoder features.

    docs/design.md §3c and §6.3. It takes the :attr:`num_levels` finest
    encoder levels (strides 8, 16, 32 by default) and one foreground mask
    at any resolution, average-pooled to each level's size
    (``M_l``); the frames are pooled to the finest level and join its
    features (``X_0 = [frames, E_0]``, ``X_l = E_l`` above):

    1. Entry of level l: 1x1 conv of :func:`condition_on_mask`
       ``(X_l, M_l)`` to ``channels``. With ``mask_stride_channels``,
       the finest entry also gets the mask-stride entry: at the mask's own
       resolution, :func:`condition_on_mask` ``(frames, M)`` through two
       3x3 convs (``mask_stride_channels``) and a 3x3 stride-2 conv to
       ``channels``.
    2. Finest level: LeakyReLU, 3x3 conv, LeakyReLU.
    3. Each coarser level: 3x3 stride-2 conv of the running map plus that
       level's entry, LeakyReLU.
    4. One 3x3 conv + LeakyReLU per entry of ``head_channels``.
    5. 3x3 conv to one channel: patch logits at the coarsest level's
       stride (no sigmoid).

    Why this layout (the paper gives none):

    - Mask conditioning at every level: no input reaches D, and no gradient
      leaves D into the encoder, without passing through ``M`` or
      ``1 - M``. The former ``[frame, E, M]`` stack differed between real
      and fake in one channel of 3 + C + 2 and let D (and the generator)
      use ``E`` label-free.
    - Both masks are pooled by the same operation here, so no level sees a
      mask treated differently for real and fake.
    - GroupNorm with one group (per sample, over channels and pixels) on
      every conv but the logits: its statistics stay sound on the tiny maps
      (a 1x1 or 3x4 map at the coarsest level), where GroupNorm with
      several groups of few channels is noisy, and it never mixes samples,
      where BatchNorm would mix the real and the fake half of D's batch.
      Spectral norm was tried first and dropped: bounding D's Lipschitz
      constant bounds the logit gap by the input gap, which is small here
      (masks that differ in a few pixels, averaged by the pooling); in the
      60-step check of ``test_mssts_vis.py`` a spectrally normalised D
      stayed at chance (margin 0.015) where this one separated the two
      (margin about 12).
    - Strided 3x3 convs instead of max-pool: a max-pool passes the largest
      value only, and the gradient then reaches one pixel per window.
    - The mask-stride entry: once the model segments well, its predicted
      foreground differs from the GT in a few pixels along the borders
      (2.3 % of the stride-4 pixels for the main job's checkpoint), which
      average pooling to stride 8 blurs away. Fitted on that checkpoint's
      maps (``tools/analysis_tools/fit_discriminator.py``), a D without
      this entry stays at chance (held-out hinge loss 2.05 of 2.0), one
      with it learns (1.35). Off by default: in the main job it makes D
      learn (loss 1.47) but lowers val mAP from 0.275 to 0.229 (one seed),
      and its generator gradient at the mask does not point toward the GT
      (docs/design.md §3c).

    Args:
        in_channels (int): Channels C of the encoder features. Defaults to
            256.
        img_channels (int): Channels of the frames. Defaults to 3.
        num_levels (int): Encoder levels taken, finest first. Defaults
            to 3.
        channels (int): Width of the entries and the downsampling convs.
            Defaults to 64.
        head_channels (Sequence[int]): Widths of the convs after the last
            downsampling. Defaults to (128, 256).
        mask_stride_channels (int): Width of the mask-stride entry's convs;
            0 leaves the entry out. Defaults to 0.
        norm_cfg (dict): Norm of every conv but the logits. Defaults to
            GroupNorm with one group (a per-sample LayerNorm over the map).
        act_cfg (dict): Activation config. Defaults to LeakyReLU(0.2).
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int = 256,
                 img_channels: int = 3,
                 num_levels: int = 3,
                 channels: int = 64,
                 head_channels: Sequence[int] = (128, 256),
                 mask_stride_channels: int = 0,
                 norm_cfg: ConfigType = dict(type='GN', num_groups=1),
                 act_cfg: ConfigType = dict(
                     type='LeakyReLU', negative_slope=0.2),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_levels < 1:
            raise ValueError(f'num_levels must be >= 1, got {num_levels}')
        self.in_channels = in_channels
        self.img_channels = img_channels
        conv_cfg = dict(norm_cfg=norm_cfg)
        in_widths = [img_channels + in_channels] + [in_channels] * (
            num_levels - 1)
        self.entries = nn.ModuleList([
            ConvModule(2 * width + 1, channels, 1, act_cfg=None, **conv_cfg)
            for width in in_widths
        ])
        self.act = MODELS.build(act_cfg)
        self.mask_stride_entry = None
        if mask_stride_channels > 0:
            width = mask_stride_channels
            self.mask_stride_entry = nn.Sequential(
                ConvModule(
                    2 * img_channels + 1,
                    width,
                    3,
                    padding=1,
                    act_cfg=act_cfg,
                    **conv_cfg),
                ConvModule(
                    width, width, 3, padding=1, act_cfg=act_cfg, **conv_cfg),
                ConvModule(
                    width,
                    channels,
                    3,
                    stride=2,
                    padding=1,
                    act_cfg=None,
                    **conv_cfg))
        self.fine_conv = ConvModule(
            channels, channels, 3, padding=1, act_cfg=act_cfg, **conv_cfg)
        self.down_convs = nn.ModuleList([
            ConvModule(
                channels,
                channels,
                3,
                stride=2,
                padding=1,
                act_cfg=None,
                **conv_cfg) for _ in range(num_levels - 1)
        ])
        widths = [channels, *head_channels]
        self.head_convs = nn.Sequential(*[
            ConvModule(cin, cout, 3, padding=1, act_cfg=act_cfg, **conv_cfg)
            for cin, cout in zip(widths[:-1], widths[1:])
        ])
        self.logits = nn.Conv2d(widths[-1], 1, 3, padding=1)

    @property
    def num_levels(self) -> int:
        """Encoder levels taken, finest first."""
        return len(self.entries)

    def _check_inputs(self, frames: Tensor, feats: List[Tensor],
                      mask: Tensor) -> None:
        """Raise a ValueError naming the first inconsistent input."""
        if len(feats) != self.num_levels:
            raise ValueError(f'expected {self.num_levels} encoder levels, '
                             f'got {len(feats)} maps')
        expected = [(self.img_channels, frames), (1, mask)]
        expected += [(self.in_channels, feat) for feat in feats]
        for channels, x in expected:
            if x.dim() != 4 or x.size(1) != channels or \
                    x.size(0) != feats[0].size(0):
                raise ValueError(f'expected ({feats[0].size(0)}, {channels}, '
                                 f'H, W) input, got shape {tuple(x.shape)}')
        for level, (fine, coarse) in enumerate(zip(feats[:-1], feats[1:])):
            half = tuple((s + 1) // 2 for s in fine.shape[-2:])
            if tuple(coarse.shape[-2:]) != half:
                raise ValueError(f'level {level + 1} has size '
                                 f'{tuple(coarse.shape[-2:])}, expected '
                                 f'{half} (ceil of half the previous level)')

    def forward(self, frames: Tensor, feats: List[Tensor],
                mask: Tensor) -> Tensor:
        """Score every patch as real (GT mask) or fake (predicted mask).

        Args:
            frames (Tensor): (B*T, 3, H, W) frames at any size.
            feats (list[Tensor]): :attr:`num_levels` encoder maps
                (B*T, C, H_l, W_l), finest first, each the ceil-halved size
                of the previous one.
            mask (Tensor): (B*T, 1, H_m, W_m) foreground in [0, 1] at any
                size (the mask-output stride in the model).

        Returns:
            Tensor: (B*T, 1, H_l, W_l) patch logits at the coarsest level
            taken (no sigmoid).
        """
        self._check_inputs(frames, feats, mask)
        size = feats[0].shape[-2:]
        x = torch.cat([F.adaptive_avg_pool2d(frames, size), feats[0]], 1)
        x = self._entry(0, x, mask)
        if self.mask_stride_entry is not None:
            # the stride-2 conv halves the mask-stride map (ceil); a mask
            # at another stride is pooled to the finest level's size
            fine = condition_on_mask(
                F.adaptive_avg_pool2d(frames, mask.shape[-2:]), mask)
            x = x + F.adaptive_avg_pool2d(self.mask_stride_entry(fine), size)
        x = self.fine_conv(self.act(x))
        for level, down in enumerate(self.down_convs, 1):
            x = self.act(down(x) + self._entry(level, feats[level], mask))
        return self.logits(self.head_convs(x))

    def _entry(self, level: int, x: Tensor, mask: Tensor) -> Tensor:
        """1x1 conv of level ``level``'s mask-conditioned input.

        Args:
            level (int): Level index, 0 for the finest.
            x (Tensor): (B*T, C', H_l, W_l) features of the level.
            mask (Tensor): (B*T, 1, H_m, W_m) foreground.

        Returns:
            Tensor: (B*T, channels, H_l, W_l).
        """
        pooled = F.adaptive_avg_pool2d(mask, x.shape[-2:])
        return self.entries[level](condition_on_mask(x, pooled))
