import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS

import mmvis_msts  # noqa: F401
from mmvis_msts.models.tracking_heads import MaskBranch, aligned_bilinear


def test_aligned_bilinear_sampling_positions():
    # values vary along W only: out[j] samples the input at (j - 1) / 2
    row = torch.tensor([0., 4., 2., 10.])
    x = row.view(1, 1, 1, 4).expand(1, 1, 3, 4).contiguous()
    out = aligned_bilinear(x, 2)
    assert out.shape == (1, 1, 6, 8)
    expected = torch.tensor([0., 0., 2., 4., 3., 2., 6., 10.])
    torch.testing.assert_close(out[0, 0, 0], expected)
    torch.testing.assert_close(out[0, 0, 5], expected)
    assert torch.equal(aligned_bilinear(x, 1), x)
    with pytest.raises(ValueError, match='positive integer'):
        aligned_bilinear(x, 0)


def test_mask_branch_fuses_coarse_to_fine():
    branch = MaskBranch(16, 3, (8, 4))
    branch.init_weights()
    feats = [torch.randn(2, 16, 8 // s, 12 // s) for s in (1, 2, 4)]
    out = branch(feats)
    assert out.shape == (2, 4, 8, 12)
    assert (out >= 0).all()  # ends with ReLU
    with pytest.raises(ValueError, match='expects 3 levels'):
        branch(feats[:2])


def _reference_masks(head, feats, params, centres, sizes, stride):
    """Per instance and frame with grouped 1x1 convs (SeqFormer's way)."""
    n, t, c, h, w = feats.shape
    ys, xs = torch.meshgrid(
        torch.arange(h) * stride + stride // 2,
        torch.arange(w) * stride + stride // 2,
        indexing='ij')
    out = []
    for i in range(n):
        w0, w1, w2, b0, b1, b2 = params[i].split(head.param_sizes)
        frames = []
        for f in range(t):
            cx, cy = centres[i, f] * sizes[i, f]
            rel = torch.stack([cx - xs, cy - ys])
            if head.rel_coord_normalize:
                rel = rel / sizes[i, f].view(2, 1, 1)
            x = torch.cat([rel, feats[i, f]])[None]
            x = F.relu(F.conv2d(x, w0.view(8, -1, 1, 1), b0))
            x = F.relu(F.conv2d(x, w1.view(8, 8, 1, 1), b1))
            x = F.conv2d(x, w2.view(1, 8, 1, 1), b2)
            frames.append(aligned_bilinear(x, 2)[0, 0])
        out.append(torch.stack(frames))
    return torch.stack(out)


@pytest.mark.parametrize('normalize', [False, True])
def test_dynamic_convs_match_per_instance_reference(normalize):
    head = MODELS.build(
        dict(
            type='DynamicConvMaskHead',
            in_channels=32,
            branch_channels=(16, 8),
            rel_coord_normalize=normalize))
    head.init_weights()
    # SeqFormer: 10->8->8->1 dynamic convs = 80+64+8 weights + 8+8+1 biases
    assert head.num_params == 169
    assert head.controller.layers[-1].out_features == 169
    n, t, h, w, stride = 3, 2, 5, 7, 8
    feats = torch.randn(n, t, 8, h, w)
    params = head.dynamic_params(torch.randn(n, 32)) * 0.5
    centres = torch.rand(n, t, 2)
    sizes = torch.tensor([56., 40.]).expand(n, t, 2)
    logits = head(feats, params, centres, sizes, stride)
    assert logits.shape == (n, t, 2 * h, 2 * w)
    expected = _reference_masks(head, feats, params, centres, sizes, stride)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


def test_dynamic_head_without_rel_coords():
    head = MODELS.build(
        dict(
            type='DynamicConvMaskHead',
            in_channels=32,
            branch_channels=(16, 8),
            use_rel_coords=False))
    assert head.num_params == 8 * 8 + 64 + 8 + 8 + 8 + 1
    feats = [torch.randn(4, 32, 8 // s, 8 // s) for s in (1, 2, 4)]
    mask_feats = head.mask_features(feats).view(2, 2, 8, 8, 8)
    logits = head(mask_feats, torch.randn(2, head.num_params),
                  torch.rand(2, 2, 2), torch.full((2, 2, 2), 64.), 8)
    assert logits.shape == (2, 2, 16, 16)
