#pragma once
// Private: CPU convolution kernels (im2col + GEMM), NCHW layout.
#include <cstdint>

#include "backend/backend.h"

namespace nnkit::cpu {

// The contract's geometry (src/backend/backend.h).
using Conv2dGeometry = detail::ConvGeom;

// out[N,K,Ho,Wo] = conv(x, w) (+ bias if not null). All contiguous.
template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* out);
// Gradients; any of gx, gw, gb may be null (not needed). gw and gb are overwritten.
template <typename T>
void conv2d_backward(const Conv2dGeometry& g, const T* x, const T* w, const T* gout, T* gx, T* gw, T* gb);

}  // namespace nnkit::cpu
