import pytest
import torch
from layer_inputs import (assert_all_parameters_have_grad,
                          check_decoder_frame_order, decoder_cfg,
                          make_decoder_inputs, make_reg_branches,
                          run_decoder_with_perturbed_frame)
from mmdet.models.layers.transformer import inverse_sigmoid
from mmdet.registry import MODELS
from torch import nn

import mmvis_msts  # noqa: F401
from mmvis_msts.models.layers import (SeqFormerCrossAttention,
                                      SeqFormerDecoder, SeqFormerDecoderLayer)


def build_decoder(num_layers=2):
    torch.manual_seed(0)
    return MODELS.build(decoder_cfg('SeqFormerDecoder', num_layers))


def expected_boxes(outputs, inputs, reg_branches):
    """Per-layer boxes from scratch: (Ld, B, T, Q, 4).

    Layer 0 refines the centre of the initial 2-D points, with (w, h) from
    the branch alone; layer l refines the (detached) boxes of layer l - 1.
    """
    _, inter_box, inter_boxes = outputs
    num_frames = inter_box.size(2)
    init_refs = inputs['reference_points'].unsqueeze(1).expand(
        -1, num_frames, -1, -1)
    boxes = []
    for layer, reg_branch in enumerate(reg_branches):
        delta = reg_branch(inter_box[layer])
        if layer == 0:
            xy = delta[..., :2] + inverse_sigmoid(init_refs)
            boxes.append(torch.cat([xy, delta[..., 2:]], -1).sigmoid())
        else:
            boxes.append(
                (delta +
                 inverse_sigmoid(inter_boxes[layer - 1].detach())).sigmoid())
    return torch.stack(boxes)


def test_build_and_shapes():
    decoder = build_decoder()
    assert isinstance(decoder, SeqFormerDecoder)
    assert decoder.num_layers == 2 and decoder.embed_dims == 32
    layer = decoder.layers[0]
    assert isinstance(layer, SeqFormerDecoderLayer)
    assert isinstance(layer.cross_attn, SeqFormerCrossAttention)
    inputs = make_decoder_inputs(num_clips=2, num_frames=3)
    reg_branches = make_reg_branches(2)
    inter_instance, inter_box, inter_boxes = decoder(
        **inputs, reg_branches=reg_branches)
    assert inter_instance.shape == (2, 2, 5, 32)
    assert inter_box.shape == (2, 2, 3, 5, 32)
    assert inter_boxes.shape == (2, 2, 3, 5, 4)
    assert ((inter_boxes > 0) & (inter_boxes < 1)).all()
    # the boxes are the predictions, with their gradient
    assert inter_boxes.requires_grad
    torch.testing.assert_close(
        inter_boxes,
        expected_boxes((inter_instance, inter_box, inter_boxes), inputs,
                       reg_branches))


# SeqFormer decoder-layer parameter -> ours (the table in the module doc)
CROSS_ATTN_MODULES = ('sampling_offsets', 'attention_weights', 'value_proj',
                      'output_proj', 'output_proj_box')
RENAMED_MODULES = {
    'norm2': 'norms.0',
    'norm1': 'norms.1',
    'norm3': 'norms.2',
    'norm2_box': 'norms_box.0',
    'norm1_box': 'norms_box.1',
    'norm3_box': 'norms_box.2',
    'linear1': 'ffn.layers.0.0',
    'linear2': 'ffn.layers.1',
    'linear1_box': 'ffn_box.layers.0.0',
    'linear2_box': 'ffn_box.layers.1',
    'time_attention_weights': 'time_attention_weights',
}
SEQFORMER_NAMES = {
    'self_attn.in_proj_weight': 'self_attn.attn.in_proj_weight',
    'self_attn.in_proj_bias': 'self_attn.attn.in_proj_bias',
    'self_attn.out_proj.weight': 'self_attn.attn.out_proj.weight',
    'self_attn.out_proj.bias': 'self_attn.attn.out_proj.bias',
    'self_attn_box.in_proj_weight': 'self_attn_box.attn.in_proj_weight',
    'self_attn_box.in_proj_bias': 'self_attn_box.attn.in_proj_bias',
    'self_attn_box.out_proj.weight': 'self_attn_box.attn.out_proj.weight',
    'self_attn_box.out_proj.bias': 'self_attn_box.attn.out_proj.bias',
}
for _param in ('weight', 'bias'):
    for _module in CROSS_ATTN_MODULES:
        SEQFORMER_NAMES[f'cross_attn.{_module}.{_param}'] = \
            f'cross_attn.{_module}.{_param}'
    for _theirs, _ours in RENAMED_MODULES.items():
        SEQFORMER_NAMES[f'{_theirs}.{_param}'] = f'{_ours}.{_param}'


def test_parameter_names_map_one_to_one_to_seqformer():
    params = dict(build_decoder().layers[0].named_parameters())
    assert set(params) == set(SEQFORMER_NAMES.values())
    assert len(SEQFORMER_NAMES) == len(params) == 40
    # shapes follow SeqFormer's nn.Linear / nn.MultiheadAttention layouts
    assert params['ffn.layers.0.0.weight'].shape == (64, 32)
    assert params['time_attention_weights.weight'].shape == (1, 32)
    assert params['self_attn.attn.in_proj_weight'].shape == (96, 32)


def test_init_weights_after_xavier_sweep():
    decoder = build_decoder()
    for param in decoder.parameters():
        if param.dim() > 1:
            nn.init.xavier_uniform_(param)
    decoder.init_weights()
    for layer in decoder.layers:
        cross_attn = layer.cross_attn
        assert not cross_attn.sampling_offsets.weight.any()
        assert not cross_attn.attention_weights.weight.any()
        assert not cross_attn.output_proj_box.bias.any()
        assert cross_attn.output_proj_box.weight.any()


def test_frame_weights_sum_to_one():
    layer = build_decoder().layers[0]
    query_box = torch.randn(2, 3, 5, 32)
    weights = layer.frame_weights(query_box)
    assert weights.shape == (2, 3, 5, 1)
    torch.testing.assert_close(weights.sum(1), torch.ones(2, 5, 1))
    assert weights.std() > 0  # not uniform for distinct box queries


def test_frame_order():
    _, box, _ = check_decoder_frame_order(build_decoder().eval(), [2, 0, 1])
    assert (box[:, :, 0] - box[:, :, 1]).abs().max() > 1e-3


def test_box_queries_of_a_frame_ignore_other_frames():
    (inst, box,
     _), (inst_p, box_p,
          _) = run_decoder_with_perturbed_frame(build_decoder().eval())
    torch.testing.assert_close(box_p[:, 0, :2], box[:, 0, :2])
    assert (box_p[:, 0, 2] - box[:, 0, 2]).abs().max() > 1e-3
    assert (inst_p[:, 0] - inst[:, 0]).abs().max() > 1e-3
    torch.testing.assert_close(inst_p[:, 1], inst[:, 1])


def test_padding_does_not_leak():
    decoder = build_decoder().eval()
    reg_branches = make_reg_branches(2)
    inputs = make_decoder_inputs(num_clips=2, num_frames=3)
    mask = inputs['key_padding_mask']
    perturbed = dict(inputs, value=inputs['value'].clone())
    perturbed['value'][mask] += 5.0
    with torch.no_grad():
        outputs = decoder(**inputs, reg_branches=reg_branches)
        outputs_p = decoder(**perturbed, reg_branches=reg_branches)
    for out, out_p in zip(outputs, outputs_p):
        torch.testing.assert_close(out_p, out)


@pytest.mark.parametrize('num_frames', [2, 5])
def test_any_num_frames(num_frames):
    decoder = build_decoder().eval()
    inputs = make_decoder_inputs(num_clips=1, num_frames=num_frames)
    with torch.no_grad():
        _, inter_box, inter_boxes = decoder(
            **inputs, reg_branches=make_reg_branches(2))
    assert inter_box.shape == (2, 1, num_frames, 5, 32)
    assert inter_boxes.shape == (2, 1, num_frames, 5, 4)


def test_gradients_reach_all_parameters():
    decoder = build_decoder()
    reg_branches = make_reg_branches(2)
    inputs = make_decoder_inputs(num_clips=2, num_frames=2)
    inputs['value'].requires_grad_(True)
    outputs = decoder(**inputs, reg_branches=reg_branches)
    loss = outputs[0].square().mean() + outputs[2].mean()
    loss.backward()
    assert_all_parameters_have_grad(decoder)
    assert_all_parameters_have_grad(reg_branches)
    assert inputs['value'].grad.abs().sum() > 0


def test_references_detached_between_layers():
    decoder = build_decoder()
    reg_branches = make_reg_branches(2)
    inputs = make_decoder_inputs(num_clips=2, num_frames=2)
    _, inter_box, inter_boxes = decoder(**inputs, reg_branches=reg_branches)
    # layer 1 samples around and refines layer 0's boxes, but no gradient
    # may flow back through them into layer 0's reg branch
    # (the stacked outputs hand zeros to layer 0's slice: zero, not None)
    (inter_box[1].sum() + inter_boxes[1].sum()).backward()
    assert all(p.grad is None or not p.grad.any()
               for p in reg_branches[0].parameters())
    assert all(p.grad.any() for p in reg_branches[1].parameters())
    assert decoder.layers[0].cross_attn.value_proj.weight.grad is not None


def test_bad_inputs():
    decoder = build_decoder()
    inputs = make_decoder_inputs(num_clips=2, num_frames=3)
    with pytest.raises(ValueError, match='one reg branch per layer'):
        decoder(**inputs, reg_branches=make_reg_branches(1))
    with pytest.raises(ValueError, match='expected B\\*T = 6\\*3'):
        decoder(
            **dict(
                inputs,
                query=inputs['query'].repeat(3, 1, 1),
                query_pos=inputs['query_pos'].repeat(3, 1, 1)),
            reg_branches=make_reg_branches(2))
    with pytest.raises(ValueError, match='valid_ratios has 2 rows'):
        decoder(
            **dict(inputs, valid_ratios=inputs['valid_ratios'][::3]),
            reg_branches=make_reg_branches(2))
    cfg = decoder_cfg('SeqFormerDecoder')
    cfg['layer_cfg']['self_attn_cfg']['batch_first'] = False
    with pytest.raises(ValueError, match='batch_first'):
        MODELS.build(cfg)
