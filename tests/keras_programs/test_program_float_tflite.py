"""The course's first TensorFlow Lite notebook (float conversion), unchanged but for its
imports.

Measured once with TensorFlow 2.21 in an environment of its own: Keras 2 (tf_keras) learns
w = 1.9968, b = -0.9901 and the interpreter prints [[18.98743]]; Keras 3 prints [[18.98073]]
(TF's 1,080-byte model.tflite). The oracle here is TensorFlow Lite Micro running the very
file the program writes.
"""
import numpy as np
import pytest

from keras_swap import run, swapped_source
from minitiny.quant import tflm


def test_only_the_imports_change():
    source, n_changed = swapped_source("float_tflite")
    assert n_changed == 1 and "import minitiny as tf" in source


@pytest.mark.skipif(not tflm.available(), reason="tflite-micro is not installed")
def test_the_float_model_converts_saves_and_runs(in_tmp, capsys):
    ns = run("float_tflite")
    out = capsys.readouterr().out
    assert "Here is what I learned" in out and "[[10.]]" in out
    result = ns["tflite_results"]
    assert result.shape == (1, 1) and result.dtype == np.float32
    assert 18.9 < float(result[0, 0]) < 19.1                  # as Keras' 18.98
    np.testing.assert_allclose(result, ns["model"].predict(ns["to_predict"]), rtol=1e-6)
    written = (in_tmp / "model.tflite").read_bytes()
    assert written == ns["tflite_model"]
    np.testing.assert_allclose(tflm.run_interpreter(written, [ns["to_predict"]])[0], result,
                               rtol=1e-6)          # float32 in TFLM, float64 then rounded here
    assert ns["input_details"][0]["dtype"] == np.float32
