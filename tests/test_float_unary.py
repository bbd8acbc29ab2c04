"""NEG and SQUARE as TF's int8 converter writes them, in float32 between a DEQUANTIZE and a
QUANTIZE (Keras' LayerNormalization, UnitNormalization), imported as one int8 op: against
TensorFlow Lite Micro running the three float kernels (through the writer, which writes the
three back), against the three kernels' arithmetic written out again in NumPy float32, in the
generated C, and refused by name where the chain is not the converter's.

Every model runs on all 256 int8 inputs; hypothesis draws the input scale over 1e-6..1e6, the
output scale over six orders of magnitude around the natural one, and the zero points, more
under HYPOTHESIS_PROFILE=thorough. TF-made LayerNormalization and UnitNormalization files
(tests/data/ops) run through tests/test_op_models.py.
"""

import numpy as np
import pytest
from hypothesis import assume, example, given, strategies as st

import int8_oracle as O
from minitiny.quant.graph import GraphError
from minitiny.quant.kernels import float_unary
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import from_tflite

ZERO_POINTS = st.sampled_from([-128, 127, 0]) | st.integers(-128, 127)


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    O.print_tally(request, "neg, square vs TFLM")


def model(kind, s_in, z_in, s_out, z_out, shape=(256,)):
    return O.Builder(0, shape, kind, np.float32(s_in), z_in).float_unary(kind, np.float32(s_out), z_out).model()


@O.requires_tflm
@given(kind=st.sampled_from(["neg", "square"]), s_in=st.floats(np.log(1e-6), np.log(1e6)),
       ratio=st.floats(np.log(1e-3), np.log(1e3)), z_in=ZERO_POINTS, z_out=ZERO_POINTS)
@example(kind="square", s_in=1.0, ratio=0.0, z_in=-128, z_out=-128)   # TFLM divides in float32
def test_every_input_matches_tflm(kind, s_in, ratio, z_in, z_out):
    s_in = float(np.float32(np.exp(s_in)))
    natural = s_in if kind == "neg" else s_in * s_in * 128
    try:
        m = model(kind, s_in, z_in, natural * float(np.exp(ratio)), z_out)
    except GraphError as e:                      # a quotient beyond int32: refused
        assert "does not fit int32" in str(e)
        assume(False)
    O.check_against_tflm(m, O.ALL_INT8, label=f"{kind} (every input)")


def test_table_is_the_three_kernels():
    """The table against DEQUANTIZE, the op and QUANTIZE written out again, vectorised: the
    product in double rounded to float32, NEG exact, SQUARE in float32, the quotient in float32
    rounded half away from zero, then the zero point and the clamp (a quotient in double
    rounds 4 of the 256 inputs of s_in = e, s_out = 128 e^2 differently from TFLM)."""
    q = np.arange(-128, 128)
    for kind in ("neg", "square"):
        for s_in, z_in, s_out, z_out in [(0.05, 3, 0.04, -20), (0.5, -128, 0.1, 0), (1e-3, 127, 2e-4, 5),
                                         (3.0, 0, 40.0, 100)]:
            s_in, s_out = np.float32(s_in), np.float32(s_out)
            table, _ = float_unary.table(kind, s_in, z_in, s_out, z_out)
            r = (np.float64(s_in) * (q - z_in)).astype(np.float32)
            f = -r if kind == "neg" else (r * r).astype(np.float32)
            v = (f / s_out).astype(np.float32).astype(np.float64)
            want = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + z_out, -128, 127)
            np.testing.assert_array_equal(table, want)


@pytest.mark.parametrize("kind", ["neg", "square"])
def test_c_matches_numpy(kind):
    b = O.Builder(4, (12, 10, 6), kind)
    b.conv(6, kernel=(3, 3), padding="same")
    m = b.float_unary(kind).model()
    x = O.int8_input(np.random.default_rng(1), (12, 10, 6), 3)
    for sanitize in (False, True):
        O.check_reference_c(m, x, sanitize)


def test_written_as_three_float_kernels_and_read_back_as_one():
    import tflite
    q = model("neg", 0.07, -5, 0.07, 4, shape=(3, 5))
    data = to_tflite(q)
    g = tflite.Model.GetRootAs(data, 0)
    codes = [g.OperatorCodes(g.Subgraphs(0).Operators(i).OpcodeIndex()).BuiltinCode()
             for i in range(g.Subgraphs(0).OperatorsLength())]
    assert codes == [tflite.BuiltinOperator.DEQUANTIZE, tflite.BuiltinOperator.NEG, tflite.BuiltinOperator.QUANTIZE]
    r = from_tflite(data)
    assert [op.kind for op in r.ops] == ["neg"]
    x = O.int8_input(np.random.default_rng(2), (3, 5), 4)
    np.testing.assert_array_equal(r.predict_int8(x), q.predict_int8(x))


def test_a_chain_with_a_float_model_output_is_not_folded():
    """DEQUANTIZE -> NEG whose float result is also a model output: folding would lose that
    output, so the NEG stays, with the reason the importer gives for it."""
    from minitiny.quant.tflite_float_unary import fold_float_unary
    from minitiny.quant.tflite_read import read_flatbuffer
    tensors, ops, _, outputs, _ = read_flatbuffer(to_tflite(model("neg", 0.07, -5, 0.07, 4, shape=(6,))))
    folded, why = fold_float_unary(ops, tensors, outputs)
    assert len(folded) == 1 and not why
    float_result = ops[1].outputs[0]
    folded, why = fold_float_unary(ops, tensors, outputs + [float_result])
    assert len(folded) == 3 and list(why) == [ops[1].index]
    assert "int8 -> DEQUANTIZE -> it -> QUANTIZE -> int8" in why[ops[1].index]
