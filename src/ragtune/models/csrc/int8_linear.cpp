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

#include <algorithm>
#include <cmath>
#include <vector>

// VNNI only in this file's own functions (after the headers), and these run only where
// int8_vnni_supported() says the CPU has it
#pragma GCC push_options
#pragma GCC target("avx512vnni")

namespace {

constexpr int64_t kTile = 64;  // output channels per packed tile (4 registers)
constexpr int kRows = 4;       // rows of x per register tile

// y[r, n0 .. n0 + 63] for R rows: the accumulators stay in registers (24 of the 32 for
// R = 6) over the whole k loop, then are scaled, corrected and written.
template <int R>
inline void rows_tile(const uint8_t* a, int64_t k, const float* row_scale, const int8_t* w,
                      const float* col_scale, const int32_t* col_sum, const float* bias,
                      float* y, int64_t ldy, int64_t n0, int64_t n) {
  __m512i acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_setzero_si512();
  const int64_t quads = k / 4;
  for (int64_t kq = 0; kq < quads; ++kq) {
    const __m512i w0 = _mm512_loadu_si512(w + kq * 256);
    const __m512i w1 = _mm512_loadu_si512(w + kq * 256 + 64);
    const __m512i w2 = _mm512_loadu_si512(w + kq * 256 + 128);
    const __m512i w3 = _mm512_loadu_si512(w + kq * 256 + 192);
    for (int r = 0; r < R; ++r) {
      const __m512i x = _mm512_set1_epi32(*reinterpret_cast<const int32_t*>(a + r * k + kq * 4));
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], x, w0);
      acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], x, w1);
      acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], x, w2);
      acc[r][3] = _mm512_dpbusd_epi32(acc[r][3], x, w3);
    }
  }
  for (int j = 0; j < 4; ++j) {
    const int64_t c = n0 + j * 16;
    if (c >= n) break;
    const __mmask16 live = n - c >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (n - c)) - 1);
    const __m512i sums = _mm512_maskz_loadu_epi32(live, col_sum + c);
    const __m512 ts = _mm512_maskz_loadu_ps(live, col_scale + c);
    const __m512 b = bias ? _mm512_maskz_loadu_ps(live, bias + c) : _mm512_setzero_ps();
    const __m512i correction = _mm512_slli_epi32(sums, 7);  // 128 * sum_k w_c[k]
    for (int r = 0; r < R; ++r) {
      const __m512 dot = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][j], correction));
      const __m512 out = _mm512_fmadd_ps(dot, _mm512_mul_ps(ts, _mm512_set1_ps(row_scale[r])), b);
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

// x (..., k) fp32 -> (..., n) fp32
at::Tensor int8_linear(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& scale,
                       const at::Tensor& sum, const c10::optional<at::Tensor>& bias) {
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
        switch (rows) {
          case 4: rows_tile<4>(ar, k, sp + r, w, tp, cp, bp, yr, n, tile * kTile, n); break;
          case 3: rows_tile<3>(ar, k, sp + r, w, tp, cp, bp, yr, n, tile * kTile, n); break;
          case 2: rows_tile<2>(ar, k, sp + r, w, tp, cp, bp, yr, n, tile * kTile, n); break;
          default: rows_tile<1>(ar, k, sp + r, w, tp, cp, bp, yr, n, tile * kTile, n); break;
        }
      }
    }
  });
  return y.view(shape);
}

#pragma GCC pop_options

bool int8_vnni_supported() { return __builtin_cpu_supports("avx512vnni"); }

TORCH_LIBRARY_FRAGMENT(ragtune, lib) {
  lib.def("int8_vnni_supported() -> bool", &int8_vnni_supported);
  lib.def("int8_pack(Tensor weight) -> Tensor[]", &int8_pack);
  lib.def("int8_linear(Tensor x, Tensor packed, Tensor scale, Tensor sum, Tensor? bias) -> Tensor",
          &int8_linear);
}
