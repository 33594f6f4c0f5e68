// Convolution on the CPU: Winograd F(2x2,3x3) for 3x3 stride-1 convolutions (below), else
// im2col per sample (skipped for 1x1 stride-1 convolutions, whose input already is the column
// matrix) and one GEMM per group; OpenMP over the batch (each thread runs its GEMMs
// single-threaded); weight gradients are reduced across threads at the end.
#include "cpu/conv.h"

#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "cpu/kernels.h"

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

// ---- Winograd F(2x2, 3x3) for 3x3, stride-1, undilated, ungrouped convolutions ----
// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016.) Each 2x2 output
// tile is A^T [ (G g G^T) .* (B^T d B) ] A over a 4x4 input patch d: 16 multiplies instead of
// 36, done as 16 GEMMs [Cout x Cin] x [Cin x tiles]. The transforms only add, subtract and
// halve, so results stay within a few float32 ulps of the direct sum.

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

// U[xi][co][ci] = (G w[co][ci] G^T)[xi] for a 3x3 kernel; w indexed by wat(co, ci, i, j).
template <typename T, typename W>
void winograd_weights(int64_t Cout, int64_t Cin, W wat, T* U) {
  const int64_t plane = Cout * Cin;
  for (int64_t co = 0; co < Cout; ++co)
    for (int64_t ci = 0; ci < Cin; ++ci) {
      double g[3][3], gg[4][3], u[4][4];
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) g[i][j] = double(wat(co, ci, i, j));
      for (int j = 0; j < 3; ++j) {
        gg[0][j] = g[0][j];
        gg[1][j] = 0.5 * (g[0][j] + g[1][j] + g[2][j]);
        gg[2][j] = 0.5 * (g[0][j] - g[1][j] + g[2][j]);
        gg[3][j] = g[2][j];
      }
      for (int i = 0; i < 4; ++i) {
        u[i][0] = gg[i][0];
        u[i][1] = 0.5 * (gg[i][0] + gg[i][1] + gg[i][2]);
        u[i][2] = 0.5 * (gg[i][0] - gg[i][1] + gg[i][2]);
        u[i][3] = gg[i][2];
      }
      for (int xi = 0; xi < 16; ++xi) U[xi * plane + co * Cin + ci] = T(u[xi / 4][xi % 4]);
    }
}

// V[xi][c][t] = (B^T d B)[xi] for each channel c of in[Cin, Hin, Win] (zero padding ph, pw)
// and 4x4 patch d of tile t (th x tw tiles of a 2x2-tiled output). Work buffers: pad
// (Hp * Wp), ebuf and obuf (4 * (tw + 1) each), btbuf (16 * tw).
template <typename T>
void winograd_input(const T* in, int64_t Cin, int64_t Hin, int64_t Win, int64_t ph, int64_t pw, int64_t th, int64_t tw,
                    T* V, T* pad, T* ebuf, T* obuf, T* btbuf) {
  const int64_t tiles = th * tw, Hp = 2 * th + 2, Wp = 2 * tw + 2;
  // Input transform, one channel at a time through a zero-padded copy (cache-resident).
  for (int64_t c = 0; c < Cin; ++c) {
    std::memset(pad, 0, sizeof(T) * size_t(Hp * Wp));
    const T* src = in + c * Hin * Win;
    for (int64_t r = 0; r < Hin; ++r) {
      int64_t pr = r + ph;
      if (pr < 0 || pr >= Hp) continue;
      int64_t lo = std::max<int64_t>(0, -pw), hi = std::min<int64_t>(Win, Wp - pw);
      if (hi > lo) std::memcpy(pad + pr * Wp + lo + pw, src + r * Win + lo, sizeof(T) * size_t(hi - lo));
    }
    T* vc = V + c * tiles;
    const int64_t vstride = Cin * tiles;  // between xi planes
    // Rows deinterleaved into even/odd columns so that every step below is a contiguous,
    // vectorizable loop over the tiles of a row: patch column b of tile tj is E[tj + b/2]
    // (b even) or O[tj + b/2] (b odd).
    for (int64_t ti = 0; ti < th; ++ti) {
      T* E = ebuf;
      T* O = obuf;
      for (int a = 0; a < 4; ++a) {
        const T* r = pad + (2 * ti + a) * Wp;
        T* e = E + a * (tw + 1);
        T* od = O + a * (tw + 1);
#pragma GCC ivdep
        for (int64_t q = 0; q <= tw; ++q) {
          e[q] = r[2 * q];
          od[q] = r[2 * q + 1];
        }
      }
      // B^T d over the rows (a), for each patch column b: b-th column as (array, shift).
      T* bt = btbuf;  // [4 rows][4 cols][tw]
      for (int b = 0; b < 4; ++b) {
        const T* src = (b % 2 == 0 ? E : O) + b / 2;
        const T* d0 = src;
        const T* d1 = src + (tw + 1);
        const T* d2 = src + 2 * (tw + 1);
        const T* d3 = src + 3 * (tw + 1);
        T* o0 = bt + (0 * 4 + b) * tw;
        T* o1 = bt + (1 * 4 + b) * tw;
        T* o2 = bt + (2 * 4 + b) * tw;
        T* o3 = bt + (3 * 4 + b) * tw;
#pragma GCC ivdep
        for (int64_t tj = 0; tj < tw; ++tj) {
          o0[tj] = d0[tj] - d2[tj];
          o1[tj] = d1[tj] + d2[tj];
          o2[tj] = d2[tj] - d1[tj];
          o3[tj] = d1[tj] - d3[tj];
        }
      }
      // (B^T d) B over the columns, straight into the 16 planes of V.
      T* vt = vc + ti * tw;
      for (int i = 0; i < 4; ++i) {
        const T* b0 = bt + (i * 4 + 0) * tw;
        const T* b1 = bt + (i * 4 + 1) * tw;
        const T* b2 = bt + (i * 4 + 2) * tw;
        const T* b3 = bt + (i * 4 + 3) * tw;
        T* v0 = vt + (i * 4 + 0) * vstride;
        T* v1 = vt + (i * 4 + 1) * vstride;
        T* v2 = vt + (i * 4 + 2) * vstride;
        T* v3 = vt + (i * 4 + 3) * vstride;
#pragma GCC ivdep
        for (int64_t tj = 0; tj < tw; ++tj) {
          v0[tj] = b0[tj] - b2[tj];
          v1[tj] = b1[tj] + b2[tj];
          v2[tj] = b2[tj] - b1[tj];
          v3[tj] = b1[tj] - b3[tj];
        }
      }
    }
  }
}

// Scratch for one sample: V (16 x Cin x tiles), M (16 x Cout x tiles) and the work buffers.
template <typename T>
struct WinogradScratch {
  T *V, *M, *pad, *ebuf, *obuf, *btbuf, *ybuf;
  WinogradScratch(std::vector<char>& scratch, int64_t Cin, int64_t Cout, int64_t th, int64_t tw) {
    const int64_t tiles = th * tw, Hp = 2 * th + 2, Wp = 2 * tw + 2;
    const size_t v_elems = size_t(16 * Cin * tiles), m_elems = size_t(16 * Cout * tiles);
    const size_t row_elems = size_t(4 * (tw + 1));
    V = scratch_of<T>(scratch, v_elems + m_elems + size_t(Hp * Wp) + 2 * row_elems + size_t(16 * tw) + size_t(4 * tw));
    M = V + v_elems;
    pad = M + m_elems;
    ebuf = pad + Hp * Wp;
    obuf = ebuf + row_elems;
    btbuf = obuf + row_elems;
    ybuf = btbuf + 16 * tw;
  }
};

// out[Cout, Ho, Wo] = conv(in[Cin, Hin, Win], weights given as U) with zero padding (ph, pw),
// for one sample; scratch holds the transformed input and products.
template <typename T>
void winograd_sample(const T* in, int64_t Cin, int64_t Hin, int64_t Win, int64_t ph, int64_t pw, const T* U,
                     int64_t Cout, int64_t Ho, int64_t Wo, T* out, std::vector<char>& scratch) {
  const int64_t th = (Ho + 1) / 2, tw = (Wo + 1) / 2, tiles = th * tw;
  WinogradScratch<T> ws(scratch, Cin, Cout, th, tw);
  T *V = ws.V, *M = ws.M, *pad = ws.pad, *ebuf = ws.ebuf, *obuf = ws.obuf, *btbuf = ws.btbuf, *ybuf = ws.ybuf;
  winograd_input<T>(in, Cin, Hin, Win, ph, pw, th, tw, V, pad, ebuf, obuf, btbuf);
  // M[xi] = U[xi] [Cout x Cin] * V[xi] [Cin x tiles]
  for (int xi = 0; xi < 16; ++xi)
    gemm<T>(Cout, tiles, Cin, U + xi * Cout * Cin, Cin, 1, V + xi * Cin * tiles, tiles, 1, M + xi * Cout * tiles, tiles);
  // Output transform: y = A^T m A, 2x2 per tile, clipped at the output's edge; vectorized over
  // the tiles of a row, then interleaved into the output rows.
  const int64_t mstride = Cout * tiles;
  for (int64_t k = 0; k < Cout; ++k) {
    const T* mk = M + k * tiles;
    T* ok = out + k * Ho * Wo;
    for (int64_t ti = 0; ti < th; ++ti) {
      const T* m[16];
      for (int xi = 0; xi < 16; ++xi) m[xi] = mk + xi * mstride + ti * tw;
      T* y00 = ybuf;
      T* y01 = ybuf + tw;
      T* y10 = ybuf + 2 * tw;
      T* y11 = ybuf + 3 * tw;
#pragma GCC ivdep
      for (int64_t tj = 0; tj < tw; ++tj) {
        // s_r[j] = (A^T m)[r][j]
        T s00 = m[0][tj] + m[4][tj] + m[8][tj], s01 = m[1][tj] + m[5][tj] + m[9][tj];
        T s02 = m[2][tj] + m[6][tj] + m[10][tj], s03 = m[3][tj] + m[7][tj] + m[11][tj];
        T s10 = m[4][tj] - m[8][tj] - m[12][tj], s11 = m[5][tj] - m[9][tj] - m[13][tj];
        T s12 = m[6][tj] - m[10][tj] - m[14][tj], s13 = m[7][tj] - m[11][tj] - m[15][tj];
        y00[tj] = s00 + s01 + s02;
        y01[tj] = s01 - s02 - s03;
        y10[tj] = s10 + s11 + s12;
        y11[tj] = s11 - s12 - s13;
      }
      const int64_t oh = 2 * ti;
      for (int i = 0; i < 2 && oh + i < Ho; ++i) {
        T* row = ok + (oh + i) * Wo;
        const T* ya = i == 0 ? y00 : y10;
        const T* yb = i == 0 ? y01 : y11;
        const int64_t full = Wo / 2;
#pragma GCC ivdep
        for (int64_t tj = 0; tj < full; ++tj) {
          row[2 * tj] = ya[tj];
          row[2 * tj + 1] = yb[tj];
        }
        if (Wo % 2) row[Wo - 1] = ya[full];
      }
    }
  }
}

// Weight gradient of the same tiling: the forward is y = A^T (U .* V) A per tile with
// U = G w G^T, so dU = sum over tiles of (A dy A^T) .* V and dw = G^T dU G. This sample's
// share is accumulated into dU[xi][k][c] (16 GEMMs [K x tiles] x [tiles x C]).
template <typename T>
void winograd_weight_grad_sample(const Conv2dGeometry& g, const T* xn, const T* dyn, T* dU, std::vector<char>& scratch) {
  const int64_t th = (g.Ho + 1) / 2, tw = (g.Wo + 1) / 2, tiles = th * tw;
  WinogradScratch<T> ws(scratch, g.C, g.K, th, tw);
  winograd_input<T>(xn, g.C, g.H, g.W, g.ph, g.pw, th, tw, ws.V, ws.pad, ws.ebuf, ws.obuf, ws.btbuf);
  T* Z = ws.M;  // [16][K][tiles]
  const int64_t zstride = g.K * tiles;
  T* a0 = ws.btbuf;  // dy tile entries per tile of a row: a = top row, b = bottom row
  T* a1 = a0 + tw;
  T* b0 = a1 + tw;
  T* b1 = b0 + tw;
  for (int64_t k = 0; k < g.K; ++k) {
    const T* dk = dyn + k * g.Ho * g.Wo;
    for (int64_t ti = 0; ti < th; ++ti) {
      const T* top = dk + (2 * ti) * g.Wo;
      const T* bot = 2 * ti + 1 < g.Ho ? top + g.Wo : nullptr;
      const int64_t full = g.Wo / 2;
      for (int64_t tj = 0; tj < full; ++tj) {
        a0[tj] = top[2 * tj];
        a1[tj] = top[2 * tj + 1];
        b0[tj] = bot ? bot[2 * tj] : T(0);
        b1[tj] = bot ? bot[2 * tj + 1] : T(0);
      }
      if (g.Wo % 2) {
        a0[full] = top[g.Wo - 1];
        a1[full] = T(0);
        b0[full] = bot ? bot[g.Wo - 1] : T(0);
        b1[full] = T(0);
      }
      T* z = Z + k * tiles + ti * tw;
#pragma GCC ivdep
      for (int64_t tj = 0; tj < tw; ++tj) {
        // P = A dy (4x2), then Z = P A^T (4x4).
        const T p[4][2] = {{a0[tj], a1[tj]},
                           {a0[tj] + b0[tj], a1[tj] + b1[tj]},
                           {a0[tj] - b0[tj], a1[tj] - b1[tj]},
                           {-b0[tj], -b1[tj]}};
        for (int i = 0; i < 4; ++i) {
          z[(i * 4 + 0) * zstride + tj] = p[i][0];
          z[(i * 4 + 1) * zstride + tj] = p[i][0] + p[i][1];
          z[(i * 4 + 2) * zstride + tj] = p[i][0] - p[i][1];
          z[(i * 4 + 3) * zstride + tj] = -p[i][1];
        }
      }
    }
  }
  for (int xi = 0; xi < 16; ++xi)
    gemm<T>(g.K, g.C, tiles, Z + xi * zstride, tiles, 1, ws.V + xi * g.C * tiles, 1, tiles, dU + xi * g.K * g.C, g.C,
            /*accumulate=*/true);
}

// dw[k][c] = G^T dU[.][k][c] G for 3x3 kernels.
template <typename T>
void winograd_weight_grad_finish(const T* dU, int64_t K, int64_t C, T* gw) {
  const int64_t plane = K * C;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c) {
      double d[4][4], q[3][4];
      for (int xi = 0; xi < 16; ++xi) d[xi / 4][xi % 4] = double(dU[xi * plane + k * C + c]);
      for (int j = 0; j < 4; ++j) {
        q[0][j] = d[0][j] + 0.5 * (d[1][j] + d[2][j]);
        q[1][j] = 0.5 * (d[1][j] - d[2][j]);
        q[2][j] = 0.5 * (d[1][j] + d[2][j]) + d[3][j];
      }
      T* out = gw + (k * C + c) * 9;
      for (int i = 0; i < 3; ++i) {
        out[i * 3 + 0] = T(q[i][0] + 0.5 * (q[i][1] + q[i][2]));
        out[i * 3 + 1] = T(0.5 * (q[i][1] - q[i][2]));
        out[i * 3 + 2] = T(0.5 * (q[i][1] + q[i][2]) + q[i][3]);
      }
    }
}

}  // namespace

template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* out) {
  const int64_t Cg = g.C / g.groups, Kg = g.K / g.groups, HWo = g.Ho * g.Wo, HW = g.H * g.W;
  const int64_t rows = Cg * g.kh * g.kw;
  const bool pointwise = is_pointwise(g);
  std::vector<T> U;
  if (winograd_eligible(g)) {
    U.resize(size_t(16 * g.K * g.C));
    winograd_weights<T>(g.K, g.C, [&](int64_t k, int64_t c, int i, int j) { return w[((k * g.C + c) * 3 + i) * 3 + j]; },
                        U.data());
  }
  over_batch(g.N, [&](int64_t n, int, std::vector<char>& scratch) {
    const T* xn = x + n * g.C * HW;
    T* on = out + n * g.K * HWo;
    if (!U.empty()) winograd_sample<T>(xn, g.C, g.H, g.W, g.ph, g.pw, U.data(), g.K, g.Ho, g.Wo, on, scratch);
    for (int64_t gr = 0; gr < g.groups && U.empty(); ++gr) {
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
    std::vector<T> U(size_t(16 * g.C * g.K));
    winograd_weights<T>(g.C, g.K,
                        [&](int64_t c, int64_t k, int i, int j) { return w[((k * g.C + c) * 3 + (2 - i)) * 3 + (2 - j)]; },
                        U.data());
    over_batch(g.N, [&](int64_t n, int, std::vector<char>& scratch) {
      winograd_sample<T>(gout + n * g.K * HWo, g.K, g.Ho, g.Wo, 2 - g.ph, 2 - g.pw, U.data(), g.C, g.H, g.W,
                         gx + n * g.C * HW, scratch);
    });
    gx = nullptr;  // done
  }
  if (gw && winograd_eligible(g)) {
    std::vector<std::vector<T>> dU(static_cast<size_t>(nthreads));
    over_batch(g.N, [&](int64_t n, int tid, std::vector<char>& scratch) {
      auto& acc = dU[size_t(tid)];
      if (acc.empty()) acc.assign(size_t(16 * g.K * g.C), T(0));
      winograd_weight_grad_sample<T>(g, x + n * g.C * HW, gout + n * g.K * HWo, acc.data(), scratch);
    });
    std::vector<T>* total = nullptr;
    for (auto& a : dU) {
      if (a.empty()) continue;
      if (!total) {
        total = &a;
        continue;
      }
      for (size_t i = 0; i < a.size(); ++i) (*total)[i] += a[i];
    }
    if (total)
      winograd_weight_grad_finish<T>(total->data(), g.K, g.C, gw);
    else
      std::memset(gw, 0, sizeof(T) * wsize);
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
