// CPU launchers of multi-scale deformable attention, registered for the CPU
// device. Arguments are validated by the entry points in ms_deform_attn.cpp.
#include <ATen/Parallel.h>

#include <type_traits>

#include "cpu/ms_deform_attn_cpu_kernel.hpp"
#include "pytorch_cpp_helper.hpp"
#include "pytorch_device_registry.hpp"

namespace {

// Queries per forward task chunk: enough work to amortise thread hand-off.
constexpr int64_t kForwardGrain = 16;

mmvis::MSDeformAttnSizes sizes_of(const Tensor& value,
                                  const Tensor& sampling_loc) {
  return {value.size(0),        value.size(1),        value.size(2),
          value.size(3),        sampling_loc.size(1), sampling_loc.size(3),
          sampling_loc.size(4)};
}

// Calls fn(std::integral_constant<int, kChannels>) with kChannels = Dh for
// the common Dh = 32 (256 channels over 8 heads), so the kernels unroll
// their channel loops, and kChannels = 0 (Dh read at run time) otherwise.
template <typename Fn>
void with_channel_count(int64_t channels, const Fn& fn) {
  if (channels == 32) {
    fn(std::integral_constant<int, 32>());
  } else {
    fn(std::integral_constant<int, 0>());
  }
}

// The entry points validated everything else; this launcher only adds what
// it needs itself.
void check_cpu_inputs(const Tensor& value, const Tensor& spatial_shapes,
                      const Tensor& sampling_loc) {
  CHECK_CPU_INPUT(value);
  CHECK_CPU_INPUT(spatial_shapes);
  CHECK_CPU_INPUT(sampling_loc);
  TORCH_CHECK_VALUE(value.scalar_type() == at::kFloat ||
                        value.scalar_type() == at::kDouble,
                    "the CPU kernel of ms_deform_attn supports float32 and "
                    "float64, got value of dtype ",
                    value.scalar_type());
}

}  // namespace

// im2col_step only shapes the CUDA launches; the CPU kernel splits work by
// itself.
Tensor ms_deform_attn_cpu_forward(const Tensor& value,
                                  const Tensor& spatial_shapes,
                                  const Tensor& level_start_index,
                                  const Tensor& sampling_loc,
                                  const Tensor& attn_weight,
                                  const int im2col_step) {
  check_cpu_inputs(value, spatial_shapes, sampling_loc);
  const mmvis::MSDeformAttnSizes sz = sizes_of(value, sampling_loc);
  Tensor output = at::zeros(
      {sz.batch, sz.num_queries, sz.num_heads * sz.channels}, value.options());
  AT_DISPATCH_FLOATING_TYPES(
      value.scalar_type(), "ms_deform_attn_cpu_forward", [&] {
        const scalar_t* value_ptr = value.const_data_ptr<scalar_t>();
        const int64_t* shapes_ptr = spatial_shapes.const_data_ptr<int64_t>();
        const int64_t* start_ptr = level_start_index.const_data_ptr<int64_t>();
        const scalar_t* loc_ptr = sampling_loc.const_data_ptr<scalar_t>();
        const scalar_t* attn_ptr = attn_weight.const_data_ptr<scalar_t>();
        scalar_t* out_ptr = output.mutable_data_ptr<scalar_t>();
        with_channel_count(sz.channels, [&](auto channels) {
          at::parallel_for(
              0, sz.batch * sz.num_queries, kForwardGrain,
              [&](int64_t begin, int64_t end) {
                mmvis::ms_deform_attn_forward_cpu_kernel<scalar_t,
                                                         channels.value>(
                    begin, end, sz, value_ptr, shapes_ptr, start_ptr,
                    loc_ptr, attn_ptr, out_ptr);
              });
        });
      });
  return output;
}

void ms_deform_attn_cpu_backward(
    const Tensor& value, const Tensor& spatial_shapes,
    const Tensor& level_start_index, const Tensor& sampling_loc,
    const Tensor& attn_weight, const Tensor& grad_output, Tensor& grad_value,
    Tensor& grad_sampling_loc, Tensor& grad_attn_weight,
    const int im2col_step) {
  check_cpu_inputs(value, spatial_shapes, sampling_loc);
  CHECK_CPU_INPUT(grad_value);
  const mmvis::MSDeformAttnSizes sz = sizes_of(value, sampling_loc);
  AT_DISPATCH_FLOATING_TYPES(
      value.scalar_type(), "ms_deform_attn_cpu_backward", [&] {
        const scalar_t* value_ptr = value.const_data_ptr<scalar_t>();
        const int64_t* shapes_ptr = spatial_shapes.const_data_ptr<int64_t>();
        const int64_t* start_ptr = level_start_index.const_data_ptr<int64_t>();
        const scalar_t* loc_ptr = sampling_loc.const_data_ptr<scalar_t>();
        const scalar_t* attn_ptr = attn_weight.const_data_ptr<scalar_t>();
        const scalar_t* grad_out_ptr = grad_output.const_data_ptr<scalar_t>();
        scalar_t* grad_value_ptr = grad_value.mutable_data_ptr<scalar_t>();
        scalar_t* grad_loc_ptr = grad_sampling_loc.mutable_data_ptr<scalar_t>();
        scalar_t* grad_attn_ptr = grad_attn_weight.mutable_data_ptr<scalar_t>();
        // one task per (b, m, l): each owns its slice of every gradient
        with_channel_count(sz.channels, [&](auto channels) {
          at::parallel_for(
              0, sz.batch * sz.num_heads * sz.num_levels, 1,
              [&](int64_t begin, int64_t end) {
                mmvis::ms_deform_attn_backward_cpu_kernel<scalar_t,
                                                          channels.value>(
                    begin, end, sz, value_ptr, shapes_ptr, start_ptr,
                    loc_ptr, attn_ptr, grad_out_ptr, grad_value_ptr,
                    grad_loc_ptr, grad_attn_ptr);
              });
        });
      });
}

Tensor ms_deform_attn_forward_impl(const Tensor& value,
                                   const Tensor& spatial_shapes,
                                   const Tensor& level_start_index,
                                   const Tensor& sampling_loc,
                                   const Tensor& attn_weight,
                                   const int im2col_step);

void ms_deform_attn_backward_impl(
    const Tensor& value, const Tensor& spatial_shapes,
    const Tensor& level_start_index, const Tensor& sampling_loc,
    const Tensor& attn_weight, const Tensor& grad_output, Tensor& grad_value,
    Tensor& grad_sampling_loc, Tensor& grad_attn_weight,
    const int im2col_step);

REGISTER_DEVICE_IMPL(ms_deform_attn_forward_impl, CPU,
                     ms_deform_attn_cpu_forward);
REGISTER_DEVICE_IMPL(ms_deform_attn_backward_impl, CPU,
                     ms_deform_attn_cpu_backward);
