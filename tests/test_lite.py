"""tf.lite's converter and interpreter (minitiny/quant/lite.py).

Oracle: TensorFlow Lite Micro runs every file the converter writes, on the very bytes the
program would feed (uint8, int8 or float32 edges); minitiny's Interpreter must give its
outputs bit for bit. The representative generator is checked against the array it yields.
"""
import numpy as np
import pytest

import minitiny as tf
from minitiny.quant import tflm
from minitiny.quant.calibrate import CalibrationError
from minitiny.quant.lite import NotInMinitinyLite

L = tf.keras.layers
requires_tflm = pytest.mark.skipif(not tflm.available(), reason="tflite-micro is not installed")
TYPES = [tf.int8, tf.uint8, tf.float32]


@pytest.fixture(scope="module")
def trained():
    """A small CNN on (12, 12) inputs shaped like the TF guide's (Reshape first)."""
    tf.random.seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (120, 12, 12)).astype(np.float32)
    y = (x[:, :6].mean(axis=(1, 2)) > x[:, 6:].mean(axis=(1, 2))).astype(int)
    model = tf.keras.Sequential([
        L.InputLayer(input_shape=(12, 12)), L.Reshape(target_shape=(12, 12, 1)),
        L.Conv2D(4, (3, 3), activation="relu"), L.MaxPooling2D(pool_size=(2, 2)),
        L.Flatten(), L.Dense(2)])
    model.compile(optimizer="adam", metrics=["accuracy"],
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=2, verbose=0)
    return model, x


def _converter(model, x, in_type=tf.float32, out_type=tf.float32):
    def representative_data_gen():
        for i in range(40):
            yield [x[i:i + 1]]
    c = tf.lite.TFLiteConverter.from_keras_model(model)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.representative_dataset = representative_data_gen
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    c.inference_input_type, c.inference_output_type = in_type, out_type
    return c


def _feed(image, details):
    """What TF's guide feeds: quantized by the input's (scale, zero point) for integer edges."""
    if details["dtype"] != np.float32:
        scale, zero = details["quantization"]
        info = np.iinfo(details["dtype"])
        image = np.clip(np.round(image / scale + zero), info.min, info.max)
    return np.expand_dims(image, 0).astype(details["dtype"])


@requires_tflm
@pytest.mark.parametrize("in_type", TYPES)
@pytest.mark.parametrize("out_type", TYPES)
def test_converted_file_runs_in_tflm_with_the_interpreters_results(trained, in_type, out_type):
    model, x = trained
    content = _converter(model, x, in_type, out_type).convert()
    assert content[4:8] == b"TFL3"
    interpreter = tf.lite.Interpreter(model_content=content)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert inp["dtype"] == in_type and out["dtype"] == out_type
    assert tuple(inp["shape"]) == (1, 12, 12) and tuple(out["shape"]) == (1, 2)
    assert set(inp) >= {"name", "index", "shape", "dtype", "quantization"}
    micro = tflm.interpreter(content)
    for image in x[60:90]:
        fed = _feed(image, inp)
        interpreter.set_tensor(inp["index"], fed)
        interpreter.invoke()
        ours = interpreter.get_tensor(out["index"])
        micro.set_input(fed, 0)
        micro.invoke()
        theirs = np.array(micro.get_output(0)).reshape(ours.shape)
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


def test_interpreter_follows_the_float_model(trained, tmp_path):
    model, x = trained
    q = tf.quantize(model, representative_data=x[:40])
    path = tf.save_tflite(q, tmp_path / "m.tflite", input_type="float32",
                          output_type="float32")
    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    got = []
    for image in x[:50]:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        got.append(interpreter.get_tensor(out["index"])[0])
    want = model.predict(x[:50])
    assert np.mean(np.argmax(got, 1) == np.argmax(want, 1)) >= 0.9
    np.testing.assert_allclose(got, want, atol=0.1 * np.abs(want).max())


def test_generator_calibrates_as_the_array_it_yields(trained):
    """[x] batches of 1, batches of 7, samples without a batch axis: the same int8 model
    as the array itself."""
    model, x = trained
    want = tf.quantize(model, representative_data=x[:28])
    for gen in (lambda: ([x[i:i + 1]] for i in range(28)),
                lambda: ([x[i:i + 7]] for i in range(0, 28, 7)),
                lambda: (x[i] for i in range(28))):
        got = tf.quantize(model, representative_data=gen)
        for name, t in want.tensors.items():
            assert np.array_equal(got.tensors[name].scale, t.scale), name
            assert np.array_equal(got.tensors[name].zero_point, t.zero_point), name


@pytest.mark.parametrize("gen, message", [
    (lambda: iter([[np.zeros((1, 12, 12)), np.zeros((1, 12, 12))]]), "item 0 holds 2 entries"),
    (lambda: iter([[np.zeros((1, 12, 12))], [np.zeros((1, 5))]]), r"item 1 has shape \(1, 5\)"),
    (lambda: iter([]), "yielded nothing"),
    (lambda: 42, "generator function"),
])
def test_bad_representative_datasets_are_named(trained, gen, message):
    model, _ = trained
    with pytest.raises(CalibrationError, match=message):
        tf.quantize(model, representative_data=gen)


@pytest.mark.parametrize("setup, message", [
    (lambda c: setattr(c, "optimizations", []), "float conversion .no optimizations. has "
     "float32 edges and TFLITE_BUILTINS ops"),
    (lambda c: setattr(c, "representative_dataset", None), "dynamic-range quantization"),
    (lambda c: setattr(c.target_spec, "supported_ops", [tf.lite.OpsSet.SELECT_TF_OPS]),
     "SELECT_TF_OPS"),
    (lambda c: setattr(c.target_spec, "supported_types", [np.float16]), "float16"),
    (lambda c: setattr(c, "inference_input_type", tf.int16), "int16"),
    (lambda c: setattr(c, "experimental_lower_to_saved_model", True),
     "experimental_lower_to_saved_model"),
])
def test_converter_settings_minitiny_lacks_are_refused(trained, setup, message):
    model, x = trained
    c = _converter(model, x)
    with pytest.raises(NotInMinitinyLite, match=message):
        setup(c)
        c.convert()


def test_interpreter_misuse_gets_clear_errors(trained):
    model, x = trained
    content = _converter(model, x, tf.uint8, tf.uint8).convert()
    interpreter = tf.lite.Interpreter(model_content=content)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    with pytest.raises(ValueError, match="expected type uint8"):
        interpreter.set_tensor(inp["index"], x[:1])
    with pytest.raises(ValueError, match="dimension mismatch"):
        interpreter.set_tensor(inp["index"], np.zeros((2, 12, 12), np.uint8))
    interpreter.set_tensor(inp["index"], np.zeros((1, 12, 12), np.uint8))
    with pytest.raises(RuntimeError, match="allocate_tensors"):
        interpreter.invoke()
    with pytest.raises(ValueError, match="not an input or output"):
        interpreter.get_tensor(inp["index"] + out["index"] + 100)
    with pytest.raises(ValueError, match="batch size .the first dimension. only"):
        interpreter.resize_tensor_input(inp["index"], [1, 12, 13])
    with pytest.raises(NotInMinitinyLite, match="get_signature_runner"):
        interpreter.get_signature_runner()
    with pytest.raises(NotInMinitinyLite, match="delegates"):
        tf.lite.Interpreter(model_content=content, experimental_delegates=[object()])
    with pytest.raises(ValueError, match="exactly one"):
        tf.lite.Interpreter()
    with pytest.raises(NotInMinitinyLite, match="SavedModel"):
        tf.lite.TFLiteConverter.from_saved_model("saved_model_dir")
