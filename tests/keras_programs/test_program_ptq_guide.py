"""TensorFlow's post-training integer quantization guide, with only its imports swapped:
train on MNIST, convert to a float32 .tflite and, with a tf.data representative generator,
to a uint8-edged full-integer one, evaluate both through tf.lite.Interpreter.

Measured once, the same file run by TensorFlow 2.21 (its tf.keras is Keras 3; MNIST fed from
minitiny's offline cache, seeds 0): float model 90.2%, quantized model 89.9% on the 1,000 test
images; minitiny (seed 0) printed 90.1% and 89.9%.
The guide reports about 98% for the quantized model after 5 epochs on all 60,000 images;
on the 3,000 / 1,000 images the program keeps, the int8 accuracy must stay within 1.5 points
of the float model's. TensorFlow Lite Micro runs the very file the program saved and must
give the interpreter's integers on every test image.
"""
import re

import numpy as np
import pytest

import minitiny as mt
from keras_swap import run, swapped_source
from minitiny.quant import tflm


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_post_training_integer_quantization_guide(in_tmp, capsys):
    assert swapped_source("ptq_guide")[1] == 1
    mt.random.seed(0)
    ns = run("ptq_guide")
    out = capsys.readouterr().out
    assert "input:  <class 'numpy.uint8'>" in out and "output:  <class 'numpy.uint8'>" in out
    found = re.search(r"Quantized model accuracy is ([\d.]+)% \(Number of test samples=1000\)",
                      out)
    assert found, out[-2000:]
    int8_accuracy = float(found.group(1)) / 100
    float_accuracy = float(np.mean(ns["model"].predict(ns["test_images"]).argmax(1)
                                   == ns["test_labels"]))
    assert float_accuracy >= 0.85
    # the float32 .tflite through the Interpreter: the model's own predictions, to float32
    # rounding (an argmax may flip on a near tie, hence 0.2 points)
    found = re.search(r"Float model accuracy is ([\d.]+)% \(Number of test samples=1000\)", out)
    assert found, out[-2000:]
    assert abs(float(found.group(1)) / 100 - float_accuracy) <= 0.002
    assert abs(int8_accuracy - float_accuracy) <= 0.015
    if tflm.available():
        content = (in_tmp / "mnist_tflite_models" / "mnist_model_quant.tflite").read_bytes()
        interpreter = mt.lite.Interpreter(model_content=content)
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]
        out = interpreter.get_output_details()[0]
        micro = tflm.interpreter(content)
        scale, zero = inp["quantization"]
        for image in ns["test_images"][:200]:
            fed = np.expand_dims(image / scale + zero, 0).astype(np.uint8)   # as the guide
            interpreter.set_tensor(inp["index"], fed)
            interpreter.invoke()
            micro.set_input(fed, 0)
            micro.invoke()
            assert np.array_equal(interpreter.get_tensor(out["index"]).reshape(-1),
                                  np.array(micro.get_output(0)).reshape(-1))
