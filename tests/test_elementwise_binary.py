"""The two-input element-wise ops (ADD, SUB, MUL, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE) with
broadcasting and constant operands, against TensorFlow Lite Micro, bit for bit.

Oracles: TFLM's interpreter runs the QModel written as a .tflite (int8_oracle); every pair of
int8 inputs is run once per kind (the NumPy lookup-table path included); and, independent of
TFLM, the dequantized output is the real op on the dequantized inputs to within an output
step (a wrong broadcast alignment or a swapped operand fails this even where both
integer paths would agree). Hypothesis draws shapes that broadcast either way, constants
before or after, scales and zero points; a few large broadcasts per CI run, more under
HYPOTHESIS_PROFILE=thorough.
"""
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import int8_oracle as O
from minitiny.quant import kernels
from minitiny.quant.graph import GraphError, QModel, QOp, QTensor
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import from_tflite

KINDS = O.BINARY
REAL = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "maximum": np.maximum,
        "minimum": np.minimum, "squared_difference": lambda a, b: (a - b) ** 2}
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    O.print_tally(request, "element-wise binary ops vs TFLM")


def binary_model(seed, kind, in_shape, cfg):
    return O.single_op_model(seed, kind, in_shape, **cfg)


def check_real_semantics(model, xs):
    """Dequantized, the int8 output is the op on the dequantized inputs (broadcast as NumPy
    does, with the batch dimension of a sample), to within one output step plus the rounding
    of each input's rescaling, wherever the result is inside the output's range."""
    op = model.ops[-1]
    values = dict(zip(model.inputs, xs))
    ins = []
    for name in op.inputs:
        t = model.tensors[name]
        if t.is_constant:
            ins.append(t.dequantize(t.data).astype(np.float64))
        else:
            x = t.dequantize(values[name]).astype(np.float64)
            rank = len(model.tensors[op.outputs[0]].shape)
            ins.append(x.reshape((len(x),) + (1,) * (rank - len(t.shape)) + t.shape))
    out = model.tensors[op.outputs[0]]
    want = REAL[op.kind](*ins)
    act = op.options.get("activation", "none")
    if act != "none":
        want = np.maximum(want, 0)
    if act == "relu6":
        want = np.minimum(want, 6)
    got = out.dequantize(O.run_reference(model, xs)).astype(np.float64)
    lo, hi = out.dequantize(-128), out.dequantize(127)
    inside = (want > lo) & (want < hi)
    step = float(out.scale)
    if op.kind == "squared_difference":          # the difference is rounded before squaring
        s_max = max(float(model.tensors[n].scale) for n in op.inputs)
        step += 2 * np.abs(ins[0] - ins[1]).max(initial=0) * s_max / 2 ** 6 + s_max ** 2 / 2 ** 12
    err = np.abs(got - want)[np.broadcast_to(inside, got.shape)]
    assert err.size == 0 or err.max() <= 1.01 * step, (op.kind, err.max(), step, model.summary())


# ---------------------------------------------------------------------------------------
# Drawn by hypothesis: shapes, broadcasts, constants, scales, zero points, activations
# ---------------------------------------------------------------------------------------
@O.requires_tflm
@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_binary_op_matches_tflm(kind, data):
    in_shape, cfg = data.draw(st.builds(lambda c: c, O.op_configs(kind) if kind != "add" else
                                        _add_broadcast_configs()), label="config")
    seed = data.draw(O.seeds, label="seed")
    model = binary_model(seed, kind, in_shape, cfg)
    xs = O.random_inputs(model, seed)
    O.check_against_tflm(model, xs, label=kind)
    check_real_semantics(model, xs)


@st.composite
def _add_broadcast_configs(draw):
    return O.broadcast_config(lambda lo, hi: draw(st.integers(lo, hi)), lambda xs: draw(st.sampled_from(xs)))


@O.requires_tflm
@pytest.mark.parametrize("kind", KINDS)
def test_binary_op_sweep_matches_tflm(kind):
    """A fixed sweep of 60 configurations per kind, 16 samples each."""
    rng = np.random.default_rng(sum(map(ord, kind)) + 19)
    for i in range(60):
        integers = lambda lo, hi: int(rng.integers(lo, hi + 1))            # noqa: E731
        in_shape, cfg = O.broadcast_config(integers, lambda xs: xs[integers(0, len(xs) - 1)],
                                           fused=kind in O.FUSED)
        model = binary_model(int(rng.integers(2 ** 32)), kind, in_shape, cfg)
        xs = O.random_inputs(model, i, 16)
        O.check_against_tflm(model, xs, label=kind)
        check_real_semantics(model, xs)


# ---------------------------------------------------------------------------------------
# Every pair of int8 inputs, and the extremes of the scales
# ---------------------------------------------------------------------------------------
@O.requires_tflm
@pytest.mark.parametrize("kind", KINDS)
def test_every_pair_of_inputs(kind):
    """All 65,536 (a, b) pairs in one call (the NumPy lookup-table path), at three scale
    ratios; for MAXIMUM / MINIMUM at three shared quantizations."""
    a, b = np.meshgrid(O.ALL_INT8[0], O.ALL_INT8[0])                  # (256, 256)
    for seed in range(3):
        model = binary_model(seed, kind, (256,), {"activation": O.ACTIVATIONS[seed]} if kind in O.FUSED else {})
        O.check_against_tflm(model, [a.astype(np.int8), b.astype(np.int8)], label=f"{kind} (all pairs)")


def _extreme_model(kind, rng, i):
    """Input scales 1e-4..10 and 1e-3..1e3 apart; an output scale far from the typical."""
    s_a = O.log_uniform(rng, 1e-4, 10)
    b = O.Builder(i, (256,), kind, s_a)
    b.binary(kind, (256,), activation=O.ACTIVATIONS[i % 3])
    x2 = b.tensors[b.inputs[1]]
    if kind not in ("maximum", "minimum"):
        x2.scale = np.float32(s_a * O.log_uniform(rng, 1e-3, 1e3))
        out = b.tensors[b.cur]
        out.scale = np.float32(out.scale * O.log_uniform(rng, 1e-2, 1e2))
    return b


@O.requires_tflm
@pytest.mark.parametrize("kind", KINDS)
def test_extreme_scales_match_tflm(kind):
    rng = np.random.default_rng(KINDS.index(kind))
    a = np.tile(O.ALL_INT8, (4, 1))
    checked = 0
    for i in range(40):
        b = _extreme_model(kind, rng, i)
        try:
            model = QModel(kind, b.tensors, b.ops, b.inputs, [b.cur])
        except GraphError as e:             # ADD / SUB: TFLM's 2 * max / (2^20 * s_out) < 1
            assert "too small for the input scales" in str(e), e
            continue
        O.check_against_tflm(model, [a, rng.permuted(a, axis=1)], label=f"{kind} (extreme scales)")
        checked += 1
    assert checked >= 30


@O.requires_tflm
@pytest.mark.parametrize("kind", KINDS)
def test_large_broadcasts_match_tflm(kind):
    """Where users go: a (64, 64, 16) feature map with a per-channel constant (Keras'
    Rescaling, a learned scale), a row and a column, 2 draws per CI run (more when thorough)."""
    rng = np.random.default_rng(100 + KINDS.index(kind))
    cases = [((64, 64, 16), (16,), True), ((48, 1, 8), (40, 1), False), ((1, 96, 12), (96, 12), True),
             ((32, 32, 32), (1, 1, 1, 32), True)]
    for i, (in_shape, other, constant) in enumerate(cases[:None if THOROUGH else 2]):
        cfg = dict(other_shape=other, constant=constant, constant_first=bool(i % 2))
        if kind in O.FUSED:
            cfg["activation"] = O.ACTIVATIONS[i % 3]
        model = binary_model(int(rng.integers(2 ** 32)), kind, in_shape, cfg)
        xs = O.random_inputs(model, i, 2)
        O.check_against_tflm(model, xs, label=f"{kind} (large)")
        check_real_semantics(model, xs)


# ---------------------------------------------------------------------------------------
# Through the .tflite writer and reader: the same graph comes back
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=10)
@given(seed=O.seeds, data=st.data())
def test_round_trip_through_the_file(kind, seed, data):
    in_shape, cfg = data.draw(_add_broadcast_configs() if kind == "add" else O.op_configs(kind))
    q = binary_model(seed, kind, in_shape, cfg)
    r = from_tflite(to_tflite(q))
    assert [op.kind for op in r.ops] == [kind] and r.ops[0].options == q.ops[0].options
    for na, nb in zip(q.ops[0].inputs + q.outputs, r.ops[0].inputs + r.outputs):
        ta, tb = q.tensors[na], r.tensors[nb]
        assert (tb.shape, tb.is_constant, float(tb.scale), int(tb.zero_point)) == \
            (ta.shape, ta.is_constant, float(ta.scale), int(ta.zero_point))
        if ta.is_constant:
            np.testing.assert_array_equal(tb.data, ta.data)
            assert tb.name.endswith("_constant")
    xs = O.random_inputs(q, seed)
    np.testing.assert_array_equal(O.run_reference(r, xs), O.run_reference(q, xs))


# ---------------------------------------------------------------------------------------
# Bad input: refused in prepare, naming the op and the problem
# ---------------------------------------------------------------------------------------
def _tensors(**extra):
    ts = {"a": QTensor("a", (4, 3), "int8", 0.1, 2), "b": QTensor("b", (4, 3), "int8", 0.2, -3),
          "y": QTensor("y", (4, 3), "int8", 0.3, 0)}
    ts.update(extra)
    return ts


BAD = {
    "shapes that do not broadcast": ("add", dict(b=QTensor("b", (2,), "int8", 0.2, 0)), "do not broadcast"),
    "output of another shape": ("sub", dict(y=QTensor("y", (4, 1), "int8", 0.3, 0)), "broadcast to (1, 4, 3)"),
    "two constants": ("mul", dict(a=QTensor("a", (3,), "int8", 0.1, 0, np.zeros(3, np.int8)),
                                  b=QTensor("b", (3,), "int8", 0.1, 0, np.ones(3, np.int8)),
                                  y=QTensor("y", (3,), "int8", 0.1, 0)), "both inputs are constants"),
    "per-channel constant": ("mul", dict(b=QTensor("b", (3,), "int8", [0.1, 0.2, 0.3], [0, 0, 0],
                                                   np.ones(3, np.int8))), "one scale"),
    "int32 constant": ("add", dict(b=QTensor("b", (3,), "int32", 0.1, 0, np.ones(3, np.int32))),
                       "must be an int8 constant"),
    "maximum requantizing": ("maximum", {}, "must share scale and zero point"),
    "broadcast over 5 dimensions": ("minimum", dict(a=QTensor("a", (2, 1, 2, 1), "int8", 0.1, 0),
                                                    b=QTensor("b", (1, 2, 1, 2), "int8", 0.1, 0),
                                                    y=QTensor("y", (2, 2, 2, 2), "int8", 0.1, 0)),
                                    "over 5 dimensions"),
}


@pytest.mark.parametrize("what", sorted(BAD))
def test_bad_operands_are_refused_by_name(what):
    kind, extra, fragment = BAD[what]
    with pytest.raises(GraphError) as e:
        kernels.prepare(QOp(kind, "op0", ["a", "b"], ["y"]), _tensors(**extra))
    assert f"op 'op0' ({kind})" in str(e.value) and fragment in str(e.value), str(e.value)


def test_generate_runs_broadcasts_and_constants(tmp_path):
    """What generate refused before the C had these kernels: an ADD of a per-channel constant,
    a MUL by a constant of the input's shape; the C gives the NumPy reference's bits
    (tests/test_elementwise_c.py draws many more)."""
    from minitiny import codegen
    for i, (kind, cfg) in enumerate([("add", dict(other_shape=(3,), constant=True)),
                                     ("mul", dict(constant=True, constant_first=True))]):
        model = binary_model(i, kind, (4, 3), cfg)
        x = O.random_inputs(model, i, 16)[0]
        codegen.generate(model, tmp_path / kind)
        np.testing.assert_array_equal(codegen.load(tmp_path / kind)(x), model.predict_int8(x))


@O.requires_tflm
def test_sub_multipliers_are_computed_in_double():
    """SUB's Prepare as the TFLM interpreter computes it: in double, as ADD's. Scales where
    float32 arithmetic (as some TFLM sources write it) gives other multipliers: 0.15 is
    3e-4 / 2e-3 in double, 0.15000000596 in float32."""
    rng = np.random.default_rng(0)
    for s1, s2 in ((3e-4, 1e-3), (1e-3, 3e-4), (1.3e-4, 7.7e-4)):
        tensors = {"a": QTensor("a", (4, 5), "int8", np.float32(s1), 3),
                   "b": QTensor("b", (5,), "int8", np.float32(s2), 0,
                                rng.integers(-128, 128, 5).astype(np.int8)),
                   "y": QTensor("y", (4, 5), "int8", np.float32(2e-3), -5)}
        m = QModel("sub", tensors, [QOp("sub", "op", ["a", "b"], ["y"])], ["a"], ["y"])
        O.check_against_tflm(m, O.int8_input(rng, (4, 5), 64), label="sub, double multipliers")
