import pytest
import torch
from layer_inputs import (check_encoder_frame_order, check_encoder_gradients,
                          check_encoder_padding, encoder_cfg, make_inputs)
from mmdet.registry import MODELS

import mmvis_msts  # noqa: F401
from mmvis_msts.models.layers import SeqFormerEncoder, SeqFormerEncoderLayer


def build_encoder(num_layers=2):
    torch.manual_seed(0)
    return MODELS.build(encoder_cfg('SeqFormerEncoder', num_layers))


def test_build_and_shapes():
    encoder = build_encoder()
    assert isinstance(encoder, SeqFormerEncoder)
    assert all(
        isinstance(layer, SeqFormerEncoderLayer) for layer in encoder.layers)
    assert encoder.num_layers == 2 and encoder.embed_dims == 32
    inputs = make_inputs(num_clips=2, num_frames=3)
    memory = encoder(**inputs, num_frames=3)
    assert memory.shape == inputs['query'].shape == (6, 60, 32)
    assert torch.isfinite(memory).all()


def test_parameter_names_map_to_seqformer():
    names = {
        name.rsplit('.', 1)[0]
        for name, _ in build_encoder().layers[0].named_parameters()
    }
    # SeqFormer: self_attn.* (same names), norm1/norm2, linear1/linear2
    assert names == {
        'self_attn.sampling_offsets', 'self_attn.attention_weights',
        'self_attn.value_proj', 'self_attn.output_proj', 'norms.0', 'norms.1',
        'ffn.layers.0.0', 'ffn.layers.1'
    }


def test_frames_folded_and_independent():
    encoder = build_encoder().eval()
    # permuting the frames of every clip permutes the outputs
    check_encoder_frame_order(encoder, [2, 0, 1])
    inputs = make_inputs(num_clips=2, num_frames=3)
    with torch.no_grad():
        memory = encoder(**inputs, num_frames=3)

        # a clip of T frames is encoded like T one-frame clips
        torch.testing.assert_close(encoder(**inputs, num_frames=1), memory)

        # perturbing frame 2 leaves frames 0 and 1 unchanged
        perturbed = dict(inputs, query=inputs['query'].clone())
        perturbed['query'][2] += 1.0
        out = encoder(**perturbed, num_frames=3)
    torch.testing.assert_close(out[:2], memory[:2])
    torch.testing.assert_close(out[3:], memory[3:])
    assert not torch.allclose(out[2], memory[2])


def test_padding_does_not_leak():
    check_encoder_padding(build_encoder().eval())


@pytest.mark.parametrize('num_frames', [2, 5])
def test_any_num_frames(num_frames):
    encoder = build_encoder().eval()
    inputs = make_inputs(num_clips=1, num_frames=num_frames)
    with torch.no_grad():
        memory = encoder(**inputs, num_frames=num_frames)
    assert memory.shape == (num_frames, 60, 32)


def test_gradients_reach_all_parameters():
    inputs = check_encoder_gradients(build_encoder())
    assert inputs['query'].grad.abs().sum() > 0


def test_bad_num_frames():
    encoder = build_encoder()
    inputs = make_inputs(num_clips=2, num_frames=3)
    with pytest.raises(ValueError, match='num_frames=4'):
        encoder(**inputs, num_frames=4)
    with pytest.raises(ValueError, match='valid_ratios has 2 rows'):
        encoder(
            **dict(inputs, valid_ratios=inputs['valid_ratios'][::3]),
            num_frames=3)
    with pytest.raises(ValueError, match='num_cp'):
        MODELS.build(dict(encoder_cfg('SeqFormerEncoder'), num_cp=1))
