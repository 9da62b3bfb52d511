// Bidirectional attention of an encoder over right-padded texts, in fp32:
//   encoder_attention(q, k, v, lengths, scale): q, k, v (b, l, heads, d) as the linear
//   layers write them; lengths (b,) the real tokens of each text. Every query row (padded
//   ones too, as SDPA with a padding mask gives them) attends to its text's first
//   lengths[i] keys; padded keys are never read. Returns (b, l, heads, d).
// Per (text, head): the keys transposed into blocks of 16 (scores of 16 keys per register),
// 4 query rows at a time: scores, softmax, then the values read once for the 4 rows.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/library.h>

#include "vec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace {

constexpr int64_t kBlock = 16;  // keys per transposed block

// the largest of a row's padded floats
inline float row_max(const float* row, int64_t padded) {
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < padded; j += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(row + j));
  return _mm512_reduce_max_ps(m);
}

// row -> exp(row - mx) in place (masked -inf scores to 0); returns their sum
inline float exp_row(float* row, int64_t padded, float mx) {
  const __m512 m = _mm512_set1_ps(mx);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < padded; j += 16) {
    const __m512 p = ragtune_vec::exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(row + j), m));
    _mm512_storeu_ps(row + j, p);
    sum = _mm512_add_ps(sum, p);
  }
  return _mm512_reduce_add_ps(sum);
}

// scores[r][b .. b + 15] = (s[r][0] + s[r][1]) * scale for rn rows, keys from len on -inf;
// with maxes, each row's running maximum kept there too
inline void store_scores(const __m512 s[4][2], int64_t rn, int64_t len, int64_t b, float scale,
                         float* scores, int64_t padded, __m512* maxes = nullptr) {
  const __mmask16 ok = len - b >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (len - b)) - 1);
  for (int r = 0; r < rn; ++r) {
    const __m512 total = _mm512_mul_ps(_mm512_add_ps(s[r][0], s[r][1]), _mm512_set1_ps(scale));
    const __m512 row = _mm512_mask_blend_ps(
        ok, _mm512_set1_ps(-std::numeric_limits<float>::infinity()), total);
    _mm512_storeu_ps(scores + r * padded + b, row);
    if (maxes) maxes[r] = _mm512_max_ps(maxes[r], row);
  }
}

// row (padded floats, masked ones -inf) -> exp(row - max) in place; returns 1 / their sum
inline float softmax_row(float* row, int64_t padded) {
  return 1.0f / exp_row(row, padded, row_max(row, padded));
}

template <int D>
void encode_head(const float* q, const float* k, const float* v, int64_t l, int64_t len,
                 int64_t stride, float scale, float* out, float* kt, float* scores) {
  const int64_t padded = (len + kBlock - 1) / kBlock * kBlock;
  for (int64_t j = 0; j < padded; ++j)  // kt[e][j]: keys past len as 0 (masked below)
    for (int64_t e = 0; e < D; ++e) kt[e * padded + j] = j < len ? k[j * stride + e] : 0.0f;
  constexpr int kParts = D / 16;
  for (int64_t i0 = 0; i0 < l; i0 += 4) {
    const int64_t rn = std::min<int64_t>(4, l - i0);
    for (int64_t b = 0; b < padded; b += kBlock) {
      __m512 s[4][2];
      for (int r = 0; r < 4; ++r) s[r][0] = s[r][1] = _mm512_setzero_ps();
      for (int64_t e = 0; e < D; e += 2) {
        const __m512 k0 = _mm512_loadu_ps(kt + e * padded + b);
        const __m512 k1 = _mm512_loadu_ps(kt + (e + 1) * padded + b);
        for (int r = 0; r < 4; ++r) {
          if (r >= rn) break;
          const float* qr = q + (i0 + r) * stride;
          s[r][0] = _mm512_fmadd_ps(_mm512_set1_ps(qr[e]), k0, s[r][0]);
          s[r][1] = _mm512_fmadd_ps(_mm512_set1_ps(qr[e + 1]), k1, s[r][1]);
        }
      }
      store_scores(s, rn, len, b, scale, scores, padded);
    }
    float inv[4];
    for (int r = 0; r < rn; ++r) inv[r] = softmax_row(scores + r * padded, padded);
    __m512 o[4][kParts];
    for (int r = 0; r < 4; ++r)
      for (int a = 0; a < kParts; ++a) o[r][a] = _mm512_setzero_ps();
    for (int64_t j = 0; j < len; ++j) {
      __m512 vj[kParts];
      for (int a = 0; a < kParts; ++a) vj[a] = _mm512_loadu_ps(v + j * stride + a * 16);
      for (int r = 0; r < 4; ++r) {
        if (r >= rn) break;
        const __m512 p = _mm512_set1_ps(scores[r * padded + j]);
        for (int a = 0; a < kParts; ++a) o[r][a] = _mm512_fmadd_ps(p, vj[a], o[r][a]);
      }
    }
    for (int r = 0; r < rn; ++r)
      for (int a = 0; a < kParts; ++a)
        _mm512_storeu_ps(out + (i0 + r) * stride + a * 16,
                         _mm512_mul_ps(o[r][a], _mm512_set1_ps(inv[r])));
  }
}

#pragma GCC push_options
#pragma GCC target("avx512bf16")

// row (padded scores in log2 units, masked ones -inf; mx their maximum) -> the weights
// 2^(row - mx) rounded to bf16, in place over the row's first half (each 16 read before
// their 32 bytes are written); returns 1 / the sum of the unrounded weights
inline float softmax_row_bf16(float* row, int64_t padded, float mx) {
  const __m512 m = _mm512_set1_ps(mx);
  __m512 sum = _mm512_setzero_ps();
  uint16_t* p16 = reinterpret_cast<uint16_t*>(row);
  for (int64_t j = 0; j < padded; j += 16) {
    const __m512 p = ragtune_vec::exp2_nonpositive_coarse(_mm512_sub_ps(_mm512_loadu_ps(row + j), m));
    sum = _mm512_add_ps(sum, p);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p16 + j), (__m256i)_mm512_cvtneps_pbh(p));
  }
  return 1.0f / _mm512_reduce_add_ps(sum);
}

// bf16 pair (a, b) in one 32-bit word, a in the low half, rounded to nearest even
inline uint32_t bf16_pair(float a, float b) {
  auto round = [](float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  };
  return round(a) | (round(b) << 16);
}

// encode_head with the two products in bf16 (vdpbf16ps: pairs of bf16 products summed
// into fp32 lanes, twice the products of an fp32 FMA per instruction): queries, keys,
// values and the softmax weights rounded to bf16, sums, softmax and output in fp32; the
// weights' exponentials to 3e-6 (exp2_nonpositive_coarse), far inside their bf16 rounding.
template <int D>
void encode_head_bf16(const float* q, const float* k, const float* v, int64_t l, int64_t len,
                      int64_t stride, float scale, float* out, uint32_t* kt, uint32_t* vt,
                      float* scores) {
  const int64_t padded = (len + kBlock - 1) / kBlock * kBlock;
  constexpr int64_t kPairs = D / 2, kParts = D / 16;
  // rows of keys and values in bf16 (pairs of dimensions as 32-bit words), then kt[block]
  // [pair][lane] (16 keys a block) and vt[key pair][dimension] (two keys' values of one
  // dimension side by side), padding keys and values 0
  uint32_t* kb = vt;  // scratch: the rows of keys in bf16, before vt is written
  const __m512i zero = _mm512_setzero_si512();
  for (int64_t j = 0; j < padded; ++j)
    for (int64_t e = 0; e < D; e += 16) {
      const __m256i h = j < len ? (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(k + j * stride + e))
                                : _mm256_setzero_si256();
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(kb + j * kPairs + e / 2), h);
    }
  for (int64_t j = 0; j < padded; ++j)
    for (int64_t p = 0; p < kPairs; ++p)
      kt[(j / kBlock * kPairs + p) * kBlock + j % kBlock] = kb[j * kPairs + p];
  const int64_t key_pairs = (len + 1) / 2;
  const float scale2 = scale * 1.44269504088896341f;  // scores in log2 units: weights 2^(s - max)
  const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,
                                      39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
  for (int64_t jp = 0; jp < key_pairs; ++jp)
    for (int64_t e = 0; e < D; e += 32) {  // 32 dimensions of two keys into 2 registers
      auto row = [&](int64_t j) {
        if (j >= len) return zero;
        const __m256i a = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(v + j * stride + e));
        const __m256i b = D - e > 16
            ? (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(v + j * stride + e + 16))
            : _mm256_setzero_si256();
        return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
      };
      const __m512i a = row(2 * jp), b = row(2 * jp + 1);
      _mm512_storeu_si512(vt + jp * D + e, _mm512_permutex2var_epi16(a, lo, b));
      if (D - e > 16) _mm512_storeu_si512(vt + jp * D + e + 16, _mm512_permutex2var_epi16(a, hi, b));
    }
  for (int64_t i0 = 0; i0 < l; i0 += 4) {
    const int64_t rn = std::min<int64_t>(4, l - i0);
    uint32_t qp[4][kPairs];
    for (int r = 0; r < 4; ++r)
      for (int64_t p = 0; p < kPairs; ++p) {
        const float* qr = q + (i0 + std::min<int64_t>(r, rn - 1)) * stride;
        qp[r][p] = bf16_pair(qr[2 * p], qr[2 * p + 1]);
      }
    __m512 maxes[4];
    for (int r = 0; r < 4; ++r) maxes[r] = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    for (int64_t b = 0; b < padded; b += kBlock) {
      __m512 s[4][2];
      for (int r = 0; r < 4; ++r) s[r][0] = s[r][1] = _mm512_setzero_ps();
      const uint32_t* block = kt + b / kBlock * kPairs * kBlock;
      for (int64_t p = 0; p < kPairs; p += 2) {
        const __m512bh k0 = (__m512bh)_mm512_loadu_si512(block + p * kBlock);
        const __m512bh k1 = (__m512bh)_mm512_loadu_si512(block + (p + 1) * kBlock);
        for (int r = 0; r < 4; ++r) {
          s[r][0] = _mm512_dpbf16_ps(s[r][0], (__m512bh)_mm512_set1_epi32(qp[r][p]), k0);
          s[r][1] = _mm512_dpbf16_ps(s[r][1], (__m512bh)_mm512_set1_epi32(qp[r][p + 1]), k1);
        }
      }
      store_scores(s, rn, len, b, scale2, scores, padded, maxes);
    }
    float inv[4];
    for (int r = 0; r < rn; ++r)
      inv[r] = softmax_row_bf16(scores + r * padded, padded, _mm512_reduce_max_ps(maxes[r]));
    __m512 o[4][kParts];
    for (int r = 0; r < 4; ++r)
      for (int a = 0; a < kParts; ++a) o[r][a] = _mm512_setzero_ps();
    for (int64_t jp = 0; jp < key_pairs; ++jp) {
      __m512bh vj[kParts];
      for (int a = 0; a < kParts; ++a) vj[a] = (__m512bh)_mm512_loadu_si512(vt + jp * D + a * 16);
      for (int r = 0; r < 4; ++r) {
        if (r >= rn) break;
        const uint32_t* pairs = reinterpret_cast<const uint32_t*>(scores + r * padded);
        // past len the weights are 0 (masked), and so is the padded key's value
        const __m512bh p = (__m512bh)_mm512_set1_epi32(pairs[jp]);
        for (int a = 0; a < kParts; ++a) o[r][a] = _mm512_dpbf16_ps(o[r][a], p, vj[a]);
      }
    }
    for (int r = 0; r < rn; ++r)
      for (int a = 0; a < kParts; ++a)
        _mm512_storeu_ps(out + (i0 + r) * stride + a * 16,
                         _mm512_mul_ps(o[r][a], _mm512_set1_ps(inv[r])));
  }
}

#pragma GCC pop_options

template <int D>
at::Tensor encode(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const at::Tensor& lengths, double scale, bool bf16) {
  const int64_t b = q.size(0), l = q.size(1), heads = q.size(2), stride = heads * D;
  at::Tensor out = at::empty_like(q);
  const float* qp = q.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  const int64_t* lp = lengths.data_ptr<int64_t>();
  float* op = out.data_ptr<float>();
  const int64_t padded = (l + kBlock - 1) / kBlock * kBlock;
  at::parallel_for(0, b * heads, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> kt(D * padded), scores(4 * padded);
    std::vector<uint32_t> kt16(D / 2 * padded), vt16(D * (padded / 2 + 1));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / heads, h = item % heads;
      const int64_t offset = t * l * stride + h * D;
      const int64_t len = std::clamp<int64_t>(lp[t], 1, l);
      if (bf16) {
        encode_head_bf16<D>(qp + offset, kp + offset, vp + offset, l, len, stride,
                            static_cast<float>(scale), op + offset, kt16.data(), vt16.data(),
                            scores.data());
      } else {
        encode_head<D>(qp + offset, kp + offset, vp + offset, l, len, stride,
                       static_cast<float>(scale), op + offset, kt.data(), scores.data());
      }
    }
  });
  return out;
}

}  // namespace

at::Tensor encoder_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& lengths, double scale, bool bf16) {
  TORCH_CHECK(!bf16 || __builtin_cpu_supports("avx512bf16"), "this CPU has no AVX-512 BF16");
  for (const at::Tensor* t : {&q, &k, &v})
    TORCH_CHECK(t->dim() == 4 && t->scalar_type() == at::kFloat && t->is_contiguous() &&
                    t->sizes() == q.sizes(),
                "q, k and v must be contiguous (batch, length, heads, head_dim) float32 tensors "
                "of one shape");
  TORCH_CHECK(lengths.dim() == 1 && lengths.size(0) == q.size(0) &&
                  lengths.scalar_type() == at::kLong,
              "lengths must be a (batch,) int64 tensor");
  switch (q.size(3)) {
    case 32: return encode<32>(q, k, v, lengths, scale, bf16);
    case 64: return encode<64>(q, k, v, lengths, scale, bf16);
    case 128: return encode<128>(q, k, v, lengths, scale, bf16);
    default: TORCH_CHECK(false, "head_dim must be 32, 64 or 128, got ", q.size(3));
  }
}

bool bf16_dot_supported() { return __builtin_cpu_supports("avx512bf16"); }

TORCH_LIBRARY_FRAGMENT(ragtune, lib) {
  lib.def("bf16_dot_supported() -> bool", &bf16_dot_supported);
  lib.def("encoder_attention(Tensor q, Tensor k, Tensor v, Tensor lengths, float scale, "
          "bool bf16=False) -> Tensor", &encoder_attention);
}
