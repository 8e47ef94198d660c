// Device-agnostic entry points of multi-scale deformable attention.
//
// `ms_deform_attn_forward` / `ms_deform_attn_backward` validate their
// arguments (shapes, dtypes, devices, contiguity, level layout) and hand
// them to the `*_impl` functions, which dispatch to the launcher registered
// for the tensors' device (cpu/ms_deform_attn_cpu.cpp, cuda/cudabind.cpp).
#include <vector>

#include "pytorch_cpp_helper.hpp"
#include "pytorch_device_registry.hpp"

Tensor ms_deform_attn_forward_impl(const Tensor& value,
                                   const Tensor& spatial_shapes,
                                   const Tensor& level_start_index,
                                   const Tensor& sampling_loc,
                                   const Tensor& attn_weight,
                                   const int im2col_step) {
  return DISPATCH_DEVICE_IMPL(ms_deform_attn_forward_impl, value,
                              spatial_shapes, level_start_index, sampling_loc,
                              attn_weight, im2col_step);
}

void ms_deform_attn_backward_impl(
    const Tensor& value, const Tensor& spatial_shapes,
    const Tensor& level_start_index, const Tensor& sampling_loc,
    const Tensor& attn_weight, const Tensor& grad_output, Tensor& grad_value,
    Tensor& grad_sampling_loc, Tensor& grad_attn_weight,
    const int im2col_step) {
  DISPATCH_DEVICE_IMPL(ms_deform_attn_backward_impl, value, spatial_shapes,
                       level_start_index, sampling_loc, attn_weight,
                       grad_output, grad_value, grad_sampling_loc,
                       grad_attn_weight, im2col_step);
}

namespace {

// The kernels index `value` through spatial_shapes and level_start_index, so
// both must describe exactly the value.size(1) tokens. On the CPU the tiny
// (L, 2) and (L,) tensors are read in place and a bad level is named.
void check_levels_on_host(const Tensor& spatial_shapes,
                          const Tensor& level_start_index, int64_t num_keys) {
  const int64_t* shape_ptr = spatial_shapes.const_data_ptr<int64_t>();
  const int64_t* start_ptr = level_start_index.const_data_ptr<int64_t>();
  int64_t tokens = 0;
  for (int64_t l = 0; l < spatial_shapes.size(0); ++l) {
    const int64_t height = shape_ptr[2 * l], width = shape_ptr[2 * l + 1];
    // numbers as text: see mmvis::shape_str
    TORCH_CHECK_VALUE(height > 0 && width > 0, "spatial_shapes[",
                      std::to_string(l), "] must be a positive (H, W), got ",
                      mmvis::shape_str({height, width}));
    TORCH_CHECK_VALUE(start_ptr[l] == tokens, "level_start_index[",
                      std::to_string(l), "] must be ", std::to_string(tokens),
                      " (the number of tokens in the levels before it), got ",
                      std::to_string(start_ptr[l]));
    tokens += height * width;
  }
  TORCH_CHECK_VALUE(tokens == num_keys,
                    "spatial_shapes describe sum(H * W) = ",
                    std::to_string(tokens), " tokens but value.size(1) is ",
                    std::to_string(num_keys));
}

// The same conditions on a GPU, without reading the tensors back: a copy to
// the host would be a device sync at every call and would rule out CUDA
// graph capture. A bad layout stops the stream at a device-side assertion
// (the same call on CPU tensors names the bad level).
void check_levels_on_device(const Tensor& spatial_shapes,
                            const Tensor& level_start_index,
                            int64_t num_keys) {
  const Tensor areas = spatial_shapes.prod(1);
  const Tensor starts_ok = level_start_index.eq(areas.cumsum(0) - areas);
  const Tensor ok = spatial_shapes.gt(0)
                        .all()
                        .logical_and(starts_ok.all())
                        .logical_and(areas.sum().eq(num_keys));
  at::_assert_async(ok,
                    "ms_deform_attn: spatial_shapes and level_start_index do "
                    "not describe the value.size(1) tokens (run the call on "
                    "CPU tensors for the level at fault)");
}

void check_levels(const Tensor& spatial_shapes,
                  const Tensor& level_start_index, int64_t num_keys) {
  if (spatial_shapes.is_cpu()) {
    check_levels_on_host(spatial_shapes, level_start_index, num_keys);
  } else {
    check_levels_on_device(spatial_shapes, level_start_index, num_keys);
  }
}

void check_inputs(const Tensor& value, const Tensor& spatial_shapes,
                  const Tensor& level_start_index, const Tensor& sampling_loc,
                  const Tensor& attn_weight, const int im2col_step) {
  CHECK_DIM(value, 4);
  CHECK_FLOATING(value);
  CHECK_DIM(spatial_shapes, 2);
  CHECK_DTYPE(spatial_shapes, at::kLong);
  CHECK_DIM(level_start_index, 1);
  CHECK_DTYPE(level_start_index, at::kLong);
  CHECK_DIM(sampling_loc, 6);
  CHECK_SAME_DTYPE(sampling_loc, value);
  CHECK_DIM(attn_weight, 5);
  CHECK_SAME_DTYPE(attn_weight, value);
  TORCH_CHECK_VALUE(im2col_step > 0, "im2col_step must be positive, got ",
                    std::to_string(im2col_step));

  CHECK_SAME_DEVICE(spatial_shapes, value);
  CHECK_SAME_DEVICE(level_start_index, value);
  CHECK_SAME_DEVICE(sampling_loc, value);
  CHECK_SAME_DEVICE(attn_weight, value);
  CHECK_CONTIGUOUS(value);
  CHECK_CONTIGUOUS(spatial_shapes);
  CHECK_CONTIGUOUS(level_start_index);
  CHECK_CONTIGUOUS(sampling_loc);
  CHECK_CONTIGUOUS(attn_weight);

  const int64_t batch = value.size(0), num_heads = value.size(2);
  const int64_t num_levels = spatial_shapes.size(0);
  const int64_t num_queries = sampling_loc.size(1);
  const int64_t num_points = sampling_loc.size(4);
  CHECK_SHAPE(spatial_shapes, std::vector<int64_t>({num_levels, 2}));
  CHECK_SHAPE(level_start_index, std::vector<int64_t>({num_levels}));
  CHECK_SHAPE(sampling_loc,
              std::vector<int64_t>({batch, num_queries, num_heads,
                                    num_levels, num_points, 2}));
  CHECK_SHAPE(attn_weight, std::vector<int64_t>({batch, num_queries,
                                                 num_heads, num_levels,
                                                 num_points}));
  check_levels(spatial_shapes, level_start_index, value.size(1));
}

// A gradient buffer must match its input in shape, dtype and device.
#define CHECK_GRAD_BUFFER(grad, input) \
  CHECK_SAME_DEVICE(grad, input);      \
  CHECK_SAME_DTYPE(grad, input);       \
  CHECK_CONTIGUOUS(grad);              \
  CHECK_SHAPE(grad, (input).sizes())

}  // namespace

Tensor ms_deform_attn_forward(const Tensor& value,
                              const Tensor& spatial_shapes,
                              const Tensor& level_start_index,
                              const Tensor& sampling_loc,
                              const Tensor& attn_weight,
                              const int im2col_step) {
  check_inputs(value, spatial_shapes, level_start_index, sampling_loc,
               attn_weight, im2col_step);
  return ms_deform_attn_forward_impl(value, spatial_shapes, level_start_index,
                                     sampling_loc, attn_weight, im2col_step);
}

void ms_deform_attn_backward(const Tensor& value, const Tensor& spatial_shapes,
                             const Tensor& level_start_index,
                             const Tensor& sampling_loc,
                             const Tensor& attn_weight,
                             const Tensor& grad_output, Tensor& grad_value,
                             Tensor& grad_sampling_loc,
                             Tensor& grad_attn_weight,
                             const int im2col_step) {
  check_inputs(value, spatial_shapes, level_start_index, sampling_loc,
               attn_weight, im2col_step);
  CHECK_SAME_DEVICE(grad_output, value);
  CHECK_SAME_DTYPE(grad_output, value);
  CHECK_CONTIGUOUS(grad_output);
  CHECK_SHAPE(grad_output,
              std::vector<int64_t>({value.size(0), sampling_loc.size(1),
                                    value.size(2) * value.size(3)}));
  CHECK_GRAD_BUFFER(grad_value, value);
  CHECK_GRAD_BUFFER(grad_sampling_loc, sampling_loc);
  CHECK_GRAD_BUFFER(grad_attn_weight, attn_weight);
  ms_deform_attn_backward_impl(value, spatial_shapes, level_start_index,
                               sampling_loc, attn_weight, grad_output,
                               grad_value, grad_sampling_loc,
                               grad_attn_weight, im2col_step);
}
