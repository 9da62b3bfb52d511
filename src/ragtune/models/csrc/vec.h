// Vector math shared by the kernels (AVX-512, 16 floats a register).
#pragma once

#include <immintrin.h>

namespace ragtune_vec {

// exp(x) for x <= 0 (softmax after subtracting the maximum): 2^n * p(r), x = n ln2 + r,
// |r| <= ln2 / 2, p a degree-7 Taylor polynomial (error below 2e-8 relative, under fp32's
// rounding); below -87 (e^x under fp32's smallest normal number, against a sum of at
// least 1) and for -inf, exactly 0.
inline __m512 exp_nonpositive(__m512 in) {
  const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
  const __m512 ln2_hi = _mm512_set1_ps(0.693359375f);
  const __m512 ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
  const __mmask16 live = _mm512_cmp_ps_mask(in, _mm512_set1_ps(-87.0f), _CMP_GT_OQ);
  const __m512 x = _mm512_max_ps(in, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, ln2_hi, x);
  r = _mm512_fnmadd_ps(n, ln2_lo, r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_maskz_mov_ps(live, _mm512_scalef_ps(p, n));
}

// 2^x for x <= 0 to 3e-6 relative, for softmax weights that are rounded to bf16 next
// (2^-9 relative): 2^n * p(f), x = n + f, |f| <= 1/2, p a degree-4 least-squares fit of 2^f
// (relative error 2.7e-6). Below -100 (-inf too) it returns 2^-100 * p(0) (about 8e-31), a
// weight that no sum of at least 1 can see.
inline __m512 exp2_nonpositive_coarse(__m512 in) {
  const __m512 x = _mm512_max_ps(in, _mm512_set1_ps(-100.0f));
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(0.009560519829392433f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.05591712146997452f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.24024981260299683f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6931219696998596f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.9999991655349731f));
  return _mm512_scalef_ps(p, n);
}

// erf(x), Abramowitz and Stegun 7.1.26: 1 - (a1 t + ... + a5 t^5) e^(-x^2), t = 1 / (1 +
// p |x|), odd in x; absolute error below 1.5e-7. 1/(1 + p|x|) by rcp14 and one Newton step.
inline __m512 erf(__m512 x) {
  const __m512 ax = _mm512_abs_ps(x);
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 den = _mm512_fmadd_ps(ax, _mm512_set1_ps(0.3275911f), one);
  __m512 t = _mm512_rcp14_ps(den);
  t = _mm512_mul_ps(t, _mm512_fnmadd_ps(den, t, _mm512_set1_ps(2.0f)));
  __m512 poly = _mm512_set1_ps(1.061405429f);
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(-1.453152027f));
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(1.421413741f));
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(-0.284496736f));
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(0.254829592f));
  poly = _mm512_mul_ps(poly, t);
  const __m512 e = exp_nonpositive(_mm512_mul_ps(_mm512_mul_ps(ax, ax), _mm512_set1_ps(-1.0f)));
  const __m512 y = _mm512_fnmadd_ps(poly, e, one);
  // the sign of x back on
  return _mm512_castsi512_ps(_mm512_or_si512(
      _mm512_castps_si512(y),
      _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(static_cast<int>(0x80000000u)))));
}

// GELU with the exact (erf) form: x / 2 * (1 + erf(x / sqrt 2)), as torch's gelu.
inline __m512 gelu(__m512 x) {
  const __m512 inner = erf(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f)));
  return _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)),
                       _mm512_add_ps(inner, _mm512_set1_ps(1.0f)));
}

}  // namespace ragtune_vec
