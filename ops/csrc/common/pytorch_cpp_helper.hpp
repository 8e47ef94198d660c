// Argument checks shared by every op entry point of mmvis_msts._ext.
//
// Each macro names the offending tensor (by its C++ variable name) and the
// value it got, so a bad call fails at the boundary with a readable Python
// exception instead of a crash or a silent wrong result. TORCH_CHECK raises
// RuntimeError, TORCH_CHECK_VALUE raises ValueError.
#ifndef MMVIS_PYTORCH_CPP_HELPER_HPP
#define MMVIS_PYTORCH_CPP_HELPER_HPP

#include <torch/extension.h>

#include <string>

using at::Tensor;

namespace mmvis {

// Integers and shapes go into messages as std::to_string text, never through
// std::ostream's numeric insertion: built with Ubuntu's gcc 13 against the
// torch 2.11 CUDA 13 wheel (built with gcc-toolset-13), every integer this
// extension streamed segfaulted inside libstdc++ (basic_ostream::_M_insert
// <long>), so a bad argument crashed Python instead of raising.
inline std::string shape_str(at::IntArrayRef sizes) {
  std::string text = "[";
  for (size_t i = 0; i < sizes.size(); ++i) {
    text += (i > 0 ? ", " : "") + std::to_string(sizes[i]);
  }
  return text + "]";
}

}  // namespace mmvis

#define CHECK_CPU_INPUT(x)                                                    \
  TORCH_CHECK((x).device().is_cpu(), #x " must be a CPU tensor, got one on ", \
              (x).device())

#define CHECK_CUDA_INPUT(x)                                                   \
  TORCH_CHECK((x).device().is_cuda(), #x " must be a CUDA tensor, got one on ", \
              (x).device())

#define CHECK_CONTIGUOUS(x)                                                   \
  TORCH_CHECK((x).is_contiguous(), #x                                        \
              " must be contiguous (call .contiguous() first), got strides ", \
              mmvis::shape_str((x).strides()), " for shape ",                 \
              mmvis::shape_str((x).sizes()))

#define CHECK_DIM(x, n)                                                       \
  TORCH_CHECK_VALUE((x).dim() == (n), #x " must have " #n                   \
                    " dimensions, got shape ", mmvis::shape_str((x).sizes()))

#define CHECK_DTYPE(x, dtype)                                                 \
  TORCH_CHECK_VALUE((x).scalar_type() == (dtype), #x " must be ", (dtype),   \
                    ", got ", (x).scalar_type())

#define CHECK_FLOATING(x)                                                     \
  TORCH_CHECK_VALUE(at::isFloatingType((x).scalar_type()), #x                \
                    " must be a floating-point tensor, got ",                 \
                    (x).scalar_type())

#define CHECK_SAME_DTYPE(x, ref)                                              \
  TORCH_CHECK_VALUE((x).scalar_type() == (ref).scalar_type(), #x " (",      \
                    (x).scalar_type(), ") must have the dtype of " #ref " (", \
                    (ref).scalar_type(), ")")

#define CHECK_SAME_DEVICE(x, ref)                                             \
  TORCH_CHECK((x).device() == (ref).device(), #x " is on ", (x).device(),    \
              " but " #ref " is on ", (ref).device(),                         \
              "; all tensors must be on one device")

// Checks x.sizes() == expected (a std::vector<int64_t> or IntArrayRef).
#define CHECK_SHAPE(x, expected)                                              \
  TORCH_CHECK_VALUE((x).sizes() == at::IntArrayRef(expected), #x            \
                    " must have shape ",                                      \
                    mmvis::shape_str(at::IntArrayRef(expected)), ", got ",    \
                    mmvis::shape_str((x).sizes()))

#endif  // MMVIS_PYTORCH_CPP_HELPER_HPP
