"""The float (unquantized) conversion: TFLiteConverter without optimizations.

Oracles: TensorFlow Lite Micro runs every float32 file the converter writes, with its own
float kernels; its outputs must be the model's own predict within float32 rounding, and
minitiny's Interpreter (the float engine over the file's ops) must agree with both.
"""
import numpy as np
import pytest
import tflite as tfl
from hypothesis import given, settings
from hypothesis import strategies as st

import minitiny as tf
from minitiny.quant import tflm
from minitiny.quant.lite import NotInMinitinyLite
from minitiny.quant.tflite_read import UnsupportedTFLiteError

L = tf.keras.layers
requires_tflm = pytest.mark.skipif(not tflm.available(), reason="tflite-micro is not installed")


def mlp():
    return tf.keras.Sequential([L.Flatten(input_shape=(6, 5)), L.Dense(16, activation="relu"),
                                L.Dropout(0.3), L.Dense(4, activation="softmax")])


def cnn():
    """Every kind the float file holds: Rescaling and BatchNormalization folded, conv,
    depthwise ('same' padding, stride 2), both pools, fused relu / relu6, logistic, tanh."""
    return tf.keras.Sequential([
        L.Rescaling(1 / 255.0, input_shape=(12, 10, 3)), L.Conv2D(6, 3, activation="relu"),
        L.MaxPooling2D(2), L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2),
        L.BatchNormalization(), L.ReLU(max_value=6), L.AveragePooling2D(2, padding="same"),
        L.Flatten(), L.Dense(8, activation="tanh"), L.Dense(1, activation="sigmoid")])


def residual():
    """The functional API: ADD of two branches, GlobalAveragePooling2D (MEAN)."""
    x = tf.keras.Input((8, 8, 2))
    a = L.Conv2D(4, 3, padding="same", activation="relu")(x)
    b = L.Conv2D(4, 1)(x)
    y = L.GlobalAveragePooling2D()(L.Add()([a, b]))
    return tf.keras.Model(x, L.Dense(3)(y))


def trained(make, seed=0):
    """A model after a little training, so BatchNormalization's statistics are not 0 / 1."""
    tf.random.seed(seed)
    model = make()
    shape = tuple(model.input_shape)             # minitiny: without the batch axis
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255 if make is cnn else 1, (64,) + shape).astype(np.float32)
    units = model.output_shape[-1]
    y = rng.integers(0, 2 if units == 1 else units, 64)
    loss = "binary_crossentropy" if units == 1 else \
        tf.keras.losses.SparseCategoricalCrossentropy(from_logits=make is residual)
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    return model, x


def convert(model):
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()    # no optimizations


def interpret(content, x):
    """What a TFLite program does, one sample at a time -> (N, ...) float32 outputs."""
    it = tf.lite.Interpreter(model_content=content)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    ys = []
    for sample in x:
        it.set_tensor(inp["index"], sample[None])
        it.invoke()
        ys.append(it.get_tensor(out["index"])[0])
    return np.array(ys)


def close(a, b, scale):
    """float32 rounding of a few hundred multiply-adds, relative to the values' size."""
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * max(scale, 1.0))


@requires_tflm
@pytest.mark.parametrize("make", [mlp, cnn, residual])
def test_tflm_runs_the_float_file_as_the_model_predicts(make):
    model, x = trained(make)
    content = convert(model)
    expected = model.predict(x[:8], verbose=0)
    got_tflm = tflm.run_interpreter(content, [x[:8]])[0]
    got_interpreter = interpret(content, x[:8])
    assert got_tflm.dtype == got_interpreter.dtype == np.float32
    close(got_tflm, expected, np.abs(expected).max())
    close(got_interpreter, got_tflm, np.abs(expected).max())


@requires_tflm
@settings(max_examples=6, deadline=None)
@given(st.floats(-6, 6), st.integers(0, 2 ** 16))
def test_inputs_of_any_scale_agree_with_tflm(log_scale, seed):
    """Inputs from 1e-6 to 1e6 times the training range: float32 all the way through."""
    model, _ = _residual_model()
    x = (np.random.default_rng(seed).standard_normal((3, 8, 8, 2)) *
         10.0 ** log_scale).astype(np.float32)
    content = _residual_content()
    expected = model.predict(x, verbose=0)
    close(tflm.run_interpreter(content, [x])[0], expected, np.abs(expected).max())
    close(interpret(content, x), expected, np.abs(expected).max())


_CACHE = {}


def _residual_model():
    if "model" not in _CACHE:
        _CACHE["model"] = trained(residual, seed=3)
    return _CACHE["model"]


def _residual_content():
    if "content" not in _CACHE:
        _CACHE["content"] = convert(_residual_model()[0])
    return _CACHE["content"]


def test_the_float_file_is_float32_throughout():
    model, _ = trained(cnn)
    m = tfl.Model.GetRootAs(convert(model), 0)
    graph = m.Subgraphs(0)
    types = {graph.Tensors(i).Type() for i in range(graph.TensorsLength())}
    assert types == {tfl.TensorType.FLOAT32, tfl.TensorType.INT32}      # int32: reshape shape
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        q = t.Quantization()
        assert q is None or q.ScaleLength() == 0, t.Name()
    codes = [m.OperatorCodes(i) for i in range(m.OperatorCodesLength())]
    assert {c.Version() for c in codes} == {1}
    kinds = {c.BuiltinCode() for c in codes}
    assert tfl.BuiltinOperator.QUANTIZE not in kinds and tfl.BuiltinOperator.DEQUANTIZE not in kinds
    # Rescaling and BatchNormalization folded into the weights, ReLU(6) fused into the
    # depthwise conv: conv, max pool, depthwise, average pool, reshape, dense, tanh,
    # dense, logistic
    assert graph.OperatorsLength() == 9


def test_the_interpreter_describes_float_edges_as_tensorflow_does():
    model, x = trained(mlp)
    it = tf.lite.Interpreter(model_content=convert(model))
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    assert inp["dtype"] == out["dtype"] == np.float32
    assert inp["quantization"] == out["quantization"] == (0.0, 0)
    assert tuple(inp["shape"]) == (1, 6, 5) and tuple(out["shape"]) == (1, 4)
    with pytest.raises(ValueError, match="expected type float32"):
        it.set_tensor(inp["index"], np.zeros((1, 6, 5), np.int8))


@pytest.mark.parametrize("setup, message", [
    (lambda c: setattr(c, "optimizations", [tf.lite.Optimize.DEFAULT]), "dynamic-range"),
    (lambda c: setattr(c, "inference_input_type", tf.int8), "float32 edges"),
    (lambda c: setattr(c.target_spec, "supported_ops", [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]),
     "TFLITE_BUILTINS ops"),
])
def test_float_conversion_settings_that_mean_something_else_are_refused(setup, message):
    model, _ = trained(mlp)
    c = tf.lite.TFLiteConverter.from_keras_model(model)
    setup(c)
    with pytest.raises(NotInMinitinyLite, match=message):
        c.convert()


def test_a_float_file_with_ops_minitiny_lacks_is_refused_by_name():
    """A float file whose LEAKY_RELU the float engine does not run: one error naming it."""
    from minitiny.quant.tflite_float import from_tflite_float
    from minitiny.quant.tflite_io import FloatModel, _Writer
    from minitiny.quant.lower import lower
    model, _ = trained(mlp)
    fm = FloatModel(lower(model))
    fm.ops[-1].kind = "leaky_relu"                 # the softmax op, relabelled
    fm.ops[-1].options = {"alpha": 0.2}
    content = _Writer(fm, "float32", "float32").write()
    with pytest.raises(UnsupportedTFLiteError, match="LEAKY_RELU.*leaky_relu in a float model"):
        from_tflite_float(content)


def test_a_layer_without_a_tflite_op_is_refused_as_a_float_conversion():
    """The lowering's reason speaks of int8 ops; a float conversion says it is one."""
    from minitiny.quant.lower import LoweringError
    model = tf.keras.Sequential([tf.keras.layers.Dense(4, input_shape=[3]),
                                 tf.keras.layers.ReLU(max_value=3.0)])
    with pytest.raises(LoweringError, match=r"^float conversion: layer 're_lu.*' \(ReLU\): max_value=3.0"):
        tf.lite.TFLiteConverter.from_keras_model(model).convert()
