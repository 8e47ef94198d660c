"""Tests of multi-scale deformable attention: the compiled kernels against
the pure-PyTorch reference, argument checks, the mmcv-compatible module and
the fallback without the extension."""
import importlib
import subprocess
import sys
import textwrap
import types
import warnings

import pytest
import torch
from mmdet.registry import MODELS
from torch.autograd import gradcheck

from mmvis_msts.ops import (MSDeformAttn, MultiScaleDeformableAttnFunction,
                            ext_available, ms_deform_attn,
                            ms_deform_attn_pytorch)
from mmvis_msts.ops.ext_loader import load_ext

# the package attribute `ms_deform_attn` is the function; this is the module
msda = importlib.import_module('mmvis_msts.ops.ms_deform_attn')

CUDA_AVAILABLE = torch.cuda.is_available()
requires_cuda = pytest.mark.skipif(not CUDA_AVAILABLE, reason='needs CUDA')
DEVICES = ['cpu', pytest.param('cuda', marks=requires_cuda)]


def make_inputs(batch=2,
                shapes=((6, 4), (3, 2)),
                num_queries=5,
                num_heads=2,
                channels=4,
                num_points=3,
                dtype=torch.float64,
                device='cpu',
                loc_range=(-0.1, 1.1),
                seed=0):
    """Random op inputs; a loc_range beyond [0, 1] puts points off the map."""
    gen = torch.Generator().manual_seed(seed)
    spatial_shapes = torch.tensor(shapes, dtype=torch.long)
    sizes = spatial_shapes.prod(1)
    level_start_index = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    num_levels = len(shapes)
    value = torch.rand(
        batch,
        int(sizes.sum()),
        num_heads,
        channels,
        generator=gen,
        dtype=dtype) - 0.5
    low, high = loc_range
    loc = torch.rand(
        batch,
        num_queries,
        num_heads,
        num_levels,
        num_points,
        2,
        generator=gen,
        dtype=dtype) * (high - low) + low
    attn = torch.rand(
        batch,
        num_queries,
        num_heads,
        num_levels,
        num_points,
        generator=gen,
        dtype=dtype) + 1e-5
    attn /= attn.sum((-1, -2), keepdim=True)
    return [
        t.to(device)
        for t in (value, spatial_shapes, level_start_index, loc, attn)
    ]


def forward_backward(fn,
                     value,
                     spatial_shapes,
                     level_start_index,
                     loc,
                     attn,
                     im2col_step=64):
    """Output and (value, loc, attn) gradients for a fixed output grad."""
    value, loc, attn = (
        t.detach().requires_grad_() for t in (value, loc, attn))
    if fn is ms_deform_attn_pytorch:
        out = fn(value, spatial_shapes, loc, attn)
    else:
        # positional: Function.apply takes no keywords before torch 2.12
        out = fn(value, spatial_shapes, level_start_index, loc, attn,
                 im2col_step)
    grad_out = torch.linspace(
        -1, 1, out.numel(), dtype=out.dtype, device=out.device).view_as(out)
    out.backward(grad_out)
    return out.detach(), value.grad, loc.grad, attn.grad


def assert_matches_reference(inputs, rtol, atol, im2col_step):
    ours = forward_backward(MultiScaleDeformableAttnFunction.apply, *inputs,
                            im2col_step)
    ref = forward_backward(ms_deform_attn_pytorch, *inputs)
    for name, a, b in zip(('output', 'grad_value', 'grad_loc', 'grad_attn'),
                          ours, ref):
        torch.testing.assert_close(
            a, b, rtol=rtol, atol=atol, msg=lambda m: f'{name}: {m}')


def test_extension_is_built():
    # The project's install builds the CPU kernel; everything below runs it.
    assert ext_available(), 'mmvis_msts._ext is not built'
    assert ext_available('cpu')
    assert ext_available('cuda') == msda.ext_module.with_cuda


@pytest.mark.parametrize('device', DEVICES)
def test_kernel_matches_reference_float64(device):
    inputs = make_inputs(device=device)
    assert_matches_reference(inputs, rtol=0, atol=1e-10, im2col_step=64)


@pytest.mark.parametrize('device', DEVICES)
def test_kernel_matches_reference_float32(device):
    inputs = make_inputs(dtype=torch.float32, channels=32, device=device)
    # summation order differs; CUDA adds grad_value atomically
    rtol, atol = (1e-4, 1e-5) if device == 'cpu' else (1e-3, 1e-4)
    assert_matches_reference(inputs, rtol=rtol, atol=atol, im2col_step=64)


@requires_cuda
@pytest.mark.parametrize('dtype,tol', [(torch.float16, 1e-2),
                                       (torch.bfloat16, 4e-2)])
def test_cuda_half_types_match_reference_loosely(dtype, tol):
    inputs = make_inputs(channels=32, device='cuda')
    low = [t.to(dtype) if t.is_floating_point() else t for t in inputs]
    ours = forward_backward(
        MultiScaleDeformableAttnFunction.apply, *low, im2col_step=64)
    # the reference sees the same rounded inputs: a location that rounding
    # moves across a pixel edge changes grad_loc by a whole value step
    # (bfloat16 moved several on an H200 run), which is not kernel error
    ref = forward_backward(
        ms_deform_attn_pytorch,
        *[t.double() if t.is_floating_point() else t for t in low])
    for a, b in zip(ours, ref):
        assert a.dtype == dtype
        err = (a.double() - b).abs().max().item()
        assert err <= tol * b.abs().max().item(), err


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('channels', [1, 4, 30, 32, 71, 1025])
def test_gradcheck(device, channels):
    # channels hit every loop shape: below/at/above a SIMD width or a warp,
    # with and without a tail, and Dh = 32, which the CPU kernel specialises
    value, shapes, starts, loc, attn = make_inputs(
        batch=1,
        shapes=((3, 2), (2, 1)),
        num_queries=2,
        channels=channels,
        num_points=2,
        loc_range=(0.05, 0.95),
        device=device)
    value.requires_grad_()
    loc.requires_grad_()
    attn.requires_grad_()
    assert gradcheck(
        MultiScaleDeformableAttnFunction.apply,
        (value, shapes, starts, loc, attn, 2),
        eps=1e-6,
        atol=1e-5,
        rtol=1e-4,
        # CUDA adds grad_value atomically, in no fixed order
        nondet_tol=1e-12 if device == 'cuda' else 0.0,
        fast_mode=channels > 64)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize(
    'case',
    [
        dict(shapes=((5, 7), )),  # one level
        dict(shapes=((1, 1), (3, 2), (1, 1))),  # 1x1 levels
        dict(batch=5, im2col_step=2),  # batch not a multiple of the step
        dict(batch=3, im2col_step=128),  # step larger than the batch
        dict(loc_range=(-3.0, 4.0)),  # most points far outside the maps
        dict(num_queries=1, num_points=1, channels=3),
    ],
    ids=[
        'one_level', 'levels_1x1', 'batch_remainder', 'big_step',
        'far_outside', 'single_point'
    ])
def test_odd_shapes_match_reference(device, case):
    case = dict(case)
    im2col_step = case.pop('im2col_step', 64)
    inputs = make_inputs(device=device, **case)
    assert_matches_reference(
        inputs, rtol=0, atol=1e-10, im2col_step=im2col_step)


@pytest.mark.parametrize('device', DEVICES)
def test_points_outside_sample_zero(device):
    value, shapes, starts, loc, attn = make_inputs(device=device)
    loc = torch.full_like(loc, 5.0)
    loc[..., 1] = float('inf')
    out = MultiScaleDeformableAttnFunction.apply(value, shapes, starts, loc,
                                                 attn, 64)
    assert out.shape == (2, 5, 2 * 4)
    assert torch.count_nonzero(out) == 0


@pytest.mark.parametrize('device', DEVICES)
def test_kernel_and_reference_match_a_hand_computed_sample(device):
    # The kernels are checked against ms_deform_attn_pytorch everywhere
    # else; here both meet values computed by hand. One head, one channel.
    # Level 0 is 2x3 with values [[1, 2, 3], [4, 5, 6]], level 1 is 1x1
    # with value 10. A normalised (x, y) samples pixel (x * W - 0.5,
    # y * H - 0.5) bilinearly; pixels outside the map count as 0.
    value = torch.tensor([1., 2, 3, 4, 5, 6, 10]).view(1, 7, 1, 1)
    shapes = torch.tensor([[2, 3], [1, 1]])
    starts = torch.tensor([0, 6])
    # query 0, level 0: centre of pixel (1, 0) -> 2; the corner shared by
    # pixels (0, 0), (1, 0), (0, 1), (1, 1) -> (1 + 2 + 4 + 5) / 4 = 3.
    # Level 1: its centre -> 10; pixel (1.5, 0), off the map -> 0.
    query0 = [[[0.5, 0.25], [1 / 3, 0.5]], [[0.5, 0.5], [2.0, 0.5]]]
    # query 1, level 0: pixel (-0.5, 0), half a pixel left of pixel (0, 0)
    # -> 1 / 2; centre of pixel (2, 1) -> 6. Level 1: its centre -> 10;
    # pixel (0, 0.5), half a pixel below it -> 10 / 2 = 5.
    query1 = [[[0.0, 0.25], [5 / 6, 0.75]], [[0.5, 0.5], [0.5, 1.0]]]
    loc = torch.tensor([query0, query1],
                       dtype=torch.float64).view(1, 2, 1, 2, 2, 2)
    attn = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.25] * 4],
                        dtype=torch.float64).view(1, 2, 1, 2, 2)
    # 0.1 * 2 + 0.2 * 3 + 0.3 * 10 + 0.4 * 0 = 3.8;
    # 0.25 * (0.5 + 6 + 10 + 5) = 5.375
    expected = torch.tensor([3.8, 5.375], dtype=torch.float64).view(1, 2, 1)
    value, shapes, starts, loc, attn = (
        t.to(device) for t in (value.double(), shapes, starts, loc, attn))
    torch.testing.assert_close(
        ms_deform_attn_pytorch(value, shapes, loc, attn), expected.to(device))
    torch.testing.assert_close(
        MultiScaleDeformableAttnFunction.apply(value, shapes, starts, loc,
                                               attn, 64), expected.to(device))


def test_dispatcher_uses_kernel_and_matches_reference():
    inputs = make_inputs(dtype=torch.float32)
    value, shapes, starts, loc, attn = inputs
    # a non-contiguous view is made contiguous by the dispatcher
    value_t = value.transpose(2, 3).contiguous().transpose(2, 3)
    assert not value_t.is_contiguous()
    out = ms_deform_attn(value_t, shapes, starts, loc, attn)
    assert out.grad_fn is None  # no grad needed -> plain tensor
    torch.testing.assert_close(
        out,
        ms_deform_attn_pytorch(value, shapes, loc, attn),
        rtol=1e-4,
        atol=1e-5)
    value.requires_grad_()
    out = ms_deform_attn(value, shapes, starts, loc, attn)
    assert 'MultiScaleDeformableAttnFunction' in type(out.grad_fn).__name__


def test_kernels_are_well_formed_custom_ops():
    # torch's own checks of a custom op: its schema, its fake (meta)
    # implementation against the real one, and dispatch under
    # FakeTensorMode, as torch.compile runs it
    value, shapes, starts, loc, attn = make_inputs(dtype=torch.float32)
    torch.library.opcheck(torch.ops.mmvis_msts.ms_deform_attn_forward,
                          (value, shapes, starts, loc, attn, 64))
    grad_out = torch.randn(value.shape[0], loc.shape[1],
                           value.shape[2] * value.shape[3])
    torch.library.opcheck(torch.ops.mmvis_msts.ms_deform_attn_backward,
                          (value, shapes, starts, loc, attn, grad_out, 64))


def test_compile_traces_the_kernel_in_one_graph():
    # fullgraph=True fails on any graph break, e.g. at an opaque pybind call
    inputs = make_inputs(dtype=torch.float32)
    torch._dynamo.reset()
    compiled = torch.compile(
        MultiScaleDeformableAttnFunction.apply,
        backend='aot_eager',
        fullgraph=True)
    ours = forward_backward(compiled, *inputs)
    ref = forward_backward(ms_deform_attn_pytorch, *inputs)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_dispatcher_cpu_half_types_compute_in_float32():
    value, shapes, starts, loc, attn = make_inputs(dtype=torch.float32)
    ref = ms_deform_attn_pytorch(value, shapes, loc, attn)
    out = ms_deform_attn(value.bfloat16(), shapes, starts, loc.bfloat16(),
                         attn.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.02)


def test_function_casts_locations_and_weights_to_value_dtype():
    # the AMP case: value in a lower precision than locations and weights
    value, shapes, starts, loc, attn = make_inputs()
    value = value.float().requires_grad_()
    loc.requires_grad_()
    attn.requires_grad_()
    out = MultiScaleDeformableAttnFunction.apply(value, shapes, starts, loc,
                                                 attn, 64)
    assert out.dtype == torch.float32
    out.sum().backward()
    assert loc.grad.dtype == torch.float64
    assert attn.grad.dtype == torch.float64


def bad_input_cases():
    """(name, mutate(inputs) -> inputs, error, message) for the raw op."""

    def replace(index, fn):

        def mutate(inputs):
            inputs = list(inputs)
            inputs[index] = fn(inputs[index])
            return inputs

        return mutate

    return [
        ('int_value', replace(0, lambda t: t.long()), ValueError,
         'value must be a floating-point tensor, got Long'),
        ('loc_dtype', replace(3, lambda t: t.float()), ValueError,
         r'sampling_loc \(Float\) must have the dtype of value \(Double\)'),
        ('int_shapes', replace(1, lambda t: t.int()), ValueError,
         'spatial_shapes must be Long, got Int'),
        ('value_dims', replace(0, lambda t: t.flatten(2)), ValueError,
         'value must have 4 dimensions'),
        ('attn_points', replace(4, lambda t: t[..., :2].contiguous()),
         ValueError, r'attn_weight must have shape \[2, 5, 2, 2, 3\]'),
        ('loc_heads', replace(3, lambda t: t[:, :, :1].contiguous()),
         ValueError, r'sampling_loc must have shape \[2, 5, 2, 2, 3, 2\]'),
        ('value_tokens', replace(0, lambda t: t[:, :-1].contiguous()),
         ValueError, r'sum\(H \* W\) = 30 tokens but value.size\(1\) is 29'),
        ('level_start', replace(2, lambda t: t + 1), ValueError,
         r'level_start_index\[0\] must be 0'),
        ('empty_level', replace(1, lambda t: t * torch.tensor([1, 0])),
         ValueError, r'spatial_shapes\[0\] must be a positive \(H, W\), '
         r'got \[6, 0\]'),
        ('non_contiguous_value',
         replace(0, lambda t: t.transpose(2, 3).contiguous().transpose(2, 3)),
         RuntimeError, 'value must be contiguous'),
        ('non_contiguous_loc',
         replace(3, lambda t: t.transpose(1, 2).contiguous().transpose(1, 2)),
         RuntimeError, 'sampling_loc must be contiguous'),
    ]


@pytest.mark.parametrize(
    'mutate,error,message', [case[1:] for case in bad_input_cases()],
    ids=[case[0] for case in bad_input_cases()])
def test_bad_inputs_raise_clear_errors(mutate, error, message):
    inputs = mutate(make_inputs())
    with pytest.raises(error, match=message):
        msda.ext_module.ms_deform_attn_forward(*inputs, im2col_step=64)


def test_bad_im2col_step_and_grad_buffers_raise():
    value, shapes, starts, loc, attn = make_inputs()
    with pytest.raises(ValueError, match='im2col_step must be positive'):
        msda.ext_module.ms_deform_attn_forward(
            value, shapes, starts, loc, attn, im2col_step=0)
    grad_out = torch.zeros(2, 5, 8, dtype=value.dtype)
    buffers = [torch.zeros_like(t) for t in (value, loc, attn)]
    with pytest.raises(ValueError, match='grad_output must have shape'):
        msda.ext_module.ms_deform_attn_backward(
            value,
            shapes,
            starts,
            loc,
            attn,
            grad_out[:, :4].contiguous(),
            *buffers,
            im2col_step=64)
    with pytest.raises(ValueError, match='grad_value must have shape'):
        msda.ext_module.ms_deform_attn_backward(
            value,
            shapes,
            starts,
            loc,
            attn,
            grad_out,
            buffers[0][:1],
            *buffers[1:],
            im2col_step=64)


def test_cpu_kernel_rejects_half_types():
    value, shapes, starts, loc, attn = make_inputs()
    with pytest.raises(ValueError, match='supports float32 and float64'):
        msda.ext_module.ms_deform_attn_forward(
            value.half(),
            shapes,
            starts,
            loc.half(),
            attn.half(),
            im2col_step=64)


def test_int_value_through_dispatcher_raises():
    value, shapes, starts, loc, attn = make_inputs()
    with pytest.raises(ValueError, match='floating-point'):
        ms_deform_attn(value.long(), shapes, starts, loc, attn)


@requires_cuda
def test_cuda_device_mismatch_raises():
    value, shapes, starts, loc, attn = make_inputs(device='cuda')
    with pytest.raises(RuntimeError, match='spatial_shapes is on cpu'):
        msda.ext_module.ms_deform_attn_forward(
            value, shapes.cpu(), starts, loc, attn, im2col_step=64)


@requires_cuda
def test_cuda_kernel_makes_no_device_sync():
    """The level check runs on the device (a host copy of spatial_shapes at
    every call would be a sync and would rule out CUDA graph capture):
    forward and backward pass under ``set_sync_debug_mode('error')``, which
    raises on any synchronising copy."""
    inputs = make_inputs(dtype=torch.float32, device='cuda')
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode('error')
    try:
        forward_backward(MultiScaleDeformableAttnFunction.apply, *inputs)
    finally:
        torch.cuda.set_sync_debug_mode('default')
    torch.cuda.synchronize()


@requires_cuda
def test_cuda_bad_level_layout_fails_on_the_device():
    """On CUDA a layout that does not describe the value tokens stops at a
    device-side assertion; in a child process, since the failed assertion
    leaves the CUDA context unusable."""
    script = textwrap.dedent('''
        import torch
        from mmvis_msts.ops.ms_deform_attn import ext_module
        value = torch.zeros(1, 30, 2, 4, device='cuda')
        shapes = torch.tensor([[6, 4], [3, 2]], device='cuda')
        starts = torch.tensor([0, 25], device='cuda')  # 24 tokens in level 0
        loc = torch.rand(1, 5, 2, 2, 3, 2, device='cuda')
        attn = torch.rand(1, 5, 2, 2, 3, device='cuda')
        ext_module.ms_deform_attn_forward(value, shapes, starts, loc, attn, 64)
        torch.cuda.synchronize()
    ''')
    proc = subprocess.run([sys.executable, '-c', script],
                          capture_output=True,
                          text=True,
                          timeout=120)
    assert proc.returncode != 0, 'a bad level layout ran through'
    assert 'assert' in proc.stderr.lower(), proc.stderr[-2000:]


def make_module_inputs(batch_first, box_refs, seed=1):
    gen = torch.Generator().manual_seed(seed)
    shapes = torch.tensor([[5, 6], [3, 3]])
    starts = torch.tensor([0, 30])
    bs, num_query, num_value, dims = 2, 7, 39, 32
    query = torch.randn(bs, num_query, dims, generator=gen)
    query_pos = torch.randn(bs, num_query, dims, generator=gen)
    value = torch.randn(bs, num_value, dims, generator=gen)
    refs = torch.rand(bs, num_query, 2, 4 if box_refs else 2, generator=gen)
    mask = torch.zeros(bs, num_value, dtype=torch.bool)
    mask[1, 20:30] = True
    if not batch_first:
        query, query_pos, value = (
            t.transpose(0, 1) for t in (query, query_pos, value))
    return dict(
        query=query.double(),
        value=value.double(),
        query_pos=query_pos.double(),
        key_padding_mask=mask,
        reference_points=refs.double(),
        spatial_shapes=shapes,
        level_start_index=starts)


@pytest.mark.parametrize('batch_first', [True, False])
@pytest.mark.parametrize('box_refs', [False, True])
@pytest.mark.parametrize('value_proj_ratio', [1.0, 0.5])
def test_module_matches_mmcv(batch_first, box_refs, value_proj_ratio):
    # imported here: the GPU check may run where mmcv has no compiled ops
    from mmcv.ops import \
        MultiScaleDeformableAttention as MMCVMultiScaleDeformableAttention
    cfg = dict(
        embed_dims=32,
        num_heads=4,
        num_levels=2,
        num_points=3,
        batch_first=batch_first,
        value_proj_ratio=value_proj_ratio)
    torch.manual_seed(0)
    theirs = MMCVMultiScaleDeformableAttention(**cfg)
    torch.manual_seed(0)
    ours = MSDeformAttn(**cfg)
    # same layers, created and initialised in the same order
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, param in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], param), key
    # random weights so every parameter matters
    with torch.no_grad():
        for param in theirs.parameters():
            param.normal_(0, 0.3)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    theirs.double().eval()
    ours.double().eval()
    inputs = make_module_inputs(batch_first, box_refs)
    expected = theirs(**inputs)
    out = ours(**inputs, valid_ratios=None)  # mmdet layers pass extras
    assert out.shape == inputs['query'].shape
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)


def test_module_builds_from_mmdet_registry():
    module = MODELS.build(
        dict(type='MSDeformAttn', embed_dims=32, num_heads=4, num_levels=2))
    assert isinstance(module, MSDeformAttn)
    assert module.sampling_offsets.out_features == 4 * 2 * 4 * 2


def test_module_sample_is_forward_before_output_proj():
    module = MSDeformAttn(
        embed_dims=32,
        num_heads=4,
        num_levels=2,
        num_points=3,
        batch_first=True,
        value_proj_ratio=0.5).double().eval()
    inputs = make_module_inputs(batch_first=True, box_refs=False)
    query = inputs['query'] + inputs['query_pos']
    sampled = module.sample(query, inputs['value'], inputs['reference_points'],
                            inputs['spatial_shapes'],
                            inputs['level_start_index'],
                            inputs['key_padding_mask'])
    assert sampled.shape == (2, 7, 16)
    torch.testing.assert_close(
        module(**inputs), inputs['query'] + module.output_proj(sampled))


@pytest.mark.parametrize('box_refs', [False, True])
def test_module_sampling_locations_follow_the_formula(monkeypatch, box_refs):
    # the locations the kernel gets, against Deformable DETR's formula
    # written out per head, level and point: ref + offset / (W_l, H_l) for
    # points, ref_xy + offset / P * ref_wh / 2 for boxes (float32, so the
    # layout of the sum, not double precision, decides the match)
    module = MSDeformAttn(
        embed_dims=32,
        num_heads=4,
        num_levels=2,
        num_points=3,
        batch_first=True)
    with torch.no_grad():
        module.sampling_offsets.weight.normal_(0, 0.5)
    inputs = make_module_inputs(batch_first=True, box_refs=box_refs)
    query = (inputs['query'] + inputs['query_pos']).float()
    refs = inputs['reference_points'].float().requires_grad_()
    seen = {}

    def capture(value, shapes, starts, locations, weights, step):
        seen['locations'] = locations
        return value.new_zeros(value.shape[0], locations.shape[1],
                               value.shape[2] * value.shape[3])

    monkeypatch.setattr(msda, 'ms_deform_attn', capture)
    module.sample(query, inputs['value'].float(), refs,
                  inputs['spatial_shapes'], inputs['level_start_index'])
    offsets = module.sampling_offsets(query).detach()
    bs, num_query = query.shape[:2]
    expected = torch.empty(bs, num_query, 4, 2, 3, 2)
    for head in range(4):
        for level, (height,
                    width) in enumerate(inputs['spatial_shapes'].tolist()):
            for point in range(3):
                start = ((head * 2 + level) * 3 + point) * 2
                offset = offsets[..., start:start + 2]
                ref = refs.detach()[:, :, level]
                if box_refs:
                    loc = ref[..., :2] + offset / 3 * ref[..., 2:] * 0.5
                else:
                    loc = ref + offset / torch.tensor([width, height])
                expected[:, :, head, level, point] = loc
    torch.testing.assert_close(seen['locations'], expected, rtol=0, atol=0)
    # each reference point moves all M*P of its level's locations
    seen['locations'].sum().backward()
    per_point = torch.full_like(refs, 4 * 3.0)
    if box_refs:
        per_point[..., 2:] = offsets.view(bs, num_query, 4, 2, 3, 2).sum(
            (2, 4)) / 3 * 0.5
    torch.testing.assert_close(refs.grad, per_point)


def test_module_rejects_bad_config_and_reference_points():
    with pytest.raises(ValueError, match='divisible by num_heads'):
        MSDeformAttn(embed_dims=30, num_heads=4)
    with pytest.raises(ValueError, match='value_proj_ratio = 20'):
        MSDeformAttn(embed_dims=32, num_heads=8, value_proj_ratio=0.625)
    module = MSDeformAttn(
        embed_dims=32, num_heads=4, num_levels=2, batch_first=True).double()
    inputs = make_module_inputs(batch_first=True, box_refs=False)
    inputs['reference_points'] = torch.rand(2, 7, 2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match='must be 2 .* or 4 .* but got 3'):
        module(**inputs)


def test_fallback_without_extension_warns_once(monkeypatch):
    inputs = make_inputs()
    value, shapes, starts, loc, attn = inputs
    kernel_out = forward_backward(ms_deform_attn, *inputs)
    monkeypatch.setattr(msda, 'ext_module', None)
    monkeypatch.setattr(msda, '_fallback_warned', False)
    assert not ext_available()
    with pytest.warns(UserWarning, match='mmvis_msts._ext is not built'):
        fallback_out = forward_backward(ms_deform_attn, *inputs)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        again = ms_deform_attn(value, shapes, starts, loc, attn)
    for a, b in zip(fallback_out, kernel_out):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    torch.testing.assert_close(again, kernel_out[0], rtol=0, atol=1e-10)
    with pytest.raises(RuntimeError, match='not built'):
        MultiScaleDeformableAttnFunction.apply(value, shapes, starts, loc,
                                               attn, 64)


def test_fallback_for_cuda_tensors_without_cuda_kernel(monkeypatch):
    cpu_only = types.SimpleNamespace(with_cuda=False)
    monkeypatch.setattr(msda, 'ext_module', cpu_only)
    assert ext_available('cpu')
    assert not ext_available('cuda')
    assert msda._missing_kernel('cuda') == (
        'mmvis_msts._ext was built without CUDA')
    assert 'no kernel for meta' in msda._missing_kernel('meta')


def test_load_ext_absent_returns_none(monkeypatch):
    import mmvis_msts.ops.ext_loader as ext_loader

    def missing(name):
        raise ModuleNotFoundError(f'No module named {name!r}', name=name)

    monkeypatch.setattr(ext_loader.importlib, 'import_module', missing)
    assert load_ext('_ext', ['ms_deform_attn_forward']) is None


def test_load_ext_reraises_missing_dependency(monkeypatch):
    import mmvis_msts.ops.ext_loader as ext_loader

    def broken(name):
        raise ModuleNotFoundError("No module named 'libfoo'", name='libfoo')

    monkeypatch.setattr(ext_loader.importlib, 'import_module', broken)
    with pytest.raises(ModuleNotFoundError, match='libfoo'):
        load_ext('_ext', ['ms_deform_attn_forward'])


def test_load_ext_stale_build_names_missing_symbol(monkeypatch):
    stale = types.ModuleType('mmvis_msts._stale_ext')
    stale.__file__ = '/fake/_stale_ext.so'
    stale.ms_deform_attn_forward = lambda *args: None
    monkeypatch.setitem(sys.modules, 'mmvis_msts._stale_ext', stale)
    with pytest.raises(ImportError, match="no function 'ms_deform_attn_bac"):
        load_ext('_stale_ext',
                 ['ms_deform_attn_forward', 'ms_deform_attn_backward'])
