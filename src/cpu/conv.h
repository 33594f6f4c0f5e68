#pragma once
// Private: CPU convolution kernels (im2col + GEMM), NCHW layout.
#include <cstdint>

namespace nnkit::cpu {

struct Conv2dGeometry {
  int64_t N, C, H, W;        // input
  int64_t K, kh, kw;         // output channels, kernel size
  int64_t sh, sw, ph, pw, dh, dw, groups;
  int64_t Ho, Wo;            // output spatial size
};

// out[N,K,Ho,Wo] = conv(x, w) (+ bias if not null). All contiguous.
template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* out);
// Gradients; any of gx, gw, gb may be null (not needed). gw and gb are overwritten.
template <typename T>
void conv2d_backward(const Conv2dGeometry& g, const T* x, const T* w, const T* gout, T* gx, T* gw, T* gb);

}  // namespace nnkit::cpu
