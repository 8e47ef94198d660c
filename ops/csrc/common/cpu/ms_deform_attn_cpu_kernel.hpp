// CPU kernels of multi-scale deformable attention (float and double).
//
// Layouts and sampling rules: see ms_deform_attn_utils.hpp.
//
// The kernels process a range of tasks so the launcher can split work with
// at::parallel_for:
//   * forward: one task per (b, q); tasks write disjoint output rows.
//   * backward: one task per (b, m, l). grad_value[b, level l, m, :] is only
//     touched by samples of batch b, head m and level l, and every
//     grad_sampling_loc / grad_attn_weight element belongs to exactly one
//     task, so no two tasks write the same memory: no atomics, no per-thread
//     copies of grad_value.
#ifndef MMVIS_MS_DEFORM_ATTN_CPU_KERNEL_HPP
#define MMVIS_MS_DEFORM_ATTN_CPU_KERNEL_HPP

#include <cstdint>

#include "ms_deform_attn_utils.hpp"

namespace mmvis {

// Compile the kernels for AVX-512 and AVX2/FMA machines too; the loader
// picks the best clone for the CPU at run time, so the build stays portable.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__NVCC__)
#define MMVIS_CPU_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MMVIS_CPU_CLONES
#endif
// Inlined into each clone, so the helpers get its instruction set.
#if defined(__GNUC__)
#define MMVIS_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define MMVIS_ALWAYS_INLINE inline
#endif

// dst[0:n] += alpha * src[0:n]; a plain loop the compiler vectorises.
template <typename scalar_t>
MMVIS_ALWAYS_INLINE void axpy(
    int64_t n, scalar_t alpha, const scalar_t* __restrict__ src,
    scalar_t* __restrict__ dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] += alpha * src[i];
}

// <a, b> over n elements. The simd reduction lets the compiler reorder the
// sum into vector lanes (built with -fopenmp-simd; plain C++ would keep one
// scalar chain).
template <typename scalar_t>
MMVIS_ALWAYS_INLINE scalar_t dot(int64_t n, const scalar_t* __restrict__ a,
                                 const scalar_t* __restrict__ b) {
  scalar_t sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// Forward for tasks [begin, end), task = b * Lq + q. `output` rows of these
// tasks must be zero on entry. kChannels > 0 fixes Dh at compile time (then
// sz.channels must equal it) so the channel loops unroll; 0 reads sz.channels.
template <typename scalar_t, int kChannels>
MMVIS_CPU_CLONES void ms_deform_attn_forward_cpu_kernel(
    int64_t begin, int64_t end, const MSDeformAttnSizes& sz,
    const scalar_t* value, const int64_t* spatial_shapes,
    const int64_t* level_start_index, const scalar_t* sampling_loc,
    const scalar_t* attn_weight, scalar_t* output) {
  const int64_t M = sz.num_heads, L = sz.num_levels, P = sz.num_points;
  const int64_t Dh = kChannels > 0 ? kChannels : sz.channels;
  BilinearCorners<scalar_t> corners;
  for (int64_t task = begin; task < end; ++task) {
    const int64_t b = task / sz.num_queries;
    const scalar_t* value_b = value + b * sz.num_keys * M * Dh;
    for (int64_t m = 0; m < M; ++m) {
      const int64_t point0 = (task * M + m) * L * P;
      scalar_t* out = output + (task * M + m) * Dh;
      for (int64_t l = 0; l < L; ++l) {
        const int64_t height = spatial_shapes[2 * l];
        const int64_t width = spatial_shapes[2 * l + 1];
        for (int64_t p = 0; p < P; ++p) {
          const int64_t point = point0 + l * P + p;
          if (!bilinear_corners(sampling_loc[2 * point],
                                sampling_loc[2 * point + 1], height, width,
                                level_start_index[l], &corners)) {
            continue;
          }
          const scalar_t attn = attn_weight[point];
          for (int c = 0; c < 4; ++c) {
            if (corners.token[c] < 0) continue;
            axpy(Dh, attn * corners.weight[c],
                 value_b + (corners.token[c] * M + m) * Dh, out);
          }
        }
      }
    }
  }
}

// Backward for tasks [begin, end), task = (b * M + m) * L + l. Adds into
// grad_value, grad_sampling_loc and grad_attn_weight. kChannels: as forward.
template <typename scalar_t, int kChannels>
MMVIS_CPU_CLONES void ms_deform_attn_backward_cpu_kernel(
    int64_t begin, int64_t end, const MSDeformAttnSizes& sz,
    const scalar_t* value, const int64_t* spatial_shapes,
    const int64_t* level_start_index, const scalar_t* sampling_loc,
    const scalar_t* attn_weight, const scalar_t* grad_output,
    scalar_t* grad_value, scalar_t* grad_sampling_loc,
    scalar_t* grad_attn_weight) {
  const int64_t M = sz.num_heads, L = sz.num_levels, P = sz.num_points,
                Lq = sz.num_queries;
  const int64_t Dh = kChannels > 0 ? kChannels : sz.channels;
  BilinearCorners<scalar_t> corners;
  for (int64_t task = begin; task < end; ++task) {
    const int64_t l = task % L;
    const int64_t m = (task / L) % M;
    const int64_t b = task / (L * M);
    const int64_t height = spatial_shapes[2 * l];
    const int64_t width = spatial_shapes[2 * l + 1];
    const int64_t value_offset = b * sz.num_keys * M * Dh + m * Dh;
    const scalar_t* value_bm = value + value_offset;
    scalar_t* grad_value_bm = grad_value + value_offset;
    for (int64_t q = 0; q < Lq; ++q) {
      const int64_t bqm = (b * Lq + q) * M + m;
      const scalar_t* grad_out = grad_output + bqm * Dh;
      for (int64_t p = 0; p < P; ++p) {
        const int64_t point = (bqm * L + l) * P + p;
        if (!bilinear_corners(sampling_loc[2 * point],
                              sampling_loc[2 * point + 1], height, width,
                              level_start_index[l], &corners)) {
          continue;
        }
        const scalar_t attn = attn_weight[point];
        scalar_t grad_attn = 0, grad_x = 0, grad_y = 0;
        for (int c = 0; c < 4; ++c) {
          if (corners.token[c] < 0) continue;
          const int64_t row = corners.token[c] * M * Dh;
          // <grad_out, value of this corner>
          const scalar_t g_dot_v = dot(Dh, grad_out, value_bm + row);
          grad_attn += corners.weight[c] * g_dot_v;
          grad_x += corners.dw_dx[c] * g_dot_v;
          grad_y += corners.dw_dy[c] * g_dot_v;
          axpy(Dh, attn * corners.weight[c], grad_out, grad_value_bm + row);
        }
        grad_attn_weight[point] += grad_attn;
        // pixel coordinate = loc * size - 0.5
        grad_sampling_loc[2 * point] +=
            attn * grad_x * static_cast<scalar_t>(width);
        grad_sampling_loc[2 * point + 1] +=
            attn * grad_y * static_cast<scalar_t>(height);
      }
    }
  }
}

}  // namespace mmvis

#endif  // MMVIS_MS_DEFORM_ATTN_CPU_KERNEL_HPP
