// CUDA launchers of multi-scale deformable attention. Arguments are
// validated by the entry points in ms_deform_attn.cpp; the launchers only
// re-check the device they need.
//
// im2col_step follows mmcv: the batch is processed in launches of
// min(batch, im2col_step) items; a batch that is not a multiple of the step
// ends with a smaller chunk.
#include "ms_deform_attn_cuda_kernel.cuh"
#include "pytorch_cuda_helper.hpp"

namespace {

mmvis::MSDeformAttnSizes sizes_of(const Tensor& value,
                                  const Tensor& sampling_loc) {
  return {value.size(0),        value.size(1),        value.size(2),
          value.size(3),        sampling_loc.size(1), sampling_loc.size(3),
          sampling_loc.size(4)};
}

int64_t chunk_step(int64_t batch, int im2col_step) {
  return std::max<int64_t>(1, std::min<int64_t>(batch, im2col_step));
}

// Lanes per (b, q, m) group in the backward kernel: min(32, next_pow2(Dh)).
int backward_group_size(int64_t channels) {
  int size = 1;
  while (size < channels && size < 32) size *= 2;
  return size;
}

}  // namespace

Tensor ms_deform_attn_cuda_forward(const Tensor& value,
                                   const Tensor& spatial_shapes,
                                   const Tensor& level_start_index,
                                   const Tensor& sampling_loc,
                                   const Tensor& attn_weight,
                                   const int im2col_step) {
  CHECK_CUDA_INPUT(value);
  CHECK_CUDA_INPUT(spatial_shapes);
  CHECK_CUDA_INPUT(sampling_loc);
  const c10::cuda::OptionalCUDAGuard device_guard(value.device());
  const mmvis::MSDeformAttnSizes sz = sizes_of(value, sampling_loc);
  Tensor output = at::empty(
      {sz.batch, sz.num_queries, sz.num_heads * sz.channels}, value.options());
  const int64_t step = chunk_step(sz.batch, im2col_step);
  const int64_t value_stride = sz.num_keys * sz.num_heads * sz.channels;
  const int64_t point_stride =
      sz.num_queries * sz.num_heads * sz.num_levels * sz.num_points;
  const int64_t output_stride = sz.num_queries * sz.num_heads * sz.channels;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, value.scalar_type(),
      "ms_deform_attn_cuda_forward", [&] {
        for (int64_t begin = 0; begin < sz.batch; begin += step) {
          mmvis::MSDeformAttnSizes chunk = sz;
          chunk.batch = std::min(step, sz.batch - begin);
          const int64_t num_threads = chunk.batch * output_stride;
          if (num_threads == 0) continue;
          mmvis::ms_deform_attn_forward_cuda_kernel<scalar_t>
              <<<mmvis::cuda_blocks(num_threads),
                 mmvis::kCudaThreadsPerBlock, 0, stream>>>(
                  num_threads, chunk,
                  value.const_data_ptr<scalar_t>() + begin * value_stride,
                  spatial_shapes.const_data_ptr<int64_t>(),
                  level_start_index.const_data_ptr<int64_t>(),
                  sampling_loc.const_data_ptr<scalar_t>() +
                      begin * point_stride * 2,
                  attn_weight.const_data_ptr<scalar_t>() +
                      begin * point_stride,
                  output.mutable_data_ptr<scalar_t>() + begin * output_stride);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        }
      });
  return output;
}

void ms_deform_attn_cuda_backward(
    const Tensor& value, const Tensor& spatial_shapes,
    const Tensor& level_start_index, const Tensor& sampling_loc,
    const Tensor& attn_weight, const Tensor& grad_output, Tensor& grad_value,
    Tensor& grad_sampling_loc, Tensor& grad_attn_weight,
    const int im2col_step) {
  CHECK_CUDA_INPUT(value);
  CHECK_CUDA_INPUT(spatial_shapes);
  CHECK_CUDA_INPUT(sampling_loc);
  CHECK_CUDA_INPUT(grad_value);
  const c10::cuda::OptionalCUDAGuard device_guard(value.device());
  const mmvis::MSDeformAttnSizes sz = sizes_of(value, sampling_loc);
  const int64_t step = chunk_step(sz.batch, im2col_step);
  const int group_size = backward_group_size(sz.channels);
  const int64_t value_stride = sz.num_keys * sz.num_heads * sz.channels;
  const int64_t point_stride =
      sz.num_queries * sz.num_heads * sz.num_levels * sz.num_points;
  const int64_t output_stride = sz.num_queries * sz.num_heads * sz.channels;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, value.scalar_type(),
      "ms_deform_attn_cuda_backward", [&] {
        for (int64_t begin = 0; begin < sz.batch; begin += step) {
          mmvis::MSDeformAttnSizes chunk = sz;
          chunk.batch = std::min(step, sz.batch - begin);
          const int64_t num_groups =
              chunk.batch * sz.num_queries * sz.num_heads;
          // whole warps, see the kernel
          const int64_t num_threads = (num_groups * group_size + 31) / 32 * 32;
          if (num_groups == 0) continue;
          mmvis::ms_deform_attn_backward_cuda_kernel<scalar_t>
              <<<mmvis::cuda_blocks(num_threads),
                 mmvis::kCudaThreadsPerBlock, 0, stream>>>(
                  num_threads, num_groups, group_size, chunk,
                  value.const_data_ptr<scalar_t>() + begin * value_stride,
                  spatial_shapes.const_data_ptr<int64_t>(),
                  level_start_index.const_data_ptr<int64_t>(),
                  sampling_loc.const_data_ptr<scalar_t>() +
                      begin * point_stride * 2,
                  attn_weight.const_data_ptr<scalar_t>() +
                      begin * point_stride,
                  grad_output.const_data_ptr<scalar_t>() +
                      begin * output_stride,
                  grad_value.mutable_data_ptr<scalar_t>() +
                      begin * value_stride,
                  grad_sampling_loc.mutable_data_ptr<scalar_t>() +
                      begin * point_stride * 2,
                  grad_attn_weight.mutable_data_ptr<scalar_t>() +
                      begin * point_stride);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        }
      });
}
