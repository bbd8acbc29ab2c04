"""Fixed-point arithmetic, bit for bit as TensorFlow Lite Micro and gemmlowp compute it.

This file is the single source of truth for integer arithmetic in minitiny: the quantizer,
the NumPy int8 reference (`kernels/`) and the C templates all call or mirror these
functions. Each function names the C function it matches and the file it comes from:

    TFLM   tensorflow/lite/kernels/internal/common.h             (MultiplyByQuantizedMultiplier, ...)
    TFLM   tensorflow/lite/kernels/internal/quantization_util.cc (QuantizeMultiplier, ...)
    gemmlowp  fixedpoint/fixedpoint.h                            (SaturatingRoundingDoublingHighMul,
                                                                  RoundingDivideByPOT, exp, logistic, tanh)

How the numbers are held. C works on int32_t with 64-bit intermediates; here every value is
an int32 held in a NumPy int64 array (so products fit), and every function is vectorised:
`x`, `multiplier` and `shift` broadcast against each other. Two C habits need care in NumPy:

* C's integer division truncates towards zero; NumPy's `//` floors. `c_divide` emulates C.
* `>>` on a signed int64 is an arithmetic shift in both (rounds towards minus infinity).

A gemmlowp `FixedPoint<int32_t, k>` ("Qk.(31-k)") is a raw int32 r standing for r / 2^(31-k):
k integer bits, 31-k fractional bits. The functions below take and return raws; the Q format
of each argument is in its docstring. F0 (k = 0) covers [-1, 1); its "One" is INT32_MAX.
"""
import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def _i64(x):
    return np.asarray(x, dtype=np.int64)


def c_divide(a, b):
    """C's `a / b` for integers: the quotient truncated towards zero (NumPy's // floors)."""
    a, b = _i64(a), _i64(b)
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


def wrap_int32(x):
    """Reduce modulo 2^32 into [INT32_MIN, INT32_MAX], as a two's-complement int32 store does."""
    return _i64(x).astype(np.int32).astype(np.int64)      # NumPy's cast keeps the low 32 bits


def tflite_round(x):
    """TfLiteRound / std::round: half away from zero (Python's round() goes half to even)."""
    return math.floor(abs(x) + 0.5) * (1 if x >= 0 else -1)


def round_half_away(x):
    """tflite_round vectorised, in float64 (np.round goes half to even)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def count_leading_zeros(x):
    """CountLeadingZeros(uint32_t) from TFLM common.h: 32 for 0, vectorised over x >= 0."""
    x = _i64(x)
    # frexp is exact here: x < 2^32 is exactly representable in float64, and
    # frexp returns e with 2^(e-1) <= x < 2^e, i.e. e = bit length of x.
    _, e = np.frexp(x.astype(np.float64))
    return np.where(x == 0, 32, 32 - e).astype(np.int64)


# ---------------------------------------------------------------------------------------
# 1. From a real multiplier to an int32 multiplier and a shift (conversion time, in double)
# ---------------------------------------------------------------------------------------
def quantize_multiplier(real_multiplier, single_rounding=False):
    """QuantizeMultiplier (TFLM quantization_util.cc): real = m * 2^(shift - 31).

    Returns (m, shift) as Python ints: m a Q31 significand in [2^30, 2^31 - 1] (or 0) and
    shift the signed power of two (positive = shift left). Computed in double:

        q, shift = frexp(real)                 # real = q * 2^shift, q in [0.5, 1)
        m = round_half_away(q * 2^31)          # TfLiteRound, not Python's round()
        if m == 2^31: m /= 2, shift += 1       # q rounded up to 1.0
        if shift < -31: m, shift = 0, 0        # every bit would be shifted out anyway
    With TFLITE_SINGLE_ROUNDING, shifts above 30 saturate to (2^31 - 1, 30).
    """
    real = float(real_multiplier)
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"quantize_multiplier: multiplier must be finite and >= 0, got {real}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = tflite_round(q * (1 << 31))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if single_rounding and shift > 30:
        shift, q_fixed = 30, (1 << 31) - 1
    return int(q_fixed), int(shift)


def quantize_multiplier_array(real_multipliers, single_rounding=False):
    """QuantizeMultiplierArray (TFLM): quantize_multiplier on each element -> (int32[], int32[])."""
    pairs = [quantize_multiplier(r, single_rounding) for r in np.ravel(real_multipliers)]
    m = np.array([p[0] for p in pairs], dtype=np.int32)
    s = np.array([p[1] for p in pairs], dtype=np.int32)
    return m, s


def quantize_multiplier_smaller_than_one_exp(real_multiplier):
    """QuantizeMultiplierSmallerThanOneExp (TFLM): for 0 < real < 1; returns (m, shift <= 0)."""
    if not 0.0 < real_multiplier < 1.0:
        raise ValueError(f"multiplier {real_multiplier} must lie in (0, 1)")
    m, shift = quantize_multiplier(real_multiplier)
    assert shift <= 0
    return m, shift


def quantize_multiplier_greater_than_one(real_multiplier):
    """QuantizeMultiplierGreaterThanOne (TFLM): for real > 1; returns (m, left_shift >= 0)."""
    if not real_multiplier > 1.0:
        raise ValueError(f"multiplier {real_multiplier} must be > 1")
    m, shift = quantize_multiplier(real_multiplier)
    assert shift >= 0
    return m, shift


# ---------------------------------------------------------------------------------------
# 2. gemmlowp's two rounding primitives (every requantization is built from them)
# ---------------------------------------------------------------------------------------
def saturating_rounding_doubling_high_mul(a, b):
    """SaturatingRoundingDoublingHighMul (gemmlowp fixedpoint.h): round(a * b / 2^31).

    The high 32 bits of 2ab, rounded to nearest with ties rounded UP (towards +infinity:
    -0.5 -> 0, +0.5 -> 1): the nudge is +2^30 for a positive product and 1 - 2^30 for a
    negative one, then C division truncates. The one overflow, INT32_MIN * INT32_MIN,
    saturates to INT32_MAX.
    """
    a, b = _i64(a), _i64(b)
    ab = a * b                                         # |ab| <= 2^62 fits int64
    t = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))     # + nudge
    high = np.where(t >= 0, t >> 31, -((-t) >> 31))        # C's t / 2^31 (truncates)
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)


def rounding_divide_by_pot(x, exponent):
    """RoundingDivideByPOT (gemmlowp fixedpoint.h): x / 2^exponent, rounded half away from zero.

        mask = 2^e - 1; remainder = x & mask
        threshold = (mask >> 1) + (1 if x < 0 else 0)
        result = (x >> e) + (1 if remainder > threshold else 0)
    """
    x, exponent = _i64(x), _i64(exponent)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def saturating_rounding_multiply_by_pot(x, exponent):
    """SaturatingRoundingMultiplyByPOT<exponent> (gemmlowp): x * 2^exponent for a fixed int.

    exponent > 0: a left shift saturating at INT32_MIN / INT32_MAX;
    exponent < 0: rounding_divide_by_pot(x, -exponent); 0: x.
    """
    x = _i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


# ---------------------------------------------------------------------------------------
# 3. Requantization: acc (int32) * real multiplier, as the int8 kernels do it at run time
# ---------------------------------------------------------------------------------------
def multiply_by_quantized_multiplier(x, multiplier, shift, single_rounding=False):
    """MultiplyByQuantizedMultiplier(int32_t x, int32_t m, int shift) (TFLM common.h).

    Double rounding (TFLM's default, as gemmlowp):
        left = max(shift, 0); right = max(-shift, 0)
        RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2^left, m), right)
    `x * 2^left` is int32 arithmetic in C: when it overflows (a multiplier > 1 on a huge
    accumulator) it wraps, in TFLM as here (test_kernels checks this against TFLM).
    Single rounding (TFLITE_SINGLE_ROUNDING):
        total = 31 - shift; (x * m + 2^(total - 1)) >> total       in int64,
    then static_cast<int32_t>: a result beyond int32 (a multiplier > 1 on a huge
    accumulator) wraps, in TFLM and the generated C as here.
    """
    x, multiplier, shift = _i64(x), _i64(multiplier), _i64(shift)
    if single_rounding:
        total_shift = 31 - shift
        return wrap_int32((x * multiplier + (np.int64(1) << (total_shift - 1))) >> total_shift)
    if np.any(shift > 0):
        x = wrap_int32(x << np.maximum(shift, 0))
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier),
                                  np.maximum(-shift, 0))


def multiply_by_quantized_multiplier_smaller_than_one_exp(x, multiplier, left_shift,
                                                          single_rounding=False):
    """MultiplyByQuantizedMultiplierSmallerThanOneExp (TFLM common.h), left_shift <= 0:
    RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, m), -left_shift)."""
    if single_rounding:
        return multiply_by_quantized_multiplier(x, multiplier, left_shift, True)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier),
                                  -_i64(left_shift))


def multiply_by_quantized_multiplier_greater_than_one(x, multiplier, left_shift,
                                                      single_rounding=False):
    """MultiplyByQuantizedMultiplierGreaterThanOne (TFLM common.h), left_shift >= 0:
    SaturatingRoundingDoublingHighMul(x * 2^left_shift, m)."""
    if single_rounding:
        return multiply_by_quantized_multiplier(x, multiplier, left_shift, True)
    return saturating_rounding_doubling_high_mul(wrap_int32(_i64(x) << _i64(left_shift)), multiplier)


# ---------------------------------------------------------------------------------------
# 4. gemmlowp's transcendental functions in fixed point (softmax, logistic, tanh)
# ---------------------------------------------------------------------------------------
def rounding_half_sum(a, b):
    """RoundingHalfSum (gemmlowp, int32): (a + b + sign) / 2 in int64, C division."""
    s = _i64(a) + _i64(b)
    return c_divide(s + np.where(s >= 0, 1, -1), 2)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """exp(a) for a in [-1/4, 0), a and result in Q0.31 (gemmlowp fixedpoint.h).

    A 4th-order Taylor expansion around -1/8:  x = a + 1/8,
    exp(a) = exp(-1/8) * (1 + x + x^2/2 + x^3/6 + x^4/24).
    """
    constant_term = 1895147668         # exp(-1/8) in Q0.31
    constant_1_over_3 = 715827883      # 1/3 in Q0.31
    x = _i64(a) + (1 << 28)            # 1/8 in Q0.31
    x2 = saturating_rounding_doubling_high_mul(x, x)
    x3 = saturating_rounding_doubling_high_mul(x2, x)
    x4 = saturating_rounding_doubling_high_mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_multiply_by_pot(
        saturating_rounding_doubling_high_mul(x4_over_4 + x3, constant_1_over_3) + x2, -1)
    return constant_term + saturating_rounding_doubling_high_mul(constant_term, x + poly)


# exp(-2^k) in Q0.31 for k = -2..4, the "barrel shifter" constants of gemmlowp.
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits):
    """exp(a) for a <= 0 (gemmlowp exp_on_negative_values): a in Q{integer_bits}, result Q0.31.

    Write a = r - m with r in [-1/4, 0) and m >= 0 a multiple of 1/4: exp(r) comes from the
    polynomial above, exp(-m) from multiplying by exp(-2^k) for every bit 2^k set in m.
    """
    a = _i64(a)
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits))  # Rescale<0>
    remainder = a_mod_quarter_minus_one_quarter - a
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = (remainder & (1 << (frac_bits + exponent))) != 0
            result = np.where(bit, saturating_rounding_doubling_high_mul(result, multiplier), result)
    if integer_bits > 5:                 # below -32 the result is 0 in Q0.31
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)   # -32 in Q{integer_bits}
    return np.where(a == 0, INT32_MAX, result)


def _newton_raphson_reciprocal(half_denominator):
    """Three Newton-Raphson steps for 1 / half_denominator, shared by the two functions below.

    half_denominator in Q0.31 (it lies in [1/2, 1)); the estimate x is in Q2.29, started at
    48/17 - 32/17 * d (see Wikipedia, "Division algorithm", Newton-Raphson division).
    """
    constant_48_over_17 = 1515870810       # Q2.29
    constant_neg_32_over_17 = -1010580540  # Q2.29
    one_q2 = 1 << 29                       # 1.0 in Q2.29
    x = constant_48_over_17 + saturating_rounding_doubling_high_mul(half_denominator, constant_neg_32_over_17)
    for _ in range(3):
        half_denominator_times_x = saturating_rounding_doubling_high_mul(half_denominator, x)   # Q2.29
        one_minus = one_q2 - half_denominator_times_x
        x = x + saturating_rounding_multiply_by_pot(                                              # Q4 -> Q2
            saturating_rounding_doubling_high_mul(x, one_minus), 2)
    return x


def one_over_one_plus_x_for_x_in_0_1(a):
    """1 / (1 + a) for a in [0, 1) (gemmlowp): a and result in Q0.31."""
    half_denominator = rounding_half_sum(a, INT32_MAX)      # (1 + a) / 2
    x = _newton_raphson_reciprocal(half_denominator)        # 1 / half_denominator, Q2.29
    return saturating_rounding_multiply_by_pot(x, 1)        # ExactMulByPot<-1> then Rescale<0>


def one_minus_x_over_one_plus_x_for_x_in_0_1(a):
    """(1 - a) / (1 + a) for a in [0, 1) (gemmlowp): a and result in Q0.31."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = _newton_raphson_reciprocal(half_denominator)        # 2 / (1 + a) in Q2.29
    return saturating_rounding_multiply_by_pot(x - (1 << 29), 2)   # Rescale<0>(x - 1)


def logistic(a, integer_bits):
    """gemmlowp::logistic: 1 / (1 + exp(-a)); a in Q{integer_bits}, result in Q0.31.

    Computed on |a| as 1 / (1 + exp(-|a|)), mirrored for a < 0 as One - that; 1/2 at 0.
    """
    a = _i64(a)
    positive = a > 0
    abs_input = np.where(positive, a, -a)
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(-abs_input, integer_bits))
    result_if_negative = INT32_MAX - result_if_positive
    return np.where(a == 0, 1 << 30, np.where(positive, result_if_positive, result_if_negative))


def tanh(a, integer_bits):
    """gemmlowp::tanh: a in Q{integer_bits}, result in Q0.31.

    For n = -|a|: -tanh(n) = (1 - exp(2n)) / (1 + exp(2n)); 2n is n read in one more integer
    bit (ExactMulByPot<1>), then the sign is put back.
    """
    a = _i64(a)
    negative = a < 0
    n = np.where(negative, a, -a)
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, -t, t))


def get_reciprocal(x, x_integer_digits):
    """GetReciprocal (TFLM common.h): 1/x for x > 0 in Q{x_integer_digits}.

    Returns (scale, num_bits_over_unit): scale in Q0.31 with 1/x = scale / 2^num_bits_over_unit.
    x is normalised to 1 + f (f in [0, 1)) by shifting out its leading zeros.
    """
    x = _i64(x)
    headroom_plus_one = count_leading_zeros(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = wrap_int32(((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


# ---------------------------------------------------------------------------------------
# 5. Conversion-time helpers for softmax, logistic and tanh
# ---------------------------------------------------------------------------------------
def calculate_input_radius(input_integer_bits, input_left_shift, total_signed_bits=31):
    """CalculateInputRadius (TFLM quantization_util.cc): the largest |input| (after the zero
    point) whose rescaled value still fits Q{input_integer_bits}; beyond it the result saturates.

        floor((2^ib - 1) * 2^(total - ib) / 2^left_shift)
    """
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1)
                          * (1 << (total_signed_bits - input_integer_bits)) / (1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def preprocess_softmax_scaling(beta, input_scale, input_integer_bits, single_rounding=False):
    """PreprocessSoftmaxScaling (TFLM quantization_util.cc) -> (multiplier, left_shift).

    The input difference (x - max) is scaled by beta * input_scale into Q{input_integer_bits}:
    real = beta * input_scale * 2^(31 - input_integer_bits), capped at 2^31 - 1 (2^30 - 1 with
    single rounding): a larger multiplier already sends every non-maximal exp() to zero.
    """
    max_real_multiplier = float((1 << 30) - 1) if single_rounding else float((1 << 31) - 1)
    real = min(float(beta) * float(input_scale) * (1 << (31 - input_integer_bits)), max_real_multiplier)
    return quantize_multiplier_greater_than_one(real)


def input_scale_multiplier(input_scale, input_integer_bits):
    """The input rescale of TFLM's int8 LOGISTIC and TANH Prepare (logistic_common.cc, tanh.cc):

        q, left_shift = frexp(input_scale * 2^(31 - input_integer_bits))
        multiplier = (int32_t) TfLiteRound(q * 2^31)
    (no 2^31 corner handling there: with a float32 scale q * 2^31 is an exact integer < 2^31).
    Returns (multiplier, left_shift, input_range_radius).
    """
    real = float(input_scale) * float(1 << (31 - input_integer_bits))
    q, left_shift = math.frexp(real)
    multiplier = tflite_round(q * (1 << 31))
    if multiplier >= (1 << 31):
        raise ValueError(f"input scale {input_scale}: multiplier rounds to 2^31")
    radius = calculate_input_radius(input_integer_bits, left_shift, 31)
    return int(multiplier), int(left_shift), radius
