"""The course's single neuron, unchanged but for its imports.

Measured once, the same file run by Keras 2 (tf_keras with TensorFlow 2.21) prints
[[18.98672]]; Keras 3 (TensorFlow 2.21's tf.keras) trains but then refuses the Python list
in predict() ("Unrecognized data type: x=[10.0]"). minitiny follows Keras 2 there on
purpose: the course's notebook does it.
"""
import numpy as np

from keras_swap import run, swapped_source


def test_only_the_imports_change():
    source, n_changed = swapped_source("single_neuron")
    assert n_changed == 2 and "import minitiny as tf" in source


def test_single_neuron_learns_y_equals_2x_minus_1(capsys):
    ns = run("single_neuron")
    out = capsys.readouterr().out
    assert "Epoch 500/500" in out                         # fit's default verbose=1
    prediction = ns["model"].predict([10.0])
    assert prediction.shape == (1, 1)
    # y = 2x - 1 gives 19; 500 SGD steps on six points stop just short of it, as in Keras
    assert 18.9 < float(prediction[0, 0]) < 19.1
    w, b = ns["model"].get_weights()
    assert np.allclose([w.item(), b.item()], [2.0, -1.0], atol=0.03)
