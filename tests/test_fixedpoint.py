"""minitiny.quant.fixedpoint against an arbitrary-precision oracle.

The oracle states what each gemmlowp / TFLM primitive computes as exact arithmetic on
Python ints and fractions.Fraction (no int64, no NumPy, no nudges or masks):

    SaturatingRoundingDoublingHighMul(a, b) = a*b / 2^31 to the nearest integer, ties
        towards +infinity (gemmlowp's nudge and truncation do that), INT32_MAX for
        INT32_MIN * INT32_MIN
    RoundingDivideByPOT(x, e)               = x / 2^e to the nearest, ties away from zero
    QuantizeMultiplier(r)                   = (m, s) with m = round_half_away(r * 2^(31-s)),
        2^30 <= m < 2^31, s = floor(log2 r) + 1
Edges of every domain are tested explicitly (INT32_MIN/MAX, shifts -31..30, multipliers
2^30 and 2^31 - 1), and hypothesis draws the rest. Accuracy of the transcendental helpers
(exp, 1/(1+x), logistic, tanh) is checked against math's float64 functions; their exact
bits are checked against TFLM's kernels in test_kernels.py.
"""
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minitiny.quant import fixedpoint as fp

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
int32s = st.integers(INT32_MIN, INT32_MAX)
EDGE_INT32 = [INT32_MIN, INT32_MIN + 1, -(2 ** 30), -12345, -2, -1, 0, 1, 2, 2 ** 30 - 1, 2 ** 30,
              INT32_MAX - 1, INT32_MAX]
EDGE_MULTIPLIERS = [0, 1, 2 ** 30, 2 ** 30 + 1, 1518500250, 2 ** 31 - 2, 2 ** 31 - 1]


# -- the oracle ---------------------------------------------------------------------------
def nearest_ties_up(q):
    return math.floor(q + Fraction(1, 2))


def nearest_ties_away(q):
    return math.floor(abs(q) + Fraction(1, 2)) * (1 if q >= 0 else -1)


def oracle_srdhm(a, b):
    if a == b == INT32_MIN:
        return INT32_MAX
    return nearest_ties_up(Fraction(a * b, 2 ** 31))


def oracle_rdbpot(x, e):
    return nearest_ties_away(Fraction(x, 2 ** e))


def wrap32(v):
    return (v + 2 ** 31) % 2 ** 32 - 2 ** 31


def oracle_mbqm(x, m, shift):
    """Double rounding: first to the nearest of x * 2^left * m / 2^31, then / 2^right."""
    left, right = max(shift, 0), max(-shift, 0)
    return oracle_rdbpot(oracle_srdhm(wrap32(x * 2 ** left), m), right)


def oracle_mbqm_single(x, m, shift):
    """Single rounding: x * m / 2^(31 - shift) to the nearest, ties towards +infinity, then
    stored as int32 (TFLM's static_cast<int32_t>: a result beyond int32 wraps)."""
    return wrap32(nearest_ties_up(Fraction(x * m, 2 ** (31 - shift))))


def oracle_quantize_multiplier(r):
    if r == 0:
        return 0, 0
    fr = Fraction(r)
    s = math.floor(math.log2(r)) + 1
    while fr >= Fraction(2) ** s:          # make 2^(s-1) <= r < 2^s exactly
        s += 1
    while fr < Fraction(2) ** (s - 1):
        s -= 1
    m = nearest_ties_away(fr * Fraction(2) ** (31 - s))
    if m == 2 ** 31:
        m, s = 2 ** 30, s + 1
    if s < -31:
        return 0, 0
    return m, s


# -- rounding primitives -----------------------------------------------------------------
def test_c_divide_truncates_towards_zero():
    for a in [-7, -6, -1, 0, 1, 6, 7, INT32_MIN, INT32_MAX]:
        for b in [-3, -2, -1, 1, 2, 3, 2 ** 31]:
            want = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
            assert int(fp.c_divide(a, b)) == want, (a, b)


def test_srdhm_edges():
    for a in EDGE_INT32:
        for b in EDGE_INT32 + EDGE_MULTIPLIERS:
            assert int(fp.saturating_rounding_doubling_high_mul(a, b)) == oracle_srdhm(a, b), (a, b)
    assert int(fp.saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN)) == INT32_MAX


def test_srdhm_ties():
    # a*b / 2^31 = +-k + 1/2 exactly: gemmlowp rounds both ties upwards
    assert int(fp.saturating_rounding_doubling_high_mul(2 ** 30, 1)) == 1
    assert int(fp.saturating_rounding_doubling_high_mul(-(2 ** 30), 1)) == 0
    assert int(fp.saturating_rounding_doubling_high_mul(3 * 2 ** 29, 2)) == 2      # 1.5 -> 2
    assert int(fp.saturating_rounding_doubling_high_mul(-3 * 2 ** 29, 2)) == -1    # -1.5 -> -1


@given(int32s, int32s)
def test_srdhm_random(a, b):
    assert int(fp.saturating_rounding_doubling_high_mul(a, b)) == oracle_srdhm(a, b)


def test_rounding_divide_by_pot_edges():
    for x in EDGE_INT32 + [-5, -3, 3, 5, -6, 6]:
        for e in range(0, 32):
            assert int(fp.rounding_divide_by_pot(x, e)) == oracle_rdbpot(x, e), (x, e)
    assert int(fp.rounding_divide_by_pot(-3, 1)) == -2       # -1.5 -> -2 (away from zero)
    assert int(fp.rounding_divide_by_pot(3, 1)) == 2


@given(int32s, st.integers(0, 31))
def test_rounding_divide_by_pot_random(x, e):
    assert int(fp.rounding_divide_by_pot(x, e)) == oracle_rdbpot(x, e)


def test_vectorised_matches_scalar():
    rng = np.random.default_rng(0)
    x = rng.integers(INT32_MIN, INT32_MAX, size=(50, 4), endpoint=True)
    m = rng.integers(2 ** 30, 2 ** 31 - 1, size=4, endpoint=True)
    s = np.array([-31, -5, 0, 3])
    got = fp.multiply_by_quantized_multiplier(np.clip(x, -(2 ** 27), 2 ** 27), m, s)
    for i in range(50):
        for j in range(4):
            xi = int(np.clip(x[i, j], -(2 ** 27), 2 ** 27))
            assert got[i, j] == oracle_mbqm(xi, int(m[j]), int(s[j]))


def test_saturating_rounding_multiply_by_pot():
    for x in EDGE_INT32:
        for e in (1, 2, 5, 30):
            want = max(INT32_MIN, min(INT32_MAX, x * 2 ** e))
            # gemmlowp saturates from threshold 2^(31-e) - 1 on; below it the shift is exact
            assert int(fp.saturating_rounding_multiply_by_pot(x, e)) == want, (x, e)
        for e in (-1, -4, -31):
            assert int(fp.saturating_rounding_multiply_by_pot(x, e)) == oracle_rdbpot(x, -e)


# -- requantization ----------------------------------------------------------------------
@pytest.mark.parametrize("shift", list(range(-31, 31)))
def test_mbqm_every_shift(shift):
    for m in EDGE_MULTIPLIERS:
        for x in EDGE_INT32:
            want = oracle_mbqm(x, m, shift)
            assert int(fp.multiply_by_quantized_multiplier(x, m, shift)) == want, (x, m, shift)
            if m > 0:
                # single rounding (TFLITE_SINGLE_ROUNDING): one exact rounding in int64
                got = int(fp.multiply_by_quantized_multiplier(x, m, shift, single_rounding=True))
                assert got == oracle_mbqm_single(x, m, shift), (x, m, shift)


@given(st.integers(-(2 ** 24), 2 ** 24), st.integers(2 ** 30, 2 ** 31 - 1), st.integers(-31, 6))
def test_mbqm_random_close_to_real(x, m, shift):
    got = int(fp.multiply_by_quantized_multiplier(x, m, shift))
    assert got == oracle_mbqm(x, m, shift)
    exact = Fraction(x * m) * Fraction(2) ** (shift - 31)
    assert abs(got - exact) <= 1        # two roundings of at most 1/2 each
    assert int(fp.multiply_by_quantized_multiplier(x, m, shift, True)) == oracle_mbqm_single(x, m, shift)


def test_mbqm_smaller_and_greater_than_one_variants():
    for x in EDGE_INT32:
        for m in EDGE_MULTIPLIERS:
            for s in (0, -1, -7, -31):
                got = int(fp.multiply_by_quantized_multiplier_smaller_than_one_exp(x, m, s))
                assert got == oracle_rdbpot(oracle_srdhm(x, m), -s)
    for x in (-300, -1, 0, 1, 255):
        for s in (0, 1, 10, 20):
            got = int(fp.multiply_by_quantized_multiplier_greater_than_one(x, 2 ** 30 + 7, s))
            assert got == oracle_srdhm(x * 2 ** s, 2 ** 30 + 7)


# -- multipliers from real numbers -------------------------------------------------------
def test_quantize_multiplier_pinned():
    # derived by hand from real = m * 2^(shift - 31), 2^30 <= m < 2^31
    assert fp.quantize_multiplier(0.5) == (2 ** 30, 0)
    assert fp.quantize_multiplier(1.0) == (2 ** 30, 1)
    assert fp.quantize_multiplier(0.75) == (3 * 2 ** 29, 0)
    assert fp.quantize_multiplier(2.0 ** -20) == (2 ** 30, -19)
    assert fp.quantize_multiplier(0.0) == (0, 0)
    # q * 2^31 rounds up to 2^31: the significand is halved and the shift bumped
    assert fp.quantize_multiplier(1.0 - 2.0 ** -40) == (2 ** 30, 1)
    # below 2^-32 every bit would be shifted out: multiplier 0
    assert fp.quantize_multiplier(2.0 ** -40) == (0, 0)
    # round half away from zero, not Python's half-to-even: q * 2^31 = 2^30 + 0.5 exactly
    assert fp.quantize_multiplier((2 ** 30 + 0.5) / 2 ** 31) == (2 ** 30 + 1, 0)
    assert fp.quantize_multiplier((2 ** 30 + 2.5) / 2 ** 31) == (2 ** 30 + 3, 0)
    # single rounding saturates shifts above 30
    assert fp.quantize_multiplier(2.0 ** 40, single_rounding=True) == (2 ** 31 - 1, 30)
    with pytest.raises(ValueError):
        fp.quantize_multiplier(float("nan"))
    with pytest.raises(ValueError):
        fp.quantize_multiplier(-1.0)


@given(st.floats(min_value=1e-12, max_value=1e6, allow_nan=False, allow_infinity=False))
def test_quantize_multiplier_random(r):
    m, s = fp.quantize_multiplier(r)
    assert (m, s) == oracle_quantize_multiplier(r)
    if m:
        assert 2 ** 30 <= m < 2 ** 31
        assert abs(Fraction(m) * Fraction(2) ** (s - 31) - Fraction(r)) <= Fraction(2) ** (s - 32)


def test_quantize_multiplier_array_and_exp_variants():
    m, s = fp.quantize_multiplier_array([0.5, 0.25, 3.0])
    assert m.dtype == np.int32 and list(m) == [2 ** 30, 2 ** 30, 3 * 2 ** 29] and list(s) == [0, -1, 2]
    assert fp.quantize_multiplier_smaller_than_one_exp(0.25) == (2 ** 30, -1)
    assert fp.quantize_multiplier_greater_than_one(3.0) == (3 * 2 ** 29, 2)
    with pytest.raises(ValueError):
        fp.quantize_multiplier_smaller_than_one_exp(1.0)
    with pytest.raises(ValueError):
        fp.quantize_multiplier_greater_than_one(1.0)


def test_tflite_round_is_half_away_from_zero():
    assert [fp.tflite_round(v) for v in (0.5, 1.5, 2.5, -0.5, -2.5, 2.4999)] == [1, 2, 3, -1, -3, 2]


def test_count_leading_zeros():
    for x in [0, 1, 2, 3, 2 ** 19, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1]:
        assert int(fp.count_leading_zeros(x)) == 32 - x.bit_length()


def test_calculate_input_radius():
    for ib in (4, 5):
        for ls in range(0, 31):
            want = math.floor(Fraction((2 ** ib - 1) * 2 ** (31 - ib), 2 ** ls))
            assert fp.calculate_input_radius(ib, ls) == want


def test_input_scale_multiplier():
    # scale * 2^27 = 0.1 * 2^27: frexp gives q in [0.5, 1); m = q * 2^31 exactly (float32 scale)
    scale = np.float32(0.1)
    m, ls, radius = fp.input_scale_multiplier(scale, 4)
    assert Fraction(m) * Fraction(2) ** (ls - 31) == Fraction(float(scale)) * 2 ** 27
    assert radius == fp.calculate_input_radius(4, ls)


def test_preprocess_softmax_scaling():
    m, ls = fp.preprocess_softmax_scaling(1.0, 0.1, 5)
    assert abs(Fraction(m) * Fraction(2) ** (ls - 31) - Fraction(0.1) * 2 ** 26) <= Fraction(2) ** (ls - 32)
    # a huge beta * scale is capped at 2^31 - 1 (2^30 - 1 with single rounding)
    assert fp.preprocess_softmax_scaling(1.0, 1e6, 5) == fp.quantize_multiplier(2.0 ** 31 - 1)
    assert fp.preprocess_softmax_scaling(1.0, 1e6, 5, True) == fp.quantize_multiplier(2.0 ** 30 - 1)


# -- transcendental helpers: accuracy (their bits are pinned by TFLM in test_kernels) ----
def test_exp_on_negative_values_accuracy():
    for ib in (4, 5):
        a = -np.arange(0, (2 ** ib - 1) * 2 ** (31 - ib), 2 ** (31 - ib - 6), dtype=np.int64)
        got = fp.exp_on_negative_values(a, ib) / 2 ** 31
        assert np.max(np.abs(got - np.exp(a / 2 ** (31 - ib)))) < 5e-7   # gemmlowp: ~2^-22
    assert int(fp.exp_on_negative_values(0, 5)) == INT32_MAX


def test_exp_interval_polynomial_accuracy():
    a = -np.arange(1, 2 ** 29, 2 ** 16, dtype=np.int64)         # [-1/4, 0) in Q0.31
    got = fp.exp_on_interval_between_negative_one_quarter_and_0_excl(a) / 2 ** 31
    assert np.max(np.abs(got - np.exp(a / 2 ** 31))) < 3e-7    # Taylor remainder (1/8)^5/5! ~ 2.5e-7


def test_reciprocals_accuracy():
    x = np.arange(0, 2 ** 31 - 1, 2 ** 20, dtype=np.int64)      # [0, 1) in Q0.31
    f = x / 2 ** 31
    assert np.max(np.abs(fp.one_over_one_plus_x_for_x_in_0_1(x) / 2 ** 31 - 1 / (1 + f))) < 1e-8
    assert np.max(np.abs(fp.one_minus_x_over_one_plus_x_for_x_in_0_1(x) / 2 ** 31 - (1 - f) / (1 + f))) < 1e-8
    sums = np.array([1, 3, 5, 1000, 4095], dtype=np.int64) << 19   # Q12.19
    scale, bits = fp.get_reciprocal(sums, 12)
    assert np.allclose(scale / 2 ** 31 / 2.0 ** bits, 1 / (sums / 2 ** 19), rtol=1e-8)


def test_logistic_and_tanh_accuracy():
    a = np.arange(-(2 ** 31) + 1, 2 ** 31 - 1, 2 ** 20, dtype=np.int64)   # Q4.27: [-16, 16)
    r = a / 2 ** 27
    assert np.max(np.abs(fp.logistic(a, 4) / 2 ** 31 - 1 / (1 + np.exp(-r)))) < 2e-7
    assert np.max(np.abs(fp.tanh(a, 4) / 2 ** 31 - np.tanh(r))) < 2e-7
    assert int(fp.logistic(0, 4)) == 2 ** 30 and int(fp.tanh(0, 4)) == 0
