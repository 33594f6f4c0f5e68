// Convolution on the CPU: Winograd F(4x4,3x3) for 3x3 stride-1 convolutions (below), else
// im2col per sample (skipped for 1x1 stride-1 convolutions, whose input already is the column
// matrix) and one GEMM per group; OpenMP over the batch (each thread runs its GEMMs
// single-threaded); weight gradients are reduced across threads at the end.
#include "cpu/conv.h"

#include <omp.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/loops.h"
#include "cpu/packed_gemm.h"

namespace nnkit::cpu {

namespace {

bool is_pointwise(const Conv2dGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
}

// col[(c*kh + i)*kw + j][oh*Wo + ow] = x[c][oh*sh - ph + i*dh][ow*sw - pw + j*dw] (0 outside).
template <typename T>
void im2col(const Conv2dGeometry& g, const T* x, int64_t channels, T* col) {
  const int64_t HWo = g.Ho * g.Wo;
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        T* dst = col + ((c * g.kh + i) * g.kw + j) * HWo;
        const T* src = x + c * g.H * g.W;
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          int64_t ih = oh * g.sh - g.ph + i * g.dh;
          T* d = dst + oh * g.Wo;
          if (ih < 0 || ih >= g.H) {
            std::memset(d, 0, sizeof(T) * size_t(g.Wo));
            continue;
          }
          const T* s = src + ih * g.W;
          int64_t off = j * g.dw - g.pw;
          if (g.sw == 1) {
            // Contiguous run: zero the edges, copy the middle.
            int64_t lo = std::max<int64_t>(0, -off), hi = std::min<int64_t>(g.Wo, g.W - off);
            for (int64_t ow = 0; ow < std::min(lo, g.Wo); ++ow) d[ow] = T(0);
            if (hi > lo) std::memcpy(d + lo, s + lo + off, sizeof(T) * size_t(hi - lo));
            for (int64_t ow = std::max(hi, lo); ow < g.Wo; ++ow) d[ow] = T(0);
          } else {
            for (int64_t ow = 0; ow < g.Wo; ++ow) {
              int64_t iw = ow * g.sw + off;
              d[ow] = (iw >= 0 && iw < g.W) ? s[iw] : T(0);
            }
          }
        }
      }
}

// The adjoint of im2col: x[c][ih][iw] += col[...].
template <typename T>
void col2im(const Conv2dGeometry& g, const T* col, int64_t channels, T* x) {
  const int64_t HWo = g.Ho * g.Wo;
  std::memset(x, 0, sizeof(T) * size_t(channels * g.H * g.W));
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const T* src = col + ((c * g.kh + i) * g.kw + j) * HWo;
        T* dst = x + c * g.H * g.W;
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          const T* s = src + oh * g.Wo;
          T* d = dst + ih * g.W;
          int64_t off = j * g.dw - g.pw;
          int64_t lo = 0, hi = g.Wo;
          if (g.sw == 1) {
            lo = std::max<int64_t>(0, -off);
            hi = std::min<int64_t>(g.Wo, g.W - off);
            for (int64_t ow = lo; ow < hi; ++ow) d[ow + off] += s[ow];
          } else {
            for (int64_t ow = 0; ow < g.Wo; ++ow) {
              int64_t iw = ow * g.sw + off;
              if (iw >= 0 && iw < g.W) d[iw] += s[ow];
            }
          }
        }
      }
}

template <typename F>
void over_batch(int64_t N, F f) {
  // Parallel over samples when there are enough of them; otherwise Eigen parallelizes each GEMM.
  if (N >= omp_get_max_threads() && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel
    {
      std::vector<char> scratch;
#pragma omp for schedule(static)
      for (int64_t n = 0; n < N; ++n) f(n, omp_get_thread_num(), scratch);
    }
  } else {
    std::vector<char> scratch;
    for (int64_t n = 0; n < N; ++n) f(n, 0, scratch);
  }
}

template <typename T>
T* scratch_of(std::vector<char>& s, size_t count) {
  if (s.size() < count * sizeof(T)) s.resize(count * sizeof(T));
  return reinterpret_cast<T*>(s.data());
}

// ---- Winograd F(4x4, 3x3) for 3x3, stride-1, undilated, ungrouped convolutions ----
// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016, with the
// interpolation points 0, +-1, +-2 as in their paper.) Each 4x4 output tile is
// A^T [ (G g G^T) .* (B^T d B) ] A over a 6x6 input patch d: 36 multiplies instead of 144,
// done as 36 GEMMs [Cout x Cin] x [Cin x tiles].
//
// The tiles of the whole batch are numbered (sample, tile row, tile column) and processed in
// blocks of kTileBlock<T>: a block's transformed input V (36 x Cin x block) and products M
// (36 x Cout x block) stay in the thread's L2 cache between the input transform, the GEMMs and
// the output transform; the threads take blocks, not samples, so small batches use every core.
// Transforms run over a block's tiles as contiguous, vectorizable loops: patches are first
// gathered into D[36][block] (one row per patch position), then transformed in place order.

// NNKIT_CONV_WINOGRAD=0 in the environment turns it off (to compare, or to rule it out).
bool winograd_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("NNKIT_CONV_WINOGRAD");
    return !(v && std::string_view(v) == "0");
  }();
  return on;
}

bool winograd_eligible(const Conv2dGeometry& g) {
  return winograd_enabled() && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.groups == 1 &&
         g.ph <= 2 && g.pw <= 2 && g.C >= 8 && g.K >= 8 && g.Ho >= 4 && g.Wo >= 4;
}

// Tiles per block: one column panel of the packed GEMM's micro-kernel (32 floats, 16 doubles),
// so that a block's V[xi] (Cin x block) already is a packed B panel.
template <typename T>
constexpr int64_t kTileBlock = packed::Blocking<T>::NR;

// The three transforms applied to one column (or row) of a tile, on values or on vectors of
// values: B^T (6 -> 6), A^T (6 -> 4) and its adjoint A (4 -> 6).
template <typename T>
inline void bt6(const T* d, T* o) {
  o[0] = T(4) * d[0] - T(5) * d[2] + d[4];
  o[1] = d[3] + d[4] - T(4) * (d[1] + d[2]);
  o[2] = T(4) * (d[1] - d[2]) + d[4] - d[3];
  o[3] = T(2) * (d[3] - d[1]) + d[4] - d[2];
  o[4] = T(2) * (d[1] - d[3]) + d[4] - d[2];
  o[5] = T(4) * d[1] - T(5) * d[3] + d[5];
}
template <typename T>
inline void at6(const T* m, T* o) {
  const T p12 = m[1] + m[2], m12 = m[1] - m[2], p34 = m[3] + m[4], m34 = m[3] - m[4];
  o[0] = m[0] + p12 + p34;
  o[1] = m12 + T(2) * m34;
  o[2] = p12 + T(4) * p34;
  o[3] = m12 + T(8) * m34 + m[5];
}
template <typename T>
inline void a4(const T* a, T* z) {
  const T e = a[0] + a[2], o = a[1] + a[3], e4 = a[0] + T(4) * a[2], o8 = T(2) * a[1] + T(8) * a[3];
  z[0] = a[0];
  z[1] = e + o;
  z[2] = e - o;
  z[3] = e4 + o8;
  z[4] = e4 - o8;
  z[5] = a[3];
}

// The separable 2-D transform of a block's tiles, vectorized over the block: f (an In -> Out
// 1-D transform) down the columns of each In x In tile src[(a * In + b) * ss + q], into
// tmp[(i * In + b) * B + q], then along the rows of that, into dst[(i * Out + j) * ds + q]
// (+ add). tmp may be src (each column b is read before its rows are written, and rows past
// In x In are free), and dst may be tmp (a tile's values are all read before any is written).
// "The iterations of the next loop are independent": GCC's ivdep, clang's assume_safety.
#if defined(__clang__)
#define NNKIT_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#else
#define NNKIT_IVDEP _Pragma("GCC ivdep")
#endif
template <int In, int Out, typename T, typename F>
void tile_transform(const T* src, int64_t ss, T* tmp, T* dst, int64_t ds, T add, F f) {
  constexpr int64_t B = kTileBlock<T>;
NNKIT_IVDEP
  for (int64_t q = 0; q < B; ++q) {
    T col[In], o[Out];
#pragma GCC unroll 6
    for (int b = 0; b < In; ++b) {
#pragma GCC unroll 6
      for (int a = 0; a < In; ++a) col[a] = src[(a * In + b) * ss + q];
      f(col, o);
#pragma GCC unroll 6
      for (int i = 0; i < Out; ++i) tmp[(i * In + b) * B + q] = o[i];
    }
  }
NNKIT_IVDEP
  for (int64_t q = 0; q < B; ++q) {
    T row[In], o[Out][Out];
#pragma GCC unroll 6
    for (int i = 0; i < Out; ++i) {
#pragma GCC unroll 6
      for (int b = 0; b < In; ++b) row[b] = tmp[(i * In + b) * B + q];
      f(row, o[i]);
    }
#pragma GCC unroll 6
    for (int i = 0; i < Out; ++i)
#pragma GCC unroll 6
      for (int j = 0; j < Out; ++j) dst[(i * Out + j) * ds + q] = o[i][j] + add;
  }
}

// Per-thread scratch that survives calls (fresh pages would fault on every call). Slot 0: a
// block's work buffers; 1: packed weights; 2: weight-gradient accumulators.
template <typename T>
T* thread_scratch(int slot, size_t count) {
  thread_local std::vector<char> buffers[3];
  std::vector<char>& b = buffers[slot];
  if (b.size() < count * sizeof(T) + 64) b.resize(count * sizeof(T) + 64);
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(b.data()) + 63) & ~uintptr_t(63));
}

// G (6x3) of the kernel transform, in double.
constexpr double kG[6][3] = {{1.0 / 4, 0, 0},
                             {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                             {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                             {1.0 / 24, 1.0 / 12, 1.0 / 6},
                             {1.0 / 24, -1.0 / 12, 1.0 / 6},
                             {0, 0, 1}};

// The transformed weights U[xi] = G w G^T (Cout x Cin for each xi), stored as the packed A
// panels of the GEMM micro-kernel: for each xi and each group of MR output channels, Cin
// columns of MR values (rows past Cout zero). w is indexed by wat(co, ci, i, j). In the
// calling thread's scratch.
template <typename T, typename W>
T* winograd_weights(int64_t Cout, int64_t Cin, W wat) {
  constexpr int64_t MR = packed::Blocking<T>::MR;
  const int64_t groups = (Cout + MR - 1) / MR;
  T* Up = thread_scratch<T>(1, size_t(36 * groups * Cin * MR));
  parallel_for(groups, 1, [&](int64_t g0, int64_t g1) {
    std::vector<double> u(size_t(36 * Cin));  // u[xi][ci] for one output channel
    for (int64_t co = g0 * MR; co < g1 * MR; ++co) {  // output channel (rows past Cout: zero)
      const int64_t gk = co / MR, r = co % MR;
      if (co < Cout) {
        // Vectorized over ci: 36 sums of the 9 taps with constant coefficients.
#pragma omp simd
        for (int64_t ci = 0; ci < Cin; ++ci) {
          double g[3][3], gg[6][3];
#pragma GCC unroll 3
          for (int i = 0; i < 3; ++i)
#pragma GCC unroll 3
            for (int j = 0; j < 3; ++j) g[i][j] = double(wat(co, ci, i, j));
#pragma GCC unroll 6
          for (int a = 0; a < 6; ++a)
#pragma GCC unroll 3
            for (int j = 0; j < 3; ++j) gg[a][j] = kG[a][0] * g[0][j] + kG[a][1] * g[1][j] + kG[a][2] * g[2][j];
#pragma GCC unroll 6
          for (int a = 0; a < 6; ++a)
#pragma GCC unroll 6
            for (int b = 0; b < 6; ++b)
              u[size_t((a * 6 + b) * Cin + ci)] = gg[a][0] * kG[b][0] + gg[a][1] * kG[b][1] + gg[a][2] * kG[b][2];
        }
      } else {
        std::fill(u.begin(), u.end(), 0.0);
      }
      for (int xi = 0; xi < 36; ++xi) {
        T* dst = Up + ((xi * groups + gk) * Cin) * MR + r;
        const double* src = u.data() + xi * Cin;
        for (int64_t ci = 0; ci < Cin; ++ci) dst[ci * MR] = T(src[ci]);
      }
    }
  });
  return Up;
}

// dw[k][c] = G^T dU[.][k][c] G for 3x3 kernels.
template <typename T>
void winograd_weight_grad_finish(const T* dU, int64_t K, int64_t C, T* gw) {
  const int64_t plane = K * C;
  parallel_for(K, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t kc = k0 * C; kc < k1 * C; ++kc) {
      const int64_t k = kc / C, c = kc % C;
      double d[6][6], q[3][6];
      for (int xi = 0; xi < 36; ++xi) d[xi / 6][xi % 6] = double(dU[xi * plane + k * C + c]);
      for (int i = 0; i < 3; ++i)
        for (int b = 0; b < 6; ++b) {
          double s = 0;
          for (int a = 0; a < 6; ++a) s += kG[a][i] * d[a][b];
          q[i][b] = s;
        }
      T* out = gw + (k * C + c) * 9;
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
          double s = 0;
          for (int b = 0; b < 6; ++b) s += q[i][b] * kG[b][j];
          out[i * 3 + j] = T(s);
        }
    }
  });
}

// Stride-4 gathers and scatters between image rows and the tile-major buffers (a tile
// advances 4 columns): d[b * ds + q] = row[col0 + 4 q + b] (0 outside [0, W)) for b < nb,
// q < len; and row[p] = y[(p % 4) * ys + p / 4] for p < width. The portable loops below cost
// a vector pass plus a scalar tail per b and edge copies; on AVX-512 they are 16 tiles per
// step with masked loads (which never touch the masked-off lanes, so the row's edges and the
// zero padding need no special case) and two permutes.
template <typename T>
void gather4(const T* row, int64_t W, int64_t col0, int64_t len, int nb, T* d, int64_t ds) {
  for (int b = 0; b < nb; ++b)
    for (int64_t q = 0; q < len; ++q) {
      const int64_t col = col0 + 4 * q + b;
      d[b * ds + q] = col >= 0 && col < W ? row[col] : T(0);
    }
}
template <typename T>
void scatter4(const T* y, int64_t ys, T* row, int64_t width) {
  const int64_t full = width / 4;
  for (int64_t q = 0; q < full; ++q) {
    row[4 * q + 0] = y[q];
    row[4 * q + 1] = y[ys + q];
    row[4 * q + 2] = y[2 * ys + q];
    row[4 * q + 3] = y[3 * ys + q];
  }
  for (int64_t p = 4 * full; p < width; ++p) row[p] = y[(p & 3) * ys + (p >> 2)];
}
#if defined(__AVX512F__)
// Lanes [lo, hi) of a 16-lane mask (clamped to 0..16).
inline __mmask16 lane_mask(int64_t lo, int64_t hi) {
  lo = std::clamp<int64_t>(lo, 0, 16);
  hi = std::clamp<int64_t>(hi, 0, 16);
  return hi <= lo ? __mmask16(0) : __mmask16(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}
template <>
void gather4<float>(const float* row, int64_t W, int64_t col0, int64_t len, int nb, float* d, int64_t ds) {
  // Every 4th element of 64 consecutive columns: lanes 0-7 from (L0, L1), 8-15 from (L2, L3).
  const __m512i lo_idx = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i hi_idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 8, 12, 16, 20, 24, 28);
  for (int64_t q0 = 0; q0 < len; q0 += 16) {
    const int64_t m = std::min<int64_t>(16, len - q0);
    const int64_t base = col0 + 4 * q0;  // column of tile q0's first element
    // Load k of element b reads columns base + b + 16k + lane, valid in [0, W): its mask is
    // bits b.. of a 32-lane window mask of load k for b = 0 (columns past what the tiles need
    // but inside the row are read and ignored).
    uint32_t window[4];
    for (int k = 0; k < 4; ++k) {
      const int64_t c0 = base + 16 * k;
      const int64_t lo = std::clamp<int64_t>(-c0, 0, 32), hi = std::clamp<int64_t>(W - c0, 0, 32);
      window[k] = hi <= lo ? 0u : uint32_t(((uint64_t(1) << hi) - 1) & ~((uint64_t(1) << lo) - 1));
    }
    for (int b = 0; b < nb; ++b) {
      __m512 L[4];
      for (int k = 0; k < 4; ++k) L[k] = _mm512_maskz_loadu_ps(__mmask16(window[k] >> b), row + base + b + 16 * k);
      const __m512 lo = _mm512_permutex2var_ps(L[0], lo_idx, L[1]);
      const __m512 hi = _mm512_permutex2var_ps(L[2], hi_idx, L[3]);
      _mm512_mask_storeu_ps(d + b * ds + q0, lane_mask(0, m), _mm512_mask_blend_ps(0xFF00, lo, hi));
    }
  }
}
template <>
void scatter4<float>(const float* y, int64_t ys, float* row, int64_t width) {
  // Output vector k holds columns 16k..16k+15 = tiles 4k..4k+3: lane e is y[e % 4][4k + e / 4].
  const __m512i i01 = _mm512_setr_epi32(0, 16, 0, 0, 1, 17, 0, 0, 2, 18, 0, 0, 3, 19, 0, 0);
  const __m512i i23 = _mm512_setr_epi32(0, 0, 0, 16, 0, 0, 1, 17, 0, 0, 2, 18, 0, 0, 3, 19);
  for (int64_t p0 = 0; p0 < width; p0 += 64) {
    const int64_t tiles = std::min<int64_t>(16, (width - p0 + 3) / 4);
    const __mmask16 tm = lane_mask(0, tiles);
    const int64_t q0 = p0 / 4;
    const __m512 y0 = _mm512_maskz_loadu_ps(tm, y + q0), y1 = _mm512_maskz_loadu_ps(tm, y + ys + q0);
    const __m512 y2 = _mm512_maskz_loadu_ps(tm, y + 2 * ys + q0), y3 = _mm512_maskz_loadu_ps(tm, y + 3 * ys + q0);
    for (int k = 0; k < 4; ++k) {
      const int64_t c0 = p0 + 16 * k;
      if (c0 >= width) break;
      const __m512i shift = _mm512_set1_epi32(4 * k);
      const __m512i a = _mm512_add_epi32(i01, shift), b = _mm512_add_epi32(i23, shift);
      const __m512 v01 = _mm512_permutex2var_ps(y0, a, y1), v23 = _mm512_permutex2var_ps(y2, b, y3);
      _mm512_mask_storeu_ps(row + c0, lane_mask(0, width - c0), _mm512_mask_blend_ps(0xCCCC, v01, v23));
    }
  }
}
#endif

// Tiling of one pass: input [N, Cin, Hin, Win] with zero padding (ph, pw), output
// [N, Cout, Ho, Wo] in 4x4 tiles, taken in blocks of B = kTileBlock<T> tiles.
template <typename T>
struct Tiling {
  static constexpr int64_t B = kTileBlock<T>;
  int64_t N, Cin, Hin, Win, ph, pw, Cout, Ho, Wo;
  int64_t th, tw, tiles, blocks;
  Tiling(int64_t N_, int64_t Cin_, int64_t Hin_, int64_t Win_, int64_t ph_, int64_t pw_, int64_t Cout_, int64_t Ho_,
         int64_t Wo_)
      : N(N_), Cin(Cin_), Hin(Hin_), Win(Win_), ph(ph_), pw(pw_), Cout(Cout_), Ho(Ho_), Wo(Wo_) {
    th = (Ho + 3) / 4;
    tw = (Wo + 3) / 4;
    tiles = N * th * tw;
    blocks = (tiles + B - 1) / B;
  }
  int64_t valid(int64_t block) const { return std::min(B, tiles - block * B); }
  // f(n, ti, tj, len, l): the block's tiles as runs along tile rows; l is the run's first
  // position in the block.
  template <typename F>
  void runs(int64_t block, F&& f) const {
    const int64_t t0 = block * B, t1 = std::min(tiles, t0 + B);
    for (int64_t t = t0; t < t1;) {
      const int64_t n = t / (th * tw), r = t % (th * tw), ti = r / tw, tj = r % tw;
      const int64_t len = std::min(tw - tj, t1 - t);
      f(n, ti, tj, len, t - t0);
      t += len;
    }
  }
};

// Block scratch: V (36 x Cin x B), P (36 x Cout x B: products or the output-gradient
// transform), D (36 x B gathered patches).
template <typename T>
struct BlockScratch {
  T *V, *P, *D;
  BlockScratch(int64_t Cin, int64_t Cout) {
    constexpr int64_t B = kTileBlock<T>;
    V = thread_scratch<T>(0, size_t(36 * Cin * B + 36 * Cout * B + 36 * B));
    P = V + 36 * Cin * B;
    D = P + 36 * Cout * B;
  }
};

// V[xi][c][l] = (B^T d B)[xi] for the 6x6 patch d of each tile l of the block, every channel.
template <typename T>
void winograd_input_block(const Tiling<T>& tl, const T* in, int64_t block, const BlockScratch<T>& s) {
  constexpr int64_t B = kTileBlock<T>;
  const int64_t vstride = tl.Cin * B;  // between xi planes
  T* D = s.D;
  const int64_t valid = tl.valid(block);
  for (int64_t c = 0; c < tl.Cin; ++c) {
    if (valid < B)
      for (int a = 0; a < 36; ++a) std::fill(D + a * B + valid, D + (a + 1) * B, T(0));
    // Gather: D[a*6 + b][l] = x[4 ti + a - ph][4 tj + b - pw] (0 outside).
    tl.runs(block, [&](int64_t n, int64_t ti, int64_t tj, int64_t len, int64_t l) {
      const T* plane = in + (n * tl.Cin + c) * tl.Hin * tl.Win;
      // The rows this run needs two channels ahead: 64 planes apart, they are too many streams
      // for the hardware prefetcher, and a miss to L3 per row start was a quarter of the time.
      if (c + 2 < tl.Cin) {
        const int64_t col = std::max<int64_t>(0, 4 * tj - tl.pw), bytes = int64_t(sizeof(T)) * std::min(tl.Win - col, 4 * len + 2);
        for (int a = 0; a < 6; ++a) {
          const int64_t ih = 4 * ti + a - tl.ph;
          if (ih < 0 || ih >= tl.Hin) continue;
          const char* p = reinterpret_cast<const char*>(plane + 2 * tl.Hin * tl.Win + ih * tl.Win + col);
          for (int64_t o = 0; o < bytes + 63; o += 64) __builtin_prefetch(p + std::min(o, bytes - 1));
        }
      }
      for (int a = 0; a < 6; ++a) {
        const int64_t ih = 4 * ti + a - tl.ph;
        T* d = D + a * 6 * B + l;
        if (ih < 0 || ih >= tl.Hin) {
          for (int b = 0; b < 6; ++b) std::fill(d + b * B, d + b * B + len, T(0));
          continue;
        }
        gather4<T>(plane + ih * tl.Win, tl.Win, 4 * tj - tl.pw, len, 6, d, B);
      }
    });
    // B^T down the columns of every patch (in place in D), then B along its rows, into V.
    tile_transform<6, 6>(D, B, D, s.V + c * B, vstride, T(0), [](const T* d, T* o) { bt6(d, o); });
  }
}

// out[n][k] tiles of the block = A^T M[.][k] A (+ bias[k]), clipped at the output's edge.
template <typename T>
void winograd_output_block(const Tiling<T>& tl, int64_t block, const BlockScratch<T>& s, const T* bias, T* out) {
  constexpr int64_t B = kTileBlock<T>;
  const int64_t mstride = tl.Cout * B;
  T* Y = s.D;  // 24 x B: A^T M, then the 4x4 output tiles (first 16 rows)
  for (int64_t k = 0; k < tl.Cout; ++k) {
    // A^T down the columns (6 -> 4 rows, into Y's first 24 rows), then along the rows, into Y.
    tile_transform<6, 4>(s.P + k * B, mstride, Y, Y, B, bias ? bias[k] : T(0), [](const T* m, T* o) { at6(m, o); });
    tl.runs(block, [&](int64_t n, int64_t ti, int64_t tj, int64_t len, int64_t l) {
      T* plane = out + (n * tl.Cout + k) * tl.Ho * tl.Wo;
      const int64_t ow0 = 4 * tj, width = std::min(4 * len, tl.Wo - ow0);
      for (int i = 0; i < 4 && 4 * ti + i < tl.Ho; ++i)
        scatter4<T>(Y + i * 4 * B + l, B, plane + (4 * ti + i) * tl.Wo + ow0, width);
    });
  }
}

// out = conv(in, weights Up from winograd_weights) (+ bias) over the whole batch.
template <typename T>
void winograd_conv(const Tiling<T>& tl, const T* Up, const T* in, const T* bias, T* out) {
  constexpr int64_t B = kTileBlock<T>, MR = packed::Blocking<T>::MR;
  const int64_t groups = (tl.Cout + MR - 1) / MR;
  over_batch(tl.blocks, [&](int64_t block, int, std::vector<char>&) {
    BlockScratch<T> s(tl.Cin, tl.Cout);
    winograd_input_block<T>(tl, in, block, s);
    // P[xi] (Cout x B) = U[xi] (Cout x Cin) V[xi] (Cin x B): V[xi] is a packed B panel.
    for (int xi = 0; xi < 36; ++xi)
      for (int64_t gk = 0; gk < groups; ++gk)
        packed::micro_kernel<T>(tl.Cin, Up + (xi * groups + gk) * tl.Cin * MR, s.V + xi * tl.Cin * B,
                                s.P + (xi * tl.Cout + gk * MR) * B, B, false, std::min(MR, tl.Cout - gk * MR), B);
    winograd_output_block<T>(tl, block, s, bias, out);
  });
}

// Weight gradient of the same tiling: the forward is y = A^T (U .* V) A per tile with
// U = G w G^T, so dU = sum over tiles of (A dy A^T) .* V and dw = G^T dU G. Per block: the
// input transform V, Z = A dy A^T into P, then 36 GEMMs dU[xi] (K x C) += Z[xi] V[xi]^T.
template <typename T>
void winograd_weight_grad(const Tiling<T>& tl, const T* x, const T* dy, T* gw) {
  constexpr int64_t B = kTileBlock<T>;
  const int64_t K = tl.Cout, C = tl.Cin;
  const int nthreads = omp_get_max_threads();
  std::vector<T*> dU(static_cast<size_t>(nthreads), nullptr);  // per thread, in its scratch
  over_batch(tl.blocks, [&](int64_t block, int tid, std::vector<char>&) {
    T*& acc = dU[size_t(tid)];
    if (!acc) {
      acc = thread_scratch<T>(2, size_t(36 * K * C));
      std::fill(acc, acc + 36 * K * C, T(0));
    }
    BlockScratch<T> s(C, K);
    winograd_input_block<T>(tl, x, block, s);
    T* D = s.D;  // 24 x B: the 4x4 output-gradient tiles, then A dy (6 x 4)
    const int64_t valid = tl.valid(block);
    const int64_t zstride = K * B;
    for (int64_t k = 0; k < K; ++k) {
      if (valid < B)
        for (int a = 0; a < 16; ++a) std::fill(D + a * B + valid, D + (a + 1) * B, T(0));
      tl.runs(block, [&](int64_t n, int64_t ti, int64_t tj, int64_t len, int64_t l) {
        const T* plane = dy + (n * K + k) * tl.Ho * tl.Wo;
        for (int i = 0; i < 4; ++i) {
          T* d = D + i * 4 * B + l;
          if (4 * ti + i >= tl.Ho) {
            for (int j = 0; j < 4; ++j) std::fill(d + j * B, d + j * B + len, T(0));
            continue;
          }
          gather4<T>(plane + (4 * ti + i) * tl.Wo, tl.Wo, 4 * tj, len, 4, d, B);
        }
      });
      // A down the columns (4 -> 6 rows, in place in D), then along the rows, into Z.
      tile_transform<4, 6>(D, B, D, s.P + k * B, zstride, T(0), [](const T* a, T* o) { a4(a, o); });
    }
    for (int xi = 0; xi < 36; ++xi)
      gemm<T>(K, C, B, s.P + xi * zstride, B, 1, s.V + xi * C * B, 1, B, acc + xi * K * C, C,
              /*accumulate=*/true);
  });
  T* total = nullptr;
  for (T* a : dU) {
    if (!a) continue;
    if (!total) {
      total = a;
      continue;
    }
    for (int64_t i = 0; i < 36 * K * C; ++i) total[i] += a[i];
  }
  if (total)
    winograd_weight_grad_finish<T>(total, K, C, gw);
  else
    std::memset(gw, 0, sizeof(T) * size_t(K * C * 9));
}

}  // namespace

template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* out) {
  const int64_t Cg = g.C / g.groups, Kg = g.K / g.groups, HWo = g.Ho * g.Wo, HW = g.H * g.W;
  const int64_t rows = Cg * g.kh * g.kw;
  const bool pointwise = is_pointwise(g);
  if (winograd_eligible(g)) {
    const T* Up = winograd_weights<T>(
        g.K, g.C, [&](int64_t k, int64_t c, int i, int j) { return w[((k * g.C + c) * 3 + i) * 3 + j]; });
    winograd_conv<T>(Tiling<T>(g.N, g.C, g.H, g.W, g.ph, g.pw, g.K, g.Ho, g.Wo), Up, x, bias, out);
    return;
  }
  over_batch(g.N, [&](int64_t n, int, std::vector<char>& scratch) {
    const T* xn = x + n * g.C * HW;
    T* on = out + n * g.K * HWo;
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      const T* col = xn + gr * Cg * HW;
      if (!pointwise) {
        T* c = scratch_of<T>(scratch, size_t(rows * HWo));
        im2col(g, xn + gr * Cg * HW, Cg, c);
        col = c;
      }
      gemm<T>(Kg, HWo, rows, w + gr * Kg * rows, rows, 1, col, HWo, 1, on + gr * Kg * HWo, HWo);
    }
    if (bias)
      for (int64_t k = 0; k < g.K; ++k) {
        T b = bias[k];
        T* o = on + k * HWo;
        for (int64_t i = 0; i < HWo; ++i) o[i] += b;
      }
  });
}

template <typename T>
void conv2d_backward(const Conv2dGeometry& g, const T* x, const T* w, const T* gout, T* gx, T* gw, T* gb) {
  const int64_t Cg = g.C / g.groups, Kg = g.K / g.groups, HWo = g.Ho * g.Wo, HW = g.H * g.W;
  const int64_t rows = Cg * g.kh * g.kw;
  const bool pointwise = is_pointwise(g);
  const int nthreads = omp_get_max_threads();
  const size_t wsize = size_t(g.K * rows);
  // Per-thread weight-gradient accumulators (thread 0 writes straight into gw).
  std::vector<std::vector<T>> gw_partial(gw ? size_t(nthreads) : 0);
  if (gw) std::memset(gw, 0, sizeof(T) * wsize);
  if (gx && winograd_eligible(g)) {
    // dx = conv(dy, w rotated by 180 degrees with in/out channels swapped, padding 2 - p).
    const T* Up = winograd_weights<T>(
        g.C, g.K, [&](int64_t c, int64_t k, int i, int j) { return w[((k * g.C + c) * 3 + (2 - i)) * 3 + (2 - j)]; });
    winograd_conv<T>(Tiling<T>(g.N, g.K, g.Ho, g.Wo, 2 - g.ph, 2 - g.pw, g.C, g.H, g.W), Up, gout, nullptr, gx);
    gx = nullptr;  // done
  }
  if (gw && winograd_eligible(g)) {
    winograd_weight_grad<T>(Tiling<T>(g.N, g.C, g.H, g.W, g.ph, g.pw, g.K, g.Ho, g.Wo), x, gout, gw);
    gw = nullptr;  // done
  }
  if (!gx && !gw && !gb) return;
  over_batch(g.N, [&](int64_t n, int tid, std::vector<char>& scratch) {
    const T* xn = x + n * g.C * HW;
    const T* gn = gout + n * g.K * HWo;
    T* gwt = gw;
    if (gw && tid != 0) {
      auto& p = gw_partial[size_t(tid)];
      if (p.empty()) p.assign(wsize, T(0));
      gwt = p.data();
    }
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      const T* gng = gn + gr * Kg * HWo;
      if (gw) {
        const T* col = xn + gr * Cg * HW;
        if (!pointwise) {
          T* c = scratch_of<T>(scratch, size_t(rows * HWo));
          im2col(g, xn + gr * Cg * HW, Cg, c);
          col = c;
        }
        // gw_g[Kg, rows] += gout_g[Kg, HWo] * col^T[HWo, rows]
        gemm<T>(Kg, rows, HWo, gng, HWo, 1, col, 1, HWo, gwt + gr * Kg * rows, rows, /*accumulate=*/true);
      }
      if (gx) {
        T* gxn = gx + n * g.C * HW + gr * Cg * HW;
        const T* wg = w + gr * Kg * rows;
        if (pointwise) {
          // gx_g[Cg, HW] = w_g^T[Cg, Kg] * gout_g[Kg, HW]
          gemm<T>(rows, HWo, Kg, wg, 1, rows, gng, HWo, 1, gxn, HWo);
        } else {
          T* gcol = scratch_of<T>(scratch, size_t(rows * HWo));
          gemm<T>(rows, HWo, Kg, wg, 1, rows, gng, HWo, 1, gcol, HWo);
          col2im(g, gcol, Cg, gxn);
        }
      }
    }
  });
  if (gw)
    for (auto& p : gw_partial)
      if (!p.empty())
        for (size_t i = 0; i < wsize; ++i) gw[i] += p[i];
  if (gb)
    for (int64_t k = 0; k < g.K; ++k) {
      double s = 0;
      for (int64_t n = 0; n < g.N; ++n) {
        const T* p = gout + (n * g.K + k) * HWo;
        for (int64_t i = 0; i < HWo; ++i) s += double(p[i]);
      }
      gb[k] = T(s);
    }
}

template void conv2d_forward<float>(const Conv2dGeometry&, const float*, const float*, const float*, float*);
template void conv2d_forward<double>(const Conv2dGeometry&, const double*, const double*, const double*, double*);
template void conv2d_backward<float>(const Conv2dGeometry&, const float*, const float*, const float*, float*, float*,
                                     float*);
template void conv2d_backward<double>(const Conv2dGeometry&, const double*, const double*, const double*, double*,
                                      double*, double*);

}  // namespace nnkit::cpu
