"""Graphs with several inputs and outputs: QModel, TFLite Micro, the .tflite writer and
reader, tf.lite.Interpreter, the generated C and the tools around it.

Oracles: TensorFlow Lite Micro's interpreter runs the same graph written as a .tflite (every
input set, every output read); each output of a multi-output model must also equal that
tensor in the model's own full evaluation (predict_int8(..., return_all=True)), which the
single-output code path computes independently of the output list. The generated C is
compared with the NumPy reference output by output, through cffi and under ASan/UBSan.
"""
import os
import re
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitiny as mt
import int8_oracle as O
from minitiny import codegen
from minitiny.quant import tflm
from minitiny.quant.graph import GraphError
from minitiny.quant.tflite_io import to_tflite
from minitiny.quant.tflite_read import from_tflite, run_tflm_int8
from minitiny.testing.models import multi_io_model


def inputs_of(q, seed, n=6):
    return O.random_inputs(q, seed, n)


def as_list(y, q):
    return y if len(q.outputs) > 1 else [y]


# ---------------------------------------------------------------------------------------
# QModel: every output, in order; inputs as a list or a dict; clear errors
# ---------------------------------------------------------------------------------------
@settings(max_examples=8)
@given(seed=O.seeds, n_in=st.integers(1, 3), n_out=st.integers(1, 4))
def test_every_output_is_its_tensor_in_order(seed, n_in, n_out):
    q = multi_io_model(seed, n_in, n_out)
    xs = inputs_of(q, seed)
    every = q.predict_int8(xs if n_in > 1 else xs[0], return_all=True)
    got = as_list(q.predict_int8(xs if n_in > 1 else xs[0]), q)
    assert len(got) == n_out
    for name, y in zip(q.outputs, got):
        np.testing.assert_array_equal(y, every[name])
        assert y.shape == (len(xs[0]),) + q.tensors[name].shape
    by_name = as_list(q.predict_int8(dict(zip(q.inputs, xs))), q)
    for a, b in zip(got, by_name):
        np.testing.assert_array_equal(a, b)


@O.requires_tflm
@settings(max_examples=6)
@given(seed=O.seeds, n_in=st.integers(1, 3), n_out=st.integers(2, 4))
def test_every_output_matches_tflm(seed, n_in, n_out):
    q = multi_io_model(seed, n_in, n_out)
    xs = inputs_of(q, seed, 4)
    ours = q.predict_int8(xs if n_in > 1 else xs[0])
    theirs = tflm.run_tflm(q, xs if n_in > 1 else xs[0])
    assert isinstance(theirs, list) and len(theirs) == n_out
    for name, a, b in zip(q.outputs, ours, theirs):
        np.testing.assert_array_equal(a, b.reshape(a.shape), err_msg=name)


def test_float_predict_and_evaluate_per_output():
    q = multi_io_model(3, 2, 3)
    xs = inputs_of(q, 3, 10)
    floats = [q.tensors[n].dequantize(x) for n, x in zip(q.inputs, xs)]
    got = q.predict(floats, batch_size=3)               # batches of 3: concatenated per output
    want = q.dequantize_output(q.predict_int8(q.quantize_input(floats)))
    assert len(got) == 3
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    scores = q.evaluate(floats, [w.reshape(len(w), -1) for w in want], metric="mse")
    assert scores == [0.0, 0.0, 0.0]
    with pytest.raises(GraphError, match="3 outputs .* list of 3 targets"):
        q.evaluate(floats, want[0])


def test_wrong_inputs_get_errors_naming_the_input():
    q = multi_io_model(1, 2, 2)
    x, x2 = inputs_of(q, 1)
    with pytest.raises(GraphError, match=r"2 inputs \(x, x2\).*list of 2 arrays.*got one array"):
        q.predict_int8(x)
    with pytest.raises(GraphError, match="got 3 arrays"):
        q.predict_int8([x, x2, x])
    with pytest.raises(GraphError, match=r"input 'x2' has shape \(6, 6, 6, 3\)"):
        q.predict_int8([x, np.zeros((6, 6, 6, 3), np.int8)])
    with pytest.raises(GraphError, match="int8 input, got float32 for input 'x2'"):
        q.predict_int8([x, x2.astype(np.float32)])
    with pytest.raises(GraphError, match="int8 input 'x2' out of range"):
        q.predict_int8([x, x2.astype(np.int32) * 3])
    with pytest.raises(GraphError, match="different numbers of samples: 'x' 6, 'x2' 2"):
        q.predict_int8([x, x2[:2]])
    with pytest.raises(GraphError, match=r"missing \['x2'\]"):
        q.predict_int8({"x": x})
    with pytest.raises(GraphError, match="2 outputs .*qmodel.outputs"):
        q.output
    with pytest.raises(GraphError, match="2 inputs .*qmodel.inputs"):
        q.input


def test_a_single_sample_without_batch_dimension():
    q = multi_io_model(2, 2, 2)
    x, x2 = inputs_of(q, 2, 1)
    a = q.predict_int8([x[0], x2[0]])
    b = q.predict_int8([x, x2])
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


# ---------------------------------------------------------------------------------------
# The .tflite writer and reader, with every edge type
# ---------------------------------------------------------------------------------------
@O.requires_tflm
@pytest.mark.parametrize("edges", [("int8", "int8"), ("float32", "uint8"), ("uint8", "float32")])
def test_round_trip_through_the_file_keeps_every_input_and_output(edges):
    q = multi_io_model(11, 2, 3)
    data = to_tflite(q, *edges)
    r = from_tflite(data)
    assert [r.tensors[n].shape for n in r.inputs] == [q.tensors[n].shape for n in q.inputs]
    assert [r.tensors[n].shape for n in r.outputs] == [q.tensors[n].shape for n in q.outputs]
    xs = inputs_of(q, 11, 5)
    ours, back, theirs = q.predict_int8(xs), r.predict_int8(xs), run_tflm_int8(data, xs)
    for a, b, c in zip(ours, back, theirs):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


# ---------------------------------------------------------------------------------------
# tf.lite.Interpreter: all inputs and outputs, batch > 1
# ---------------------------------------------------------------------------------------
@O.requires_tflm
def test_interpreter_runs_every_input_and_output_as_tflm():
    q = multi_io_model(4, 2, 3)
    data = to_tflite(q, "float32", "uint8")
    interpreter = mt.lite.Interpreter(model_content=data)
    interpreter.allocate_tensors()
    ins, outs = interpreter.get_input_details(), interpreter.get_output_details()
    assert len(ins) == 2 and len(outs) == 3
    assert [tuple(d["shape"]) for d in outs] == [(1,) + q.tensors[n].shape for n in q.outputs]
    rng = np.random.default_rng(0)
    feed = [rng.normal(0, 3 * float(q.tensors[n].scale) * 40, (4, 1) + q.tensors[n].shape).astype(np.float32)
            for n in q.inputs]
    theirs = tflm.run_interpreter(data, [f[:, 0] for f in feed])   # TFLM on the same floats
    for k in range(4):
        for d, f in zip(ins, feed):
            interpreter.set_tensor(d["index"], f[k])
        interpreter.invoke()
        for d, t in zip(outs, theirs):
            got = interpreter.get_tensor(d["index"])
            assert got.dtype == np.uint8
            np.testing.assert_array_equal(got[0], t[k])


@O.requires_tflm
def test_interpreter_batch_after_resize_tensor_input():
    q = multi_io_model(5, 2, 2)
    data = to_tflite(q, "int8", "float32")
    interpreter = mt.lite.Interpreter(model_content=data)
    ins, outs = interpreter.get_input_details(), interpreter.get_output_details()
    for d in ins:
        interpreter.resize_tensor_input(d["index"], [5] + list(d["shape"][1:]))
    interpreter.allocate_tensors()
    assert [int(d["shape"][0]) for d in interpreter.get_output_details()] == [5, 5]
    xs = inputs_of(q, 5, 5)
    for d, x in zip(ins, xs):
        interpreter.set_tensor(d["index"], x)
    interpreter.invoke()
    theirs = tflm.run_interpreter(data, xs)
    for d, t in zip(outs, theirs):
        got = interpreter.get_tensor(d["index"])
        assert got.shape == t.shape and got.dtype == np.float32
        np.testing.assert_array_equal(got, t)
    interpreter.resize_tensor_input(ins[0]["index"], [3] + list(ins[0]["shape"][1:]))
    with pytest.raises(RuntimeError, match="allocate_tensors"):
        interpreter.invoke()
    with pytest.raises(ValueError, match="different batch sizes"):
        interpreter.allocate_tensors()
    with pytest.raises(ValueError, match="strict=True.*not dynamic"):
        interpreter.resize_tensor_input(ins[1]["index"], [3] + list(ins[1]["shape"][1:]), strict=True)


# ---------------------------------------------------------------------------------------
# The generated C: one pointer per input and output, macros per tensor
# ---------------------------------------------------------------------------------------
GCC = shutil.which("gcc") or shutil.which("cc")
requires_gcc = pytest.mark.skipif(GCC is None, reason="no host C compiler")
FW_TOOLS = [t for t in ("arm-none-eabi-gcc", "arm-none-eabi-nm", "qemu-system-arm") if shutil.which(t) is None]
requires_firmware = pytest.mark.skipif(bool(FW_TOOLS), reason=f"{', '.join(FW_TOOLS)} not installed")


def _generated(tmp_path_factory, key, q, variant="reference"):
    return codegen.generate(q, tmp_path_factory.mktemp(key), name="mio", variant=variant)


@requires_gcc
@settings(max_examples=6)
@given(seed=O.seeds, n_in=st.integers(1, 3), n_out=st.integers(1, 4),
       variant=st.sampled_from(["reference", "scalar", "auto"]))
def test_host_c_equals_numpy_for_every_output(tmp_path_factory, seed, n_in, n_out, variant):
    q = multi_io_model(seed, n_in, n_out)
    g = _generated(tmp_path_factory, "host", q, variant)
    xs = inputs_of(q, seed, 5)
    arg = xs if n_in > 1 else xs[0]
    got, want = as_list(codegen.load(g.dir)(arg), q), as_list(q.predict_int8(arg), q)
    assert len(got) == n_out
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


@requires_gcc
def test_header_names_every_tensor_and_sanitized_run_is_clean(tmp_path_factory):
    q = multi_io_model(31, 2, 3)
    g = _generated(tmp_path_factory, "asan", q)
    header = open(g.header).read()
    sizes = {int(v) for v in re.findall(r"#define MIO_(?:IN|OUT)PUT\d_SIZE (\d+)", header)}
    assert sizes == {int(np.prod(q.tensors[n].shape)) for n in q.inputs + q.outputs}
    assert ("int mio_invoke(const int8_t *input0, const int8_t *input1, int8_t *output0, "
            "int8_t *output1, int8_t *output2);") in header
    for k, name in enumerate(q.inputs):
        t = q.tensors[name]
        assert re.search(rf"#define MIO_INPUT{k}_ZERO_POINT \({int(t.zero_point)}\)", header)
    for k, name in enumerate(q.outputs):
        c_type = "int8" + "".join(f"[{d}]" for d in q.tensors[name].shape)
        assert re.search(rf"output{k} +{re.escape(c_type)} +{name}", header)
    assert "MIO_INPUT_SIZE" not in header and "MIO_OUTPUT_SIZE" not in header
    xs = inputs_of(q, 31, 12)
    got = codegen.load(g.dir, sanitize=True)(xs)           # SanitizerError on any report
    for a, b in zip(got, q.predict_int8(xs)):
        np.testing.assert_array_equal(a, b)


@requires_gcc
def test_c_float_helpers_per_tensor(tmp_path_factory):
    q = multi_io_model(32, 2, 2)
    fn = codegen.load(_generated(tmp_path_factory, "float", q).dir)
    rng = np.random.default_rng(0)
    floats = [rng.normal(0, 60 * float(q.tensors[n].scale), (7,) + q.tensors[n].shape).astype(np.float32)
              for n in q.inputs]
    for a, b in zip(fn.quantize_input(floats), q.quantize_input(floats)):
        np.testing.assert_array_equal(a, b)
    ys = q.predict_int8(q.quantize_input(floats))
    for a, b in zip(fn.dequantize_output(ys), q.dequantize_output(ys)):
        np.testing.assert_array_equal(a, b)


def test_threshold_needs_one_output(tmp_path):
    with pytest.raises(codegen.CodegenError, match="threshold= needs a detector with one output"):
        codegen.generate(multi_io_model(1, 1, 2), tmp_path / "m", threshold=0.5)


def test_the_planner_keeps_every_output_until_the_end():
    """An output that later layers still read (the trunk) and outputs written early: no
    other tensor may take their bytes before the copy out."""
    from minitiny.codegen import planner
    for seed in range(20):
        q = multi_io_model(seed, 2, 4)
        arena = planner.plan_qmodel(q)
        n = len(q.ops)
        for b in arena.buffers:
            if set(b.tensors) & set(q.outputs):
                assert b.last == n, (seed, b)


@requires_firmware
def test_emulated_cortex_m4_gives_every_output(tmp_path_factory):
    from minitiny import firmware
    q = multi_io_model(33, 2, 3)
    g = _generated(tmp_path_factory, "m4", q, "auto")
    xs = inputs_of(q, 33, 4)
    r = firmware.run(g.dir, board="cortex-m4", inputs=xs, n=None, profile=True)
    assert r.ok, r.message
    assert r.matches_reference
    for a, b in zip(r.outputs_by_tensor, q.predict_int8(xs)):
        np.testing.assert_array_equal(a, b)
    assert r.layer_instructions.shape == (4, len(q.ops))
    # the command line: a .npz with one array per input, in the model's order
    from minitiny.firmware.__main__ import main as firmware_main
    npz = tmp_path_factory.mktemp("fwin") / "x.npz"
    np.savez(npz, *xs)
    assert firmware_main(["run", str(g.dir), "--board", "cortex-m4", "--inputs", str(npz), "--no-profile"]) == 0


@requires_gcc
def test_cli_verify_compares_every_output(tmp_path_factory, capsys):
    from minitiny import cli
    q = multi_io_model(34, 2, 2)
    g = _generated(tmp_path_factory, "cli", q)
    assert cli.main(["verify", str(g.dir), "-n", "20"]) == 0
    out = capsys.readouterr().out
    for name in q.outputs:
        assert re.search(rf"C on the host \(cffi\) vs NumPy int8, output {name} +20/20 outputs identical", out), out
        if tflm.available():
            assert re.search(rf"TFLite Micro .* vs NumPy int8, output {name} +20/20", out), out
    rng = np.random.default_rng(1)
    npz = tmp_path_factory.mktemp("npz") / "inputs.npz"
    np.savez(npz, **{n: rng.normal(0, 1, (9,) + q.tensors[n].shape).astype(np.float32) for n in q.inputs})
    assert cli.main(["verify", str(g.dir), "--inputs", str(npz)]) == 0
    assert "9 of" in capsys.readouterr().out
    assert cli.main(["verify", str(g.dir), "--data", "sine"]) != 0
    assert "has 2 inputs" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# minitiny.testing.assert_equivalent: every output, inputs packed and shrunk
# ---------------------------------------------------------------------------------------
@requires_gcc
def test_assert_equivalent_checks_every_output_and_finds_a_fault_in_one(tmp_path):
    from minitiny.testing import Mismatch, assert_equivalent
    q = multi_io_model(35, 2, 4)
    codegen.generate(q, tmp_path, name="m")
    assert assert_equivalent(q, tmp_path, n=40) >= 40
    # the fault: the last dense head's first bias value far off; only its output changes
    head = [op for op in q.ops if op.kind == "fully_connected"][-1]
    src = tmp_path / "m_model.c"
    text, n = re.subn(rf"({head.name}_bias\[\d+\] = \{{\s*)(-?\d+)",
                      lambda m: m.group(1) + str(int(m.group(2)) + 40000), src.read_text(), count=1)
    assert n == 1
    src.write_text(text)
    with pytest.raises(Mismatch) as info:
        assert_equivalent(q, tmp_path, n=40, use_tflm=False)
    err = info.value
    assert err.engine == "C" and err.op.name == head.name
    assert f"output {head.outputs[0]!r}:" in str(err) and "input 'x2':" in str(err)
    for other in set(q.outputs) - {head.outputs[0]}:
        assert f"output {other!r}:" not in str(err)
    # the reported (packed) input really differs, run independently of the probe build
    sizes = [int(np.prod(q.tensors[n].shape)) for n in q.inputs]
    xs = [part.reshape((1,) + q.tensors[n].shape) for part, n in
          zip(np.split(err.input[None], np.cumsum(sizes)[:-1], axis=1), q.inputs)]
    got, want = codegen.load(tmp_path)(xs), q.predict_int8(xs)
    k = q.outputs.index(head.outputs[0])
    assert not np.array_equal(got[k], want[k])
    # shrunk toward each input's own zero point: no value can move to it and still fail
    zps = np.concatenate([np.full(s, int(q.tensors[n].zero_point)) for s, n in zip(sizes, q.inputs)])
    away = np.flatnonzero(err.input != zps)
    for i in away[:8]:
        y = err.input.copy()
        y[i] = zps[i]
        ys = [part.reshape((1,) + q.tensors[n].shape) for part, n in
              zip(np.split(y[None], np.cumsum(sizes)[:-1], axis=1), q.inputs)]
        assert np.array_equal(codegen.load(tmp_path)(ys)[k], q.predict_int8(ys)[k])


# ---------------------------------------------------------------------------------------
# Files TensorFlow's converter made (scripts/make_tflite_testdata.py), with TFLM's outputs
# ---------------------------------------------------------------------------------------
DATA = os.path.join(os.path.dirname(__file__), "data", "tflite")
TF_FILES = {   # file -> (inputs, outputs) in the file's order, which is not always Keras'
    "two_inputs.tflite": ([(4, 4, 1), (12,)], [(3,)]),
    "two_outputs.tflite": ([(8, 8, 1)], [(1,), (4,)]),
    "two_in_two_out_float.tflite": ([(6,), (10,)], [(2,), (3,)]),
}


def _tf_file(name):
    path = os.path.join(DATA, name)
    stored = np.load(path[:-len(".tflite")] + ".expected.npz")
    q = from_tflite(path)
    xs = [stored[f"x{i}"] for i in range(len(q.inputs))]
    ys = [stored[f"y{j}"] for j in range(len(q.outputs))]
    return path, q, xs, ys


@pytest.mark.parametrize("name", sorted(TF_FILES))
def test_tf_file_numpy_gives_tflms_stored_outputs(name):
    """TFLM's outputs were stored by the script, beside TensorFlow (independent of minitiny's
    writer and runner): every output, on full-range and in-distribution inputs."""
    path, q, xs, ys = _tf_file(name)
    ins, outs = TF_FILES[name]
    assert [q.tensors[n].shape for n in q.inputs] == ins
    assert [q.tensors[n].shape for n in q.outputs] == outs
    got = as_list(q.predict_int8(xs if len(xs) > 1 else xs[0]), q)
    for j, (a, b) in enumerate(zip(got, ys)):
        np.testing.assert_array_equal(a, b, err_msg=f"{name} output {j}")
    if tflm.available():             # and the installed TFLM, through minitiny's runner
        again = as_list(run_tflm_int8(path, xs if len(xs) > 1 else xs[0]), q)
        for a, b in zip(again, ys):
            np.testing.assert_array_equal(a, b)


@requires_gcc
@pytest.mark.parametrize("name", sorted(TF_FILES))
def test_tf_file_host_c_gives_tflms_stored_outputs(name, tmp_path):
    path, q, xs, ys = _tf_file(name)
    fn = codegen.load(codegen.generate(q, tmp_path, name="tf", variant="auto").dir)
    got = as_list(fn(xs if len(xs) > 1 else xs[0]), q)
    for a, b in zip(got, ys):
        np.testing.assert_array_equal(a, b)


@O.requires_tflm
def test_tf_file_with_float_edges_in_the_interpreter():
    """tf.lite.Interpreter on the float32 edges of TensorFlow's file, against TFLM fed the
    same floats: every output, one sample at a time."""
    path, q, xs, ys = _tf_file("two_in_two_out_float.tflite")
    data = open(path, "rb").read()
    interpreter = mt.lite.Interpreter(model_content=data)
    interpreter.allocate_tensors()
    ins, outs = interpreter.get_input_details(), interpreter.get_output_details()
    assert [d["dtype"] for d in ins + outs] == [np.float32] * 4
    floats = [q.tensors[n].dequantize(x[:20]) for n, x in zip(q.inputs, xs)]
    theirs = tflm.run_interpreter(data, floats)
    for k in range(20):
        for d, f in zip(ins, floats):
            interpreter.set_tensor(d["index"], f[k:k + 1])
        interpreter.invoke()
        for d, t in zip(outs, theirs):
            np.testing.assert_array_equal(interpreter.get_tensor(d["index"])[0], t[k])


@requires_gcc
def test_report_names_every_input_and_output_and_refuses_data(tmp_path, capsys):
    from minitiny import cli
    q = multi_io_model(36, 2, 2)
    codegen.generate(q, tmp_path, name="m")
    assert cli.main(["report", str(tmp_path)]) == 0
    shape = lambda n: "(" + ", ".join(map(str, q.tensors[n].shape)) + ")"
    want = (f"input {shape(q.inputs[0])} and {shape(q.inputs[1])} -> "
            f"output {shape(q.outputs[0])} and {shape(q.outputs[1])}")
    assert want in capsys.readouterr().out
    assert cli.main(["report", str(tmp_path), "--data", "sine"]) != 0
    assert "2 inputs and 2 outputs" in capsys.readouterr().err


@requires_gcc
def test_thorough_suite_and_hypothesis_draws_on_several_inputs(tmp_path, capsys):
    """`minitiny verify --thorough` (the property suite) and assert_equivalent with the
    int8_inputs strategy, which draws one array per input."""
    from minitiny import cli
    from minitiny.testing import assert_equivalent, int8_inputs
    q = multi_io_model(37, 3, 2)
    codegen.generate(q, tmp_path, name="m")
    assert cli.main(["verify", str(tmp_path), "-n", "8", "--thorough", "--budget", "4"]) == 0
    out = capsys.readouterr().out
    for name in ("bit-exact", "call order", "sanitizers"):
        assert re.search(rf"thorough: {name} +[\d,]+ inputs +OK", out), out
    assert assert_equivalent(q, tmp_path, n=8, strategy=int8_inputs(q), max_examples=10, use_tflm=False) >= 18


@requires_gcc
def test_deploy_verify_on_host_counts_a_sample_once_over_every_output(tmp_path):
    from minitiny.deploy import verify_on_host
    q = multi_io_model(38, 2, 2)
    codegen.generate(q, tmp_path, name="m")
    xs = inputs_of(q, 38, 9)
    check = verify_on_host(q, tmp_path, xs, chunk=4)
    assert check.ok and check.n == check.same == 9
    check.outputs[1][3] = check.outputs[1][3] + 1          # one value of one output off
    assert check.same == 8 and not check.ok
