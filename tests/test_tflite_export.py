"""The .tflite writer: the flatbuffer read back field by field, with two independent readers
(the `tflite` package's generated accessors and TFLM's own `schema_py_generated` object
API), then run in TFLM against minitiny's int8 reference.
"""
import os

import numpy as np
import pytest
import tflite

import int8_oracle as O
from minitiny.quant import tflm
from minitiny.quant.graph import GraphError, QModel, QOp, QTensor
from minitiny.quant.tflite_io import BUILTINS, deprecated_builtin_code, save_tflite, to_tflite


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    yield
    O.print_tally(request, ".tflite files run in TFLM")


def every_op_model(seed=0):
    """One model that holds every op kind minitiny writes."""
    b = O.Builder(seed, (8, 8, 2), "every_op")
    skip = b.conv(2, (3, 3), (1, 1), "same", "relu", per_channel=True).cur
    b.depthwise(1, (3, 3), (1, 1), "same", "none", bias=False)
    b.add(skip, "relu6").pool("max_pool_2d", (2, 2), (2, 2), "valid")
    b.pool("average_pool_2d", (3, 3), (1, 1), "same", "relu")
    b.conv(3, (1, 1), (1, 1), "valid", bias=False, per_channel=False)
    b.relu().relu6()
    b.mean(keep_dims=True).reshape((3,))
    b.dense(6, "relu", per_channel=True).dense(4, bias=False).logistic()
    b.dense(5).tanh().dense(3).softmax(beta=0.5)
    return b.model()


@pytest.fixture(scope="module")
def model():
    return every_op_model()


@pytest.fixture(scope="module")
def fb(model):
    data = to_tflite(model)
    return data, tflite.Model.GetRootAs(data, 0)


def _tensors(sg):
    return [sg.Tensors(i) for i in range(sg.TensorsLength())]


def test_header_and_buffers(fb, model):
    data, m = fb
    assert data[4:8] == b"TFL3" and tflite.Model.ModelBufferHasIdentifier(data, 0)
    assert m.Version() == 3 and m.SubgraphsLength() == 1
    assert m.Buffers(0).DataLength() == 0                       # the empty sentinel
    sg = m.Subgraphs(0)
    by_name = {t.Name().decode(): t for t in _tensors(sg)}
    for t in model.tensors.values():
        ft = by_name[t.name]
        if t.is_constant:
            buf = m.Buffers(ft.Buffer())
            assert ft.Buffer() != 0
            assert buf.DataAsNumpy().tobytes() == t.data.astype(t.data.dtype.newbyteorder("<")).tobytes()
            assert buf._tab.Vector(buf._tab.Offset(4)) % 16 == 0      # data aligned to 16 bytes
            assert tuple(ft.ShapeAsNumpy()) == t.shape
        else:
            assert ft.Buffer() == 0
            assert tuple(ft.ShapeAsNumpy()) == (1,) + t.shape         # batch dimension 1
        assert ft.Type() == {"int8": tflite.TensorType.INT8, "int32": tflite.TensorType.INT32}[t.dtype]


def test_quantization_parameters(fb, model):
    _, m = fb
    by_name = {t.Name().decode(): t for t in _tensors(m.Subgraphs(0))}
    per_channel_dims = set()
    for t in model.tensors.values():
        q = by_name[t.name].Quantization()
        np.testing.assert_array_equal(q.ScaleAsNumpy(), np.atleast_1d(t.scale))
        np.testing.assert_array_equal(q.ZeroPointAsNumpy(), np.atleast_1d(t.zero_point))
        if t.per_channel:
            assert q.QuantizedDimension() == t.quantized_dimension
            per_channel_dims.add((len(t.shape), t.quantized_dimension))
    assert (4, 3) in per_channel_dims and (4, 0) in per_channel_dims    # depthwise and conv weights


def test_operators_and_options(fb, model):
    _, m = fb
    sg = m.Subgraphs(0)
    names = [sg.Tensors(i).Name().decode() for i in range(sg.TensorsLength())]
    codes = [m.OperatorCodes(i) for i in range(m.OperatorCodesLength())]
    assert sorted(c.BuiltinCode() for c in codes) == sorted({BUILTINS[o.kind][0] for o in model.ops})
    for c in codes:
        assert c.DeprecatedBuiltinCode() == c.BuiltinCode()       # all our codes are < 127
    assert sg.OperatorsLength() == len(model.ops)
    assert [names[i] for i in sg.InputsAsNumpy()] == model.inputs
    assert [names[i] for i in sg.OutputsAsNumpy()] == model.outputs
    for i, op in enumerate(model.ops):
        fop = sg.Operators(i)
        assert codes[fop.OpcodeIndex()].BuiltinCode() == BUILTINS[op.kind][0]
        ins = list(fop.InputsAsNumpy())
        assert [names[j] for j in ins[:len(op.inputs)]] == op.inputs
        assert [names[j] for j in fop.OutputsAsNumpy()] == op.outputs
        act = {"none": 0, "relu": 1, "relu6": 3}[op.options.get("activation", "none")]
        table = fop.BuiltinOptions()
        if op.kind == "conv_2d":
            o = tflite.Conv2DOptions()
            o.Init(table.Bytes, table.Pos)
            assert (o.StrideH(), o.StrideW()) == op.options["stride"]
            assert o.Padding() == {"same": 0, "valid": 1}[op.options["padding"]]
            assert o.FusedActivationFunction() == act
            if len(op.inputs) == 2:                               # a zero bias is written
                bias = sg.Tensors(ins[2])
                zeros = m.Buffers(bias.Buffer()).DataAsNumpy().view(np.int32)
                assert zeros.shape == (model.tensors[op.inputs[1]].shape[0],) and not zeros.any()
        elif op.kind == "depthwise_conv_2d":
            o = tflite.DepthwiseConv2DOptions()
            o.Init(table.Bytes, table.Pos)
            assert o.DepthMultiplier() == op.options["depth_multiplier"]
            assert len(ins) == 3 and ins[2] >= 0
        elif op.kind in ("max_pool_2d", "average_pool_2d"):
            o = tflite.Pool2DOptions()
            o.Init(table.Bytes, table.Pos)
            assert (o.FilterHeight(), o.FilterWidth()) == op.options["pool_size"]
            assert (o.StrideH(), o.StrideW()) == op.options["stride"]
            assert o.FusedActivationFunction() == act
        elif op.kind == "fully_connected":
            o = tflite.FullyConnectedOptions()
            o.Init(table.Bytes, table.Pos)
            assert o.FusedActivationFunction() == act
            if len(op.inputs) == 2:
                assert ins[2] == -1                               # optional bias absent
        elif op.kind == "mean":
            o = tflite.ReducerOptions()
            o.Init(table.Bytes, table.Pos)
            assert o.KeepDims() == op.options["keep_dims"]
            axes = m.Buffers(sg.Tensors(ins[1]).Buffer()).DataAsNumpy().view(np.int32)
            assert axes.tolist() == [1, 2]
        elif op.kind == "reshape":
            o = tflite.ReshapeOptions()
            o.Init(table.Bytes, table.Pos)
            assert tuple(o.NewShapeAsNumpy()) == (1,) + model.tensors[op.outputs[0]].shape
        elif op.kind == "softmax":
            o = tflite.SoftmaxOptions()
            o.Init(table.Bytes, table.Pos)
            assert o.Beta() == pytest.approx(op.options["beta"])
        elif op.kind == "add":
            o = tflite.AddOptions()
            o.Init(table.Bytes, table.Pos)
            assert o.FusedActivationFunction() == act


def test_deprecated_builtin_code():
    assert deprecated_builtin_code(40) == 40
    assert deprecated_builtin_code(127) == 127
    assert deprecated_builtin_code(150) == 127      # PLACEHOLDER_FOR_GREATER_OP_CODES


@O.requires_tflm
def test_tflm_schema_reads_the_same_model(fb, model):
    """TFLM's own generated schema (object API) reads the file the same way."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    mt = schema.ModelT.InitFromObj(schema.Model.GetRootAs(fb[0], 0))
    sg = mt.subgraphs[0]
    assert mt.version == 3 and len(mt.buffers[0].data if mt.buffers[0].data is not None else []) == 0
    names = [t.name.decode() for t in sg.tensors]
    for name, t in model.tensors.items():
        st = sg.tensors[names.index(name)]
        np.testing.assert_allclose(st.quantization.scale, np.atleast_1d(t.scale))
        if t.is_constant:
            assert bytes(mt.buffers[st.buffer].data) == t.data.tobytes()


@O.requires_tflm
@pytest.mark.parametrize("seed", range(4))
def test_every_op_model_runs_in_tflm(seed):
    model = every_op_model(seed)
    O.check_against_tflm(model, O.random_inputs(model, seed, 32), label="every-op model")


@O.requires_tflm
def test_arena_bytes(model):
    arena = tflm.tflm_arena_bytes(model)
    biggest = max(model.tensors[op.inputs[0]].nbytes + model.tensors[op.outputs[0]].nbytes
                  for op in model.ops)
    assert isinstance(arena, int) and arena >= biggest


@O.requires_tflm
def test_min_arena_is_the_edge_where_tflm_starts_to_run(model):
    # the edge checked with an interpreter in this process, not the worker that bisected
    data = to_tflite(model)
    least = tflm.tflm_min_arena(data)
    tflm.interpreter(data, arena_size=least).invoke()
    with pytest.raises(RuntimeError, match="allocate"):
        tflm.interpreter(data, arena_size=least - 16)    # - 16: whatever the buffer's alignment
    # any plan holds the input and output of its largest layer at once
    biggest = max(model.tensors[op.inputs[0]].nbytes + model.tensors[op.outputs[0]].nbytes
                  for op in model.ops)
    assert least >= biggest


def test_min_arena_names_a_model_tflm_cannot_run():
    if not tflm.available():
        pytest.skip("tflite-micro is not installed")
    with pytest.raises(RuntimeError):
        tflm.tflm_min_arena(b"\x00" * 64)


def test_save_tflite_is_atomic(tmp_path, model):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"old contents")
    save_tflite(model, path)
    assert path.read_bytes() == to_tflite(model)
    assert os.listdir(tmp_path) == ["m.tflite"]                  # no temporary left behind
    bad = QModel("bad", {"x": QTensor("x", (4,), "int8", 0.1, 0), "y": QTensor("y", (4,), "int8", 0.1, 0)},
                 [QOp("relu", "r", ["x"], ["y"])], ["x"], ["y"])
    bad.tensors["y"].dtype = "int32"                            # not a full-integer model
    with pytest.raises(GraphError, match="must be int8"):
        save_tflite(bad, tmp_path / "bad.tflite")
    assert sorted(os.listdir(tmp_path)) == ["m.tflite"]


def test_run_tflm_refuses_bad_input(model):
    if not tflm.available():
        with pytest.raises(tflm.TFLMUnavailable):
            tflm.run_tflm(model, np.zeros((1,) + model.input.shape, np.int8))
        return
    with pytest.raises(ValueError, match="must be int8"):
        tflm.run_tflm(model, np.zeros((1,) + model.input.shape, np.float32))
    with pytest.raises(ValueError, match="shape"):
        tflm.run_tflm(model, np.zeros((1, 3), np.int8))


def test_tflm_unavailable_is_a_clear_error(monkeypatch, model):
    import sys
    monkeypatch.setitem(sys.modules, "tflite_micro.python.tflite_micro", None)
    assert not tflm.available()
    with pytest.raises(tflm.TFLMUnavailable, match="pip install tflite-micro"):
        tflm.run_tflm(model, np.zeros((1,) + model.input.shape, np.int8))
