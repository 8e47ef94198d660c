// Pieces of multi-scale deformable attention shared by the CPU and CUDA
// kernels: the problem sizes and the bilinear footprint of one sampling
// point, compiled for host and device alike.
//
// Layouts (all contiguous; B batch with frames folded in, S value tokens of
// all levels, M heads, Dh channels per head, Lq queries, L levels, P points):
//   value (B, S, M, Dh), spatial_shapes (L, 2) as (H, W),
//   level_start_index (L,), sampling_loc (B, Lq, M, L, P, 2) as (x, y) in
//   [0, 1], attn_weight (B, Lq, M, L, P), output (B, Lq, M * Dh).
//
// Sampling follows F.grid_sample(mode='bilinear', padding_mode='zeros',
// align_corners=False): pixel coordinates are loc * size - 0.5 and corners
// outside the map contribute zero.
#ifndef MMVIS_MS_DEFORM_ATTN_UTILS_HPP
#define MMVIS_MS_DEFORM_ATTN_UTILS_HPP

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define MMVIS_HOST_DEVICE __host__ __device__
#else
#define MMVIS_HOST_DEVICE
#endif

namespace mmvis {

struct MSDeformAttnSizes {
  int64_t batch;
  int64_t num_keys;
  int64_t num_heads;
  int64_t channels;
  int64_t num_queries;
  int64_t num_levels;
  int64_t num_points;
};

// Bilinear footprint of one sampling point on one level.
template <typename scalar_t>
struct BilinearCorners {
  int64_t token[4];    // value token index (level start + y * W + x), or -1
  scalar_t weight[4];  // bilinear weight of each corner
  scalar_t dw_dx[4];   // d weight / d x in pixels
  scalar_t dw_dy[4];   // d weight / d y in pixels
};

MMVIS_HOST_DEVICE inline float floor_value(float x) { return floorf(x); }
MMVIS_HOST_DEVICE inline double floor_value(double x) { return floor(x); }

// Fills `corners` for the normalised location (loc_x, loc_y); returns false
// when the point lies so far outside that every corner is padding.
template <typename scalar_t>
MMVIS_HOST_DEVICE inline bool bilinear_corners(
    scalar_t loc_x, scalar_t loc_y, int64_t height, int64_t width,
    int64_t level_start, BilinearCorners<scalar_t>* corners) {
  const scalar_t x = loc_x * static_cast<scalar_t>(width) - scalar_t(0.5);
  const scalar_t y = loc_y * static_cast<scalar_t>(height) - scalar_t(0.5);
  // Also false for NaN and +-inf, so those never reach the integer casts.
  if (!(x > scalar_t(-1) && y > scalar_t(-1) &&
        x < static_cast<scalar_t>(width) &&
        y < static_cast<scalar_t>(height))) {
    return false;
  }
  const scalar_t x0f = floor_value(x);
  const scalar_t y0f = floor_value(y);
  const int64_t x0 = static_cast<int64_t>(x0f);
  const int64_t y0 = static_cast<int64_t>(y0f);
  const scalar_t fx = x - x0f;
  const scalar_t fy = y - y0f;
  const scalar_t gx = scalar_t(1) - fx;
  const scalar_t gy = scalar_t(1) - fy;
  // corner order: (x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)
  const bool x0_in = x0 >= 0, x1_in = x0 + 1 < width;
  const bool y0_in = y0 >= 0, y1_in = y0 + 1 < height;
  const int64_t token00 = level_start + y0 * width + x0;
  corners->token[0] = (x0_in && y0_in) ? token00 : -1;
  corners->token[1] = (x1_in && y0_in) ? token00 + 1 : -1;
  corners->token[2] = (x0_in && y1_in) ? token00 + width : -1;
  corners->token[3] = (x1_in && y1_in) ? token00 + width + 1 : -1;
  corners->weight[0] = gx * gy;
  corners->weight[1] = fx * gy;
  corners->weight[2] = gx * fy;
  corners->weight[3] = fx * fy;
  corners->dw_dx[0] = -gy;
  corners->dw_dx[1] = gy;
  corners->dw_dx[2] = -fy;
  corners->dw_dx[3] = fy;
  corners->dw_dy[0] = -gx;
  corners->dw_dy[1] = -fx;
  corners->dw_dy[2] = gx;
  corners->dw_dy[3] = fx;
  return true;
}

}  // namespace mmvis

#endif  // MMVIS_MS_DEFORM_ATTN_UTILS_HPP
