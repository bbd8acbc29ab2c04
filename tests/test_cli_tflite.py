"""`minitiny quantize --out x.tflite` and `minitiny export tflite`: real .tflite files.

Oracle: TensorFlow Lite Micro loads each file and, fed the same int8 values (through the
file's own edges), gives minitiny's int8 reference outputs.
"""
import numpy as np
import pytest

import minitiny as mt
from minitiny import cli
from minitiny.quant import tflm
from minitiny.quant.graph import QModel
from minitiny.quant.tflite_read import edge_quantization, from_tflite, run_tflm_int8

requires_tflm = pytest.mark.skipif(not tflm.available(), reason="tflite-micro is not installed")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tflite_cli")
    mt.random.seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    model = mt.Sequential([mt.layers.Dense(8, activation="relu", input_shape=[6]),
                           mt.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, verbose=0)
    model.save(d / "m.npz")
    np.save(d / "x.npy", x)
    return d, x


@requires_tflm
@pytest.mark.parametrize("edges", [("int8", "int8"), ("uint8", "float32")])
def test_quantize_writes_a_tflite_that_tflm_runs(files, capsys, edges):
    d, x = files
    out = d / f"m_{edges[0]}_{edges[1]}.tflite"
    code = cli.main(["quantize", str(d / "m.npz"), "--data", str(d / "x.npy"), "--out",
                     str(out), "--input-type", edges[0], "--output-type", edges[1], "--quiet"])
    assert code == 0, capsys.readouterr().err
    data = out.read_bytes()
    assert data[4:8] == b"TFL3"                               # a flatbuffer, not a zip
    q = from_tflite(data)
    xq = q.quantize_input(x[:40])
    assert np.array_equal(run_tflm_int8(data, xq), q.predict_int8(xq))
    assert (edge_quantization(data)["input"] is None) == (edges[0] == "int8")


@requires_tflm
def test_export_tflite_from_an_int8_model(files, capsys):
    d, x = files
    assert cli.main(["quantize", str(d / "m.npz"), "--data", str(d / "x.npy"), "--out",
                     str(d / "m.qmodel.npz"), "--quiet"]) == 0
    code = cli.main(["export", "tflite", str(d / "m.qmodel.npz"), "--out", str(d / "e.tflite"),
                     "--input-type", "float32"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "float32 input, int8 output" in out
    q = QModel.load(d / "m.qmodel.npz")
    xq = q.quantize_input(x)
    assert np.array_equal(run_tflm_int8((d / "e.tflite").read_bytes(), xq), q.predict_int8(xq))


@requires_tflm
@pytest.mark.parametrize("ext", ["npz", "keras", "h5"])
def test_export_tflite_from_a_float_model_writes_float32(files, capsys, ext):
    """A float model file -> the float32 .tflite TFLiteConverter writes without
    optimizations; TFLite Micro runs it as the model predicts."""
    pytest.importorskip("h5py")
    d, x = files
    model = mt.load_model(d / "m.npz")
    if ext != "npz":
        model.save(d / f"m.{ext}")
    out = d / f"float_{ext}.tflite"
    code = cli.main(["export", "tflite", str(d / f"m.{ext}"), "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "float32 ops, float32 input and output" in stdout
    got = tflm.run_interpreter(out.read_bytes(), [x[:20]])[0]
    np.testing.assert_allclose(got, model.predict(x[:20]), rtol=1e-5, atol=1e-6)
    code = cli.main(["export", "tflite", str(d / f"m.{ext}"), "--out", str(out),
                     "--input-type", "uint8"])
    assert code == 2 and "float32 edges" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["quantize", "{d}/m.npz", "--data", "{d}/x.npy", "--out", "{d}/m.h5"], "extension"),
    (["quantize", "{d}/m.npz", "--data", "{d}/x.npy", "--out", "{d}/m.npz", "--input-type",
      "uint8"], "edges of a .tflite"),
    (["export", "tflite", "{d}/m.npz"], "needs --out"),
])
def test_tflite_usage_errors_exit_2(files, capsys, argv, message):
    d, _ = files
    code = cli.main([a.format(d=d) for a in argv])
    assert code == 2 and message in capsys.readouterr().err
