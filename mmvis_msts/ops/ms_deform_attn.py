"""Multi-scale deformable attention for video clips (frames folded into the batch).

Dimension letters: B batch (clips x frames), S flattened value tokens over all levels,
Lq queries, M heads, Dh channels per head, L levels, P sampling points.
"""
import torch
import torch.nn.functional as F
from torch import Tensor


def ms_deform_attn_pytorch(value: Tensor, spatial_shapes: Tensor,
                           sampling_locations: Tensor,
                           attention_weights: Tensor) -> Tensor:
    """Pure-PyTorch reference of multi-scale deformable attention.

    Args:
        value (Tensor): (B, S, M, Dh) values of all levels, flattened.
        spatial_shapes (Tensor): (L, 2) int64 (H_l, W_l) of each level.
        sampling_locations (Tensor): (B, Lq, M, L, P, 2) normalised (x, y)
            in [0, 1]; points outside sample zeros.
        attention_weights (Tensor): (B, Lq, M, L, P) weights.

    Returns:
        Tensor: (B, Lq, M * Dh) weighted sums of the sampled values.
    """
    bs, _, num_heads, head_dims = value.shape
    _, num_queries, _, num_levels, num_points, _ = sampling_locations.shape
    value_list = value.split([int(h) * int(w) for h, w in spatial_shapes],
                             dim=1)
    # grid_sample wants [-1, 1]
    sampling_grids = 2 * sampling_locations - 1
    sampled = []
    for level, (h, w) in enumerate(spatial_shapes):
        # (B, H*W, M, Dh) -> (B*M, Dh, H, W)
        level_value = value_list[level].flatten(2).transpose(1, 2).reshape(
            bs * num_heads, head_dims, int(h), int(w))
        # (B, Lq, M, P, 2) -> (B*M, Lq, P, 2)
        level_grid = sampling_grids[:, :, :, level].transpose(1, 2).flatten(
            0, 1)
        sampled.append(
            F.grid_sample(
                level_value,
                level_grid,
                mode='bilinear',
                padding_mode='zeros',
                align_corners=False))
    # (B, Lq, M, L, P) -> (B*M, 1, Lq, L*P)
    weights = attention_weights.transpose(1, 2).reshape(
        bs * num_heads, 1, num_queries, num_levels * num_points)
    # (B*M, Dh, Lq, L*P) -> (B, M*Dh, Lq)
    output = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1)
    output = output.view(bs, num_heads * head_dims, num_queries)
    return output.transpose(1, 2).contiguous()
