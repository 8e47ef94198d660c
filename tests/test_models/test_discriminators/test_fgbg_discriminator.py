import pytest
import torch
from mmdet.registry import MODELS
from torch import nn

import mmvis_msts  # noqa: F401
from mmvis_msts.models.discriminators import FgBgDiscriminator


def build(**kwargs):
    torch.manual_seed(0)
    cfg = dict(
        type='FgBgDiscriminator',
        in_channels=16,
        channels=8,
        head_channels=(8, 16),
        norm_cfg=dict(type='GN', num_groups=4))
    return MODELS.build(dict(cfg, **kwargs))


def make_inputs(num=2, channels=16, size=(15, 22)):
    """Frames, features at strides 8/16/32 (ceil-halved) and a soft mask."""
    h, w = size
    sizes = [(h, w), ((h + 1) // 2, (w + 1) // 2),
             ((h + 3) // 4, (w + 3) // 4)]
    frames = torch.randn(num, 3, h, w)
    feats = [torch.randn(num, channels, *s, requires_grad=True) for s in sizes]
    mask = torch.rand(num, 1, h, w, requires_grad=True)
    return frames, feats, mask


def test_shapes_and_registry():
    disc = build()
    assert isinstance(disc, FgBgDiscriminator)
    frames, feats, mask = make_inputs()
    logits = disc(frames, feats, mask)
    assert logits.shape == (2, 1, 4, 6)
    # real and fake masks are told apart from the mask channel alone
    assert (disc(frames, feats, torch.zeros_like(mask)) -
            logits).abs().max() > 1e-4


def test_gradients_reach_inputs_and_parameters():
    disc = build()
    frames, feats, mask = make_inputs()
    disc(frames, feats, mask).mean().backward()
    for name, param in disc.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    for feat in feats:
        assert feat.grad.abs().sum() > 0
    assert mask.grad.abs().sum() > 0


def test_lateral_projection_only_when_widths_differ():
    assert all(isinstance(conv, nn.Conv2d) for conv in build().lateral_convs)
    same = build(channels=16)
    assert all(isinstance(conv, nn.Identity) for conv in same.lateral_convs)
    frames, feats, mask = make_inputs()
    assert same(frames, feats, mask).shape == (2, 1, 4, 6)


def test_default_parameter_count():
    params = sum(p.numel() for p in FgBgDiscriminator().parameters())
    # Hand count of the defaults (in_channels 256, channels 64, head
    # (128, 256), GN): 3x3 stem conv on 3 + 256 + 1 channels with bias (no
    # norm): 260 * 64 * 9 + 64 = 149,824; two 1x1 laterals 256 -> 64 with
    # bias: 2 * 16,448; 3x3 convs without bias (they have a norm) plus GN
    # weight and bias: 64 -> 64: 36,864 + 128, 64 -> 128: 73,728 + 256,
    # 128 -> 256: 294,912 + 512; 3x3 logits conv 256 -> 1: 2,304 + 1.
    assert params == (149_824 + 2 * 16_448 + 36_864 + 128 + 73_728 + 256 +
                      294_912 + 512 + 2_305)  # 591,425, well under 1 M


def test_bad_inputs():
    disc = build()
    frames, feats, mask = make_inputs()
    assert disc.num_levels == 3
    with pytest.raises(ValueError, match='expected 3 encoder levels'):
        disc(frames, feats[:2], mask)
    with pytest.raises(ValueError, match=r'\(B\*T, 16, H, W\)'):
        disc(frames, [feats[0][:, :8], *feats[1:]], mask)
    with pytest.raises(ValueError, match='stride-8 feature size'):
        disc(frames[..., :-1], feats, mask)
    with pytest.raises(ValueError, match='stride-32 features'):
        disc(frames, [*feats[:2], feats[2][..., :-1]], mask)
