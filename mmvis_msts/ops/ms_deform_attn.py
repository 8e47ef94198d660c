"""Multi-scale deformable attention for video clips (frames in the batch).

Three units, as in ``mmcv/ops/multi_scale_deform_attn.py``:

* :class:`MultiScaleDeformableAttnFunction`: autograd Function over the
  compiled kernels of ``mmvis_msts._ext`` (CPU and, when built with it, CUDA),
  which it calls as the torch custom ops ``mmvis_msts::ms_deform_attn_forward``
  and ``mmvis_msts::ms_deform_attn_backward`` so that ``torch.compile``
  traces through them;
* :func:`ms_deform_attn_pytorch`: the pure-PyTorch reference;
* :class:`MSDeformAttn`: the registered module, a drop-in
  for ``mmcv.ops.MultiScaleDeformableAttention`` with a public :meth:`sample`.

:func:`ms_deform_attn` dispatches between the kernel and the reference.

Shapes use the package notation (``mmvis_msts``): B*T frames (the batch of
every call: frames are folded into it), S flattened value tokens over all
levels, Lq queries, M heads, Dh channels per head, L levels, P sampling
points.
"""
import math
import warnings
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule, constant_init, xavier_init
from torch import Tensor
from torch.autograd.function import Function, once_differentiable

from .ext_loader import load_ext

ext_module = load_ext('_ext',
                      ['ms_deform_attn_forward', 'ms_deform_attn_backward'])

# set once the fallback to the reference has been announced
_fallback_warned = False

# The (H_l, W_l) of each level as Python ints: the host-side twin of an
# (L, 2) ``spatial_shapes`` tensor, for code that splits or reshapes by level
# without reading the tensor back from the device.
LevelShapes = Tuple[Tuple[int, int], ...]


# The kernels as torch custom ops (torch.library, torch >= 2.4): dynamo
# (torch.compile) then traces them into its graph, with the output shapes of
# the fake implementations, instead of splitting the graph at each call of an
# opaque pybind function. The backward op returns new gradient tensors
# rather than filling buffers, as a functional custom op must.
@torch.library.custom_op('mmvis_msts::ms_deform_attn_forward', mutates_args=())
def _kernel_forward(value: Tensor, spatial_shapes: Tensor,
                    level_start_index: Tensor, sampling_locations: Tensor,
                    attention_weights: Tensor, im2col_step: int) -> Tensor:
    """The forward kernel; arguments and output as in
    :meth:`MultiScaleDeformableAttnFunction.forward`."""
    return ext_module.ms_deform_attn_forward(
        value,
        spatial_shapes,
        level_start_index,
        sampling_locations,
        attention_weights,
        im2col_step=im2col_step)


@_kernel_forward.register_fake
def _kernel_forward_fake(value: Tensor, spatial_shapes: Tensor,
                         level_start_index: Tensor, sampling_locations: Tensor,
                         attention_weights: Tensor,
                         im2col_step: int) -> Tensor:
    num_queries, num_heads = sampling_locations.shape[1:3]
    return value.new_empty(value.shape[0], num_queries,
                           num_heads * value.shape[3])


@torch.library.custom_op(
    'mmvis_msts::ms_deform_attn_backward', mutates_args=())
def _kernel_backward(value: Tensor, spatial_shapes: Tensor,
                     level_start_index: Tensor, sampling_locations: Tensor,
                     attention_weights: Tensor, grad_output: Tensor,
                     im2col_step: int) -> Tuple[Tensor, Tensor, Tensor]:
    """The backward kernel: gradients of value, sampling_locations and
    attention_weights, shaped as those."""
    # the kernel adds into these
    grads = tuple(
        torch.zeros_like(t)
        for t in (value, sampling_locations, attention_weights))
    ext_module.ms_deform_attn_backward(
        value,
        spatial_shapes,
        level_start_index,
        sampling_locations,
        attention_weights,
        grad_output,
        *grads,
        im2col_step=im2col_step)
    return grads


@_kernel_backward.register_fake
def _kernel_backward_fake(value: Tensor, spatial_shapes: Tensor,
                          level_start_index: Tensor,
                          sampling_locations: Tensor,
                          attention_weights: Tensor, grad_output: Tensor,
                          im2col_step: int) -> Tuple[Tensor, Tensor, Tensor]:
    return (torch.empty_like(value), torch.empty_like(sampling_locations),
            torch.empty_like(attention_weights))


class MultiScaleDeformableAttnFunction(Function):
    """Autograd Function over the compiled kernels (CPU float32/float64; CUDA
    float32/float64/float16/bfloat16).

    Same signature as mmcv's Function of the same name. Inputs must be
    contiguous and on one device; the kernels raise a ValueError or
    RuntimeError naming the offending tensor otherwise.
    """

    @staticmethod
    def forward(ctx, value: Tensor, value_spatial_shapes: Tensor,
                value_level_start_index: Tensor, sampling_locations: Tensor,
                attention_weights: Tensor, im2col_step: int) -> Tensor:
        """Run the kernel.

        Args:
            value (Tensor): (B*T, S, M, Dh) values of all levels, flattened.
            value_spatial_shapes (Tensor): (L, 2) int64 (H_l, W_l).
            value_level_start_index (Tensor): (L,) int64 start of each level
                in S.
            sampling_locations (Tensor): (B*T, Lq, M, L, P, 2) normalised
                (x, y) in [0, 1].
            attention_weights (Tensor): (B*T, Lq, M, L, P) weights.
            im2col_step (int): Batch items per CUDA launch (chunks of
                min(B*T, im2col_step); B*T need not be a multiple of it).

        Returns:
            Tensor: (B*T, Lq, M * Dh) weighted sums of the sampled values.
        """
        if ext_module is None:
            raise RuntimeError(
                'mmvis_msts._ext is not built: install with '
                '`pip install -e . --no-build-isolation` or call '
                'ms_deform_attn(), which falls back to the reference.')
        # Under AMP, autocast makes value float16 but leaves the locations
        # and weights float32; the kernel wants one dtype.
        sampling_locations = sampling_locations.type_as(value)
        attention_weights = attention_weights.type_as(value)
        ctx.im2col_step = im2col_step
        output = _kernel_forward(value, value_spatial_shapes,
                                 value_level_start_index, sampling_locations,
                                 attention_weights, im2col_step)
        ctx.save_for_backward(value, value_spatial_shapes,
                              value_level_start_index, sampling_locations,
                              attention_weights)
        return output

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor) -> tuple:
        """Gradients of value, sampling_locations and attention_weights.

        Args:
            grad_output (Tensor): (B*T, Lq, M * Dh) gradient of the output.

        Returns:
            tuple: (grad_value, None, None, grad_sampling_locations,
            grad_attention_weights, None).
        """
        grad_value, grad_sampling_loc, grad_attn_weight = _kernel_backward(
            *ctx.saved_tensors, grad_output.contiguous(), ctx.im2col_step)
        return (grad_value, None, None, grad_sampling_loc, grad_attn_weight,
                None)


def ms_deform_attn_pytorch(value: Tensor, spatial_shapes: Tensor,
                           sampling_locations: Tensor,
                           attention_weights: Tensor) -> Tensor:
    """Pure-PyTorch reference of multi-scale deformable attention.

    Args:
        value (Tensor): (B*T, S, M, Dh) values of all levels, flattened.
        spatial_shapes (Tensor): (L, 2) int64 (H_l, W_l) of each level.
        sampling_locations (Tensor): (B*T, Lq, M, L, P, 2) normalised (x, y)
            in [0, 1]; points outside sample zeros.
        attention_weights (Tensor): (B*T, Lq, M, L, P) weights.

    Returns:
        Tensor: (B*T, Lq, M * Dh) weighted sums of the sampled values.
    """
    bs, _, num_heads, head_dims = value.shape
    _, num_queries, _, num_levels, num_points, _ = sampling_locations.shape
    value_list = value.split([int(h) * int(w) for h, w in spatial_shapes],
                             dim=1)
    # grid_sample wants [-1, 1]
    sampling_grids = 2 * sampling_locations - 1
    sampled = []
    for level, (h, w) in enumerate(spatial_shapes):
        # (B*T, H*W, M, Dh) -> (B*T*M, Dh, H, W)
        level_value = value_list[level].flatten(2).transpose(1, 2).reshape(
            bs * num_heads, head_dims, int(h), int(w))
        # (B*T, Lq, M, P, 2) -> (B*T*M, Lq, P, 2)
        level_grid = sampling_grids[:, :, :, level].transpose(1,
                                                              2).flatten(0, 1)
        sampled.append(
            F.grid_sample(
                level_value,
                level_grid,
                mode='bilinear',
                padding_mode='zeros',
                align_corners=False))
    # (B*T, Lq, M, L, P) -> (B*T*M, 1, Lq, L*P)
    weights = attention_weights.transpose(1,
                                          2).reshape(bs * num_heads, 1,
                                                     num_queries,
                                                     num_levels * num_points)
    # (B*T*M, Dh, Lq, L*P) -> (B*T, M*Dh, Lq)
    output = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1)
    output = output.view(bs, num_heads * head_dims, num_queries)
    return output.transpose(1, 2).contiguous()


def _missing_kernel(device: Union[torch.device, str]) -> Optional[str]:
    """Why no compiled kernel serves tensors on ``device`` (None if one
    does)."""
    device = torch.device(device)
    if ext_module is None:
        return 'mmvis_msts._ext is not built'
    if device.type == 'cuda' and not ext_module.with_cuda:
        return 'mmvis_msts._ext was built without CUDA'
    if device.type not in ('cpu', 'cuda'):
        return f'mmvis_msts._ext has no kernel for {device.type} tensors'
    return None


def ext_available(device: Union[torch.device, str] = 'cpu') -> bool:
    """Whether the compiled kernel serves tensors on ``device``.

    Args:
        device (torch.device | str): Device to ask about, e.g. ``'cuda'``.
            Defaults to ``'cpu'`` (i.e. whether the extension is built).

    Returns:
        bool: True when :func:`ms_deform_attn` runs the compiled kernel for
        tensors on ``device``.
    """
    return _missing_kernel(device) is None


def ms_deform_attn(value: Tensor,
                   spatial_shapes: Tensor,
                   level_start_index: Tensor,
                   sampling_locations: Tensor,
                   attention_weights: Tensor,
                   im2col_step: int = 64) -> Tensor:
    """Multi-scale deformable attention on the fastest available path.

    CPU and CUDA tensors run the compiled kernel (CPU float16/bfloat16 are
    computed in float32 and cast back). Without a kernel for the device
    (extension not built, built without CUDA, other devices) it runs
    :func:`ms_deform_attn_pytorch` and warns once. During an ONNX export
    it runs the reference too, without a warning: ONNX has no symbol for
    the kernel, and the reference exports as ``GridSample`` (opset >= 16,
    see docs/deployment.md).

    Args:
        value (Tensor): (B*T, S, M, Dh) values of all levels, flattened.
        spatial_shapes (Tensor): (L, 2) int64 (H_l, W_l) of each level.
        level_start_index (Tensor): (L,) int64 start of each level in S.
        sampling_locations (Tensor): (B*T, Lq, M, L, P, 2) normalised (x, y)
            in [0, 1]; points outside sample zeros.
        attention_weights (Tensor): (B*T, Lq, M, L, P) weights.
        im2col_step (int): Batch items per CUDA launch. Defaults to 64.

    Returns:
        Tensor: (B*T, Lq, M * Dh) weighted sums of the sampled values.
    """
    if torch.onnx.is_in_onnx_export():
        return ms_deform_attn_pytorch(value, spatial_shapes,
                                      sampling_locations, attention_weights)
    missing = _missing_kernel(value.device)
    if missing is not None:
        global _fallback_warned
        if not _fallback_warned:
            _fallback_warned = True
            warnings.warn(
                f'{missing}: multi-scale deformable attention runs the slower '
                'pure-PyTorch reference (ms_deform_attn_pytorch).',
                stacklevel=2)
        return ms_deform_attn_pytorch(value, spatial_shapes,
                                      sampling_locations, attention_weights)
    if value.device.type == 'cpu' and value.dtype in (torch.float16,
                                                      torch.bfloat16):
        # the CPU kernel computes in float32 and float64 only
        output = MultiScaleDeformableAttnFunction.apply(
            value.float().contiguous(), spatial_shapes.contiguous(),
            level_start_index.contiguous(),
            sampling_locations.float().contiguous(),
            attention_weights.float().contiguous(), im2col_step)
        return output.to(value.dtype)
    return MultiScaleDeformableAttnFunction.apply(
        value.contiguous(), spatial_shapes.contiguous(),
        level_start_index.contiguous(), sampling_locations.contiguous(),
        attention_weights.contiguous(), im2col_step)


@MODELS.register_module()
class MSDeformAttn(BaseModule):
    """Multi-scale deformable attention (Deformable DETR) on
    :func:`ms_deform_attn`.

    A drop-in for ``mmcv.ops.MultiScaleDeformableAttention`` (mmcv 2.1.0):
    same constructor and forward arguments, state-dict keys
    (``sampling_offsets``, ``attention_weights``, ``value_proj``,
    ``output_proj``) and initialisation, so its checkpoints load strictly.
    Unlike mmcv it runs a compiled kernel on CPU too, and it exposes
    :meth:`sample` (the attention before ``output_proj``).

    Args:
        embed_dims (int): Channels C of query and value. Defaults to 256.
        num_heads (int): Heads M. Defaults to 8.
        num_levels (int): Feature levels L. Defaults to 4.
        num_points (int): Points P per head and level. Defaults to 4.
        im2col_step (int): Batch items per CUDA launch. Defaults to 64.
        dropout (float): Dropout on the projected output before the
            residual. Defaults to 0.1.
        batch_first (bool): Whether forward's query/value/identity are
            (B*T, Lq, C) instead of (Lq, B*T, C). Defaults to False.
        norm_cfg (dict, optional): Unused; kept for mmcv's signature.
            Defaults to None.
        init_cfg (dict, optional): Initialisation config; like mmcv,
            :meth:`init_weights` applies its own scheme. Defaults to None.
        value_proj_ratio (float): Width of ``value_proj`` relative to
            ``embed_dims``. Defaults to 1.0.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 num_levels: int = 4,
                 num_points: int = 4,
                 im2col_step: int = 64,
                 dropout: float = 0.1,
                 batch_first: bool = False,
                 norm_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 value_proj_ratio: float = 1.0) -> None:
        super().__init__(init_cfg)
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims must be divisible by num_heads, '
                             f'but got {embed_dims} and {num_heads}')
        value_proj_size = int(embed_dims * value_proj_ratio)
        if value_proj_size % num_heads != 0:
            raise ValueError(
                f'embed_dims * value_proj_ratio = {value_proj_size} must be '
                f'divisible by num_heads = {num_heads}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.num_points = num_points
        self.im2col_step = im2col_step
        self.batch_first = batch_first
        self.norm_cfg = norm_cfg
        self.dropout = nn.Dropout(dropout)
        self.sampling_offsets = nn.Linear(
            embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims,
                                           num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dims, value_proj_size)
        self.output_proj = nn.Linear(value_proj_size, embed_dims)
        self.init_weights()

    def init_weights(self) -> None:
        """Initialise as mmcv: offsets start on a star of M directions
        (point i at distance i + 1), uniform attention, xavier projections."""
        constant_init(self.sampling_offsets, 0.)
        device = next(self.parameters()).device
        thetas = torch.arange(
            self.num_heads, dtype=torch.float32,
            device=device) * (2.0 * math.pi / self.num_heads)
        grid_init = torch.stack([thetas.cos(), thetas.sin()], -1)
        # (M, 2) -> (M, L, P, 2), scaled to the unit square's border
        grid_init = (grid_init /
                     grid_init.abs().max(-1, keepdim=True)[0]).view(
                         self.num_heads, 1, 1,
                         2).repeat(1, self.num_levels, self.num_points, 1)
        for i in range(self.num_points):
            grid_init[:, :, i, :] *= i + 1
        self.sampling_offsets.bias.data = grid_init.view(-1)
        constant_init(self.attention_weights, val=0., bias=0.)
        xavier_init(self.value_proj, distribution='uniform', bias=0.)
        xavier_init(self.output_proj, distribution='uniform', bias=0.)
        self._is_init = True

    def sample(self,
               query: Tensor,
               value: Tensor,
               reference_points: Tensor,
               spatial_shapes: Tensor,
               level_start_index: Tensor,
               key_padding_mask: Optional[Tensor] = None) -> Tensor:
        """Attention-weighted sampled values, before ``output_proj``.

        Args:
            query (Tensor): (B*T, Lq, C) queries with their position embedding
                already added.
            value (Tensor): (B*T, S, C) flattened multi-level features.
            reference_points (Tensor): (B*T, Lq, L, 2) normalised (x, y) points
                in [0, 1], or (B*T, Lq, L, 4) boxes (cx, cy, w, h).
            spatial_shapes (Tensor): (L, 2) int64 (H_l, W_l).
            level_start_index (Tensor): (L,) int64 start of each level in S.
            key_padding_mask (Tensor, optional): (B*T, S) bool, True at padded
                tokens (their values are zeroed). Defaults to None.

        Returns:
            Tensor: (B*T, Lq, C_v) with C_v = embed_dims * value_proj_ratio.
        """
        bs, num_query, _ = query.shape
        _, num_value, _ = value.shape
        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        # (B*T, S, C_v) -> (B*T, S, M, Dh)
        value = value.view(bs, num_value, self.num_heads, -1)
        sampling_offsets = self.sampling_offsets(query)
        # softmax over all L*P points of a head
        attention_weights = self.attention_weights(query).view(
            bs, num_query, self.num_heads,
            self.num_levels * self.num_points).softmax(-1)
        attention_weights = attention_weights.view(bs, num_query,
                                                   self.num_heads,
                                                   self.num_levels,
                                                   self.num_points)
        # (M, L, P, 2): what each offset's location is built from
        layout = (self.num_heads, self.num_levels, self.num_points, 2)
        if reference_points.shape[-1] == 2:
            # offsets are in pixels of each level: normalise by (W, H). The
            # points and the normaliser are laid out as the offsets' last
            # dim (M*L*P*2), so the sum runs over contiguous rows; it gives
            # the same values as broadcasting (B*T, Lq, M, L, P, 2), whose
            # innermost dim of 2 made it 3x slower (docs/benchmarks.md)
            offset_normalizer = torch.stack(
                [spatial_shapes[..., 1], spatial_shapes[..., 0]],
                -1).to(sampling_offsets.dtype)
            offset_normalizer = offset_normalizer[None, :, None, :].expand(
                layout).reshape(-1)
            points = reference_points[:, :, None, :, None, :].expand(
                bs, num_query, *layout).reshape(bs, num_query, -1)
            sampling_locations = (points +
                                  sampling_offsets / offset_normalizer).view(
                                      bs, num_query, *layout)
        elif reference_points.shape[-1] == 4:
            # offsets are relative to the box size
            sampling_locations = reference_points[:, :, None, :, None, :2] \
                + sampling_offsets.view(bs, num_query, *layout) \
                / self.num_points \
                * reference_points[:, :, None, :, None, 2:] \
                * 0.5
        else:
            raise ValueError(
                'Last dim of reference_points must be 2 (points) or 4 '
                f'(boxes), but got {reference_points.shape[-1]}.')
        return ms_deform_attn(value, spatial_shapes, level_start_index,
                              sampling_locations, attention_weights,
                              self.im2col_step)

    def forward(self,
                query: Tensor,
                key: Optional[Tensor] = None,
                value: Optional[Tensor] = None,
                identity: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None,
                key_padding_mask: Optional[Tensor] = None,
                reference_points: Optional[Tensor] = None,
                spatial_shapes: Optional[Tensor] = None,
                level_start_index: Optional[Tensor] = None,
                **kwargs) -> Tensor:
        """Deformable attention with residual: ``identity + dropout(
        output_proj(sample(...)))``.

        Args:
            query (Tensor): (Lq, B*T, C), or (B*T, Lq, C) if ``batch_first``.
            key (Tensor, optional): Unused; kept for mmcv's signature.
            value (Tensor, optional): (S, B*T, C), or (B*T, S, C) if
                ``batch_first``. Defaults to ``query``.
            identity (Tensor, optional): Residual, shaped as ``query``.
                Defaults to ``query`` (before adding ``query_pos``).
            query_pos (Tensor, optional): Position embedding added to
                ``query``, shaped as ``query``. Defaults to None.
            key_padding_mask (Tensor, optional): (B*T, S) bool, True at padded
                tokens. Defaults to None.
            reference_points (Tensor): (B*T, Lq, L, 2) points or
                (B*T, Lq, L, 4) boxes, normalised to [0, 1].
            spatial_shapes (Tensor): (L, 2) int64 (H_l, W_l).
            level_start_index (Tensor): (L,) int64 start of each level in S.
            **kwargs: Ignored (e.g. ``valid_ratios`` passed by mmdet layers).

        Returns:
            Tensor: Shaped as ``query``.
        """
        if value is None:
            value = query
        if identity is None:
            identity = query
        if query_pos is not None:
            query = query + query_pos
        if not self.batch_first:
            # (Lq, B*T, C) -> (B*T, Lq, C), value likewise
            query = query.permute(1, 0, 2)
            value = value.permute(1, 0, 2)
        output = self.output_proj(
            self.sample(query, value, reference_points, spatial_shapes,
                        level_start_index, key_padding_mask))
        if not self.batch_first:
            # (B*T, Lq, C) -> (Lq, B*T, C)
            output = output.permute(1, 0, 2)
        return self.dropout(output) + identity
