import pytest
import torch
from layer_inputs import (assert_all_parameters_have_grad,
                          check_decoder_frame_order, decoder_cfg,
                          make_decoder_inputs, make_reg_branches,
                          run_decoder_with_perturbed_frame)
from mmdet.registry import MODELS

import mmvis_msts  # noqa: F401
from mmvis_msts.models.layers import (TemporalAttnDecoder,
                                      TemporalAttnDecoderLayer)


def build_decoder(decoder_type='TemporalAttnDecoder', num_layers=2):
    torch.manual_seed(0)
    return MODELS.build(decoder_cfg(decoder_type, num_layers))


def test_build_and_shapes():
    decoder = build_decoder()
    assert isinstance(decoder, TemporalAttnDecoder)
    assert all(
        isinstance(layer, TemporalAttnDecoderLayer)
        for layer in decoder.layers)
    assert decoder.num_layers == 2 and decoder.embed_dims == 32
    inputs = make_decoder_inputs(num_clips=2, num_frames=3)
    inter_instance, inter_box, inter_boxes = decoder(
        **inputs, reg_branches=make_reg_branches(2))
    assert inter_instance.shape == (2, 2, 5, 32)
    assert inter_box.shape == (2, 2, 3, 5, 32)
    assert inter_boxes.shape == (2, 2, 3, 5, 4)
    assert inter_boxes.requires_grad


def test_starts_as_the_seqformer_decoder():
    # with init_weights (zero output projection of the temporal attention)
    # and SeqFormer's weights for everything else, the outputs are
    # SeqFormer's exactly: the block is x + 0
    temporal = build_decoder()
    temporal.init_weights()
    temporal.eval()
    base = build_decoder('SeqFormerDecoder').eval()
    missing, unexpected = temporal.load_state_dict(
        base.state_dict(), strict=False)
    assert not unexpected
    assert missing and all('.temporal_' in k for k in missing)
    reg_branches = make_reg_branches(2)
    inputs = make_decoder_inputs(num_clips=2, num_frames=3)
    with torch.no_grad():
        out = temporal(**inputs, reg_branches=reg_branches)
        ref = base(**inputs, reg_branches=reg_branches)
    for x, y in zip(out, ref):
        assert torch.equal(x, y)
    # once the output projection has moved, the block changes the outputs
    with torch.no_grad():
        for layer in temporal.layers:
            layer.temporal_attn.attn.out_proj.weight.normal_(std=0.1)
        out = temporal(**inputs, reg_branches=reg_branches)
    for x, y in zip(out, ref):
        assert (x - y).abs().max() > 1e-3


def test_zero_init_leaves_the_block_trainable():
    # at step 0 the output projection gets a gradient (its input, the
    # attention output, is not zero); the layers behind it get theirs from
    # the next step on
    decoder = build_decoder()
    decoder.init_weights()
    inputs = make_decoder_inputs(num_clips=1, num_frames=3)
    _, inter_box, _ = decoder(**inputs, reg_branches=make_reg_branches(2))
    inter_box.square().mean().backward()
    for layer in decoder.layers[1:]:
        out_proj = layer.temporal_attn.attn.out_proj
        assert out_proj.weight.grad.abs().sum() > 0


def test_box_queries_attend_across_frames():
    (_, box, _), (_, box_p,
                  _) = run_decoder_with_perturbed_frame(build_decoder().eval())
    # frame 0's box queries now depend on frame 2 (the SeqFormer decoder's
    # do not, see test_seqformer_decoder); the other clip is untouched
    assert (box_p[:, 0, 0] - box[:, 0, 0]).abs().max() > 1e-3
    torch.testing.assert_close(box_p[:, 1], box[:, 1])


def test_frame_order():
    check_decoder_frame_order(build_decoder().eval(), [1, 2, 0])


@pytest.mark.parametrize('num_frames', [2, 5])
def test_any_num_frames(num_frames):
    decoder = build_decoder().eval()
    inputs = make_decoder_inputs(num_clips=1, num_frames=num_frames)
    with torch.no_grad():
        _, inter_box, _ = decoder(**inputs, reg_branches=make_reg_branches(2))
    assert inter_box.shape == (2, 1, num_frames, 5, 32)


def test_gradients_reach_all_parameters():
    decoder = build_decoder()
    inputs = make_decoder_inputs(num_clips=2, num_frames=2)
    inter_instance, inter_box, _ = decoder(
        **inputs, reg_branches=make_reg_branches(2))
    (inter_instance.square().mean() + inter_box.square().mean()).backward()
    assert_all_parameters_have_grad(decoder)


def test_temporal_block_parameters_at_full_width():
    layer_cfg = dict(
        self_attn_cfg=dict(embed_dims=256, num_heads=8),
        cross_attn_cfg=dict(embed_dims=256),
        ffn_cfg=dict(embed_dims=256, feedforward_channels=1024))
    temporal = TemporalAttnDecoderLayer(**layer_cfg)
    base = MODELS.build(
        dict(type='SeqFormerDecoder', num_layers=1,
             layer_cfg=layer_cfg)).layers[0]
    added = sum(p.numel() for p in temporal.parameters()) - sum(
        p.numel() for p in base.parameters())
    # MHA (4 * 256^2 weights + 4 * 256 biases) + LN (2 * 256)
    assert added == 4 * 256 * 256 + 4 * 256 + 2 * 256
