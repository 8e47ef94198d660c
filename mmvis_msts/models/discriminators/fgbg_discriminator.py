"""Foreground/background PatchGAN discriminator (training only).

Shapes use the package notation (``mmvis_msts``): B*T frames, C channels,
H_s and W_s the size at stride s.
"""
from typing import List, Sequence

import torch
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn


@MODELS.register_module()
class FgBgDiscriminator(BaseModule):
    """PatchGAN on [frame, stride-8 encoder features, fg mask].

    docs/design.md §3c; the layout follows the authors' released but unused
    PatchGAN (docs/design.md §6.3). It takes the :attr:`num_levels` finest
    encoder levels (strides 8, 16 and 32):

    1. 3x3 conv on the concatenated ``img_channels + in_channels +
       mask_channels`` input, LeakyReLU.
    2. Max-pool x2, add the stride-16 features (1x1-projected to
       ``channels`` when the widths differ).
    3. 3x3 conv + norm + LeakyReLU, max-pool x2, add the stride-32
       features (projected likewise).
    4. One 3x3 conv + norm + LeakyReLU per entry of ``head_channels``.
    5. 3x3 conv to one channel: patch logits at stride 32 (no sigmoid).

    Args:
        in_channels (int): Channels C of the encoder features. Defaults to
            256.
        img_channels (int): Channels of the frames. Defaults to 3.
        mask_channels (int): Channels of the mask. Defaults to 1.
        channels (int): Width of the two downsampling stages. Defaults to
            64.
        head_channels (Sequence[int]): Widths of the convs after the
            second downsampling. Defaults to (128, 256).
        norm_cfg (dict): Norm config. Defaults to GN with 8 groups.
        act_cfg (dict): Activation config. Defaults to LeakyReLU(0.2).
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int = 256,
                 img_channels: int = 3,
                 mask_channels: int = 1,
                 channels: int = 64,
                 head_channels: Sequence[int] = (128, 256),
                 norm_cfg: ConfigType = dict(type='GN', num_groups=8),
                 act_cfg: ConfigType = dict(
                     type='LeakyReLU', negative_slope=0.2),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.img_channels = img_channels
        self.mask_channels = mask_channels
        self.stem = ConvModule(
            img_channels + in_channels + mask_channels,
            channels,
            3,
            padding=1,
            act_cfg=act_cfg)
        self.downsample = nn.MaxPool2d(3, stride=2, padding=1)
        self.lateral_convs = nn.ModuleList([
            nn.Identity() if in_channels == channels else nn.Conv2d(
                in_channels, channels, 1) for _ in range(2)
        ])
        self.mid_conv = ConvModule(
            channels,
            channels,
            3,
            padding=1,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        widths = [channels, *head_channels]
        self.head_convs = nn.Sequential(*[
            ConvModule(
                cin, cout, 3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg)
            for cin, cout in zip(widths[:-1], widths[1:])
        ])
        self.logits = nn.Conv2d(widths[-1], 1, 3, padding=1)

    @property
    def num_levels(self) -> int:
        """Encoder levels taken, finest first: strides 8, 16 and 32."""
        return 1 + len(self.lateral_convs)

    def _check_inputs(self, frames: Tensor, feats: List[Tensor],
                      mask: Tensor) -> None:
        """Raise a ValueError naming the first inconsistent input."""
        if len(feats) != self.num_levels:
            raise ValueError(f'expected {self.num_levels} encoder levels '
                             f'(strides 8/16/32), got {len(feats)} maps')
        expected = [(self.img_channels, frames), (self.mask_channels, mask)]
        expected += [(self.in_channels, feat) for feat in feats]
        for channels, x in expected:
            if x.dim() != 4 or x.size(1) != channels:
                raise ValueError(f'expected (B*T, {channels}, H, W) input, '
                                 f'got shape {tuple(x.shape)}')
        size = feats[0].shape[-2:]
        if frames.shape[-2:] != size or mask.shape[-2:] != size:
            raise ValueError(f'frames {tuple(frames.shape)} and mask '
                             f'{tuple(mask.shape)} must be resized to the '
                             f'stride-8 feature size {tuple(size)}')

    def forward(self, frames: Tensor, feats: List[Tensor],
                mask: Tensor) -> Tensor:
        """Score every patch as real (GT mask) or fake (predicted mask).

        Args:
            frames (Tensor): (B*T, 3, H_8, W_8) frames resized to stride 8.
            feats (list[Tensor]): :attr:`num_levels` encoder maps
                (B*T, C, H_s, W_s) at strides 8, 16 and 32; each coarser map
                must match the size of the previous one after a x2 max-pool
                (ceil(H / 2)).
            mask (Tensor): (B*T, 1, H_8, W_8) foreground mask in [0, 1].

        Returns:
            Tensor: (B*T, 1, H_32, W_32) patch logits (no sigmoid).
        """
        self._check_inputs(frames, feats, mask)
        x = self.stem(torch.cat([frames, feats[0], mask], dim=1))
        x = self._add_features(self.downsample(x), feats[1], 0)
        x = self._add_features(self.downsample(self.mid_conv(x)), feats[2], 1)
        return self.logits(self.head_convs(x))

    def _add_features(self, x: Tensor, feat: Tensor, index: int) -> Tensor:
        """Add the (projected) coarser features after a downsampling.

        Args:
            x (Tensor): (B*T, channels, H_s, W_s) downsampled map.
            feat (Tensor): (B*T, C, H_s, W_s) encoder features.
            index (int): 0 for stride 16, 1 for stride 32.

        Returns:
            Tensor: (B*T, channels, H_s, W_s).
        """
        if x.shape[-2:] != feat.shape[-2:]:
            raise ValueError(f'stride-{16 << index} features have size '
                             f'{tuple(feat.shape[-2:])}, expected '
                             f'{tuple(x.shape[-2:])} (ceil of half the '
                             f'previous map)')
        return x + self.lateral_convs[index](feat)
