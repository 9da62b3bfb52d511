// Products with weight matrices stored as GGUF's 4-bit grid values, in fp32.
//
// A matrix W (n, k) whose every group of 32 input values lies on a 16-level grid,
//     W[i, 32 g + j] = scale[i, g] * q + low[i, g],   q in 0..15,
// (what GGUF Q4_0 and Q4_1 blocks de-quantise to: a multiply, then an add, in fp32) is held
// as 4-bit codes, a sixth of its fp32 bytes. Byte 16 g + j of row i holds q for column
// 32 g + j in its low nibble and for column 32 g + 16 + j in its high nibble.
//
// q4_linear rebuilds each weight bit for bit inside the registers (a 16-entry table per
// group, scale * [0..15] + low, indexed by the codes) and multiplies it with fp32
// activations, summing in fp32: the same products as F.linear on the de-quantised matrix,
// added in another order. A decode step is bound by the bytes of weights it reads, so
// reading 4 bits instead of 32 per weight is where the speed comes from.
//
// Built with -ffp-contract=off: the table's multiply and add must stay two roundings, as in
// the de-quantisation, or a weight could differ from the matrix in its last bit.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/library.h>

namespace {

constexpr int64_t kGroup = 32;

inline __m512 group_table(const float* scale, const float* low) {
  const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  return _mm512_add_ps(_mm512_mul_ps(iota, _mm512_set1_ps(*scale)), _mm512_set1_ps(*low));
}

// y[r, i] for M rows of x and the NB output rows i = first .. first + NB - 1. Each weight
// group is rebuilt once and used for all M rows, whose activations stay in registers.
template <int M, int NB>
inline void tile(const float* x, int64_t k, const uint8_t* codes, const float* scale,
                 const float* low, float* y, int64_t ldy, int64_t first) {
  const int64_t groups = k / kGroup;
  __m512 acc[M][NB];
  for (int r = 0; r < M; ++r)
    for (int b = 0; b < NB; ++b) acc[r][b] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    __m512 x0[M], x1[M];
    for (int r = 0; r < M; ++r) {
      x0[r] = _mm512_loadu_ps(x + r * k + g * kGroup);
      x1[r] = _mm512_loadu_ps(x + r * k + g * kGroup + 16);
    }
    for (int b = 0; b < NB; ++b) {
      const int64_t i = first + b;
      const __m512 table = group_table(scale + i * groups + g, low + i * groups + g);
      const __m512i bytes = _mm512_cvtepu8_epi32(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + i * (k / 2) + g * 16)));
      // vpermps reads the low 4 bits of each index: the low nibble as is, the high one shifted
      const __m512 w0 = _mm512_permutexvar_ps(bytes, table);
      const __m512 w1 = _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), table);
      for (int r = 0; r < M; ++r) {
        acc[r][b] = _mm512_fmadd_ps(w0, x0[r], acc[r][b]);
        acc[r][b] = _mm512_fmadd_ps(w1, x1[r], acc[r][b]);
      }
    }
  }
  for (int r = 0; r < M; ++r)
    for (int b = 0; b < NB; ++b) y[r * ldy + first + b] = _mm512_reduce_add_ps(acc[r][b]);
}

// All m rows of x against NB output rows, four rows of x at a time (the weights stay in L1
// between the row tiles).
template <int NB>
void outputs(const float* x, int64_t m, int64_t k, const uint8_t* codes, const float* scale,
             const float* low, float* y, int64_t ldy, int64_t first) {
  int64_t r = 0;
  for (; r + 4 <= m; r += 4) tile<4, NB>(x + r * k, k, codes, scale, low, y + r * ldy, ldy, first);
  const float* xr = x + r * k;
  float* yr = y + r * ldy;
  switch (m - r) {
    case 3: tile<3, NB>(xr, k, codes, scale, low, yr, ldy, first); break;
    case 2: tile<2, NB>(xr, k, codes, scale, low, yr, ldy, first); break;
    case 1: tile<1, NB>(xr, k, codes, scale, low, yr, ldy, first); break;
    default: break;
  }
}

void check(const at::Tensor& codes, const at::Tensor& scale, const at::Tensor& low) {
  TORCH_CHECK(codes.dim() == 2 && codes.scalar_type() == at::kByte && codes.is_contiguous(),
              "codes must be a contiguous (n, k/2) uint8 tensor");
  const int64_t n = codes.size(0), groups = codes.size(1) * 2 / kGroup;
  TORCH_CHECK(codes.size(1) * 2 == groups * kGroup, "k must be a multiple of 32");
  for (const at::Tensor* t : {&scale, &low})
    TORCH_CHECK(t->scalar_type() == at::kFloat && t->is_contiguous() && t->dim() == 2 &&
                    t->size(0) == n && t->size(1) == groups,
                "scale and low must be contiguous (n, k/32) float32 tensors");
}

}  // namespace

// x (m, k) fp32 @ W.T -> (m, n) fp32
at::Tensor q4_linear(const at::Tensor& x, const at::Tensor& codes, const at::Tensor& scale,
                     const at::Tensor& low) {
  check(codes, scale, low);
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat && x.is_contiguous() &&
                  x.size(1) == codes.size(1) * 2,
              "x must be a contiguous (m, k) float32 tensor");
  const int64_t m = x.size(0), k = x.size(1), n = codes.size(0);
  at::Tensor y = at::empty({m, n}, x.options());
  const float* xp = x.data_ptr<float>();
  const uint8_t* cp = codes.data_ptr<uint8_t>();
  const float* sp = scale.data_ptr<float>();
  const float* lp = low.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  constexpr int NB = 2;
  at::parallel_for(0, (n + NB - 1) / NB, 8, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t first = b * NB;
      if (first + NB <= n) {
        outputs<NB>(xp, m, k, cp, sp, lp, yp, n, first);
      } else {
        for (int64_t i = first; i < n; ++i) outputs<1>(xp, m, k, cp, sp, lp, yp, n, i);
      }
    }
  });
  return y;
}

// The de-quantised matrix W (n, k) fp32, bit for bit.
at::Tensor q4_dequantize(const at::Tensor& codes, const at::Tensor& scale, const at::Tensor& low) {
  check(codes, scale, low);
  const int64_t n = codes.size(0), k = codes.size(1) * 2, groups = k / kGroup;
  at::Tensor w = at::empty({n, k}, scale.options());
  const uint8_t* cp = codes.data_ptr<uint8_t>();
  const float* sp = scale.data_ptr<float>();
  const float* lp = low.data_ptr<float>();
  float* wp = w.data_ptr<float>();
  at::parallel_for(0, n * groups, 256, [&](int64_t begin, int64_t end) {
    for (int64_t ig = begin; ig < end; ++ig) {
      const __m512 table = group_table(sp + ig, lp + ig);
      const __m512i bytes = _mm512_cvtepu8_epi32(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(cp + ig * 16)));
      _mm512_storeu_ps(wp + ig * kGroup, _mm512_permutexvar_ps(bytes, table));
      _mm512_storeu_ps(wp + ig * kGroup + 16,
                       _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), table));
    }
  });
  return w;
}

TORCH_LIBRARY(ragtune, lib) {
  lib.def("q4_linear(Tensor x, Tensor codes, Tensor scale, Tensor low) -> Tensor", &q4_linear);
  lib.def("q4_dequantize(Tensor codes, Tensor scale, Tensor low) -> Tensor", &q4_dequantize);
}
