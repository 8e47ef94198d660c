// Includes and launch helpers shared by the CUDA sources of mmvis_msts._ext.
#ifndef MMVIS_PYTORCH_CUDA_HELPER_HPP
#define MMVIS_PYTORCH_CUDA_HELPER_HPP

// Only the light c10 headers: ATen/cuda/CUDAContext.h would also pull in the
// cuBLAS/cuSPARSE headers, which a minimal CUDA toolkit lacks.
#include <ATen/OpMathType.h>
#include <ATen/cuda/Atomic.cuh>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cstdint>

#include "pytorch_cpp_helper.hpp"

namespace mmvis {

constexpr int kCudaThreadsPerBlock = 256;
// Grid-stride loops cover the rest; more blocks than this gain nothing.
constexpr int64_t kCudaMaxBlocks = 4096;

inline int cuda_blocks(int64_t num_threads) {
  return static_cast<int>(std::min<int64_t>(
      (num_threads + kCudaThreadsPerBlock - 1) / kCudaThreadsPerBlock,
      kCudaMaxBlocks));
}

}  // namespace mmvis

// 64-bit grid-stride loop over [0, n).
#define MMVIS_CUDA_KERNEL_LOOP(i, n)                                       \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) +         \
                   threadIdx.x;                                            \
       i < (n); i += static_cast<int64_t>(blockDim.x) * gridDim.x)

#endif  // MMVIS_PYTORCH_CUDA_HELPER_HPP
