// CUDA kernels of multi-scale deformable attention (float, double, half,
// bfloat16; half types accumulate in float).
//
// Layouts and sampling rules: see ms_deform_attn_utils.hpp. The launchers
// call the kernels once per chunk of at most im2col_step batch items, with
// every pointer already offset to the chunk and `sz.batch` = chunk size.
//
//   * forward: one thread per output element (b, q, m, d); neighbouring
//     threads read neighbouring channels, so value reads coalesce.
//   * backward: a group of G = min(32, next_pow2(Dh)) lanes of one warp per
//     (b, q, m); lane i handles channels i, i + G, ... . The per-point sums
//     for grad_attn_weight and grad_sampling_loc are reduced across the group
//     with warp shuffles and written by the group's first lane (each such
//     element belongs to exactly one group, so no atomics). grad_value rows
//     are shared by all queries and take atomic adds.
#ifndef MMVIS_MS_DEFORM_ATTN_CUDA_KERNEL_CUH
#define MMVIS_MS_DEFORM_ATTN_CUDA_KERNEL_CUH

#include "ms_deform_attn_utils.hpp"
#include "pytorch_cuda_helper.hpp"

namespace mmvis {

template <typename scalar_t>
__global__ void ms_deform_attn_forward_cuda_kernel(
    const int64_t num_threads, const MSDeformAttnSizes sz,
    const scalar_t* __restrict__ value,
    const int64_t* __restrict__ spatial_shapes,
    const int64_t* __restrict__ level_start_index,
    const scalar_t* __restrict__ sampling_loc,
    const scalar_t* __restrict__ attn_weight, scalar_t* __restrict__ output) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t M = sz.num_heads, Dh = sz.channels, L = sz.num_levels,
                P = sz.num_points;
  MMVIS_CUDA_KERNEL_LOOP(index, num_threads) {
    // index = ((b * Lq + q) * M + m) * Dh + d
    const int64_t d = index % Dh;
    const int64_t bqm = index / Dh;
    const int64_t m = bqm % M;
    const int64_t b = bqm / M / sz.num_queries;
    const scalar_t* value_bm = value + b * sz.num_keys * M * Dh + m * Dh + d;
    BilinearCorners<opmath_t> corners;
    opmath_t acc = 0;
    for (int64_t l = 0; l < L; ++l) {
      const int64_t height = spatial_shapes[2 * l];
      const int64_t width = spatial_shapes[2 * l + 1];
      const int64_t level_start = level_start_index[l];
      for (int64_t p = 0; p < P; ++p) {
        const int64_t point = (bqm * L + l) * P + p;
        if (!bilinear_corners(static_cast<opmath_t>(sampling_loc[2 * point]),
                              static_cast<opmath_t>(
                                  sampling_loc[2 * point + 1]),
                              height, width, level_start, &corners)) {
          continue;
        }
        const opmath_t attn = static_cast<opmath_t>(attn_weight[point]);
        for (int c = 0; c < 4; ++c) {
          if (corners.token[c] < 0) continue;
          acc += attn * corners.weight[c] *
                 static_cast<opmath_t>(value_bm[corners.token[c] * M * Dh]);
        }
      }
    }
    output[index] = static_cast<scalar_t>(acc);
  }
}

// Sums `x` over the aligned group of `group_size` lanes (a power of two
// <= 32) that holds this lane; every lane of the warp must call it.
template <typename opmath_t>
__device__ __forceinline__ opmath_t group_sum(opmath_t x, int group_size) {
  for (int offset = group_size / 2; offset > 0; offset /= 2) {
    x += __shfl_xor_sync(0xffffffffu, x, offset);
  }
  return x;
}

// num_threads is num_groups * group_size rounded up to a multiple of 32, so
// all lanes of a warp run the same iterations and reach every shuffle.
template <typename scalar_t>
__global__ void ms_deform_attn_backward_cuda_kernel(
    const int64_t num_threads, const int64_t num_groups, const int group_size,
    const MSDeformAttnSizes sz, const scalar_t* __restrict__ value,
    const int64_t* __restrict__ spatial_shapes,
    const int64_t* __restrict__ level_start_index,
    const scalar_t* __restrict__ sampling_loc,
    const scalar_t* __restrict__ attn_weight,
    const scalar_t* __restrict__ grad_output, scalar_t* grad_value,
    scalar_t* __restrict__ grad_sampling_loc,
    scalar_t* __restrict__ grad_attn_weight) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t M = sz.num_heads, Dh = sz.channels, L = sz.num_levels,
                P = sz.num_points;
  MMVIS_CUDA_KERNEL_LOOP(index, num_threads) {
    const int lane = static_cast<int>(index % group_size);
    // group = (b * Lq + q) * M + m; lanes past the last group only shuffle
    const int64_t bqm = index / group_size;
    const bool active = bqm < num_groups;
    const int64_t m = bqm % M;
    const int64_t b = bqm / M / sz.num_queries;
    const int64_t value_offset = b * sz.num_keys * M * Dh + m * Dh;
    const scalar_t* value_bm = value + value_offset;
    scalar_t* grad_value_bm = grad_value + value_offset;
    const scalar_t* grad_out = grad_output + bqm * Dh;
    BilinearCorners<opmath_t> corners;
    for (int64_t l = 0; l < L; ++l) {
      const int64_t height = spatial_shapes[2 * l];
      const int64_t width = spatial_shapes[2 * l + 1];
      const int64_t level_start = level_start_index[l];
      for (int64_t p = 0; p < P; ++p) {
        const int64_t point = (bqm * L + l) * P + p;
        const bool in_map =
            active &&
            bilinear_corners(
                static_cast<opmath_t>(sampling_loc[2 * point]),
                static_cast<opmath_t>(sampling_loc[2 * point + 1]), height,
                width, level_start, &corners);
        opmath_t grad_attn = 0, grad_x = 0, grad_y = 0;
        if (in_map) {
          const opmath_t attn = static_cast<opmath_t>(attn_weight[point]);
          for (int64_t d = lane; d < Dh; d += group_size) {
            const opmath_t g = static_cast<opmath_t>(grad_out[d]);
            for (int c = 0; c < 4; ++c) {
              if (corners.token[c] < 0) continue;
              const int64_t offset = corners.token[c] * M * Dh + d;
              const opmath_t g_v =
                  g * static_cast<opmath_t>(value_bm[offset]);
              grad_attn += corners.weight[c] * g_v;
              grad_x += corners.dw_dx[c] * g_v;
              grad_y += corners.dw_dy[c] * g_v;
              gpuAtomicAdd(grad_value_bm + offset,
                           static_cast<scalar_t>(attn * corners.weight[c] * g));
            }
          }
          grad_x *= attn * static_cast<opmath_t>(width);
          grad_y *= attn * static_cast<opmath_t>(height);
        }
        grad_attn = group_sum(grad_attn, group_size);
        grad_x = group_sum(grad_x, group_size);
        grad_y = group_sum(grad_y, group_size);
        if (in_map && lane == 0) {
          grad_attn_weight[point] = static_cast<scalar_t>(
              static_cast<opmath_t>(grad_attn_weight[point]) + grad_attn);
          grad_sampling_loc[2 * point] = static_cast<scalar_t>(
              static_cast<opmath_t>(grad_sampling_loc[2 * point]) + grad_x);
          grad_sampling_loc[2 * point + 1] = static_cast<scalar_t>(
              static_cast<opmath_t>(grad_sampling_loc[2 * point + 1]) +
              grad_y);
        }
      }
    }
  }
}

}  // namespace mmvis

#endif  // MMVIS_MS_DEFORM_ATTN_CUDA_KERNEL_CUH
