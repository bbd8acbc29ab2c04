"""ELU (TFLM's 256-entry lookup table) against TensorFlow Lite Micro, bit for bit, against
the real function, through the .tflite writer and reader, and refused by name where TFLM's
arithmetic breaks.

The output depends on one int8 input, so every model is run on all 256 inputs; hypothesis
draws the input and output scales over 1e-6..1e6 (and their ratio over six orders of
magnitude) and the zero points, more under HYPOTHESIS_PROFILE=thorough. The generated C holds
the same table (tests/test_elementwise_c.py runs it against NumPy).
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import int8_oracle as O
from minitiny.quant.graph import GraphError, QModel, QOp, QTensor
from minitiny.quant.kernels import elu
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import from_tflite


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    O.print_tally(request, "elu vs TFLM")


def elu_model(s_in, z_in, s_out, z_out, shape=(256,)):
    b = O.Builder(0, shape, "elu", np.float32(s_in), z_in)
    return b.elu(np.float32(s_out), z_out).model()


def check_real(model):
    """Dequantized, each output is ELU of the dequantized input to within half an output step
    (one rounding), where ELU lies inside the output's range."""
    x, y = model.tensors[model.inputs[0]], model.tensors[model.outputs[0]]
    r = x.dequantize(O.ALL_INT8).astype(np.float64)
    want = np.where(r < 0, np.expm1(np.minimum(r, 0)), r)
    got = y.dequantize(model.predict_int8(O.ALL_INT8)).astype(np.float64)
    inside = (want >= y.dequantize(-128)) & (want <= y.dequantize(127))
    err = np.abs(got - want)[inside]
    tolerance = 0.5 * float(y.scale) * (1 + 1e-5) + 1e-6 * np.abs(want[inside])    # float32 steps
    assert np.all(err <= tolerance), (err.max(), float(y.scale), model.summary())


@O.requires_tflm
@given(s_in=st.floats(np.log(1e-6), np.log(1e6)), ratio=st.floats(np.log(1e-3), np.log(1e3)),
       z_in=st.sampled_from([-128, 127, 0, -3, 77]), z_out=st.integers(-128, 127))
def test_every_input_matches_tflm(s_in, ratio, z_in, z_out):
    s_in = float(np.exp(s_in))
    try:
        model = elu_model(s_in, z_in, s_in * float(np.exp(ratio)), z_out)
    except GraphError as e:                      # a quantized value beyond int32: refused
        assert "does not fit int32" in str(e)
        assume(False)
    O.check_against_tflm(model, O.ALL_INT8, label="elu (all 256 inputs)")
    check_real(model)


@O.requires_tflm
def test_sweep_of_scales_matches_tflm():
    """A fixed sweep: input scales 1e-6..1e4, output scales 1e-3..1e3 times the input's,
    zero points with the extremes over-represented."""
    rng = np.random.default_rng(7)
    for i in range(60):
        s_in = float(O.log_uniform(rng, 1e-6, 1e4))
        model = elu_model(s_in, O.zero_point(rng), s_in * float(O.log_uniform(rng, 1e-3, 1e3)),
                          O.zero_point(rng))
        O.check_against_tflm(model, O.ALL_INT8, label="elu (sweep)")


def test_table_is_the_formula():
    """The table against TFLM's formula written out again, vectorised over the 256 inputs in
    NumPy float32 arithmetic (exp in double, rounded once to float32, as a correctly rounded
    expf gives it; round half away from zero)."""
    for s_in, z_in, s_out, z_out in [(0.05, 3, 0.03, -20), (0.5, -128, 0.1, 0), (1e-3, 127, 1e-3, 5),
                                     (3.0, 0, 0.02, 100)]:
        table, _ = elu.table(np.float32(s_in), z_in, np.float32(s_out), z_out)
        q = np.arange(-128, 128)
        r = np.float32(s_in) * (q - z_in).astype(np.float32)
        e = np.where(r < 0, np.exp(np.minimum(r, 0).astype(np.float64)).astype(np.float32) - np.float32(1), r)
        v = (e * (np.float32(1) / np.float32(s_out))).astype(np.float64)
        want = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + z_out, -128, 127)
        np.testing.assert_array_equal(table, want)


def test_round_trip_through_the_file():
    q = elu_model(0.07, -5, 0.04, 30, shape=(3, 5))
    r = from_tflite(to_tflite(q))
    assert [op.kind for op in r.ops] == ["elu"]
    x = O.int8_input(np.random.default_rng(0), (3, 5), 16)
    np.testing.assert_array_equal(r.predict_int8(x), q.predict_int8(x))


def test_out_of_range_is_refused_by_name():
    """An output scale so small that s_in * q / s_out leaves int32 from q = 3: TFLM casts the float to
    int32 (undefined), minitiny refuses the op, naming the input value."""
    ts = {"x": QTensor("x", (4,), "int8", 1.0, 0), "y": QTensor("y", (4,), "int8", 1e-9, 0)}
    with pytest.raises(GraphError, match=r"op 'e' \(elu\): input 3 \(real 3\) .* does not fit int32"):
        QModel("m", ts, [QOp("elu", "e", ["x"], ["y"])], ["x"], ["y"])
