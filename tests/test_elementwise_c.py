"""The generated C of the element-wise ops and activations (issue 19 items 1-2) against the
NumPy int8 reference, bit for bit: ADD, SUB, MUL, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE with
broadcasting and constant operands, PRELU, LEAKY_RELU, HARD_SWISH, ELU.

Oracles: QModel.predict_int8 (itself held to TFLite Micro by tests/test_elementwise_binary.py
and tests/test_leaky_prelu_hard_swish.py) for the C, compiled on the host through cffi, in
the reference and scalar variants; and TFLM on the same model where it is installed, so a
model drawn here is checked against TFLM too.

Hypothesis draws the output's dimensions (rank 1 to 3, and 4 with the batch dimension of a
constant), each operand keeping some of them as 1 so the shapes broadcast either way; the
second operand a constant (before or after) or an activation (a Dense layer's output reshaped
to the drawn shape, so one model input feeds both); input scales log-uniform over 1e-6..1e6,
zero points at -128 and 127 a third of the time. A few large feature maps per CI run (more
under HYPOTHESIS_PROFILE=thorough), and some draws built with ASan and UBSan.
"""
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import figures
import int8_oracle as O
from minitiny import codegen
from minitiny.codegen import elementwise
from minitiny.quant import tflm
from minitiny.quant.graph import GraphError

BINARY = O.BINARY
UNARY = ("leaky_relu", "hard_swish", "elu")
KINDS = BINARY + ("prelu",) + UNARY
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
VARIANTS = ("reference", "scalar")
TALLY = {}            # engine -> [models, outputs, mismatches]


@pytest.fixture(scope="module", autouse=True)
def report(request):
    yield
    lines = [f"  {engine:28s} {m:4d} models {n:9d} int8 outputs {bad:3d} mismatched"
             for engine, (m, n, bad) in TALLY.items()]
    if lines:
        figures.show(request, "\n".join(["", "element-wise C vs the NumPy int8 reference:"] + lines))


def compare(engine, model, got, want):
    row = TALLY.setdefault(engine, [0, 0, 0])
    row[0] += 1
    row[1] += want.size
    bad = got.reshape(want.shape) != want
    row[2] += int(bad.sum())
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        raise AssertionError(f"{engine}: {int(bad.sum())} of {want.size} outputs differ; first at {i}: "
                             f"{got.reshape(want.shape)[i]} vs NumPy {want[i]}\n{model.summary()}")


def check(model, x, variant, sanitize=False):
    want = model.predict_int8(x)
    with tempfile.TemporaryDirectory() as d:
        codegen.generate(model, d, name="ew", variant=variant)
        got = codegen.load(d, sanitize=sanitize)(x)
    compare(f"host C ({variant}{', sanitized' if sanitize else ''})", model, got, want)
    if tflm.available():
        compare("TFLite Micro", model, tflm.run_tflm(model, x), want)


# ---------------------------------------------------------------------------------------
# The models: one op, its second operand a constant or an activation
# ---------------------------------------------------------------------------------------
def build(kind, seed, out_dims, keep1, keep2, rank2, second, swap, s_in, z_in, activation):
    """`kind` on an input of out_dims with the dimensions not in keep1 set to 1, and a second
    operand of the last rank2 dimensions with those not in keep2 set to 1: 'constant' (rank2
    may then count a batch dimension of 1), or 'activation' (input -> Dense -> Reshape), or
    'mean' (the input's mean over H and W, (1, 1, C))."""
    in_shape = tuple(d if i in keep1 else 1 for i, d in enumerate(out_dims))
    b = O.Builder(seed, in_shape, kind, np.float32(s_in), z_in)
    x = b.cur
    if kind in UNARY:
        if kind == "leaky_relu":
            return b.leaky_relu(alpha=float(b.rng.choice([0.01, 0.2, 1.0, 3.0]))).model()
        return getattr(b, kind)().model()
    tail = out_dims[len(out_dims) - min(rank2, len(out_dims)):]
    other = tuple(d if i in keep2 else 1 for i, d in enumerate(tail))
    if rank2 > len(out_dims):
        other = (1,) + other                                 # a constant with the batch dimension
    if kind == "prelu":                # alpha broadcasts over the input: its trailing dimensions
        k = min(rank2, len(in_shape))
        alpha = tuple(d if i in keep2 else 1 for i, d in enumerate(in_shape[len(in_shape) - k:]))
        return b.prelu(alpha_shape=alpha).model()
    fused = {"activation": activation} if kind in O.FUSED else {}
    if second == "constant":
        return b.binary(kind, other, constant=True, constant_first=swap, **fused).model()
    if kind in ("maximum", "minimum"):                       # one quantization: x with itself
        return b.binary(kind, other=x, **fused).model()
    if second == "mean":                                     # squeeze-excite: x * mean(x) (1, 1, C)
        b.mean(keep_dims=True)
        y, b.cur = b.cur, x
        return b.binary(kind, other=y, swap=swap, **fused).model()
    b.flatten().dense(int(np.prod(other)), per_channel=bool(b.rng.random() < 0.5))
    b.reshape(other)
    y, b.cur = b.cur, x
    return b.binary(kind, other=y, swap=swap, **fused).model()


@st.composite
def drawn(draw, kinds=KINDS, max_dim=6):
    kind = draw(st.sampled_from(kinds), label="kind")
    rank = draw(st.integers(1, 3), label="rank")
    out_dims = tuple(draw(st.integers(1, max_dim)) for _ in range(rank))
    keep1 = {i for i in range(rank) if draw(st.integers(0, 3))}
    rank2 = draw(st.integers(0, rank + 1))
    keep2 = {i for i in range(min(rank2, rank)) if draw(st.integers(0, 2))}
    second = draw(st.sampled_from(["constant", "activation"]))
    if second == "activation" and rank2 == 0:
        rank2 = 1
    s_in = float(np.exp(draw(st.floats(np.log(1e-6), np.log(1e6)))))
    z_in = draw(st.sampled_from([-128, 127, None]))
    z_in = draw(st.integers(-128, 127)) if z_in is None else z_in
    args = (kind, draw(O.seeds), out_dims, keep1, keep2, min(rank2, rank + (second == "constant")),
            second, draw(st.booleans()), s_in, z_in, draw(st.sampled_from(O.ACTIVATIONS)))
    try:
        return build(*args), args
    except GraphError:                  # a scale Prepare refuses (e.g. ADD's 2 max / 2^20 s_out >= 1)
        return None, args


# ---------------------------------------------------------------------------------------
# The property, and where users go
# ---------------------------------------------------------------------------------------
@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(case=drawn(), input_seed=st.integers(0, 2 ** 16), variant=st.sampled_from(VARIANTS))
def test_drawn_ops_give_numpy_bits_in_c(case, input_seed, variant):
    model, args = case
    assume(model is not None)
    x = O.int8_input(np.random.default_rng(input_seed), model.input.shape, 8)
    check(model, x, variant)


@settings(max_examples=24 if THOROUGH else 3, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=drawn(), input_seed=st.integers(0, 2 ** 16))
def test_drawn_ops_run_clean_under_asan_and_ubsan(case, input_seed):
    model, _ = case
    assume(model is not None)
    check(model, O.int8_input(np.random.default_rng(input_seed), model.input.shape, 4), "reference",
          sanitize=True)


LARGE = [                      # (kind, out_dims, keep1, keep2, rank2, second, swap)
    ("mul", (48, 48, 32), {0, 1, 2}, {2}, 3, "mean", False),           # squeeze-excite: (48,48,32) * (1,1,32)
    ("add", (64, 64, 16), {0, 1, 2}, {2}, 1, "constant", True),         # Rescaling's offset, per channel
    ("sub", (40, 1, 24), {0, 2}, {1, 2}, 2, "constant", False),
    ("squared_difference", (33, 17, 5), {1, 2}, {0, 2}, 3, "constant", True),
    ("prelu", (56, 56, 16), {0, 1, 2}, {2}, 1, "constant", False),
    ("hard_swish", (96, 96, 8), {0, 1, 2}, set(), 0, "constant", False),
    ("maximum", (128, 128), {0, 1}, {0}, 3, "constant", False),
    ("leaky_relu", (4096,), {0}, set(), 0, "constant", False),
    ("elu", (32, 32, 24), {0, 1, 2}, set(), 0, "constant", False),
]


@pytest.mark.parametrize("i", range(len(LARGE) if THOROUGH else 2))
def test_large_feature_maps(i):
    """Feature maps of MobileNet size at scales drawn over 1e-6..1e6: the two MobileNetV3 hot
    spots (a squeeze-excite MUL, a per-channel ADD) per CI run, all of them when thorough."""
    rng = np.random.default_rng(i)
    kind, dims, keep1, keep2, rank2, second, swap = LARGE[i]
    s_in = float(O.log_uniform(rng, 1e-6, 1e6))
    model = build(kind, i, dims, keep1, keep2, rank2, second, swap, s_in, O.zero_point(rng), "relu6")
    check(model, O.int8_input(rng, model.input.shape, 2), VARIANTS[i % 2])


def test_strides_are_tflm_nd_array_desc():
    """codegen/elementwise.py strides against NumPy's own broadcast strides (an independent
    oracle: np.broadcast_to gives stride 0 to a stretched dimension)."""
    for shape, out in [((3,), (1, 4, 5, 3)), ((1, 5, 1), (1, 4, 5, 3)), ((2, 1, 3), (2, 4, 3)),
                       ((1, 1, 1, 1), (1, 2, 2, 2)), ((4, 1), (1, 4, 6))]:
        a = np.zeros(shape, np.int8)
        full = np.broadcast_to(a.reshape((1,) * (len(out) - len(shape)) + shape), out)
        want = [0] * (4 - len(out)) + [s // a.itemsize for s in full.strides]
        got = elementwise.strides(shape, out)
        assert [g for g, d in zip(got[4 - len(out):], out) if d > 1] == \
               [w for w, d in zip(want[4 - len(out):], out) if d > 1], (shape, out, got, want)
