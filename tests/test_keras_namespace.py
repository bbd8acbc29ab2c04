"""minitiny.keras and minitiny.nn: tf.keras's names re-export the engine (one
implementation), a Keras name minitiny lacks is refused by name, activations given as
functions are stored, saved and quantized by name."""
import subprocess
import sys

import numpy as np
import pytest

import minitiny as mt
from gradcheck import numerical_grad
from minitiny import keras
from minitiny.keras import NotInMinitiny
from minitiny.tensor import Tensor


def test_the_three_import_styles_reach_the_same_objects():
    import minitiny as tf
    from minitiny.keras.layers import Dense
    assert tf.keras.layers.Dense is keras.layers.Dense is Dense is mt.layers.Dense
    assert tf.keras.Sequential is keras.models.Sequential is mt.Sequential
    assert tf.keras.Model is mt.Model and tf.keras.Input is mt.Input
    assert keras.optimizers.Adam is mt.optimizers.Adam
    assert keras.losses.SparseCategoricalCrossentropy is mt.losses.SparseCategoricalCrossentropy
    assert keras.callbacks.EarlyStopping is mt.callbacks.EarlyStopping
    assert keras.models.load_model is mt.load_model
    assert keras.utils.Sequence is keras.utils.PyDataset is mt.data.Sequence
    assert tf.data.Dataset is mt.data.Dataset and keras.regularizers.L2 is mt.regularizers.L2
    assert (tf.int8, tf.uint8, tf.int16, tf.float32) == (np.int8, np.uint8, np.int16,
                                                         np.float32)


def test_every_engine_layer_is_in_keras_layers():
    """minitiny's own layers; a user's Layer subclass (other tests define some) registers in
    mt.layers.LAYERS for loading, but is not part of keras.layers."""
    own = {name: cls for name, cls in mt.layers.LAYERS.items() if cls.__module__.startswith("minitiny.")}
    assert len(own) >= 20, sorted(own)
    for name, cls in own.items():
        assert getattr(keras.layers, name) is cls


def test_import_minitiny_stays_lazy():
    """keras (and the data sets behind it) load on first use, not with `import minitiny`."""
    code = ("import sys, minitiny; assert 'minitiny.keras' not in sys.modules; "
            "assert 'minitiny.datasets' not in sys.modules; minitiny.keras.layers.Dense; "
            "assert 'minitiny.keras' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("module, name, hint", [
    ("layers", "LSTM", None), ("layers", "SeparableConv2D", "DepthwiseConv2D"),
    ("optimizers", "Nadam", None), ("losses", "Huber", None),
    ("activations", "gelu", None), ("callbacks", "TensorBoard", "CSVLogger"),
    ("datasets", "cifar10", "minitiny.datasets list"), ("utils", "plot_model", "summary"),
])
def test_a_keras_name_minitiny_lacks_is_refused_by_name(module, name, hint):
    mod = getattr(keras, module)
    with pytest.raises(NotInMinitiny, match=rf"keras\.{module}\.{name} is a Keras name") as e:
        getattr(mod, name)
    if hint:
        assert hint in str(e.value)
    # and the message survives `from ... import` (an AttributeError would not)
    with pytest.raises(ImportError, match=f"{name} is a Keras name minitiny does not"):
        exec(f"from minitiny.keras.{module} import {name}", {})


def test_the_refusal_lists_what_minitiny_has():
    with pytest.raises(NotInMinitiny, match=r"has: .*Conv2D, Dense"):
        keras.layers.LSTM
    with pytest.raises(AttributeError, match="no attribute 'Dnese'; it has: .*Dense"):
        keras.layers.Dnese                 # not a Keras name either: a plain AttributeError
    assert not hasattr(keras.layers, "Dnese")


def test_an_unimplemented_layer_argument_is_refused_by_name():
    with pytest.raises(TypeError, match="'activity_regularizer' is not implemented.*"
                                        "Dense takes: units, activation"):
        keras.layers.Dense(4, activity_regularizer="l2")
    with pytest.raises(TypeError, match="Conv2D: argument 'dilation_rate'"):
        keras.layers.Conv2D(4, 3, dilation_rate=2)
    assert keras.layers.Dense(4, input_dim=7).declared_input_shape == (7,)   # Keras 2


# ---- minitiny.nn ---------------------------------------------------------------------------
X = np.linspace(-7, 7, 29).reshape(1, 29)


@pytest.mark.parametrize("fn, want", [
    (mt.nn.relu, np.maximum(X, 0)), (mt.nn.relu6, np.clip(X, 0, 6)),
    (mt.nn.sigmoid, 1 / (1 + np.exp(-X))), (mt.nn.tanh, np.tanh(X)),
    (mt.nn.softmax, np.exp(X) / np.exp(X).sum()), (mt.nn.swish, X / (1 + np.exp(-X))),
    (mt.nn.linear, X)])
def test_nn_functions_compute_their_formula(fn, want):
    np.testing.assert_allclose(fn(X).numpy(), want, rtol=1e-6, atol=1e-12)
    assert keras.activations.get(fn.__name__) is fn


def test_swish_gradient_matches_finite_differences():
    x = np.random.default_rng(0).normal(scale=3, size=(4, 5))
    r = np.random.default_rng(1).normal(size=(4, 5))
    t = Tensor(x, requires_grad=True)
    (mt.nn.swish(t) * r).sum().backward()
    want = numerical_grad(lambda a: float((a[0] / (1 + np.exp(-a[0])) * r).sum()), [x], 0,
                          1e-6)
    np.testing.assert_allclose(t.grad, want, rtol=1e-6, atol=1e-8)


def test_activation_functions_are_stored_saved_and_loaded_by_name(tmp_path):
    import minitiny as tf
    model = tf.keras.Sequential([tf.keras.layers.Flatten(input_shape=(4, 3)),
                                 tf.keras.layers.Dense(8, activation=tf.nn.relu),
                                 tf.keras.layers.Dense(3, activation=tf.nn.softmax)])
    assert [layer.get_config().get("activation") for layer in model.layers] == \
        [None, "relu", "softmax"]
    x = np.random.default_rng(0).normal(size=(5, 4, 3)).astype(np.float32)
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(mt.load_model(tmp_path / "m.npz").predict(x), model.predict(x))


def test_a_custom_or_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="'<lambda>' is not a minitiny activation.*relu"):
        keras.layers.Dense(3, activation=lambda x: x)
    with pytest.raises(ValueError, match="'gelu' \\(a Keras activation minitiny does not"):
        keras.layers.Dense(3, activation="gelu")


def test_swish_trains_but_the_c_paths_refuse_it_by_name(tmp_path):
    codegen = pytest.importorskip("minitiny.codegen")
    model = mt.Sequential([mt.layers.Dense(3, activation=mt.nn.swish, input_shape=(2,))])
    x = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)
    with pytest.raises(ValueError, match="activation 'swish' is not supported"):
        mt.quantize(model, x)
    with pytest.raises(codegen.CodegenError, match="activation 'swish' has no float C form"):
        codegen.generate(model, tmp_path / "m")


# ---- keras.datasets, utils, models -----------------------------------------------------------
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_keras_datasets_have_keras_shapes_and_dtypes(name):
    try:
        (x, y), (xt, yt) = getattr(keras.datasets, name).load_data()
    except mt.datasets.DataMissingError as e:
        pytest.skip(str(e))
    assert (x.shape, x.dtype, y.shape, y.dtype) == ((60000, 28, 28), np.uint8, (60000,), np.uint8)
    assert (xt.shape, xt.dtype, yt.shape, yt.dtype) == ((10000, 28, 28), np.uint8, (10000,),
                                                        np.uint8)
    assert set(np.unique(y)) == set(range(10)) and x.max() == 255


def test_to_categorical_squeezes_a_trailing_axis_as_keras():
    want = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=np.float32)
    for y in ([1, 2, 0], [[1], [2], [0]]):
        got = keras.utils.to_categorical(y, 3)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)
    assert keras.utils.to_categorical([3, 0]).shape == (2, 4)


def test_get_layer_and_json_round_trip():
    model = keras.Sequential([keras.layers.Dense(4, activation="relu", input_shape=(3,),
                                                 name="hidden"),
                              keras.layers.Dense(2, name="out")])
    assert model.get_layer("out") is model.layers[1] is model.get_layer(index=-1)
    with pytest.raises(ValueError, match="no layer 'nope'; its layers: \\['hidden', 'out'\\]"):
        model.get_layer("nope")
    clone = keras.models.model_from_json(model.to_json())
    assert clone.get_config() == model.get_config()
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in model.get_weights()]
    with pytest.raises(ValueError, match="model_from_json: cannot rebuild"):
        keras.models.model_from_json('{"class_name": "Sequential"}')
