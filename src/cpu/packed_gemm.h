#pragma once
// Private: a packed, cache-blocked GEMM for float and double (the Goto/BLIS layout), written
// with GCC/Clang vector extensions so that it needs no intrinsics: with -march=native on an
// AVX-512 machine each vector is one zmm register, elsewhere the compiler splits it.
//
//   for jc in N by NC:              B panel (KC x NC), packed once per (jc, pc), shared
//     for pc in K by KC:
//       for (ic, jb) tiles:         [OpenMP] A block (MC x KC) packed by the thread that uses it
//         for jr in tile by NR:
//           for ir in MC by MR:     micro-kernel: MR x NR of C in registers, KC rank-1 updates
//
// The micro-kernel keeps 8 rows x 2 vectors = 16 accumulators, enough independent FMA chains
// for two FMA pipes with a latency of 4. Edge tiles are packed with zero padding and written
// back through a small buffer. Numbers (vs Eigen 3.4 and OpenBLAS): docs/performance.md.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

namespace nnkit::cpu::packed {

// One machine vector: 64 bytes with AVX-512, 32 bytes otherwise. (With 64-byte vectors on an
// AVX2-only CPU, the 8 x 2 accumulators of the micro-kernel need 32 ymm registers of 16 and
// spill on every step: a 1024^3 float product ran at 2 GFLOP/s.)
#if defined(__AVX512F__)
inline constexpr int kVecBytes = 64;
#else
inline constexpr int kVecBytes = 32;
#endif
template <typename T>
struct Vec;
template <>
struct Vec<float> {
  typedef float type __attribute__((vector_size(kVecBytes), aligned(kVecBytes)));
};
template <>
struct Vec<double> {
  typedef double type __attribute__((vector_size(kVecBytes), aligned(kVecBytes)));
};
template <>
struct Vec<int64_t> {  // for the small integer products in gemm.cpp
  typedef int64_t type __attribute__((vector_size(kVecBytes), aligned(kVecBytes)));
};

template <typename T>
struct Blocking {
  static constexpr int64_t W = kVecBytes / sizeof(T);  // lanes per vector
  static constexpr int64_t MR = 8;
  static constexpr int64_t NR = 2 * W;
  static constexpr int64_t KC = 512;   // tuned on Zen 4: 256 -> 93, 512 -> 101 GFLOP/s (1 core)
  static constexpr int64_t MC = 128;   // A block: MC x KC (256 KiB of float) stays in L2
  static constexpr int64_t NC = 2048;  // B panel: KC x NC (4 MiB of float) in L3
  static constexpr int64_t NB = 8 * NR;  // columns per parallel tile
};

// Packing buffers, kept per calling thread and reused: a fresh multi-megabyte buffer per call
// would come from mmap and pay a page fault per 4 KiB every time (a convolution calls GEMM
// once per sample). slot 0: B panel, slot 1: A blocks.
struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
template <typename T>
T* scratch(int slot, int64_t n) {
  struct Buffer {
    std::unique_ptr<char[], FreeDeleter> data;
    size_t bytes = 0;
  };
  thread_local Buffer buffers[2];
  Buffer& b = buffers[slot];
  const size_t need = (size_t(std::max<int64_t>(n, 1)) * sizeof(T) + 63) & ~size_t(63);
  if (need > b.bytes) {
    b.data.reset(static_cast<char*>(std::aligned_alloc(64, need)));
    if (!b.data) throw std::bad_alloc();
    b.bytes = need;
  }
  return reinterpret_cast<T*>(b.data.get());
}

// One NR-wide column panel of B: kc rows of NR values (zero beyond `cols`).
template <typename T>
void pack_b_panel(int64_t kc, int64_t cols, const T* B, int64_t b_rs, int64_t b_cs, T* out) {
  constexpr int64_t NR = Blocking<T>::NR;
  for (int64_t k = 0; k < kc; ++k) {
    const T* src = B + k * b_rs;
    T* d = out + k * NR;
    if (b_cs == 1 && cols == NR) {
      std::memcpy(d, src, NR * sizeof(T));
    } else {
      int64_t j = 0;
      for (; j < cols; ++j) d[j] = src[j * b_cs];
      for (; j < NR; ++j) d[j] = T(0);
    }
  }
}

// One MR-tall row panel of A: kc columns of MR values (zero beyond `rows`).
template <typename T>
void pack_a_panel(int64_t rows, int64_t kc, const T* A, int64_t a_rs, int64_t a_cs, T* out) {
  constexpr int64_t MR = Blocking<T>::MR;
  if (a_cs == 1) {
    for (int64_t r = 0; r < rows; ++r) {
      const T* src = A + r * a_rs;
      for (int64_t k = 0; k < kc; ++k) out[k * MR + r] = src[k];
    }
  } else {
    for (int64_t k = 0; k < kc; ++k) {
      const T* src = A + k * a_cs;
      for (int64_t r = 0; r < rows; ++r) out[k * MR + r] = src[r * a_rs];
    }
  }
  for (int64_t r = rows; r < MR; ++r)
    for (int64_t k = 0; k < kc; ++k) out[k * MR + r] = T(0);
}

// C[rows x cols] (+)= Ap (kc x MR) * Bp (kc x NR), for rows <= MR, cols <= NR.
template <typename T>
inline void micro_kernel(int64_t kc, const T* __restrict ap, const T* __restrict bp, T* c, int64_t ldc, bool add,
                         int64_t rows, int64_t cols) {
  using V = typename Vec<T>::type;
  constexpr int64_t MR = Blocking<T>::MR, NR = Blocking<T>::NR, W = Blocking<T>::W;
  V c00 = {}, c01 = {}, c10 = {}, c11 = {}, c20 = {}, c21 = {}, c30 = {}, c31 = {};
  V c40 = {}, c41 = {}, c50 = {}, c51 = {}, c60 = {}, c61 = {}, c70 = {}, c71 = {};
  for (int64_t k = 0; k < kc; ++k) {
    const V b0 = *reinterpret_cast<const V*>(bp);
    const V b1 = *reinterpret_cast<const V*>(bp + W);
    c00 += ap[0] * b0;
    c01 += ap[0] * b1;
    c10 += ap[1] * b0;
    c11 += ap[1] * b1;
    c20 += ap[2] * b0;
    c21 += ap[2] * b1;
    c30 += ap[3] * b0;
    c31 += ap[3] * b1;
    c40 += ap[4] * b0;
    c41 += ap[4] * b1;
    c50 += ap[5] * b0;
    c51 += ap[5] * b1;
    c60 += ap[6] * b0;
    c61 += ap[6] * b1;
    c70 += ap[7] * b0;
    c71 += ap[7] * b1;
    ap += MR;
    bp += NR;
  }
  const V acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                        {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
  if (rows == MR && cols == NR) {
    for (int64_t r = 0; r < MR; ++r) {
      T* row = c + r * ldc;
      for (int64_t v = 0; v < 2; ++v) {
        V out = acc[r][v];
        if (add) {
          V old;
          std::memcpy(&old, row + v * W, sizeof(V));
          out += old;
        }
        std::memcpy(row + v * W, &out, sizeof(V));
      }
    }
    return;
  }
  alignas(64) T tile[MR * NR];
  std::memcpy(tile, acc, sizeof(tile));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      const T v = tile[r * NR + j];
      c[r * ldc + j] = add ? T(c[r * ldc + j] + v) : v;
    }
}

// C[M,N] (row stride ldc) = A*B (+ C when accumulate); any strides for A and B.
// Threads split the (MC rows x NB columns) tiles of each (jc, pc) step, so a product with few
// rows (a convolution's output channels) still uses every core. Consecutive tiles of a thread
// share their A block, which that thread packs right before use (hot in its own L2).
template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_rs, int64_t a_cs, const T* B, int64_t b_rs,
          int64_t b_cs, T* C, int64_t ldc, bool accumulate) {
  using Bk = Blocking<T>;
  constexpr int64_t MR = Bk::MR, NR = Bk::NR, KC = Bk::KC, MC = Bk::MC, NC = Bk::NC, NB = Bk::NB;
  // K in equal steps of at most KC (K = 576 is two steps of 288, not 512 + 64).
  const int64_t k_steps = (K + KC - 1) / KC;
  const int64_t kc_max = (K + k_steps - 1) / k_steps;
  const bool parallel = !omp_in_parallel() && omp_get_max_threads() > 1 && double(M) * double(N) * double(K) > 1e6;
  const int threads = parallel ? omp_get_max_threads() : 1;
  const int64_t a_block = kc_max * ((std::min(MC, M) + MR - 1) / MR * MR);
  T* const bpack = scratch<T>(0, kc_max * ((std::min(NC, N) + NR - 1) / NR * NR));
  T* const apack = scratch<T>(1, a_block * threads);
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    for (int64_t pc = 0; pc < K; pc += kc_max) {
      const int64_t kc = std::min(kc_max, K - pc);
      const bool add = accumulate || pc > 0;
      const int64_t b_panels = (nc + NR - 1) / NR;
      const int64_t m_blocks = (M + MC - 1) / MC, n_blocks = (nc + NB - 1) / NB;
#pragma omp parallel num_threads(threads) if (parallel)
      {
#pragma omp for schedule(static)
        for (int64_t p = 0; p < b_panels; ++p) {
          const int64_t j0 = p * NR;
          pack_b_panel<T>(kc, std::min(NR, nc - j0), B + pc * b_rs + (jc + j0) * b_cs, b_rs, b_cs,
                          bpack + p * kc * NR);
        }
        // (the implicit barrier above: B is packed before anyone uses it)
        T* my_a = apack + (parallel ? omp_get_thread_num() : 0) * a_block;
        int64_t packed_ib = -1;
#pragma omp for collapse(2) schedule(static)
        for (int64_t ib = 0; ib < m_blocks; ++ib)
          for (int64_t nb = 0; nb < n_blocks; ++nb) {
            const int64_t ic = ib * MC, mc = std::min(MC, M - ic);
            if (ib != packed_ib) {
              for (int64_t i0 = 0; i0 < mc; i0 += MR)
                pack_a_panel<T>(std::min(MR, mc - i0), kc, A + (ic + i0) * a_rs + pc * a_cs, a_rs, a_cs,
                                my_a + (i0 / MR) * kc * MR);
              packed_ib = ib;
            }
            const int64_t j_end = std::min(nc, (nb + 1) * NB);
            for (int64_t jr = nb * NB; jr < j_end; jr += NR) {
              const int64_t cols = std::min(NR, nc - jr);
              const T* bp = bpack + (jr / NR) * kc * NR;
              for (int64_t ir = 0; ir < mc; ir += MR)
                micro_kernel<T>(kc, my_a + (ir / MR) * kc * MR, bp, C + (ic + ir) * ldc + jc + jr, ldc, add,
                                std::min(MR, mc - ir), cols);
            }
          }
      }
    }
  }
}

}  // namespace nnkit::cpu::packed
