"""Bad input is refused at the boundary with a message that names the problem: the layer,
the shapes, the label and its index, the array holding NaN, the file. Never a raw NumPy
traceback from deep inside a matmul."""
import numpy as np
import pytest

import minitiny as mt
from minitiny.layers import Add, Conv2D, Dense, Flatten, Input
from minitiny.saving import ModelFileError


def mnist_like():
    model = mt.Sequential([Flatten(input_shape=(28, 28)), Dense(10, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


# ---- shapes between layers ---------------------------------------------------------------
def test_dense_on_images_says_flatten():
    with pytest.raises(ValueError, match=r"layer 'img_dense' expects input \(N, features\), "
                                         r"got \(N, 28, 28\); add a Flatten"):
        mt.Sequential([Dense(10, input_shape=(28, 28), name="img_dense")])


def test_conv_after_dense_names_layer_and_shape():
    with pytest.raises(ValueError, match=r"layer 'c1' expects input \(N, H, W, C\), got \(N, 10\)"):
        mt.Sequential([Dense(10, input_shape=(784,)), Conv2D(3, 3, name="c1")])


def test_window_larger_than_the_image():
    with pytest.raises(ValueError, match=r"layer 'c2' .* 5x5 .* got \(N, 3, 3, 1\)"):
        mt.Sequential([Conv2D(3, 5, input_shape=(3, 3, 1), name="c2")])


def test_built_layer_refuses_another_shape():
    layer = Dense(4, name="d784")
    layer(np.zeros((2, 784), np.float32))
    with pytest.raises(ValueError, match=r"layer 'd784' expects input \(N, 784\), got \(N, 10\)"):
        layer(np.zeros((2, 10), np.float32))


def test_add_of_different_shapes():
    with pytest.raises(ValueError, match=r"'sum' needs inputs of the same shape, got \(N, 4\) "
                                         r"and \(N, 5\)"):
        Add(name="sum")([Input((4,)), Input((5,))])


def test_model_input_shape_mismatch_names_the_first_layer():
    with pytest.raises(ValueError, match=r"layer 'flatten.*' expects input \(N, 28, 28\), "
                                         r"got x of shape \(N, 784\)"):
        mnist_like().fit(np.zeros((5, 784)), np.zeros(5), verbose=0)


def test_single_sample_without_batch_axis_gets_a_hint():
    model = mt.Sequential([Dense(1, input_shape=(3,))])
    with pytest.raises(ValueError, match=r"for one sample use x\[None\]"):
        model.predict(np.zeros(3))


def test_set_weights_names_layer_weight_and_shapes():
    model = mt.Sequential([Dense(1, input_shape=(3,), name="head")])
    with pytest.raises(ValueError, match=r"layer 'head' weight 'kernel' has shape \(3, 1\), "
                                         r"got an array of shape \(1, 3\)"):
        model.set_weights([np.zeros((1, 3)), np.zeros(1)])
    with pytest.raises(ValueError, match=r"has 2 weight arrays \(head: kernel, bias\), got 1"):
        model.set_weights([np.zeros((3, 1))])


def test_layer_shared_between_two_places():
    d = Dense(3, name="shared")
    with pytest.raises(ValueError, match="'shared' is already used in a graph"):
        x = Input((3,))
        d(d(x))


# ---- losses that do not fit the output ---------------------------------------------------
def test_sparse_crossentropy_on_one_unit_output():
    model = mt.Sequential([Dense(1, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"one output unit per class .* outputs \(N, 1\).*"
                                         r"binary_crossentropy"):
        model.fit(np.zeros((5, 3)), np.zeros(5), verbose=0)


def test_categorical_crossentropy_with_class_indices():
    model = mnist_like()
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match=r"needs y of shape \(N, 10\) .* got y of shape \(N,\);"
                                         r" .*sparse_categorical_crossentropy"):
        model.fit(np.zeros((5, 28, 28)), np.zeros(5), verbose=0)


def test_sparse_crossentropy_with_one_hot_labels():
    with pytest.raises(ValueError, match="y looks one-hot"):
        mnist_like().fit(np.zeros((5, 28, 28)), np.eye(10)[:5], verbose=0)


def test_mse_target_shape_mismatch():
    model = mt.Sequential([Dense(1, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"needs y of shape \(N, 1\) .* got y of shape \(N, 2\)"):
        model.fit(np.zeros((5, 3)), np.zeros((5, 2)), verbose=0)


def test_binary_labels_outside_0_1():
    model = mt.Sequential([Dense(1, activation="sigmoid", input_shape=(3,))])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    with pytest.raises(ValueError, match=r"labels in \[0, 1\], got y\[2, 0\] = 2.0"):
        model.fit(np.zeros((5, 3)), np.array([0, 1, 2, 0, 1]), verbose=0)


# ---- labels out of range, NaN / inf, lengths ---------------------------------------------
@pytest.mark.parametrize("bad,index", [(10, 3), (-1, 1)])
def test_label_out_of_range(bad, index):
    y = np.zeros(5, int)
    y[index] = bad
    with pytest.raises(ValueError, match=rf"label {bad} at y\[{index}\] is out of range "
                                         r"\[0, 10\) for a model with 10 output classes"):
        mnist_like().fit(np.zeros((5, 28, 28)), y, verbose=0)


def test_fractional_class_index():
    with pytest.raises(ValueError, match=r"integer class indices, got y\[1\] = 0.5"):
        mnist_like().fit(np.zeros((2, 28, 28)), np.array([1.0, 0.5]), verbose=0)


def test_validation_labels_are_named_as_such():
    with pytest.raises(ValueError, match=r"^validation y: label 12 at y\[0\]"):
        mnist_like().fit(np.zeros((4, 28, 28)), np.zeros(4), verbose=0,
                         validation_data=(np.zeros((2, 28, 28)), np.array([12, 0])))


def test_nan_in_x_names_array_and_index():
    x = np.zeros((5, 28, 28))
    x[2, 3, 4] = np.nan
    with pytest.raises(ValueError, match=r"x contains nan at index \(2, 3, 4\)"):
        mnist_like().fit(x, np.zeros(5), verbose=0)


def test_inf_in_y_names_array_and_index():
    model = mt.Sequential([Dense(1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"y contains -inf at index 3"):
        model.fit(np.zeros((4, 2)), np.array([0, 1, 2, -np.inf]), verbose=0)


def test_nan_in_validation_data():
    xv = np.zeros((2, 28, 28))
    xv[1, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"validation x contains inf at index \(1, 0, 0\)"):
        mnist_like().fit(np.zeros((4, 28, 28)), np.zeros(4), verbose=0,
                         validation_data=(xv, np.zeros(2)))


def test_length_mismatch():
    with pytest.raises(ValueError, match="x has 5 samples but y has 4"):
        mnist_like().fit(np.zeros((5, 28, 28)), np.zeros(4), verbose=0)


def test_text_data():
    with pytest.raises(ValueError, match="x must hold numbers"):
        mnist_like().predict(np.array([["a"] * 28] * 28))


# ---- configuration mistakes ----------------------------------------------------------------
def test_fit_before_compile():
    model = mt.Sequential([Dense(1, input_shape=(2,))])
    with pytest.raises(ValueError, match=r"not compiled .* model.compile"):
        model.fit(np.zeros((2, 2)), np.zeros(2))


@pytest.mark.parametrize("kwargs,message", [
    ({"optimizer": "adadelta", "loss": "mse"}, "unknown optimizer 'adadelta' \\(a Keras optimizer"),
    ({"optimizer": "sgd", "loss": "hinge"}, "unknown loss 'hinge'"),
    ({"optimizer": "sgd", "loss": "mse", "metrics": ["f1"]}, "unknown metric 'f1'"),
])
def test_unknown_names_in_compile(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mt.Sequential([Dense(1, input_shape=(2,))]).compile(**kwargs)


def test_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        Dense(3, activation="gelu")


@pytest.mark.parametrize("kwargs,message", [
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"epochs": -1}, "epochs must be a non-negative integer"),
    ({"validation_split": 1.5}, r"validation_split must be in \(0, 1\)"),
    ({"validation_data": (np.zeros((1, 2)),)}, r"validation_data must be a pair"),
])
def test_bad_fit_arguments(kwargs, message):
    model = mt.Sequential([Dense(1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=message):
        model.fit(np.zeros((4, 2)), np.zeros(4), verbose=0, **kwargs)
    if "batch_size" in kwargs:
        with pytest.raises(ValueError, match=message):
            model.predict(np.zeros((4, 2)), **kwargs)
        with pytest.raises(ValueError, match=message):
            model.evaluate(np.zeros((4, 2)), np.zeros(4), **kwargs)


# ---- model files -------------------------------------------------------------------------
def test_foreign_file_names_the_file(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("shopping list")
    with pytest.raises(ModelFileError, match=r"notes.npz.* not a minitiny model file"):
        mt.load_model(path)


def test_truncated_model_file_names_the_file(tmp_path):
    path = tmp_path / "m.npz"
    mnist_like().save(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ModelFileError, match=r"m.npz.* truncated or corrupted"):
        mt.load_model(path)


def test_predict_int8_refuses_float_input():
    """It truncated floats (0.9 -> 0) and ran; float input goes through predict()."""
    from minitiny.quant.graph import GraphError
    rng = np.random.default_rng(0)
    model = mt.Sequential([Dense(3, input_shape=(4,))])
    q = mt.quantize(model, representative_data=rng.normal(size=(32, 4)).astype("f4"))
    x = rng.normal(size=(2, 4))
    for dtype in (np.float32, np.float64, np.bool_):
        with pytest.raises(GraphError, match=f"predict_int8 takes int8 input, got "
                                             f"{np.dtype(dtype).name}"):
            q.predict_int8(x.astype(dtype))
    ints = q.quantize_input(x)
    np.testing.assert_array_equal(q.predict_int8(ints.astype(np.int32)), q.predict_int8(ints))
