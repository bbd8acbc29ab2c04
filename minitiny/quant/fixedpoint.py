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
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
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


def multiply_by_quantized_multiplier_int64(x, multiplier, shift):
    """MultiplyByQuantizedMultiplier(int64_t x, int32_t m, int shift) (TFLM common.cc): the
    16x8 kernels' requantization of an int64 accumulator, one rounding in either build:

        reduced = (m + 2^15) >> 16  if m < 0x7FFF0000  else 0x7FFF      # a Q15 multiplier
        total = 15 - shift
        (int32_t) ((x * reduced + 2^(total - 1)) >> total)
    TFLM asserts |x| < 2^47 and -31 <= shift < 8 (the kernels' Prepare here checks both);
    the cast to int32 keeps the low 32 bits, as here.
    """
    x, multiplier, shift = _i64(x), _i64(multiplier), _i64(shift)
    reduced = np.where(multiplier < 0x7FFF0000, (multiplier + (1 << 15)) >> 16, 0x7FFF)
    total_shift = 15 - shift
    return wrap_int32((x * reduced + (np.int64(1) << (total_shift - 1))) >> total_shift)


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


# ---------------------------------------------------------------------------------------
# 6. The 16x8 scheme's lookup tables (int16 SOFTMAX, LOGISTIC, TANH)
# ---------------------------------------------------------------------------------------
# sigmoid(i / 24) in Q0.16 for i = 0..255, saturated at 65535: TFLM's sigmoid_table_uint16
# (tensorflow/lite/kernels/internal/common.h, Apache-2.0), which int16 LOGISTIC and TANH
# interpolate (tanh(x) = 2 sigmoid(2x) - 1). Its entries are not one rounding of a formula
# (a few dozen sit one above round(65536 sigmoid(i / 24))), so they are TFLM's, as data.
SIGMOID_TABLE_UINT16 = (
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149,
    40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
    47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169,
    53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
    62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536,
    63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786,
    64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
    65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522,
    65523, 65523, 65524, 65524, 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
    65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531,
    65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65534, 65535,
)


def checked_log2(x):
    """CheckedLog2 (TFLM quantization_util.h) in float32: (is x a power of two, to 1e-3 in
    log2; round(log2 x)). logf(x) * (1.0f / logf(2.0f)), rounded half away from zero."""
    x_log2 = np.float32(math.log(float(np.float32(x)))) * (np.float32(1.0) / np.float32(math.log(2.0)))
    rounded = np.float32(tflite_round(float(x_log2)))
    return bool(abs(x_log2 - rounded) < np.float32(1e-3)), int(rounded)


def gen_lut(func, input_min, input_max, output_min=-1.0, output_max=1.0):
    """gen_lut<float, int16_t, int16_t> (TFLM kernels/internal/common.h): 513 int16 values of
    func on [input_min, input_max] for `lut_lookup`'s interpolation, all in float32 as TFLM.

    Entry i samples func at input_min + i * step (512 steps), minus half the error a linear
    interpolation would make at the middle of the step; entry 512 is func(input_max).
    `func` maps a float32 to a float32 (the C++ lambda's float arithmetic).
    """
    f32 = np.float32
    rnd = (lambda v: f32(tflite_round(float(v))))
    input_min, input_max = f32(input_min), f32(input_max)
    nb_steps = 512
    step = (input_max - input_min) / f32(nb_steps)
    half_step = step / f32(2)
    output_scaling_inv = f32(65536) / (f32(output_max) - f32(output_min))
    lut = []
    for i in range(nb_steps):
        val = func(input_min + f32(i) * step)
        val_midpoint = func(input_min + f32(i) * step + half_step)
        val_next = func(input_min + f32(i + 1) * step)
        sample_val = rnd(val * output_scaling_inv)
        midpoint_interp_val = rnd((val_next * output_scaling_inv + rnd(val * output_scaling_inv)) / f32(2))
        midpoint_val = rnd(val_midpoint * output_scaling_inv)
        bias = rnd((midpoint_interp_val - midpoint_val) / f32(2))
        lut.append(min(max(sample_val - bias, INT16_MIN), INT16_MAX))
    lut.append(min(max(rnd(func(input_max) * output_scaling_inv), INT16_MIN), INT16_MAX))
    return np.array(lut, dtype=np.int16)


def lut_lookup(value, lut):
    """LUTLookup(int16_t, const int16_t*) (TFLM common.h): the 513-entry table read at
    value's top 9 bits, interpolated linearly with the low 7:
        index = 256 + (value >> 7); offset = value & 0x7f
        base + (slope * offset + 64) >> 7,  slope = lut[index + 1] - lut[index] (int16)."""
    value = _i64(value)
    lut = _i64(lut)
    index = 256 + (value >> 7)
    offset = value & 0x7F
    base = lut[index]
    slope = (lut[index + 1] - base).astype(np.int16).astype(np.int64)   # int16_t slope
    delta = (slope * offset + 64) >> 7
    return (base + delta).astype(np.int16).astype(np.int64)             # static_cast<int16_t>


def exp_f32(x):
    """std::exp on a float: exp in double, rounded once to float32 (glibc's expf is within
    0.502 ulp; the one-ulp cases, if any, meet a TFLite-table rounding only by chance)."""
    return np.float32(math.exp(float(x)))


# ---------------------------------------------------------------------------------------
# 7. The inverse square root (RSQRT, L2_NORMALIZATION)
# ---------------------------------------------------------------------------------------
def inv_sqrt_quantized_multiplier_exp(x, reverse_shift):
    """GetInvSqrtQuantizedMultiplierExp (TFLM kernels/internal/common.h): 1 / sqrt(x) for one
    int32 x >= 0, as (multiplier, shift) with 1/sqrt(x) = multiplier * 2^(shift - 31) when
    reverse_shift = -1 (TFLM's kReverseShift: the shift then counts left).

    x <= 1 gives (INT32_MAX, 0) (0 is taken as 1). Otherwise x is scaled by a power of four
    into [2^27, 2^29) (s counts the pairs of bits), read as F3 (x / 2^28 in [1/2, 2)) and
    halved, and five Newton-Raphson steps from y = 1 refine y -> 1.5 y - (x/2) y^3, towards
    1/sqrt(x / 2^28); the result times sqrt(2)/2 in F0. A negative shift is moved into the
    multiplier (an int32 left shift, wrapping as C's does)."""
    x = int(x)
    if x <= 1:
        return INT32_MAX, 0
    shift = 11
    while x >= (1 << 29):
        x //= 4
        shift += 1
    pairs = (int(count_leading_zeros(x)) - 1) // 2 - 1
    shift -= pairs
    x <<= 2 * pairs
    srdhm, by_pot = saturating_rounding_doubling_high_mul, saturating_rounding_multiply_by_pot
    half_x = int(by_pot(x >> 1, -1))                    # F3
    half_three = (1 << 28) + (1 << 27)                  # 1.5 in F3
    y = 1 << 28                                         # 1.0 in F3
    for _ in range(5):
        y3 = int(by_pot(srdhm(srdhm(y, y), y), 6))       # F9 -> Rescale<3>
        y = int(by_pot(int(wrap_int32(int(srdhm(half_three, y)) - int(srdhm(half_x, y3)))), 3))  # F6 -> F3
    y = int(srdhm(y, 1518500250))                       # * sqrt(2)/2 (F0): stays F3
    if shift < 0:
        y = int(wrap_int32(y << -shift))
        shift = 0
    return y, shift * reverse_shift
