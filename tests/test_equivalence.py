"""Equivalence by property: one int8 model, every engine, the same bits.

Hypothesis draws whole models -- chains and residual graphs (a skip connection around one
or two layers, or a diamond: two branches from one tensor joined by ADD) of all 13 op kinds,
with random shapes, strides, paddings, depth multipliers, fused activations, per-tensor or
per-channel weights, input scales log-uniform over nine orders of magnitude (1e-6 .. 1e3;
every later scale follows from it), zero points at -128 and 127 a third of the time -- and
random int8 inputs with -128 and 127 in every sample. Every engine must give the identical
int8 outputs:

    NumPy reference    QModel.predict_int8 (minitiny/quant/kernels/)       the baseline
    host C             minitiny.codegen.generate + load (gcc, cffi), the reference and scalar kernels
    TFLite Micro       minitiny.quant.tflm.run_tflm (the installed interpreter; the oracle)
    Cortex-M4          minitiny.firmware.run under QEMU, once per kernel variant
                       (codegen KERNEL_VARIANTS: 'reference', 'scalar', 'dsp', 'auto');
                       a handful of fixed models only: each build + run costs about a second.

How many models and int8 outputs each engine compared, and how many differed (0, or the
test fails), is printed at the end of the module, also when the run passes.
"""
import os
import shutil
import tempfile
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import Phase, given, settings, strategies as st

import int8_oracle as O
from minitiny.testing import models as models_
from minitiny import codegen
from minitiny.codegen import generator, templating
from minitiny.quant import tflm
from minitiny.quant.graph import QModel, QOp
import figures  # noqa: E402  (tests/figures.py)

GCC = shutil.which("gcc") or shutil.which("clang")
HAVE_FIRMWARE = bool(shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"))

# engine -> [models, int8 outputs compared with the NumPy reference, outputs that differed]
FIGURES = {}
STACK = {}      # kernel variant -> the deepest stack bound of the models run on the M4, bytes


@pytest.fixture(scope="module", autouse=True)
def report_figures(request):
    yield
    if not FIGURES:
        return
    lines = ["", "equivalence with the NumPy int8 reference (models, int8 outputs, mismatches; "
                 "for the C fixed-point helpers: 1 build, edge cases against the exact oracle):"]
    width = max(len(engine) for engine in FIGURES)
    lines += [f"  {engine:{width}s} {m:5d} models {n:9d} outputs {bad:4d} mismatched"
              for engine, (m, n, bad) in FIGURES.items()]
    lines += [f"  stack on the Cortex-M4 ({v}): at most {n} bytes (gcc -fstack-usage, call graph)"
              for v, n in STACK.items()]
    text = "\n".join(lines)
    figures.show(request, text)


def compare(engine, model, got, want):
    """Tally one engine's outputs against the reference; fail on the first difference."""
    got = np.asarray(got).reshape(want.shape)
    bad = got != want
    row = FIGURES.setdefault(engine, [0, 0, 0])
    row[0] += 1
    row[1] += want.size
    row[2] += int(bad.sum())
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        raise AssertionError(f"{engine}: {int(bad.sum())} of {want.size} int8 outputs differ from "
                             f"the NumPy reference; first at {i}: {engine} {got[i]}, NumPy "
                             f"{want[i]}\n{model.summary()}")


# ---------------------------------------------------------------------------------------
# Drawing whole models: minitiny.testing.models (the public drawer)
# ---------------------------------------------------------------------------------------
STEPS, _choice, layer = models_.STEPS, models_._choice, models_.layer


def build(seed, steps, spatial=True, tries=4, scales=None):
    return models_.random_qmodel(seed, steps, spatial, tries=tries, name="equivalence", scales=scales)


@st.composite
def models(draw):
    return draw(models_.qmodels())


def inputs_of_shape(shape, seed, n=16):
    """Random int8 inputs with -128 and 127 in every sample (int8_oracle.int8_input)."""
    return O.int8_input(np.random.default_rng(seed), shape, n)


def inputs(model, seed, n=16):
    return inputs_of_shape(model.input.shape, seed, n)


HOST_VARIANTS = ("reference", "scalar")     # the kernel variants the host compiles (no DSP)


def host_c(model, x, compiler=None, variant="scalar"):
    with tempfile.TemporaryDirectory() as d:
        codegen.generate(model, d, name="eq", variant=variant)
        return codegen.load(d, compiler=compiler)(x)


# ---------------------------------------------------------------------------------------
# The property: NumPy == host C == TFLM, for every drawn model
# ---------------------------------------------------------------------------------------
@pytest.mark.skipif(GCC is None, reason="no C compiler (gcc or clang)")
@given(models(), st.integers(0, 2 ** 16), st.sampled_from(HOST_VARIANTS))
def test_random_models_give_identical_int8_on_every_engine(model, input_seed, variant):
    x = inputs(model, input_seed)
    want = model.predict_int8(x)
    compare("NumPy reference", model, want, want)
    compare(f"host C ({variant})", model, host_c(model, x, variant=variant), want)
    if tflm.available():
        compare("TFLite Micro", model, tflm.run_tflm(model, x), want)


SWEEP = 100        # fixed random models on top of hypothesis' examples (about 0.2 s each)


@pytest.mark.skipif(GCC is None, reason="no C compiler (gcc or clang)")
def test_sweep_of_random_models_on_every_engine():
    """A fixed sweep of models from a seeded generator: more models than the hypothesis
    budget allows, the same engines. Every fifth model also runs with TFLITE_SINGLE_ROUNDING
    requantization (NumPy and C only: the installed TFLM is built with double rounding)."""
    rng = np.random.default_rng(2024)
    for i in range(SWEEP):
        steps = [_choice(rng, STEPS) for _ in range(int(rng.integers(1, 9)))]
        model = build(int(rng.integers(2 ** 32)), steps, spatial=bool(i % 4))
        x = inputs(model, i)
        want = model.predict_int8(x)
        compare("NumPy reference", model, want, want)
        variant = HOST_VARIANTS[i % 2]
        compare(f"host C ({variant})", model, host_c(model, x, variant=variant), want)
        if tflm.available():
            compare("TFLite Micro", model, tflm.run_tflm(model, x), want)
        if i % 5 == 0:
            single = single_rounding(model)
            want = single.predict_int8(x)
            compare("host C, single rounding", single, host_c(single, x), want)


def single_rounding(model):
    """The same graph with TFLITE_SINGLE_ROUNDING's requantization."""
    ops = [QOp(op.kind, op.name, op.inputs, op.outputs, op.options) for op in model.ops]
    return QModel(model.name, model.tensors, ops, model.inputs, model.outputs, single_rounding=True)


def test_drawn_models_cover_every_kind_and_shape_of_graph():
    """The drawer itself: over a fixed sweep it builds every op kind, both kinds of branch,
    per-channel and per-tensor weights, every fused activation, extreme zero points and
    scales across many orders of magnitude (else the property above proves less)."""
    rng = np.random.default_rng(0)
    kinds, acts, zps, scales, per_channel, joins = set(), set(), set(), [], set(), 0
    for i in range(150):
        steps = [_choice(rng, STEPS) for _ in range(int(rng.integers(1, 9)))]
        model = build(int(rng.integers(2 ** 32)), steps, spatial=bool(i % 3))
        for op in model.ops:
            kinds.add(op.kind)
            acts.add(op.options.get("activation", "none"))
            if op.kind == "add" and op.inputs[0] != op.inputs[1]:
                joins += 1
        for t in model.tensors.values():
            if t.dtype == "int8" and not t.is_constant:
                zps.add(int(t.zero_point))
                scales.append(float(t.scale))
            elif t.dtype == "int8":
                per_channel.add(t.per_channel)
    # (the data-movement kinds are drawn by tests/test_data_movement.py, those in
    # test_codegen_models.ELSEWHERE by the test file it names)
    from test_codegen_models import ELSEWHERE
    want = set(generator.TEMPLATES) - set(generator.MOVEMENT_TEMPLATES) - set(ELSEWHERE)
    assert kinds == want, (want - kinds, kinds - want)
    assert acts == {"none", "relu", "relu6"}
    assert {-128, 127} <= zps
    assert per_channel == {True, False}
    assert max(scales) / min(scales) > 1e8
    assert joins > 50


# ---------------------------------------------------------------------------------------
# Where users go: wide layers, long flattens, scales from 1e-30 to 1e30
# ---------------------------------------------------------------------------------------
# The drawer above stops at 16 units and a few hundred values; users build 1000-class
# heads, flatten 100x100 images and calibrate on data of any magnitude. These models are
# large (a dense layer of 1000+ units is a megabyte of C), so CI draws a few per run and
# HYPOTHESIS_PROFILE=thorough many more.
EXTREME_SCALES = (1e-30, 1e30)
LARGE_KINDS = ("wide dense", "long flatten", "extreme scales")
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
# Softmax over 512 or more values is issue 21 item 1 (the C, NumPy and TFLM disagree: a
# shift of 32), logistic and tanh on an input scale of about 1e13 or more item 2 (TFLM
# differs); until their fixes land the drawer stays below these.
SOFTMAX_MAX_DEPTH = 511
LOGISTIC_TANH_MAX_INPUT_SCALE = 1e12
# A failing large model is reported as drawn: shrinking it would rebuild megabytes of C
# hundreds of times.
LARGE_PHASES = (Phase.explicit, Phase.reuse, Phase.generate)


def build_large(seed, kind):
    """A model of `kind`: 'wide dense' (1,000 to 1,200 units on up to 1,500 inputs),
    'long flatten' (10,000 to 20,000 values into a dense layer), 'extreme scales' (a model
    of the drawer above with input and weight scales log-uniform over 1e-30 .. 1e30)."""
    rng = np.random.default_rng(seed)
    if kind == "extreme scales":
        steps = [_choice(rng, STEPS) for _ in range(int(rng.integers(1, 7)))]
        for attempt in range(20):
            with np.errstate(over="ignore", under="ignore"):   # products beyond float32: redrawn
                model = build(seed + attempt, steps, spatial=bool(rng.random() < 0.5), scales=EXTREME_SCALES)
            if not any(op.kind in ("logistic", "tanh") and float(model.tensors[op.inputs[0]].scale)
                       > LOGISTIC_TANH_MAX_INPUT_SCALE for op in model.ops):
                break
        return model
    if kind == "wide dense":
        b = O.Builder(seed, (int(rng.integers(1, 1501)),), kind, in_scale=O.log_uniform(rng, 1e-6, 1e3))
        b.dense(int(rng.integers(1000, 1201)), _choice(rng, O.ACTIVATIONS), per_channel=bool(rng.random() < 0.5))
    else:
        c = int(rng.integers(1, 5))
        h = int(rng.integers(40, 101))
        w = -(-10_000 // (h * c)) + int(rng.integers(0, 30))           # h * w * c >= 10,000
        b = O.Builder(seed, (h, w, c), kind, in_scale=O.log_uniform(rng, 1e-6, 1e3))
        if rng.random() < 0.5:
            layer(b, _choice(rng, ("relu", "relu6", "logistic", "tanh")))
        b.flatten()
        b.dense(int(rng.integers(1, 17)), _choice(rng, O.ACTIVATIONS), per_channel=bool(rng.random() < 0.5))
    if rng.random() < 0.5:
        if b.t.shape[0] > SOFTMAX_MAX_DEPTH:
            b.dense(int(rng.integers(2, 17)))        # a classifier's last layer, then softmax
        b.softmax()
    return b.model()


def every_engine(label, model, x):
    want = model.predict_int8(x)
    compare(f"NumPy reference ({label})", model, want, want)
    compare(f"host C ({label})", model, host_c(model, x), want)
    if tflm.available():
        compare(f"TFLite Micro ({label})", model, tflm.run_tflm(model, x), want)


@pytest.mark.skipif(GCC is None, reason="no C compiler (gcc or clang)")
@pytest.mark.parametrize("kind", LARGE_KINDS)
@settings(max_examples=40 if THOROUGH else 2, phases=LARGE_PHASES)
@given(seed=O.seeds, input_seed=st.integers(0, 2 ** 16))
def test_large_and_extreme_models_give_identical_int8_on_every_engine(kind, seed, input_seed):
    model = build_large(seed, kind)
    every_engine("large" if kind != "extreme scales" else "extreme scales", model,
                 inputs(model, input_seed, n=8))


def test_the_large_drawer_reaches_where_users_go():
    """Over a fixed sweep the large drawer builds dense layers of 1,000+ units, flattens of
    10,000+ values, and input, weight and activation scales beyond 1e-25 and 1e25."""
    rng = np.random.default_rng(1)
    units, flat, scales = [], [], []
    for i in range(60):         # (a second of building; 30 sufficed before the drawer drew more kinds)
        model = build_large(int(rng.integers(2 ** 32)), LARGE_KINDS[i % 3])
        for op in model.ops:
            t = model.tensors[op.outputs[0]]
            if op.kind == "fully_connected" and LARGE_KINDS[i % 3] == "wide dense":
                units.append(t.shape[0])
            if op.kind == "reshape" and len(t.shape) == 1 and LARGE_KINDS[i % 3] == "long flatten":
                flat.append(t.shape[0])
        scales += [float(np.min(t.scale)) for t in model.tensors.values() if t.dtype == "int8"]
        scales += [float(np.max(t.scale)) for t in model.tensors.values() if t.dtype == "int8"]
    assert max(units) >= 1000 and min(flat) >= 10_000, (max(units), flat)
    assert min(scales) < 1e-25 and max(scales) > 1e25, (min(scales), max(scales))


# ---------------------------------------------------------------------------------------
# The emulated Cortex-M4: a handful of fixed models, every kernel variant
# ---------------------------------------------------------------------------------------
M4_MODELS = {
    "every kind": (11, ["conv_2d", "relu", "depthwise_conv_2d", "residual", "max_pool_2d", "relu6",
                        "average_pool_2d", "logistic", "tanh", "diamond", "mean", "reshape",
                        "fully_connected", "softmax"], True),
    "residual cnn": (12, ["conv_2d", "residual", "residual", "depthwise_conv_2d", "diamond",
                          "average_pool_2d", "reshape", "fully_connected"], True),
    "strided cnn": (13, ["conv_2d", "conv_2d", "depthwise_conv_2d", "max_pool_2d", "mean",
                         "fully_connected", "softmax"], True),
    "mlp": (14, ["fully_connected", "residual", "fully_connected", "diamond", "tanh",
                 "fully_connected", "softmax"], False),
    # every element-wise kind, with constant operands (before and after) and broadcasts of
    # constants and of activations (Rescaling, a squeeze-and-excitation gate)
    "elementwise": (16, ["conv_2d", "rescaling", "sub", "leaky_relu", "squared_difference", "maximum",
                         "prelu", "minimum", "squeeze_excite", "hard_swish", "mul", "mean",
                         "fully_connected", "prelu", "hard_swish", "elu"], True),
}
_rng = np.random.default_rng(15)
for _i in range(3):                     # and three drawn like the sweep's
    M4_MODELS[f"random {_i}"] = (int(_rng.integers(2 ** 32)),
                                 [_choice(_rng, STEPS) for _ in range(int(_rng.integers(3, 9)))], True)


@pytest.mark.skipif(not HAVE_FIRMWARE, reason="arm-none-eabi-gcc or qemu-system-arm is missing")
@pytest.mark.parametrize("variant", sorted(generator.KERNEL_VARIANTS))
@pytest.mark.parametrize("label", list(M4_MODELS))
def test_fixed_models_on_the_emulated_cortex_m4(label, variant, tmp_path):
    from minitiny import firmware
    seed, steps, spatial = M4_MODELS[label]
    model = build(seed, steps, spatial)
    assert label.startswith("random") or len(model.ops) >= len(steps)   # every step fitted
    x = inputs(model, seed, n=8)
    want = model.predict_int8(x)
    codegen.generate(model, tmp_path, name="eq", variant=variant)
    result = firmware.run(tmp_path, board="cortex-m4", inputs=x, profile=False)
    assert result.ok, result.message
    compare(f"Cortex-M4 ({variant})", model, result.outputs, want)
    # the stack the model needs on the core, from gcc -fstack-usage along its call graph
    assert result.ram["stack_bound"] <= 1024, result.ram
    STACK[variant] = max(STACK.get(variant, 0), int(result.ram["stack_bound"]))


# ---------------------------------------------------------------------------------------
# The fixed-point helpers of the generated C at the edges of their domains
# ---------------------------------------------------------------------------------------
# tests/test_fixedpoint.py holds minitiny/quant/fixedpoint.py to an exact oracle (Python
# ints and Fractions) over these edges; models never reach most of them (INT32_MIN, shifts
# of -31 and 30), so here the C twins in codegen's fixedpoint.c.j2 meet the same oracle,
# compiled under -fsanitize=address,undefined: no undefined behaviour at the edges either.
HELPER_DRIVER = r"""
#include <stdint.h>
#include <stdio.h>
{helpers}
int main(void)
{
    long op, a, b, c;
    while (scanf("%ld %ld %ld %ld", &op, &a, &b, &c) == 4) {
        const int32_t x = (int32_t)a, y = (int32_t)b;
        int32_t y2 = 0;
        int bits = 0;
        long r = 0;
        switch (op) {
        case 0: r = SaturatingRoundingDoublingHighMul(x, y); break;
        case 1: r = RoundingDivideByPOT(x, (int)b); break;
        case 2: r = SaturatingRoundingMultiplyByPOT(x, (int)b); break;
        case 3: r = MultiplyByQuantizedMultiplier(x, y, (int)c); break;
        case 4: r = MultiplyByQuantizedMultiplierGreaterThanOne(x, y, (int)c); break;
        case 5: r = RoundingHalfSum(x, y); break;
        case 6: r = exp_on_negative_values(x, (int)b); break;
        case 7: r = one_over_one_plus_x_for_x_in_0_1(x); break;
        case 8: r = gemmlowp_logistic(x, (int)b); break;
        case 9: r = gemmlowp_tanh(x, (int)b); break;
        case 10: r = CountLeadingZeros((uint32_t)x); break;
        case 12: GetInvSqrtQuantizedMultiplierExp(x, &y2, &bits); r = (long)y2 * 64 + bits; break;
        default: r = GetReciprocal(x, (int)b, &bits); r = r * 64 + bits; break;
        }
        printf("%ld\n", r);
    }
    return 0;
}
"""


# integer bits of the exp / logistic / tanh inputs: TFLM uses 4 (logistic, tanh) and 5
# (softmax's differences); gemmlowp's barrel shifter covers up to 5 (exp(-2^k), k <= 4)
INTEGER_BITS = (0, 1, 2, 3, 4, 5)


def helper_cases():
    """(op, a, b, c) over the edges, with the exact expected value (None: compare with
    minitiny.quant.fixedpoint, the helpers without a closed form)."""
    import test_fixedpoint as T
    edge, mults = T.EDGE_INT32, [m for m in T.EDGE_MULTIPLIERS if m >= 2 ** 30]
    cases = []
    for a in edge:
        cases += [(0, a, b, 0, T.oracle_srdhm(a, b)) for b in edge]
        cases += [(1, a, e, 0, T.oracle_rdbpot(a, e)) for e in range(0, 32)]
        cases += [(2, a, e, 0, max(T.INT32_MIN, min(T.INT32_MAX, a * 2 ** e)) if e >= 0
                   else T.oracle_rdbpot(a, -e)) for e in range(-31, 31)]
        cases += [(3, a, m, s, None) for m in mults for s in range(-31, 31)]
        cases += [(4, a, m, s, T.oracle_srdhm(T.wrap32(a * 2 ** s), m)) for m in mults for s in range(0, 31)]
        cases += [(5, a, b, 0, T.nearest_ties_away(Fraction(a + b, 2))) for b in edge]
        cases += [(10, a, 0, 0, 32 - (a % 2 ** 32).bit_length())]
        if a > T.INT32_MIN:
            cases += [(op, a, bits, 0, None) for op in (8, 9) for bits in INTEGER_BITS]
        if a <= 0:
            cases += [(6, a, bits, 0, None) for bits in INTEGER_BITS]
        if a >= 0:
            cases += [(7, a, 0, 0, None)]
        if a > 0:
            cases += [(11, a, bits, 0, None) for bits in (0, 4, 12, 31)]
        if a >= 0:
            cases += [(12, a, 0, 0, None)]
    return cases


def helper_expected(op, a, b, c, want, single):
    """The exact value, or minitiny's Python helper where there is no closed form."""
    import test_fixedpoint as T
    if op == 3:
        if single:          # one rounding in int64, then TFLM's static_cast<int32_t>
            return T.wrap32(T.oracle_mbqm_single(a, b, c))
        return T.oracle_mbqm(a, b, c)
    if op == 4 and single:
        return T.wrap32(T.oracle_mbqm_single(a, b, c))
    if want is not None:
        return want
    from minitiny.quant import fixedpoint as fp
    f = {6: lambda: fp.exp_on_negative_values(a, b), 7: lambda: fp.one_over_one_plus_x_for_x_in_0_1(a),
         8: lambda: fp.logistic(a, b), 9: lambda: fp.tanh(a, b)}
    if op == 11:
        value, bits = fp.get_reciprocal(a, b)
        return int(value) * 64 + int(bits)
    if op == 12:
        value, shift = fp.inv_sqrt_quantized_multiplier_exp(a, -1)
        return int(value) * 64 + int(shift)
    return int(f[op]())


@pytest.mark.skipif(GCC is None, reason="no C compiler (gcc or clang)")
@pytest.mark.parametrize("single", [False, True], ids=["double rounding", "single rounding"])
@pytest.mark.parametrize("fast", [False, True], ids=["TFLM's requantization", "the scalar variant's"])
def test_c_fixed_point_helpers_at_the_edges(tmp_path, single, fast):
    import subprocess
    helpers = set(generator.FIXEDPOINT_DEPENDS)
    text = templating.environment().get_template("fixedpoint.c.j2").render(
        helpers=helpers, single_rounding=single, requantize_fast=fast)
    (tmp_path / "helpers.c").write_text(HELPER_DRIVER.replace("{helpers}", text))
    exe = tmp_path / "helpers"
    subprocess.run([GCC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-g",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    str(tmp_path / "helpers.c"), "-o", str(exe)], check=True)
    cases = helper_cases()
    run = subprocess.run([str(exe)], input="\n".join(f"{o} {a} {b} {c}" for o, a, b, c, _ in cases),
                         capture_output=True, text=True)
    assert run.returncode == 0 and "runtime error" not in run.stderr, run.stderr[-2000:]
    got = [int(v) for v in run.stdout.split()]
    assert len(got) == len(cases)
    bad = [(case[:4], g, helper_expected(*case, single)) for case, g in zip(cases, got)
           if g != helper_expected(*case, single)]
    row = FIGURES.setdefault(f"C fixed-point, {'single' if single else 'double'} rounding", [0, 0, 0])
    row[0] += 1
    row[1] += len(cases)
    row[2] += len(bad)
    assert not bad, f"{len(bad)} of {len(cases)} differ; first (op, a, b, c), C, expected: {bad[:5]}"


@pytest.mark.skipif(GCC is None, reason="no C compiler (gcc or clang)")
def test_single_rounding_with_a_multiplier_that_overflows_int32():
    """relu with s_out = s_in / 2^26: (q - z) * 2^26 leaves int32 for |q - z| >= 32. Found
    here: NumPy kept the int64 result where TFLM (static_cast<int32_t>) and the C wrap it;
    127 of 256 outputs differed. Fixed in fixedpoint.py (the result wraps to int32)."""
    model = single_rounding(O.elementwise_model("relu", np.float32(0.5), 0, np.float32(0.5 / 2 ** 26), 0))
    want = model.predict_int8(O.ALL_INT8)
    np.testing.assert_array_equal(host_c(model, O.ALL_INT8), want)
