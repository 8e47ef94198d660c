"""Tiny multi-scale clip inputs and checks shared by the encoder/decoder
tests."""
from typing import Dict, Sequence, Tuple

import torch
from torch import Tensor, nn

DIMS = 32
SHAPES = ((6, 8), (3, 4))


def make_inputs(num_clips: int,
                num_frames: int,
                dims: int = DIMS,
                shapes: Sequence[Tuple[int, int]] = SHAPES,
                padded: bool = True,
                seed: int = 0) -> Dict[str, Tensor]:
    """Random clip tokens in the encoder's (B*T, N, C) layout.

    With ``padded``, the last clip has padding on the right: 1/4 of the
    columns in every frame, 1/2 in its first frame.
    """
    gen = torch.Generator().manual_seed(seed)
    bt = num_clips * num_frames
    spatial_shapes = torch.tensor(shapes, dtype=torch.long)
    sizes = spatial_shapes.prod(1)
    level_start_index = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    masks = [torch.zeros(bt, h, w, dtype=torch.bool) for h, w in shapes]
    if padded:
        for mask, (h, w) in zip(masks, shapes):
            mask[-num_frames:, :, w - w // 4:] = True
            mask[-num_frames, :, w - w // 2:] = True
    valid_ratios = torch.stack([
        torch.stack([(~m[:, 0]).sum(1) / m.size(2),
                     (~m[:, :, 0]).sum(1) / m.size(1)], -1) for m in masks
    ], 1).float()
    num_tokens = int(sizes.sum())
    return dict(
        query=torch.randn(bt, num_tokens, dims, generator=gen),
        query_pos=torch.randn(bt, num_tokens, dims, generator=gen),
        key_padding_mask=torch.cat([m.flatten(1) for m in masks], 1),
        spatial_shapes=spatial_shapes,
        level_shapes=tuple(shapes),
        level_start_index=level_start_index,
        valid_ratios=valid_ratios)


# inputs with a leading B*T axis
ENCODER_FRAME_KEYS = ('query', 'query_pos', 'key_padding_mask', 'valid_ratios')
DECODER_FRAME_KEYS = ('value', 'key_padding_mask', 'valid_ratios')


def permute_frames(x: Tensor, perm: Sequence[int], num_frames: int) -> Tensor:
    """Reorder the frames of every clip of a (B*T, ...) tensor."""
    return x.view(-1, num_frames, *x.shape[1:])[:, list(perm)].flatten(0, 1)


def permute_inputs(inputs: dict, perm: Sequence[int], num_frames: int,
                   keys: Sequence[str]) -> dict:
    """Reorder the frames of every clip in the inputs named by ``keys``."""
    return {
        k: permute_frames(v, perm, num_frames) if k in keys else v
        for k, v in inputs.items()
    }


def deform_attn_cfg(dims: int = DIMS) -> dict:
    """Tiny deformable attention config: 2 heads, 2 levels, 2 points."""
    return dict(
        embed_dims=dims,
        num_heads=2,
        num_levels=len(SHAPES),
        num_points=2,
        dropout=0.1,
        batch_first=True)


def ffn_cfg(dims: int = DIMS) -> dict:
    """Tiny FFN config: hidden width 2 * dims."""
    return dict(embed_dims=dims, feedforward_channels=2 * dims, ffn_drop=0.1)


def encoder_cfg(encoder_type: str,
                num_layers: int = 2,
                dims: int = DIMS) -> dict:
    """Tiny encoder config: 2 heads, 2 levels, 2 points."""
    layer_cfg = dict(
        self_attn_cfg=deform_attn_cfg(dims), ffn_cfg=ffn_cfg(dims))
    if encoder_type == 'MSSTSEncoder':
        layer_cfg['msts_cfg'] = dict(
            type='MSSTSAttention',
            embed_dims=dims,
            inner_dims=16,
            num_heads=2,
            feedforward_channels=32,
            dropout=0.1)
    return dict(type=encoder_type, num_layers=num_layers, layer_cfg=layer_cfg)


def decoder_cfg(decoder_type: str,
                num_layers: int = 2,
                dims: int = DIMS) -> dict:
    """Tiny decoder config: 2 heads, 2 levels, 2 points."""
    attn_cfg = dict(
        embed_dims=dims,
        num_heads=2,
        attn_drop=0.1,
        dropout_layer=dict(type='Dropout', drop_prob=0.1),
        batch_first=True)
    layer_cfg = dict(
        self_attn_cfg=attn_cfg,
        cross_attn_cfg=deform_attn_cfg(dims),
        ffn_cfg=ffn_cfg(dims))
    if decoder_type == 'TemporalAttnDecoder':
        layer_cfg['temporal_attn_cfg'] = attn_cfg
    return dict(type=decoder_type, num_layers=num_layers, layer_cfg=layer_cfg)


def make_reg_branches(num_layers: int, dims: int = DIMS) -> nn.ModuleList:
    """One small box MLP per decoder layer, as the head would own."""
    torch.manual_seed(1)
    return nn.ModuleList([
        nn.Sequential(nn.Linear(dims, dims), nn.ReLU(), nn.Linear(dims, 4))
        for _ in range(num_layers)
    ])


def make_decoder_inputs(num_clips: int,
                        num_frames: int,
                        num_queries: int = 5,
                        dims: int = DIMS,
                        seed: int = 0) -> Dict[str, Tensor]:
    """Decoder inputs: memory in (B*T, N, C), queries in (B, Q, C)."""
    inputs = make_inputs(num_clips, num_frames, dims=dims, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    return dict(
        query=torch.randn(num_clips, num_queries, dims, generator=gen),
        query_pos=torch.randn(num_clips, num_queries, dims, generator=gen),
        value=inputs['query'],
        key_padding_mask=inputs['key_padding_mask'],
        reference_points=torch.rand(num_clips, num_queries, 2, generator=gen) *
        0.8 + 0.1,
        spatial_shapes=inputs['spatial_shapes'],
        level_start_index=inputs['level_start_index'],
        valid_ratios=inputs['valid_ratios'],
        num_frames=num_frames)


# The bias of the per-frame box weights enters only a softmax over the
# frames, which a constant shift leaves unchanged: its gradient is zero
# analytically (float rounding makes it about 1e-9 or exactly 0).
ZERO_GRAD_BY_DESIGN = ('time_attention_weights.bias', )


def assert_all_parameters_have_grad(module: nn.Module) -> None:
    """Every parameter of ``module`` got a non-zero gradient, but those of
    :data:`ZERO_GRAD_BY_DESIGN`, whose gradient is (about) zero."""
    for name, param in module.named_parameters():
        assert param.grad is not None, name
        if name.endswith(ZERO_GRAD_BY_DESIGN):
            assert param.grad.abs().max() < 1e-6, name
        else:
            assert param.grad.abs().sum() > 0, name


def check_encoder_gradients(encoder: nn.Module) -> Dict[str, Tensor]:
    """Backpropagate from the memory of 2 clips x 2 frames and check that
    every encoder parameter gets a gradient; return the inputs (``query``
    requires grad)."""
    inputs = make_inputs(num_clips=2, num_frames=2)
    inputs['query'].requires_grad_(True)
    encoder(**inputs, num_frames=2).square().mean().backward()
    assert_all_parameters_have_grad(encoder)
    return inputs


def check_encoder_frame_order(encoder: nn.Module, perm: Sequence[int]) -> None:
    """Permuting the 3 frames of every clip permutes the encoder output."""
    inputs = make_inputs(num_clips=2, num_frames=3)
    permuted = permute_inputs(inputs, perm, 3, ENCODER_FRAME_KEYS)
    with torch.no_grad():
        memory = encoder(**inputs, num_frames=3)
        out = encoder(**permuted, num_frames=3)
    torch.testing.assert_close(out, permute_frames(memory, perm, 3))


def check_encoder_padding(encoder: nn.Module) -> Tuple[Tensor, Tensor]:
    """Shifting the padded tokens of 2 clips x 3 frames changes no valid
    output; return the padding mask (B*T, N) and the perturbed output."""
    inputs = make_inputs(num_clips=2, num_frames=3)
    mask = inputs['key_padding_mask']
    perturbed = dict(inputs, query=inputs['query'].clone())
    perturbed['query'][mask] += 5.0
    with torch.no_grad():
        memory = encoder(**inputs, num_frames=3)
        out = encoder(**perturbed, num_frames=3)
    torch.testing.assert_close(out[~mask], memory[~mask])
    return mask, out


def check_decoder_frame_order(decoder: nn.Module,
                              perm: Sequence[int]) -> Tuple[Tensor, ...]:
    """Permuting the 3 frames of every clip leaves the instance queries
    unchanged and permutes the box queries and references; return the
    outputs on the unpermuted inputs."""
    reg_branches = make_reg_branches(2)
    inputs = make_decoder_inputs(num_clips=2, num_frames=3)
    permuted = permute_inputs(inputs, perm, 3, DECODER_FRAME_KEYS)
    with torch.no_grad():
        inst, box, refs = decoder(**inputs, reg_branches=reg_branches)
        inst_p, box_p, refs_p = decoder(**permuted, reg_branches=reg_branches)
    # instance queries pool over frames: invariant to their order
    torch.testing.assert_close(inst_p, inst)
    # box queries and references follow their frames
    torch.testing.assert_close(box_p, box[:, :, perm])
    torch.testing.assert_close(refs_p, refs[:, :, perm])
    return inst, box, refs


def run_decoder_with_perturbed_frame(
        decoder: nn.Module) -> Tuple[Tuple[Tensor, ...], Tuple[Tensor, ...]]:
    """Decoder outputs on 2 clips x 3 frames, and with the memory of frame 2
    of clip 0 shifted by 1 (both without gradients)."""
    reg_branches = make_reg_branches(2)
    inputs = make_decoder_inputs(num_clips=2, num_frames=3)
    perturbed = dict(inputs, value=inputs['value'].clone())
    perturbed['value'][2] += 1.0  # frame 2 of clip 0
    with torch.no_grad():
        return (decoder(**inputs, reg_branches=reg_branches),
                decoder(**perturbed, reg_branches=reg_branches))
