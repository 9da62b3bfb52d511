// An int8 linear layer for encoders on CPUs with AVX-512 VNNI: y = x @ W.T + b.
//
// Activations are quantised per row (per token): s_r = max|x_r| / 127, x_r ~ s_r * q_r with
// q_r in -127..127, so a token's output depends on that token alone, never on the other
// texts of its batch (a per-tensor scale, as torch's dynamic int8 linear uses, lets one
// outlier in a batch coarsen every other row). Weights are int8 per output channel,
// W_c ~ t_c * w_c. vpdpbusd multiplies unsigned by signed bytes, so rows are stored as
// q + 128 and the product corrected by 128 * sum_k w_c[k]:
//     y[r, c] = s_r * t_c * (sum_k (q_r[k] + 128) w_c[k] - 128 * sum_k w_c[k]) + b[c].
// Sums are exact in int32 (at most 255 * 127 * k).
//
// Weights are packed once (int8_pack) in tiles of 64 output channels: for each group of 4
// inputs, 64 x 4 bytes, the layout vpdpbusd reads as 4 registers of 16 channels.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/library.h>

#include "vec.h"

#include <algorithm>
#include <cmath>
#include <vector>

// VNNI only in this file's own functions (after the headers), and these run only where
// int8_vnni_supported() says the CPU has it
#pragma GCC push_options
#pragma GCC target("avx512vnni")

namespace {

// acc += u8 bytes of x . s8 bytes of w, in place: with the intrinsic, GCC 12 copies each
// accumulator to a new register and back on every step
inline void dpbusd(__m512i& acc, __m512i x, __m512i w) {
  asm("vpdpbusd %[w], %[x], %[acc]" : [acc] "+v"(acc) : [x] "v"(x), [w] "v"(w));
}

constexpr int64_t kTile = 64;  // output channels per packed tile (4 registers)
constexpr int kRows = 4;       // rows of x per register tile

// y[r, n0 .. n0 + 63] for up to 4 rows (a row pointer repeated for missing ones, whose
// results are not written): the 16 accumulators are named registers over the whole k loop
// (an array of them would live on the stack), then scaled, corrected and written.
template <bool Gelu>
inline void rows_tile(int rows, const uint8_t* a, int64_t k, const float* row_scale,
                      const int8_t* w, const float* col_scale, const int32_t* col_sum,
                      const float* bias, float* y, int64_t ldy, int64_t n0, int64_t n) {
  const uint8_t* a0 = a;
  const uint8_t* a1 = a + (rows > 1 ? 1 : 0) * k;
  const uint8_t* a2 = a + (rows > 2 ? 2 : 0) * k;
  const uint8_t* a3 = a + (rows > 3 ? 3 : 0) * k;
  __m512i c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00;
  __m512i c10 = c00, c11 = c00, c12 = c00, c13 = c00;
  __m512i c20 = c00, c21 = c00, c22 = c00, c23 = c00;
  __m512i c30 = c00, c31 = c00, c32 = c00, c33 = c00;
  const int64_t quads = k / 4;
  for (int64_t kq = 0; kq < quads; ++kq) {
    const int8_t* wq = w + kq * 256;
    const __m512i w0 = _mm512_loadu_si512(wq), w1 = _mm512_loadu_si512(wq + 64);
    const __m512i w2 = _mm512_loadu_si512(wq + 128), w3 = _mm512_loadu_si512(wq + 192);
    __m512i x = _mm512_set1_epi32(*reinterpret_cast<const int32_t*>(a0 + kq * 4));
    dpbusd(c00, x, w0); dpbusd(c01, x, w1); dpbusd(c02, x, w2); dpbusd(c03, x, w3);
    x = _mm512_set1_epi32(*reinterpret_cast<const int32_t*>(a1 + kq * 4));
    dpbusd(c10, x, w0); dpbusd(c11, x, w1); dpbusd(c12, x, w2); dpbusd(c13, x, w3);
    x = _mm512_set1_epi32(*reinterpret_cast<const int32_t*>(a2 + kq * 4));
    dpbusd(c20, x, w0); dpbusd(c21, x, w1); dpbusd(c22, x, w2); dpbusd(c23, x, w3);
    x = _mm512_set1_epi32(*reinterpret_cast<const int32_t*>(a3 + kq * 4));
    dpbusd(c30, x, w0); dpbusd(c31, x, w1); dpbusd(c32, x, w2); dpbusd(c33, x, w3);
  }
  const __m512i acc[4][4] = {{c00, c01, c02, c03}, {c10, c11, c12, c13},
                             {c20, c21, c22, c23}, {c30, c31, c32, c33}};
  for (int j = 0; j < 4; ++j) {
    const int64_t c = n0 + j * 16;
    if (c >= n) break;
    const __mmask16 live = n - c >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (n - c)) - 1);
    const __m512i sums = _mm512_maskz_loadu_epi32(live, col_sum + c);
    const __m512 ts = _mm512_maskz_loadu_ps(live, col_scale + c);
    const __m512 b = bias ? _mm512_maskz_loadu_ps(live, bias + c) : _mm512_setzero_ps();
    const __m512i correction = _mm512_slli_epi32(sums, 7);  // 128 * sum_k w_c[k]
    for (int r = 0; r < rows; ++r) {
      const __m512 dot = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][j], correction));
      __m512 out = _mm512_fmadd_ps(dot, _mm512_mul_ps(ts, _mm512_set1_ps(row_scale[r])), b);
      if (Gelu) out = ragtune_vec::gelu(out);
      _mm512_mask_storeu_ps(y + r * ldy + c, live, out);
    }
  }
}

}  // namespace

// W (n, k) fp32 -> (packed (ceil(n/64), k/4, 64, 4) int8, scale (n,), sum (n,) int32)
std::vector<at::Tensor> int8_pack(const at::Tensor& weight) {
  TORCH_CHECK(weight.dim() == 2 && weight.scalar_type() == at::kFloat,
              "weight must be a (n, k) float32 tensor");
  const at::Tensor w = weight.contiguous();
  const int64_t n = w.size(0), k = w.size(1);
  TORCH_CHECK(k % 4 == 0, "k must be a multiple of 4, got ", k);
  const int64_t tiles = (n + kTile - 1) / kTile;
  at::Tensor packed = at::zeros({tiles, k / 4, kTile, 4}, at::kChar);
  at::Tensor scale = at::empty({n}, at::kFloat);
  at::Tensor sum = at::empty({n}, at::kInt);
  const float* wp = w.data_ptr<float>();
  int8_t* pp = packed.data_ptr<int8_t>();
  float* scp = scale.data_ptr<float>();
  int32_t* smp = sum.data_ptr<int32_t>();
  for (int64_t c = 0; c < n; ++c) {
    float amax = 0;
    for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::abs(wp[c * k + i]));
    const float s = amax > 0 ? amax / 127 : 1;
    scp[c] = s;
    int32_t total = 0;
    for (int64_t i = 0; i < k; ++i) {
      const int q = static_cast<int>(std::nearbyint(wp[c * k + i] / s));
      const int8_t v = static_cast<int8_t>(std::clamp(q, -127, 127));
      total += v;
      pp[((c / kTile * (k / 4) + i / 4) * kTile + c % kTile) * 4 + i % 4] = v;
    }
    smp[c] = total;
  }
  return {packed, scale, sum};
}

// x (..., k) fp32 -> (..., n) fp32; activation 1 applies GELU (erf) to the output
at::Tensor int8_linear(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& scale,
                       const at::Tensor& sum, const c10::optional<at::Tensor>& bias,
                       int64_t activation) {
  TORCH_CHECK(activation == 0 || activation == 1, "activation must be 0 (none) or 1 (gelu)");
  TORCH_CHECK(x.scalar_type() == at::kFloat, "x must be float32");
  const int64_t k = x.size(-1), n = scale.size(0);
  TORCH_CHECK(packed.dim() == 4 && packed.size(1) * 4 == k && packed.scalar_type() == at::kChar,
              "packed weights do not match x's last dimension ", k);
  const at::Tensor xc = x.reshape({-1, k}).contiguous();
  const int64_t m = xc.size(0);
  // rows as q + 128 (u8) with their scales
  at::Tensor a = at::empty({m, k}, at::kByte);
  at::Tensor row_scale = at::empty({m}, at::kFloat);
  const float* xp = xc.data_ptr<float>();
  uint8_t* ap = a.data_ptr<uint8_t>();
  float* sp = row_scale.data_ptr<float>();
  at::parallel_for(0, m, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = xp + r * k;
      __m512 mx = _mm512_setzero_ps();
      int64_t i = 0;
      for (; i + 16 <= k; i += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(row + i)));
      float amax = _mm512_reduce_max_ps(mx);
      for (; i < k; ++i) amax = std::max(amax, std::abs(row[i]));
      const float s = amax > 0 ? amax / 127 : 1;
      sp[r] = s;
      const __m512 inv = _mm512_set1_ps(1 / s);
      uint8_t* out = ap + r * k;
      i = 0;
      for (; i + 16 <= k; i += 16) {
        __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(row + i), inv));  // nearest
        q = _mm512_add_epi32(_mm512_max_epi32(_mm512_min_epi32(q, _mm512_set1_epi32(127)),
                                              _mm512_set1_epi32(-127)),
                             _mm512_set1_epi32(128));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm512_cvtepi32_epi8(q));
      }
      for (; i < k; ++i) {
        const int q = static_cast<int>(std::nearbyint(row[i] / s));
        out[i] = static_cast<uint8_t>(std::clamp(q, -127, 127) + 128);
      }
    }
  });
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = n;
  at::Tensor y = at::empty({m, n}, x.options());
  const int8_t* wp = packed.data_ptr<int8_t>();
  const float* tp = scale.data_ptr<float>();
  const int32_t* cp = sum.data_ptr<int32_t>();
  const float* bp = bias.has_value() && bias->defined() ? bias->data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  const int64_t tiles = packed.size(0), row_blocks = (m + kRows - 1) / kRows;
  // a unit of work: one tile of 64 channels against a block of up to 8 x 6 rows, the
  // tile's weights (k * 64 bytes) staying in cache across the rows
  constexpr int64_t kSpan = 8;
  const int64_t spans = (row_blocks + kSpan - 1) / kSpan;
  at::parallel_for(0, tiles * spans, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t tile = item % tiles, span = item / tiles;
      const int8_t* w = wp + tile * (k / 4) * 256;
      for (int64_t rb = span * kSpan; rb < std::min(row_blocks, (span + 1) * kSpan); ++rb) {
        const int64_t r = rb * kRows, rows = std::min<int64_t>(kRows, m - r);
        const uint8_t* ar = ap + r * k;
        float* yr = yp + r * n;
        if (activation == 1) {
          rows_tile<true>(rows, ar, k, sp + r, w, tp, cp, bp, yr, n, tile * kTile, n);
        } else {
          rows_tile<false>(rows, ar, k, sp + r, w, tp, cp, bp, yr, n, tile * kTile, n);
        }
      }
    }
  });
  return y.view(shape);
}

#pragma GCC pop_options

bool int8_vnni_supported() { return __builtin_cpu_supports("avx512vnni"); }

// LayerNorm(x + residual) over the last dimension, one pass over each row (held in L1):
// the encoder's residual add and the norm after it, which torch runs as two passes over
// the whole activation. Mean and variance (biased, as torch's) in fp32, two sweeps.
at::Tensor add_layer_norm(const at::Tensor& x, const at::Tensor& residual,
                          const at::Tensor& weight, const at::Tensor& bias, double eps) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && residual.scalar_type() == at::kFloat &&
                  x.sizes() == residual.sizes(),
              "x and residual must be float32 tensors of one shape");
  const int64_t n = x.size(-1);
  TORCH_CHECK(weight.numel() == n && bias.numel() == n && weight.scalar_type() == at::kFloat &&
                  bias.scalar_type() == at::kFloat,
              "weight and bias must be float32 with the last dimension's size");
  const at::Tensor xc = x.contiguous(), rc = residual.contiguous();
  const at::Tensor wc = weight.contiguous(), bc = bias.contiguous();
  at::Tensor out = at::empty_like(xc);
  const int64_t rows = xc.numel() / n;
  const float* xp = xc.data_ptr<float>();
  const float* rp = rc.data_ptr<float>();
  const float* wp = wc.data_ptr<float>();
  const float* bp = bc.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(n);
    for (int64_t r = r0; r < r1; ++r) {
      const float* a = xp + r * n;
      const float* b = rp + r * n;
      __m512 sum = _mm512_setzero_ps();
      int64_t i = 0;
      for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        _mm512_storeu_ps(row.data() + i, v);
        sum = _mm512_add_ps(sum, v);
      }
      float total = _mm512_reduce_add_ps(sum);
      for (; i < n; ++i) total += (row[i] = a[i] + b[i]);
      const float mean = total / static_cast<float>(n);
      __m512 sq = _mm512_setzero_ps();
      const __m512 mv = _mm512_set1_ps(mean);
      for (i = 0; i + 16 <= n; i += 16) {
        const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(row.data() + i), mv);
        sq = _mm512_fmadd_ps(d, d, sq);
      }
      float var = _mm512_reduce_add_ps(sq);
      for (; i < n; ++i) var += (row[i] - mean) * (row[i] - mean);
      const float rstd = 1.0f / std::sqrt(var / static_cast<float>(n) + static_cast<float>(eps));
      const __m512 rv = _mm512_set1_ps(rstd);
      float* o = op + r * n;
      for (i = 0; i + 16 <= n; i += 16) {
        const __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(row.data() + i), mv), rv);
        _mm512_storeu_ps(o + i, _mm512_fmadd_ps(d, _mm512_loadu_ps(wp + i), _mm512_loadu_ps(bp + i)));
      }
      for (; i < n; ++i) o[i] = (row[i] - mean) * rstd * wp[i] + bp[i];
    }
  });
  return out;
}

TORCH_LIBRARY(ragtune, lib) {
  lib.def("int8_vnni_supported() -> bool", &int8_vnni_supported);
  lib.def("add_layer_norm(Tensor x, Tensor residual, Tensor weight, Tensor bias, float eps) -> "
          "Tensor", &add_layer_norm);
  lib.def("int8_pack(Tensor weight) -> Tensor[]", &int8_pack);
  lib.def("int8_linear(Tensor x, Tensor packed, Tensor scale, Tensor sum, Tensor? bias, "
          "int activation=0) -> Tensor", &int8_linear);
}
