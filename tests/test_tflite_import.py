"""Importing `.tflite` files (minitiny/quant/tflite_read.py).

The oracles, all independent of the reader:
* TensorFlow Lite Micro's interpreter runs the very bytes that were imported; the imported
  QModel's NumPy int8 reference must give identical int8 outputs (where tflite-micro is
  installed, as in CI).
* The generated C (compiled on the host, called through cffi) gives the same bits.
* A file written by minitiny's writer from a QModel reads back into that QModel: the same
  ops, options, shapes, quantization and constants.
* tests/data/tflite/ holds small Keras models converted by TensorFlow 2.21.0's own
  converter (scripts/make_tflite_testdata.py; its manifest.json names the version and the
  SHA-256 of each file), so the reader meets what real users bring.

Operators minitiny's writer never emits (SQUEEZE, QUANTIZE and DEQUANTIZE edges) and broken
files are made by editing written files with TFLM's own generated schema object API.
"""
import glob
import hashlib
import json
import os
import struct
import time

import flatbuffers
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import int8_oracle as O
from minitiny.quant import tflm
from minitiny.quant.graph import GraphError, QModel
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import (MAX_ELEMENTS, TFLiteFormatError, UnsupportedTFLiteError,
                                        edge_quantization, from_tflite, run_tflm_int8)
import figures  # noqa: E402  (tests/figures.py)

DATA = os.path.join(os.path.dirname(__file__), "data", "tflite")
TF_FILES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(DATA, "*.tflite")))
IMPORT_ERRORS = (TFLiteFormatError, UnsupportedTFLiteError, GraphError)


# label -> [int8 outputs compared, mismatches], printed at the end of the module
TALLY = {}


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    lines = [f"  {k:44s} {c:8d} int8 outputs compared, {m} mismatched" for k, (c, m) in sorted(TALLY.items())]
    text = ("\n.tflite import: the imported model's NumPy reference against TFLM and the C:\n"
            + "\n".join(lines))
    if lines:
        figures.show(request, text)
    TALLY.clear()
    O.print_tally(request, ".tflite import, models with two inputs")


def schema():
    """TFLM's generated schema with the object API (unpack, edit, pack a model)."""
    return pytest.importorskip("tflite_micro.tensorflow.lite.micro.python.schema_py_generated",
                               reason="tflite-micro's schema (object API) is not installed")


def edit(data, change):
    """Unpack `data`, let change(model, schema) edit it, pack it again."""
    s = schema()
    m = s.ModelT.InitFromPackedBuf(data, 0)
    change(m, s)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def opcode_index(m, s, code):
    """The index of builtin `code` in the model's operator codes, added if missing."""
    for i, c in enumerate(m.operatorCodes):
        if max(c.builtinCode, c.deprecatedBuiltinCode) == code:
            return i
    c = s.OperatorCodeT()
    c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), 1
    m.operatorCodes.append(c)
    return len(m.operatorCodes) - 1


def add_tensor(m, s, name, shape, ttype, scale=None, zero_point=None):
    t = s.TensorT()
    t.name, t.shape, t.type, t.buffer = name.encode(), list(shape), ttype, 0
    if scale is not None:
        t.quantization = s.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [float(scale)], [int(zero_point)]
    m.subgraphs[0].tensors.append(t)
    return len(m.subgraphs[0].tensors) - 1


def op_code(m, op):
    c = m.operatorCodes[op.opcodeIndex]
    return max(c.builtinCode, c.deprecatedBuiltinCode)


def first_op(m, s, code_name):
    """The first operator of builtin `code_name` ('CONV_2D', ...)."""
    code = getattr(s.BuiltinOperator, code_name)
    return next(o for o in m.subgraphs[0].operators if op_code(m, o) == code)


# ---------------------------------------------------------------------------------------
# The check: NumPy reference of the imported model == TFLM on the same bytes == C
# ---------------------------------------------------------------------------------------
def check(data, qmodel, x, label, c=False):
    """Assert identical int8 outputs from the imported model's NumPy reference, from TFLM
    running `data` (if installed), and from the generated C (if `c`); tally them."""
    ours = qmodel.predict_int8(x)
    others = {}
    if tflm.available():
        others["TFLM"] = run_tflm_int8(data, x).reshape(ours.shape)
    if c:
        from minitiny import codegen
        g = codegen.generate(qmodel, c, name="imported")
        others["C"] = codegen.load(g.dir)(x).reshape(ours.shape)
    for who, theirs in others.items():
        tally = TALLY.setdefault(f"{label} vs {who}", [0, 0])
        tally[0] += ours.size
        tally[1] += int((ours != theirs).sum())
        if (ours != theirs).any():
            i = tuple(np.argwhere(ours != theirs)[0])
            raise AssertionError(f"{label}: {who} differs from the imported model's NumPy reference in "
                                 f"{int((ours != theirs).sum())} of {ours.size} outputs; first at {i}: "
                                 f"NumPy {ours[i]}, {who} {theirs[i]}\n{qmodel.summary()}")
    return ours


def assert_same_graph(q, r):
    """`r` (read back) holds q's ops, options, shapes, quantization and constants, in order."""
    assert [op.kind for op in r.ops] == [op.kind for op in q.ops]
    for ends in ("inputs", "outputs"):
        assert [r.tensors[n].shape for n in getattr(r, ends)] == [q.tensors[n].shape for n in getattr(q, ends)]
    for a, b in zip(q.ops, r.ops):
        want = dict(a.options)
        if "beta" in want:
            want["beta"] = float(np.float32(want["beta"]))             # a float32 in the file
        assert b.options == want, (a.name, a.options, b.options)
        if a.kind in ("conv_2d", "depthwise_conv_2d") and len(a.inputs) == 2:
            # the writer gives a convolution without bias a zero bias (as TFLite's converter does)
            assert len(b.inputs) == 3 and not r.tensors[b.inputs[2]].data.any()
            b = type(b)(b.kind, b.name, b.inputs[:2], b.outputs, b.options)
        assert len(b.inputs) == len(a.inputs)
        for na, nb in zip(a.inputs + a.outputs, b.inputs + b.outputs):
            ta, tb = q.tensors[na], r.tensors[nb]
            assert (tb.shape, tb.dtype, tb.is_constant) == (ta.shape, ta.dtype, ta.is_constant)
            # one scale per channel with one channel is one scale per tensor: the file cannot tell
            np.testing.assert_array_equal(np.atleast_1d(tb.scale), np.atleast_1d(ta.scale))
            np.testing.assert_array_equal(np.atleast_1d(tb.zero_point), np.atleast_1d(ta.zero_point))
            if ta.scale.size > 1:
                assert tb.per_channel and tb.quantized_dimension == ta.quantized_dimension
            if ta.is_constant:
                np.testing.assert_array_equal(tb.data, ta.data)


def round_trip(q, seed=0, label=None, c=False):
    data = to_tflite(q)
    r = from_tflite(data)
    assert_same_graph(q, r)
    xs = O.random_inputs(q, seed, 16)
    if len(q.inputs) > 1:           # several inputs: NumPy reference against the original
        np.testing.assert_array_equal(O.run_reference(r, xs), O.run_reference(q, xs))
        if tflm.available():
            O.check_against_tflm(r, xs, label=label)
        return r
    ours = check(data, r, xs[0], label or q.ops[-1].kind, c)
    np.testing.assert_array_equal(ours, q.predict_int8(xs[0]))
    return r


# ---------------------------------------------------------------------------------------
# Round trips through minitiny's writer, every op kind, drawn by hypothesis
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["fully_connected", "conv_2d", "depthwise_conv_2d", "max_pool_2d",
                                  "average_pool_2d", "mean", "add", "softmax"])
@given(seed=O.seeds, data=st.data())
def test_round_trip_every_kind(kind, seed, data):
    in_shape, cfg = data.draw(O.op_configs(kind))
    round_trip(O.single_op_model(seed, kind, in_shape, **cfg), seed, label=f"writer: {kind}")


@pytest.mark.parametrize("kind", ["logistic", "tanh", "relu", "relu6"])
@given(s_in=st.floats(1e-3, 1.0), z_in=st.integers(-128, 127), s_out=st.floats(1e-3, 1.0),
       z_out=st.integers(-128, 127))
def test_round_trip_elementwise(kind, s_in, z_in, s_out, z_out):
    q = O.elementwise_model(kind, s_in, z_in, s_out, z_out, shape=(4, 64))
    r = round_trip(q, label=f"writer: {kind}")
    x = O.ALL_INT8.reshape(1, 4, 64)                                # every int8 value once
    check(to_tflite(q), r, x, f"writer: {kind}")


def residual_model(seed, per_channel=True):
    """Not a chain: conv -> depthwise -> add(conv) -> pools -> mean -> dense -> softmax."""
    b = O.Builder(seed, (9, 9, 2), f"residual_{seed}")
    skip = b.conv(3, (3, 3), (1, 1), "same", "relu", per_channel=per_channel).cur
    b.depthwise(1, (3, 3), (1, 1), "same", "relu6").add(skip, "none")
    b.pool("average_pool_2d", (2, 2), (2, 2), "valid").pool("max_pool_2d", (2, 2), (1, 1), "same")
    b.relu().relu6().mean(keep_dims=True).reshape((3,))
    b.dense(8, "relu", per_channel=per_channel).tanh().dense(4).logistic().dense(3).softmax()
    return b.model()


@given(seed=O.seeds, per_channel=st.booleans())
def test_round_trip_residual_graphs(seed, per_channel):
    round_trip(residual_model(seed, per_channel), seed, label="writer: residual graph")


# ---------------------------------------------------------------------------------------
# The generated C of imported models: a fixed sweep over every kind (a compile each)
# ---------------------------------------------------------------------------------------
C_KINDS = ["fully_connected", "conv_2d", "depthwise_conv_2d", "max_pool_2d", "average_pool_2d",
           "mean", "softmax"]


@pytest.mark.parametrize("kind", C_KINDS)
def test_generated_c_of_imported_models(kind, tmp_path):
    rng = np.random.default_rng(C_KINDS.index(kind))
    for i in range(2):
        in_shape, cfg = O.random_config(rng, kind)
        q = O.single_op_model(int(rng.integers(1 << 31)), kind, in_shape, **cfg)
        round_trip(q, i, label=f"writer: {kind}", c=str(tmp_path / f"{kind}_{i}"))


@pytest.mark.parametrize("seed", range(3))
def test_generated_c_of_imported_residual_and_elementwise(seed, tmp_path):
    round_trip(residual_model(seed, per_channel=seed % 2 == 0), seed, label="writer: residual graph",
               c=str(tmp_path / "residual"))
    for kind in ("logistic", "tanh", "relu", "relu6"):
        q = O.elementwise_model(kind, 0.02 * (seed + 1), -3 * seed, 0.05, 7, shape=(256,))
        round_trip(q, seed, label=f"writer: {kind}", c=str(tmp_path / kind))


# ---------------------------------------------------------------------------------------
# Files converted by TensorFlow 2.21 (tests/data/tflite, scripts/make_tflite_testdata.py)
# ---------------------------------------------------------------------------------------
# file -> the op kinds the import must give, in order: the Keras layers of the script, as the
# converter lowered them (its operators listed with the `tflite` package's accessors),
# less the QUANTIZE / DEQUANTIZE edges and Flatten's shape arithmetic
SUPPORTED = {
    "dense_per_channel.tflite": ["fully_connected"] * 3 + ["softmax"],
    "dense_per_tensor.tflite": ["fully_connected"] * 3 + ["softmax"],
    "cnn_residual.tflite": ["conv_2d", "depthwise_conv_2d", "add", "average_pool_2d", "conv_2d",
                            "max_pool_2d", "mean", "fully_connected", "softmax"],
    "float_edges_tanh.tflite": ["reshape", "fully_connected", "tanh", "fully_connected",
                                "fully_connected", "logistic"],
    "conv1d_squeeze.tflite": ["reshape", "conv_2d", "reshape", "reshape", "conv_2d", "reshape",
                              "relu", "reshape", "fully_connected"],
}
# Files with the element-wise ops and activations of issue 19: TFLM's outputs, computed by the
# script, are stored beside each one (NAME.expected.npz), for machines without tflite-micro.
WITH_EXPECTED = {
    "elementwise_ops.tflite": ["fully_connected", "fully_connected", "sub", "mul", "maximum", "minimum",
                               "squared_difference", "fully_connected"],
    "rescaling_broadcast.tflite": ["mul", "add", "max_pool_2d", "conv_2d", "mul", "sub", "reshape",
                                   "fully_connected"],
    "activations.tflite": ["conv_2d", "leaky_relu", "conv_2d", "prelu", "reshape", "fully_connected",
                           "hard_swish", "fully_connected"],
    # refused until issue 19 brought LEAKY_RELU, MUL and CONCATENATION (the name stayed)
    "unsupported_ops.tflite": ["fully_connected", "leaky_relu", "mul", "concatenation", "fully_connected"],
    # the data-movement ops of issue 19
    "movement_cnn.tflite": ["conv_2d", "pad", "strided_slice", "transpose", "split", "concatenation",
                            "conv_2d", "concatenation", "reshape", "fully_connected"],
    "movement_sequence.tflite": ["reshape", "conv_2d", "reshape", "strided_slice", "unpack", "pack", "slice",
                                 "pad", "reshape", "strided_slice", "split_v", "concatenation",
                                 "concatenation", "fully_connected"],
}
# a stateful LSTM: tests/test_lstm.py imports and runs it
STATEFUL = {"lstm_state.tflite"}
# TFLite's 16x8 mode (int16 activations): tests/test_int16.py and test_int16_ops.py import
# and run them
INT16_FILES = {"cnn_16x8.tflite", "cnn_16x8_float_edges.tflite", "ops_16x8_cnn.tflite",
               "ops_16x8_sequence.tflite"}
# several inputs or outputs: tests/test_multi_io.py imports and runs them
SEVERAL_IO = {"two_inputs.tflite", "two_outputs.tflite", "two_in_two_out_float.tflite"}


def test_tf_files_are_the_ones_the_script_made():
    with open(os.path.join(DATA, "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["tensorflow"] == "2.21.0"
    assert set(manifest["files"]) == set(TF_FILES) == (set(SUPPORTED) | set(WITH_EXPECTED) | STATEFUL | INT16_FILES
                                                       | SEVERAL_IO)
    for name, info in manifest["files"].items():
        with open(os.path.join(DATA, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == info["sha256"], name
        if name in WITH_EXPECTED or name in SEVERAL_IO:
            with open(os.path.join(DATA, name[:-len(".tflite")] + ".expected.npz"), "rb") as f:
                assert hashlib.sha256(f.read()).hexdigest() == info["expected_sha256"], name
    assert sum(info["bytes"] for info in manifest["files"].values()) < 125_000


def tf_inputs(qmodel, n=256, seed=0):
    """Random int8 inputs, plus the extremes -128 and 127 everywhere."""
    x = O.int8_input(np.random.default_rng(seed), qmodel.input.shape, n)
    x[0], x[1] = -128, 127
    return x


@pytest.mark.parametrize("name", sorted(SUPPORTED))
def test_tf_converted_file(name, tmp_path):
    path = os.path.join(DATA, name)
    q = from_tflite(path)
    assert isinstance(q, QModel) and q.name == name[:-len(".tflite")]
    assert [op.kind for op in q.ops] == SUPPORTED[name]
    check(open(path, "rb").read(), q, tf_inputs(q), f"TF 2.21 {name}", c=str(tmp_path / "c"))


@pytest.mark.parametrize("name", sorted(WITH_EXPECTED))
def test_tf_converted_file_with_stored_outputs(name, tmp_path):
    """The imported model's NumPy reference gives TFLM's outputs: those the script stored
    (full-range and in-distribution inputs) and, where tflite-micro is installed, a live run;
    the generated C gives the same bits."""
    path = os.path.join(DATA, name)
    q = from_tflite(path)
    assert [op.kind for op in q.ops] == WITH_EXPECTED[name]
    with np.load(os.path.join(DATA, name[:-len(".tflite")] + ".expected.npz")) as z:
        x, y = z["x"], z["y"]
    ours = q.predict_int8(x)
    tally = TALLY.setdefault(f"TF 2.21 {name} vs TFLM (stored)", [0, 0])
    tally[0] += ours.size
    tally[1] += int((ours != y).sum())
    np.testing.assert_array_equal(ours, y)
    check(open(path, "rb").read(), q, tf_inputs(q), f"TF 2.21 {name}", c=str(tmp_path / "c"))


def test_tf_movement_files_hold_what_the_keras_layers_asked_for():
    """The converter's options, as imported: a negative stride and a shrunk axis, a pad with
    its own constant (PADV2), uneven parts, the swapped halves."""
    seq = from_tflite(os.path.join(DATA, "movement_sequence.tflite")).ops
    slices = [op.options for op in seq if op.kind == "strided_slice"]
    assert any(-2 in o["strides"] for o in slices) and any(o["shrink_axis_mask"] for o in slices)
    assert [op.options["constant"] is not None for op in seq if op.kind == "pad"] == [True]
    assert [op.options["sizes"] for op in seq if op.kind == "split_v"] == [(3, 5)]
    cnn = from_tflite(os.path.join(DATA, "movement_cnn.tflite"))
    split, join = cnn.ops[4], cnn.ops[5]
    assert join.inputs == split.outputs[::-1]


def test_tf_dense_per_channel_and_per_tensor():
    """TF 2.21's converter quantizes Dense per channel by default; the per-tensor file has
    one scale per weight tensor. Both import as such."""
    pc = from_tflite(os.path.join(DATA, "dense_per_channel.tflite"))
    pt = from_tflite(os.path.join(DATA, "dense_per_tensor.tflite"))
    for op_pc, op_pt in zip(pc.ops[:3], pt.ops[:3]):
        w_pc, w_pt = pc.tensors[op_pc.inputs[1]], pt.tensors[op_pt.inputs[1]]
        assert w_pc.per_channel and w_pc.scale.shape == (w_pc.shape[0],)
        assert not w_pt.per_channel and w_pt.scale.shape == ()
        assert pc.tensors[op_pc.inputs[2]].per_channel and not pt.tensors[op_pt.inputs[2]].per_channel
    assert pc.ops[0].options == {"activation": "relu"} and pc.ops[2].options == {"activation": "none"}


def test_tf_float_edges_fold_into_the_int8_model():
    """QUANTIZE after the float input and DEQUANTIZE before the float output are folded:
    QModel.predict on floats gives what TFLM gives on the same floats."""
    path = os.path.join(DATA, "float_edges_tanh.tflite")
    q = from_tflite(path)
    edges = edge_quantization(path)
    assert edges["input"] == (float(q.input.scale), int(q.input.zero_point))
    assert edges["output"] == (float(q.output.scale), int(q.output.zero_point))
    assert q.output.scale == np.float32(1 / 256) and int(q.output.zero_point) == -128   # LOGISTIC's
    if not tflm.available():
        pytest.skip("tflite-micro is not installed")
    x = np.random.default_rng(1).normal(0, 1.5, size=(64,) + q.input.shape).astype(np.float32)
    interp = tflm.interpreter(open(path, "rb").read())
    theirs = []
    for row in x:
        interp.set_input(row[None], 0)
        interp.invoke()
        theirs.append(np.array(interp.get_output(0))[0])
    theirs = np.stack(theirs)
    np.testing.assert_array_equal(q.predict(x), theirs)
    labels = np.arange(len(x)) % 3
    assert q.evaluate(x, labels) == np.mean(theirs.argmax(-1) == labels)


def test_tf_flatten_shape_arithmetic_is_skipped():
    """Keras 3's Flatten leaves SHAPE -> STRIDED_SLICE -> PACK to compute RESHAPE's shape
    input; nothing reads it (the output tensor holds the shape), so it is not imported."""
    q = from_tflite(os.path.join(DATA, "conv1d_squeeze.tflite"))
    assert len(q.ops) == 9 and {op.kind for op in q.ops} == {"reshape", "conv_2d", "relu", "fully_connected"}
    assert [op.name for op in q.ops if op.kind == "conv_2d"] == ["conv1d_1", "conv1d_1_2"]


# ---------------------------------------------------------------------------------------
# The Python API around the import
# ---------------------------------------------------------------------------------------
def test_from_tflite_path_bytes_and_name(tmp_path):
    q = residual_model(5)
    path = tmp_path / "kws model.tflite"
    path.write_bytes(to_tflite(q))
    assert from_tflite(path).name == "kws model"
    assert from_tflite(str(path), name="kws").name == "kws"
    assert from_tflite(bytearray(path.read_bytes())).name == "model"
    r = from_tflite(path)
    x = np.random.default_rng(0).normal(size=(20,) + q.input.shape).astype(np.float32)
    np.testing.assert_array_equal(r.predict(x), q.predict(x))
    r.save(tmp_path / "r.npz")                                      # a QModel like any other
    np.testing.assert_array_equal(QModel.load(tmp_path / "r.npz").predict(x), q.predict(x))
    assert "fully_connected" in r.summary()
    with pytest.raises(TypeError, match="the path or the bytes of a .tflite file"):
        from_tflite(12)


def test_minitiny_from_tflite_is_this_reader():
    import minitiny
    assert minitiny.from_tflite is from_tflite


def test_names_follow_the_quantizers_convention():
    """Activations are named after the layer writing them, constants '<layer>_weight' and
    '<layer>_bias', the input 'input'; the Keras layer name is recovered where the
    converter left it in the tensor names."""
    q = from_tflite(os.path.join(DATA, "cnn_residual.tflite"))
    assert q.inputs == ["input"]
    conv = q.ops[0]
    assert conv.name == "conv2d_1" and conv.outputs == ["conv2d_1"]
    assert conv.inputs == ["input", "conv2d_1_weight", "conv2d_1_bias"]
    assert q.ops[-1].name == "softmax_8"                           # no layer in its tensor name
    assert len({op.name for op in q.ops}) == len(q.ops)


def test_a_quantized_model_comes_back_with_its_names():
    """minitiny.quantize -> .tflite -> from_tflite: the same layer and tensor names, the same
    predictions (the writer keeps the quantizer's names, the reader recovers them)."""
    import minitiny as mt
    mt.random.seed(0)
    model = mt.Sequential([mt.layers.Dense(8, activation="relu", input_shape=[4]),
                           mt.layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    q = mt.quantize(model, x)
    r = from_tflite(to_tflite(q))
    assert [op.name for op in r.ops] == [op.name for op in q.ops]
    assert sorted(r.tensors) == sorted(q.tensors) and r.inputs == q.inputs
    np.testing.assert_array_equal(r.predict(x), q.predict(x))


# ---------------------------------------------------------------------------------------
# Edited files: SQUEEZE, QUANTIZE / DEQUANTIZE edges, and what is not supported
# ---------------------------------------------------------------------------------------
def squeeze_model(seed=0):
    b = O.Builder(seed, (5, 5, 3), "squeeze")
    return b.conv(4, (3, 3), (1, 1), "valid", "relu").mean(keep_dims=True).reshape((4,)).dense(3).model()


def test_squeeze_imports_as_reshape(tmp_path):
    q = squeeze_model()

    def to_squeeze(m, s):
        sg = m.subgraphs[0]
        op = next(o for o in sg.operators if op_code(m, o) == s.BuiltinOperator.RESHAPE)
        op.opcodeIndex = opcode_index(m, s, s.BuiltinOperator.SQUEEZE)
        op.inputs = op.inputs[:1]
        op.builtinOptionsType = s.BuiltinOptions.SqueezeOptions
        op.builtinOptions = s.SqueezeOptionsT()
        op.builtinOptions.squeezeDims = [1, 2]
    data = edit(to_tflite(q), to_squeeze)
    r = from_tflite(data)
    assert [op.kind for op in r.ops] == ["conv_2d", "mean", "reshape", "fully_connected"]
    x = O.int8_input(np.random.default_rng(0), q.input.shape, 32)
    np.testing.assert_array_equal(check(data, r, x, "edited: SQUEEZE", c=str(tmp_path)), q.predict_int8(x))


def with_float_edges(data, q):
    """The file of `q` with a float32 input -> QUANTIZE and DEQUANTIZE -> float32 output."""
    def change(m, s):
        sg = m.subgraphs[0]
        x_in, y_out = sg.inputs[0], sg.outputs[0]
        f_in = add_tensor(m, s, "float_input", [1] + list(q.input.shape), s.TensorType.FLOAT32)
        f_out = add_tensor(m, s, "float_output", [1] + list(q.output.shape), s.TensorType.FLOAT32)
        quant, dequant = s.OperatorT(), s.OperatorT()
        quant.opcodeIndex = opcode_index(m, s, s.BuiltinOperator.QUANTIZE)
        quant.inputs, quant.outputs = [f_in], [x_in]
        dequant.opcodeIndex = opcode_index(m, s, s.BuiltinOperator.DEQUANTIZE)
        dequant.inputs, dequant.outputs = [y_out], [f_out]
        sg.operators = [quant] + sg.operators + [dequant]
        sg.inputs, sg.outputs = [f_in], [f_out]
    return edit(data, change)


def test_quantize_and_dequantize_edges(tmp_path):
    q = residual_model(7)
    data = with_float_edges(to_tflite(q), q)
    r = from_tflite(data)
    assert_same_graph(q, r)
    edges = {"input": (float(q.input.scale), int(q.input.zero_point)),
             "output": (float(q.output.scale), int(q.output.zero_point))}
    assert edge_quantization(data) == dict(edges, inputs=[edges["input"]], outputs=[edges["output"]])
    x = O.int8_input(np.random.default_rng(3), q.input.shape, 64)
    ours = check(data, r, x, "edited: float edges", c=str(tmp_path))
    np.testing.assert_array_equal(ours, q.predict_int8(x))


def one_op(kind):
    b = O.Builder(1, (6, 6, 2), kind)
    if kind == "conv_2d":
        b.conv(2, (3, 3), (1, 1), "same")
    elif kind == "fully_connected":
        b.flatten().dense(4)
    return b.model()


def set_options(field, value, code_name):
    def change(m, s):
        op = first_op(m, s, code_name)
        setattr(op.builtinOptions, field, value)
    return change


def replace_op(code_name, from_name="CONV_2D"):
    def change(m, s):
        op = first_op(m, s, from_name)
        op.opcodeIndex = opcode_index(m, s, getattr(s.BuiltinOperator, code_name))
        op.builtinOptionsType, op.builtinOptions = 0, None
    return change


def set_tensor(field, value, which="output"):
    def change(m, s):
        sg = m.subgraphs[0]
        t = sg.tensors[sg.outputs[0] if which == "output" else sg.inputs[0]]
        setattr(t, field, value(s) if callable(value) else value)
    return change


def requantize_in_the_middle(m, s):
    """An int8 -> int8 QUANTIZE between the conv and the model output."""
    sg = m.subgraphs[0]
    y = sg.outputs[0]
    t = sg.tensors[y]
    z = add_tensor(m, s, "requantized", t.shape, s.TensorType.INT8, 0.5, 3)
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = opcode_index(m, s, s.BuiltinOperator.QUANTIZE), [y], [z]
    sg.operators.append(op)
    sg.outputs = [z]


def second_subgraph(m, s):
    sg = s.SubGraphT()
    sg.tensors, sg.operators, sg.inputs, sg.outputs = [], [], [], []
    m.subgraphs.append(sg)


UNSUPPORTED = {      # edit -> (model, a fragment the error must hold)
    "fused tanh": ("conv_2d", set_options("fusedActivationFunction", 4, "CONV_2D"), "fused activation TANH"),
    "fused relu_n1_to_1": ("fully_connected", set_options("fusedActivationFunction", 2, "FULLY_CONNECTED"),
                           "fused activation RELU_N1_TO_1"),
    "shuffled weights": ("fully_connected", set_options("weightsFormat", 1, "FULLY_CONNECTED"),
                         "weights format #1"),
    "operator CUMSUM": ("conv_2d", replace_op("CUMSUM"), "operator #0 CUMSUM: not supported"),
    "operator RELU_N1_TO_1": ("conv_2d", replace_op("RELU_N1_TO_1"), "RELU_N1_TO_1: not supported"),
    "int16 output": ("conv_2d", set_tensor("type", lambda s: s.TensorType.INT16), "type int16"),
    "float32 output": ("conv_2d", set_tensor("type", lambda s: s.TensorType.FLOAT32),
                       "is not dequantized from int8"),
    "batch 2": ("conv_2d", set_tensor("shape", [2, 6, 6, 2]), "batch dimension of 1"),
    "dynamic shape": ("conv_2d", set_tensor("shapeSignature", [-1, -1, 6, 2]), "dynamic shape"),
    "two subgraphs": ("conv_2d", second_subgraph, "2 subgraphs"),
}


@pytest.mark.parametrize("what", sorted(UNSUPPORTED))
def test_unsupported_is_a_clear_error(what):
    kind, change, fragment = UNSUPPORTED[what]
    data = edit(to_tflite(one_op(kind)), change)
    with pytest.raises(UnsupportedTFLiteError) as e:
        from_tflite(data)
    assert "<.tflite bytes>: minitiny cannot import this model" in str(e.value)
    assert fragment in str(e.value), str(e.value)


def test_every_unsupported_item_is_listed_at_once():
    """Several problems in one file: one error that lists each of them."""
    def change(m, s):
        set_options("fusedActivationFunction", 4, "CONV_2D")(m, s)
        ops = m.subgraphs[0].operators
        for o, code in zip(ops[1:], ("CUMSUM", "BATCH_TO_SPACE_ND", "RELU_N1_TO_1")):
            o.opcodeIndex = opcode_index(m, s, getattr(s.BuiltinOperator, code))
            o.builtinOptionsType, o.builtinOptions = 0, None
    q = residual_model(0)
    with pytest.raises(UnsupportedTFLiteError) as e:
        from_tflite(edit(to_tflite(q), change))
    text = str(e.value)
    assert len(e.value.problems) == 4 and "4 unsupported items" in text
    for fragment in ("operator #0 CONV_2D: fused activation TANH", "operator #1 CUMSUM", "operator #2 BATCH_TO_SPACE_ND",
                     "operator #3 RELU_N1_TO_1"):
        assert fragment in text, text


def test_every_kind_of_unsupported_item_in_one_error_with_operator_indices():
    """Issue 19 item 8: an operator, a fused activation, a tensor type, a dynamic shape, a batch of
    2 and a variable tensor, each in another operator of one well-formed file: one
    UnsupportedTFLiteError (never a TFLiteFormatError) lists them all, each under the index
    of the operator it concerns, in operator order."""
    def change(m, s):
        sg = m.subgraphs[0]
        ops = sg.operators
        set_options("fusedActivationFunction", 4, "CONV_2D")(m, s)                 # op 0: TANH
        sg.tensors[ops[3].outputs[0]].type = s.TensorType.INT16                    # op 3 writes it
        sg.tensors[ops[5].outputs[0]].shapeSignature = [1, -1, 4, 3]               # op 5: dynamic
        out9 = sg.tensors[ops[9].outputs[0]]
        out9.shape = [2] + list(out9.shape[1:])                                    # op 9: batch 2
        ops[11].opcodeIndex = opcode_index(m, s, s.BuiltinOperator.SVDF)      # state, as an LSTM
        ops[11].builtinOptionsType, ops[11].builtinOptions = 0, None
        state = add_tensor(m, s, "lstm/state", [1, 4], s.TensorType.INT8, 0.1, 0)
        sg.tensors[state].isVariable = True
        ops[11].inputs = list(ops[11].inputs) + [state]                            # op 11
        ops[13].opcodeIndex = opcode_index(m, s, s.BuiltinOperator.CUMSUM)          # op 13
        ops[13].builtinOptionsType, ops[13].builtinOptions = 0, None
    q = residual_model(3)
    with pytest.raises(UnsupportedTFLiteError) as e:
        from_tflite(edit(to_tflite(q), change))
    problems = e.value.problems
    expect = [("operator #0 CONV_2D", "fused activation TANH"), ("operator #3 AVERAGE_POOL_2D", "type int16"),
              ("operator #4 MAX_POOL_2D", "type int16"), ("operator #5 RELU", "dynamic shape [1, -1, 4, 3]"),
              ("operator #9 FULLY_CONNECTED", "batch dimension of 1"),
              ("operator #11 SVDF", "not supported"),
              ("operator #11 SVDF", "a variable tensor"),
              ("operator #13 CUMSUM", "not supported")]
    for head, fragment in expect:
        assert any(p.startswith(head) and fragment in p for p in problems), (head, fragment, problems)
    indices = [int(p.split()[1][1:]) for p in problems if p.startswith("operator #")]
    assert indices == sorted(indices)
    assert f"{len(problems)} unsupported items" in str(e.value)


def test_a_second_output_inside_the_graph_is_returned_in_the_files_order():
    """Found: a second output was imported and predict_int8 returned only the first. Now every
    output comes back, in the file's order: here the first conv's output (a tensor later ops
    read too) before the model's last, each equal to that tensor in the original model and
    to TFLM's output of the edited file."""
    q = residual_model(2)

    def second_output(m, s):
        sg = m.subgraphs[0]
        sg.outputs = [sg.operators[0].outputs[0]] + list(sg.outputs)   # the first conv's too
    data = edit(to_tflite(q), second_output)
    r = from_tflite(data)
    assert len(r.outputs) == 2
    x = O.int8_input(np.random.default_rng(5), q.input.shape, 12)
    conv, last = r.predict_int8(x)
    every = q.predict_int8(x, return_all=True)
    np.testing.assert_array_equal(conv, every[q.ops[0].outputs[0]])
    np.testing.assert_array_equal(last, every[q.outputs[0]])
    if tflm.available():
        theirs = tflm.run_tflm(data, x)
        assert isinstance(theirs, list) and len(theirs) == 2
        np.testing.assert_array_equal(theirs[0], conv)
        np.testing.assert_array_equal(theirs[1], last)


def svdf_with_state(m, s):
    """The conv becomes an SVDF reading a variable state tensor, as TFLite's converter writes
    a stateful op (SVDF, an LSTM): the state is read and updated in place, written by no
    operator. minitiny runs the LSTM's state (tests/test_lstm.py), not SVDF's."""
    op = first_op(m, s, "CONV_2D")
    op.opcodeIndex = opcode_index(m, s, s.BuiltinOperator.SVDF)
    op.builtinOptionsType, op.builtinOptions = 0, None
    state = add_tensor(m, s, "svdf/state", [1, 2], s.TensorType.INT8, 0.1, 0)
    m.subgraphs[0].tensors[state].isVariable = True
    op.inputs = list(op.inputs) + [state]


def test_variable_tensors_are_unsupported_not_malformed():
    with pytest.raises(UnsupportedTFLiteError) as e:
        from_tflite(edit(to_tflite(one_op("conv_2d")), svdf_with_state))
    assert len(e.value.problems) == 2
    assert "operator #0 SVDF: not supported" in str(e.value)
    assert "operator #0 SVDF: reads tensor #" in str(e.value)
    assert "'svdf/state', a variable tensor" in str(e.value)
    assert "minitiny does not support variable tensors" in str(e.value)


def test_a_tensor_no_one_writes_is_still_malformed():
    """Without is_variable, the same file is broken: the state tensor comes from nowhere."""
    def change(m, s):
        svdf_with_state(m, s)
        m.subgraphs[0].tensors[-1].isVariable = False
    with pytest.raises(TFLiteFormatError, match="no operator writes it"):
        from_tflite(edit(to_tflite(one_op("conv_2d")), change))


def test_a_float_model_lists_every_operator():
    def change(m, s):
        for t in m.subgraphs[0].tensors:
            if t.type == s.TensorType.INT8 and t.buffer == 0:        # every activation
                t.type = s.TensorType.FLOAT32
    q = residual_model(1)
    with pytest.raises(UnsupportedTFLiteError) as e:
        from_tflite(edit(to_tflite(q), change))
    listed = {p.split(":")[0] for p in e.value.problems}
    assert {f"operator #{i} {n}" for i, n in enumerate(
        ["CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "AVERAGE_POOL_2D", "MAX_POOL_2D", "RELU", "RELU6",
         "MEAN", "RESHAPE", "FULLY_CONNECTED", "TANH", "FULLY_CONNECTED", "LOGISTIC",
         "FULLY_CONNECTED", "SOFTMAX"])} <= listed
    assert "float32" in str(e.value)


# ---------------------------------------------------------------------------------------
# Malformed files: a clear error, never a crash or a hang
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    """A small valid file with weights, a residual add, pools and a dense layer."""
    b = O.Builder(2, (4, 4, 2), "small")
    skip = b.conv(2, (3, 3), (1, 1), "same", "relu").cur
    b.depthwise(1, (3, 3)).add(skip).pool("max_pool_2d").flatten().dense(3).softmax()
    return to_tflite(b.model())


def test_truncated_files(small):
    for n in sorted(set(range(0, 64)) | set(range(64, len(small), 7))):
        with pytest.raises(IMPORT_ERRORS):
            from_tflite(small[:n])
    with pytest.raises(TFLiteFormatError, match="too short"):
        from_tflite(b"")


def test_wrong_identifier_and_version(small, tmp_path):
    bad = small[:4] + b"TFL2" + small[8:]
    path = tmp_path / "old.tflite"
    path.write_bytes(bad)
    with pytest.raises(TFLiteFormatError, match=r"old\.tflite: file identifier b'TFL2'"):
        from_tflite(path)
    with pytest.raises(TFLiteFormatError, match="schema version 2"):
        from_tflite(edit(small, lambda m, s: setattr(m, "version", 2)))


def _first_conv(m, s):
    return first_op(m, s, "CONV_2D")


MALFORMED = {      # edit -> a fragment of the error
    "buffer index": (lambda m, s: setattr(m.subgraphs[0].tensors[1], "buffer", 999), "uses buffer 999"),
    "tensor index": (lambda m, s: setattr(_first_conv(m, s), "inputs", [0, 1, 77]), "names tensor 77"),
    "opcode index": (lambda m, s: setattr(_first_conv(m, s), "opcodeIndex", 50), "operator code 50"),
    "input index": (lambda m, s: setattr(m.subgraphs[0], "inputs", [500]), "name tensor 500"),
    "buffer size": (lambda m, s: setattr(m.subgraphs[0].tensors[_first_conv(m, s).inputs[1]], "shape",
                                         [2, 3, 3, 3]), "needs 54"),
    "scales vs zero points": (lambda m, s: setattr(m.subgraphs[0].tensors[0].quantization, "zeroPoint",
                                                   [0, 0]), "1 scales but 2 zero points"),
    "negative scale": (lambda m, s: setattr(m.subgraphs[0].tensors[0].quantization, "scale", [-1.0]),
                       "finite and > 0"),
    "per-channel axis": (lambda m, s: setattr(m.subgraphs[0].tensors[_first_conv(m, s).inputs[1]]
                                              .quantization, "quantizedDimension", 2),
                         "per-channel scales along dimension 2"),
    "out of order": (lambda m, s: m.subgraphs[0].operators.reverse(), "out of order, or a cycle"),
    "written twice": (lambda m, s: setattr(m.subgraphs[0].operators[1], "outputs",
                                           list(m.subgraphs[0].operators[0].outputs)),
                      "written by operators"),
    "options type": (lambda m, s: setattr(_first_conv(m, s), "builtinOptionsType",
                                          s.BuiltinOptions.Pool2DOptions), "expected Conv2DOptions"),
    "zero stride": (lambda m, s: setattr(_first_conv(m, s).builtinOptions, "strideW", 0), "must be positive"),
    "negative dimension": (lambda m, s: setattr(m.subgraphs[0].tensors[0], "shape", [1, -4, 4, 2]),
                           "negative dimension"),
}


@pytest.mark.parametrize("what", sorted(MALFORMED))
def test_malformed_is_a_clear_error(small, what):
    change, fragment = MALFORMED[what]
    with pytest.raises(TFLiteFormatError) as e:
        from_tflite(edit(small, change))
    assert str(e.value).startswith("<.tflite bytes>: ") and fragment in str(e.value), str(e.value)


def test_shapes_that_do_not_match_the_operator(small):
    """Tensors that do not fit their operator: the kernels' Prepare names the op, the file too."""
    def change(m, s):
        sg = m.subgraphs[0]
        sg.tensors[sg.outputs[0]].shape = [1, 4]                   # softmax: 3 values in, 4 out
    with pytest.raises(GraphError, match=r"<\.tflite bytes>: op '\w+' \(softmax\): input shape "
                                         r"\(3,\) != output shape \(4,\)"):
        from_tflite(edit(small, change))


def test_huge_declared_sizes_allocate_nothing(small):
    """An activation declared with 2^40 elements, and vector lengths patched to 2^32 - 1:
    refused from the declared numbers, before anything is allocated or looped over."""
    big = edit(small, lambda m, s: setattr(m.subgraphs[0].tensors[0], "shape", [1, 1 << 20, 1 << 20, 2]))
    with pytest.raises(UnsupportedTFLiteError, match=f"more than {MAX_ELEMENTS}"):
        from_tflite(big)
    # every uint32 in the file that could be a vector length, set to 0xFFFFFFFF in turn
    claims = 0
    for i in range(8, len(small) - 4, 4):
        if 0 < struct.unpack_from("<I", small, i)[0] < 64:
            try:
                from_tflite(small[:i] + b"\xff\xff\xff\xff" + small[i + 4:])
            except TFLiteFormatError as e:
                claims += "claims 4294967295 entries, more than the" in str(e)
            except IMPORT_ERRORS:
                pass
    assert claims >= 5          # the tensor, operator, buffer lists, shapes, ... refused at once


# ---------------------------------------------------------------------------------------
# Fuzzing: random damage to valid files -> only minitiny's own errors
# ---------------------------------------------------------------------------------------
def parse_or_clear_error(data):
    """from_tflite either returns a QModel or raises one of minitiny's clear errors."""
    try:
        q = from_tflite(data)
    except IMPORT_ERRORS as e:
        assert str(e), "an error without a message"
        return None
    assert isinstance(q, QModel)
    return q


@given(data=st.data())
def test_fuzz_mutations(small, data):
    blob = bytearray(small)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        how = data.draw(st.sampled_from(["byte", "u32", "truncate", "insert"]))
        if how == "byte":
            blob[pos] = data.draw(st.integers(0, 255))
        elif how == "u32" and pos + 4 <= len(blob):
            value = data.draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000,
                                               0xFFFFFFFF, len(blob), len(blob) - 4]))
            blob[pos:pos + 4] = struct.pack("<I", value)
        elif how == "truncate":
            del blob[pos:]
            break
        elif how == "insert":
            blob[pos:pos] = bytes(data.draw(st.integers(1, 16)))
    parse_or_clear_error(bytes(blob))


def test_fuzz_for_a_bounded_time(request, small):
    """Seeded random byte damage for ~2 s; reports how many files were tried."""
    tf_file = open(os.path.join(DATA, "cnn_residual.tflite"), "rb").read()
    rng = np.random.default_rng(12345)
    tried = parsed = 0
    t_end = time.monotonic() + 2.0
    while time.monotonic() < t_end:
        blob = bytearray(small if tried % 2 else tf_file)
        for pos in rng.integers(0, len(blob), size=int(rng.integers(1, 6))):
            if rng.random() < 0.5:
                blob[pos] = int(rng.integers(0, 256))
            elif pos + 4 <= len(blob):
                blob[pos:pos + 4] = struct.pack("<I", int(rng.choice([0, 0xFFFFFFFF, 0x7FFFFFFF, len(blob)])))
        parsed += parse_or_clear_error(bytes(blob)) is not None
        tried += 1
    assert tried > 50
    figures.show(request, f"\n.tflite fuzzing: {tried} damaged files in 2 s, {parsed} still "
                                f"imported, the rest refused with a clear error, 0 crashes")
