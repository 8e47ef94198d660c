import pytest
import torch
import torch.nn.functional as F
from layer_inputs import (check_encoder_frame_order, check_encoder_gradients,
                          check_encoder_padding, encoder_cfg, make_inputs)
from mmdet.registry import MODELS
from torch import nn

import mmvis_msts  # noqa: F401
from mmvis_msts.models.layers import (MSSTSAttention, MSSTSEncoder,
                                      MSSTSEncoderLayer)
from mmvis_msts.models.layers.mssts_attention import (fold_time,
                                                      resample_masked,
                                                      temporal_key_mask,
                                                      unfold_time)


def build_encoder(encoder_type='MSSTSEncoder', num_layers=2):
    torch.manual_seed(0)
    return MODELS.build(encoder_cfg(encoder_type, num_layers))


def test_build_and_shapes():
    encoder = build_encoder()
    assert isinstance(encoder, MSSTSEncoder)
    assert all(
        isinstance(layer, MSSTSEncoderLayer) for layer in encoder.layers)
    assert all(
        isinstance(layer.msts_attn, MSSTSAttention)
        for layer in encoder.layers)
    inputs = make_inputs(num_clips=2, num_frames=3)
    memory = encoder(**inputs, num_frames=3)
    assert memory.shape == (6, 60, 32)
    assert torch.isfinite(memory).all()


def test_frames_interact_only_with_msts():
    msts, plain = build_encoder().eval(), build_encoder(
        'SeqFormerEncoder').eval()
    inputs = make_inputs(num_clips=2, num_frames=3)
    perturbed = dict(inputs, query=inputs['query'].clone())
    perturbed['query'][2] += 1.0  # frame 2 of clip 0
    with torch.no_grad():
        out, out_perturbed = (
            msts(**x, num_frames=3) for x in (inputs, perturbed))
        ref, ref_perturbed = (
            plain(**x, num_frames=3) for x in (inputs, perturbed))
    # MS-STS: frame 1 sees frame 2; the other clip is untouched
    assert (out_perturbed[1] - out[1]).abs().max() > 1e-3
    torch.testing.assert_close(out_perturbed[3:], out[3:])
    # plain SeqFormer: frame 1 is independent of frame 2
    torch.testing.assert_close(ref_perturbed[1], ref[1])


def test_frame_order_equivariance():
    check_encoder_frame_order(build_encoder().eval(), [1, 2, 0])


def test_zero_init_branch_equals_seqformer():
    msts = build_encoder().eval()
    msts.init_weights()
    plain = build_encoder('SeqFormerEncoder').eval()
    missing, unexpected = plain.load_state_dict(
        msts.state_dict(), strict=False)
    assert not missing
    assert unexpected and all('.msts_attn.' in k for k in unexpected)
    inputs = make_inputs(num_clips=2, num_frames=3)
    with torch.no_grad():
        torch.testing.assert_close(
            msts(**inputs, num_frames=3), plain(**inputs, num_frames=3))


def test_init_weights_after_xavier_sweep():
    encoder = build_encoder()
    # the head initialises like Deformable DETR: xavier on every matrix,
    # then the modules' own schemes via init_weights
    for param in encoder.parameters():
        if param.dim() > 1:
            nn.init.xavier_uniform_(param)
    encoder.init_weights()
    for layer in encoder.layers:
        assert not layer.self_attn.sampling_offsets.weight.any()
        assert not layer.self_attn.attention_weights.weight.any()
        assert not layer.msts_attn.out_proj.weight.any()
        assert layer.msts_attn.in_proj.weight.any()


def test_padding_does_not_leak():
    mask, out = check_encoder_padding(build_encoder().eval())
    # frame 0 of clip 1 has more padding than its other frames
    assert mask[3].sum() > mask[4].sum() > 0
    assert torch.isfinite(out).all()


@pytest.mark.parametrize('num_frames', [2, 5])
def test_any_num_frames(num_frames):
    encoder = build_encoder().eval()
    inputs = make_inputs(num_clips=2, num_frames=num_frames)
    with torch.no_grad():
        memory = encoder(**inputs, num_frames=num_frames)
    assert memory.shape == (2 * num_frames, 60, 32)


def test_gradients_reach_all_parameters():
    check_encoder_gradients(build_encoder())


def test_parameter_budget_at_full_width():
    layer_cfg = dict(
        self_attn_cfg=dict(embed_dims=256, batch_first=True),
        ffn_cfg=dict(embed_dims=256, feedforward_channels=1024))
    msts = MSSTSEncoder(num_layers=6, layer_cfg=layer_cfg)
    plain = MODELS.build(
        dict(type='SeqFormerEncoder', num_layers=6, layer_cfg=layer_cfg))
    count = sum(p.numel() for p in msts.parameters())
    added = count - sum(p.numel() for p in plain.parameters())

    # Hand count of the branch's default layout (D = 256, d = 64, 4 heads,
    # FFN 256): in_proj D -> d; intra-scale block: MHA(d) (packed q/k/v
    # Linear + output Linear), LN, FFN d -> 256 -> d; inter-scale block:
    # fine and coarse Linear d -> d, 2 LN, MHA(d), FFN; out_proj d -> D.
    def linear(cin, cout):
        return cin * cout + cout

    mha = 3 * linear(64, 64) + linear(64, 64)  # 16,640
    ffn = linear(64, 256) + linear(256, 64)  # 33,088
    per_layer = (linear(256, 64) + (mha + 2 * 64 + ffn) +
                 (2 * linear(64, 64) + 2 * 2 * 64 + mha + ffn) +
                 linear(64, 256))  # 141,248: docs/design.md §3a
    # the branch is all that MS-STS adds to a SeqFormer encoder layer
    assert added == 6 * per_layer


def test_fold_unfold_roundtrip():
    x = torch.arange(2 * 3 * 4 * 5.).view(6, 4, 5)  # B=2, T=3, N=4, C=5
    folded = fold_time(x, num_frames=3)
    assert folded.shape == (8, 3, 5)
    # row b*N + n holds position n of clip b over its T frames
    torch.testing.assert_close(folded[4 + 1], x[3:6, 1])
    torch.testing.assert_close(unfold_time(folded, num_tokens=4), x)


def test_temporal_key_mask():
    padding = torch.tensor([[False, False], [True, False], [True, True]])
    mask = temporal_key_mask(padding)
    # fully padded rows attend to all frames instead of none
    assert mask.tolist() == [[False, False], [True, False], [False, False]]
    # kept as it is when it masks nothing (no read-back from the device)
    assert not temporal_key_mask(torch.zeros(3, 2, dtype=torch.bool)).any()
    assert temporal_key_mask(None) is None


def test_mask_that_masks_nothing_equals_no_mask():
    # the head passes a mask whenever a frame is padded, even where the
    # padding vanishes at a level; masking nothing must change nothing
    encoder = MODELS.build(encoder_cfg('MSSTSEncoder'))
    encoder.init_weights()
    for layer in encoder.layers:  # the branch starts as a no-op otherwise
        torch.nn.init.normal_(layer.msts_attn.out_proj.weight)
    encoder.eval()
    inputs = make_inputs(num_clips=2, num_frames=3, padded=False)
    with torch.no_grad():
        masked = encoder(**inputs, num_frames=3)
        unmasked = encoder(**dict(inputs, key_padding_mask=None), num_frames=3)
    torch.testing.assert_close(masked, unmasked)


def test_resample_masked():
    x = torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(
        resample_masked(x, None, (8, 10)),
        F.interpolate(x, size=(8, 10), mode='bilinear', align_corners=False))
    valid = torch.ones(2, 1, 4, 5)
    valid[..., -1] = 0  # last column is padding
    out = resample_masked(x, valid, (8, 10))
    changed = x.clone()
    changed[..., -1] = 100.0
    torch.testing.assert_close(resample_masked(changed, valid, (8, 10)), out)
    # outputs are convex combinations of valid cells
    assert out.max() <= x[..., :-1].max() + 1e-5
    # constant valid maps stay constant; the last target column only sees
    # the padded source column and gets 0
    ones = resample_masked(torch.ones(2, 3, 4, 5), valid, (8, 10))
    torch.testing.assert_close(ones[..., :9], torch.ones(2, 3, 8, 9))
    torch.testing.assert_close(ones[..., 9], torch.zeros(2, 3, 8))


def test_bad_config():
    with pytest.raises(ValueError, match='inner_dims=30'):
        MSSTSAttention(embed_dims=32, inner_dims=30, num_heads=4)
    cfg = encoder_cfg('MSSTSEncoder')
    cfg['layer_cfg']['msts_cfg']['embed_dims'] = 64
    with pytest.raises(ValueError, match='embed_dims=64'):
        MODELS.build(cfg)
