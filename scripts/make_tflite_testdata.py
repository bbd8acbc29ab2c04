"""Make the `.tflite` test files in tests/data/tflite/ with TensorFlow's own converter.

    python scripts/make_tflite_testdata.py [OUT_DIR] [--only NAME,NAME]      (default: tests/data/tflite)

Made with TensorFlow 2.21.0 (tensorflow-cpu, Keras 3), run once, in a virtual environment
of its own (TensorFlow is about 1.6 GB, so neither minitiny nor its CI installs it):

    python -m venv tfenv && tfenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras tflite-micro
    tfenv/bin/python scripts/make_tflite_testdata.py

Each model is a small Keras model, trained for a few epochs on synthetic data (so the
weights are not random noise), then converted with full-integer post-training quantization
and a representative data set, as TensorFlow's "Post-training integer quantization" guide
does it: `optimizations = [tf.lite.Optimize.DEFAULT]`, `representative_dataset`,
`target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]`, and int8 input and
output types unless the model keeps float edges on purpose.

    dense_per_channel.tflite   Dense classifier, the converter's default (per-channel FULLY_CONNECTED)
    dense_per_tensor.tflite    the same, with per-tensor Dense weights
    cnn_residual.tflite        Conv2D, DepthwiseConv2D, residual Add, AveragePooling2D,
                               MaxPooling2D, GlobalAveragePooling2D (MEAN), Dense, softmax
    float_edges_tanh.tflite    float32 input and output (QUANTIZE / DEQUANTIZE at the edges),
                               Flatten (RESHAPE), tanh and sigmoid (TANH, LOGISTIC), ReLU6
    conv1d_squeeze.tflite      Conv1D (EXPAND_DIMS -> CONV_2D -> RESHAPE), Flatten, standalone ReLU
    unsupported_ops.tflite     LEAKY_RELU, MUL, CONCATENATION: once refused, all three import
                               since issue 19 (the name stayed)
    elementwise_ops.tflite     Subtract, Multiply, Maximum, Minimum and tf.math.squared_difference
                               of two Dense branches (SUB, MUL, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE)
    rescaling_broadcast.tflite Rescaling at the input (MUL and ADD by scalar constants), a
                               per-channel constant factor (MUL, broadcast) and a per-row
                               constant subtracted (SUB, broadcast) after a Conv2D
    activations.tflite         LeakyReLU, PReLU (one alpha per channel, shared over H and W) and
                               hard_swish after Conv2D / Dense (LEAKY_RELU, PRELU, HARD_SWISH)
    lstm_state.tflite          a tf_keras (Keras 2) LSTM: UNIDIRECTIONAL_SEQUENCE_LSTM with variable
                               state tensors, which the import error must name as such
    cnn_16x8.tflite            a CNN in TFLite's 16x8 mode (`supported_ops =
                               [EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]`:
                               int16 activations, int8 weights, int64 bias), int16 edges:
                               CONV_2D, DEPTHWISE_CONV_2D, ADD, MAX/AVERAGE_POOL_2D, MEAN,
                               FULLY_CONNECTED, TANH, LOGISTIC, SOFTMAX
    cnn_16x8_float_edges.tflite  the same model with float32 edges (QUANTIZE to int16,
                               DEQUANTIZE from int16)
    two_inputs.tflite          two inputs (a vector and a small image), a Dense branch each, ADD
    two_outputs.tflite         one input, two heads: a class (softmax) and a score (sigmoid)
    two_in_two_out_float.tflite  two inputs and two outputs with float32 edges: a QUANTIZE per
                               input, a DEQUANTIZE per output
    movement_cnn.tflite        ZeroPadding2D, Cropping2D, Permute, channel halves swapped and a
                               Concatenate of two branches (PAD, STRIDED_SLICE, TRANSPOSE,
                               SPLIT, CONCATENATION, an int8 -> int8 QUANTIZE)
    movement_sequence.tflite   reversed and single time steps, tf.slice, unstack/stack,
                               uneven split, tf.pad with a constant (STRIDED_SLICE with a
                               negative stride and shrink_axis, SLICE, UNPACK, PACK, SPLIT_V,
                               PADV2, CONCATENATION)
    ops_16x8_cnn.tflite        16x8, int16 edges: LeakyReLU, ZeroPadding2D, Cropping2D,
                               Conv2DTranspose, a nearest resize, a standalone ReLU, Permute,
                               channel halves swapped, Maximum and Minimum of two branches,
                               a Concatenate of different scales (LEAKY_RELU, PAD,
                               STRIDED_SLICE, TRANSPOSE_CONV, RESIZE_NEAREST_NEIGHBOR, RELU,
                               TRANSPOSE, SPLIT, CONCATENATION, MAXIMUM, MINIMUM, and the
                               int16 -> int16 QUANTIZEs the converter puts before them)
    ops_16x8_sequence.tflite   16x8, int16 edges: movement_sequence's slices (STRIDED_SLICE,
                               UNPACK, PACK, SLICE, PAD, SPLIT_V), a sum over time (SUM) and
                               a squared difference (SQUARED_DIFFERENCE). (TF 2.21 writes a
                               PADV2's constant as float32 in 16x8, which TFLM refuses: PAD.)

For the files minitiny imports since issue 19, `NAME.expected.npz` holds int8 inputs `x`
(random over the full int8 range, then the representative data quantized) and TFLite
Micro's int8 outputs `y` for them (tflite-micro installed beside TensorFlow); int16 ones
for the 16x8 files. A file with several inputs or outputs stores `x0`, `x1`, ... and `y0`,
`y1`, ... in the file's order (int8 whatever the edges: float edges are fed s * (q - z) and
their outputs mapped back to q, as minitiny's run_tflm_int8 does).

Also written: manifest.json with the TensorFlow version and each file's size and SHA-256
(tests/test_tflite_import.py checks the files against it). Seeds are fixed: a second run
writes the same bytes. `--only NAME,NAME` writes those files alone (and their manifest
entries); the models added since seed their own weights, so they come out the same either way.
"""
import hashlib
import json
import os
import sys

import numpy as np
import tensorflow as tf

keras = tf.keras
SEED = 20250101


def representative(shape, n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, size=(n,) + shape).astype(np.float32)


def trained(model, shape, classes, seed, batch_size=64):
    """A few epochs on a synthetic task: the label is the argmax of a fixed random projection."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, size=(512,) + shape).astype(np.float32)
    proj = rng.normal(size=(int(np.prod(shape)), classes)).astype(np.float32)
    y = (x.reshape(len(x), -1) @ proj).argmax(-1)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, batch_size=batch_size, verbose=0)
    return model


def dense_classifier():
    return keras.Sequential([keras.Input((16,)), keras.layers.Dense(24, activation="relu"),
                             keras.layers.Dense(12, activation="relu"),
                             keras.layers.Dense(4, activation="softmax")])


def cnn_residual():
    x = keras.Input((12, 12, 2))
    a = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(x)
    b = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(a)
    h = keras.layers.Add()([a, b])                                    # residual: not a chain
    h = keras.layers.AveragePooling2D(2)(h)
    h = keras.layers.Conv2D(8, 3, strides=2, padding="valid", activation="relu6")(h)
    h = keras.layers.MaxPooling2D(2, padding="same")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)                      # MEAN over H, W
    y = keras.layers.Dense(3, activation="softmax")(h)
    return keras.Model(x, y)


def float_edges_tanh():
    return keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(10, activation="tanh"),
                             keras.layers.Dense(8), keras.layers.ReLU(max_value=6.0),
                             keras.layers.Dense(3, activation="sigmoid")])


def conv1d_squeeze():
    """Conv1D becomes EXPAND_DIMS -> CONV_2D -> RESHAPE in TFLite."""
    return keras.Sequential([keras.Input((20, 3)),
                             keras.layers.Conv1D(4, 3, activation="relu"),
                             keras.layers.Conv1D(4, 3, strides=2, padding="same"),
                             keras.layers.Flatten(), keras.layers.ReLU(),
                             keras.layers.Dense(3)])


def unsupported_ops():
    """MUL, CONCATENATION, LEAKY_RELU: operators minitiny did not run before issue 19."""
    x = keras.Input((8,))
    h = keras.layers.Dense(8)(x)
    a = keras.layers.LeakyReLU(negative_slope=0.1)(h)
    m = keras.layers.Multiply()([h, a])
    c = keras.layers.Concatenate()([m, a])
    return keras.Model(x, keras.layers.Dense(2)(c))


def elementwise_ops():
    """SUB, MUL, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE between activations."""
    x = keras.Input((12,))
    a = keras.layers.Dense(12)(x)
    b = keras.layers.Dense(12, activation="relu")(x)
    h = keras.layers.Subtract()([a, b])
    h = keras.layers.Multiply()([h, b])
    h = keras.layers.Maximum()([h, a])
    h = keras.layers.Minimum()([h, b])
    h = keras.layers.Lambda(lambda t: tf.math.squared_difference(t[0], t[1]))([h, a])
    return keras.Model(x, keras.layers.Dense(3)(h))


def rescaling_broadcast():
    """MUL and ADD by constants at the input (Keras' Rescaling; a pool keeps the converter
    from folding them into the conv), then a per-channel factor and a per-row offset that
    broadcast over a feature map."""
    x = keras.Input((8, 8, 3))
    h = keras.layers.Rescaling(1 / 127.5, offset=-1)(x)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Conv2D(4, 3, activation="relu")(h)                 # (2, 2, 4)
    h = keras.layers.Lambda(lambda t: t * tf.constant([0.5, 1.0, 2.0, -1.0])
                            - tf.constant([[0.1], [0.3]]))(h)
    return keras.Model(x, keras.layers.Dense(3)(keras.layers.Flatten()(h)))


def activations():
    """LEAKY_RELU, PRELU (per channel) and HARD_SWISH."""
    x = keras.Input((6, 6, 2))
    h = keras.layers.Conv2D(4, 3)(x)
    h = keras.layers.LeakyReLU(negative_slope=0.1)(h)
    h = keras.layers.Conv2D(4, 1)(h)
    h = keras.layers.PReLU(shared_axes=[1, 2])(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(8)(h)
    h = keras.layers.Activation("hard_swish")(h)
    return keras.Model(x, keras.layers.Dense(3)(h))


def lstm_state():
    """Keras 2's LSTM converts to the fused UNIDIRECTIONAL_SEQUENCE_LSTM (Keras 3's becomes a
    WHILE loop); its state lives in variable tensors. A fixed batch size keeps the shapes static."""
    import tf_keras
    x = tf_keras.Input((10, 3), batch_size=1)
    return tf_keras.Model(x, tf_keras.layers.Dense(2)(tf_keras.layers.LSTM(8)(x)))


def cnn_16x8():
    """An audio-style CNN for TFLite's 16x8 mode: a (16, 10) spectrogram patch in."""
    x = keras.Input((16, 10, 1))
    a = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    b = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(a)
    h = keras.layers.Add()([a, b])
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Conv2D(8, 3, strides=2, padding="same")(h)
    h = keras.layers.AveragePooling2D(2, padding="same")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)                      # MEAN over H, W
    h = keras.layers.Dense(12, activation="tanh")(h)
    h = keras.layers.Dense(8, activation="sigmoid")(h)
    return keras.Model(x, keras.layers.Dense(4, activation="softmax")(h))


def two_inputs():
    """Two inputs of different shapes, a Dense branch each, joined by ADD."""
    a, b = keras.Input((12,), name="features"), keras.Input((4, 4, 1), name="patch")
    ha = keras.layers.Dense(8, activation="relu")(a)
    hb = keras.layers.Dense(8, activation="relu")(keras.layers.Flatten()(b))
    h = keras.layers.Add()([ha, hb])
    return keras.Model([a, b], keras.layers.Dense(3, activation="softmax")(h))


def two_outputs():
    """One input, a shared conv trunk, two heads."""
    x = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu")(x)
    h = keras.layers.Flatten()(keras.layers.MaxPooling2D(2)(h))
    cls = keras.layers.Dense(4, activation="softmax", name="cls")(h)
    score = keras.layers.Dense(1, activation="sigmoid", name="score")(keras.layers.Dense(6, activation="relu")(h))
    return keras.Model(x, [cls, score])


def two_in_two_out():
    a, b = keras.Input((10,), name="a"), keras.Input((6,), name="b")
    h = keras.layers.Add()([keras.layers.Dense(8, activation="relu")(a), keras.layers.Dense(8)(b)])
    return keras.Model([a, b], [keras.layers.Dense(3, name="first")(h),
                                keras.layers.Dense(2, activation="tanh", name="second")(h)])


def trained_multi(model, shapes, n_outputs, seed):
    """A few epochs: each output learns a projection of all inputs (argmax for a softmax,
    a value for the others)."""
    rng = np.random.default_rng(seed)
    xs = [rng.normal(0.0, 1.0, size=(512,) + s).astype(np.float32) for s in shapes]
    flat = np.concatenate([x.reshape(512, -1) for x in xs], axis=1)
    ys = []
    for out in model.outputs[:n_outputs]:
        width = int(out.shape[-1])
        z = flat @ rng.normal(size=(flat.shape[1], width)).astype(np.float32) / np.sqrt(flat.shape[1])
        ys.append(np.eye(width, dtype=np.float32)[z.argmax(-1)] if width > 1 else (z > 0).astype(np.float32))
    model.compile(optimizer="adam", loss="mse")
    model.fit(xs if len(xs) > 1 else xs[0], ys if len(ys) > 1 else ys[0], epochs=3, batch_size=64, verbose=0)
    return model


def expected_outputs_multi(data, seed):
    """expected_outputs for several inputs or outputs: ({x0: ..., x1: ...}, {y0: ..., ...}),
    int8 in the file's order (not always Keras' order), whatever the edges."""
    from tflite_micro.python.tflite_micro import runtime
    interp = runtime.Interpreter.from_bytes(data, arena_size=1 << 20)
    desktop = tf.lite.Interpreter(model_content=data)
    n_in, n_out = len(desktop.get_input_details()), len(desktop.get_output_details())
    feeds, xs = [], {}
    for i in range(n_in):
        d = interp.get_input_details(i)
        shape = tuple(int(n) for n in d["shape"][1:])
        if d["dtype"] == np.float32:       # the int8 tensor the QUANTIZE writes
            s, z = _edge_quantization(data, i, True)
        else:
            s = d["quantization_parameters"]["scales"][0]
            z = d["quantization_parameters"]["zero_points"][0]
        rng = np.random.default_rng(seed + i)
        wide = rng.integers(-128, 128, size=(64,) + shape).astype(np.int8)
        wide[0], wide[1] = -128, 127
        typical = np.clip(np.round(representative(shape, seed=seed + 1 + i) / s) + z, -128, 127).astype(np.int8)
        q = np.concatenate([wide, typical])
        xs[f"x{i}"] = q
        feeds.append(np.float32(s) * (q.astype(np.float32) - np.float32(z)) if d["dtype"] == np.float32 else q)
    ys = {f"y{j}": [] for j in range(n_out)}
    for n in range(len(feeds[0])):
        for i, f in enumerate(feeds):
            interp.set_input(f[n:n + 1], i)
        interp.invoke()
        for j in range(n_out):
            ys[f"y{j}"].append(np.array(interp.get_output(j))[0])
    for j in range(n_out):
        d = interp.get_output_details(j)
        y = np.stack(ys[f"y{j}"])
        if d["dtype"] == np.float32:         # back to the int8 the DEQUANTIZE read
            s, z = _edge_quantization(data, j, False)
            y = np.clip(np.round(y.astype(np.float64) / s) + z, -128, 127).astype(np.int8)
        ys[f"y{j}"] = y
    return xs, ys


def _edge_quantization(data, index, inputs_side):
    """(scale, zero point) of the int8 tensor behind the file's float32 input (the QUANTIZE
    output) or output (the DEQUANTIZE input) number `index`."""
    interp = tf.lite.Interpreter(model_content=data)
    edge = (interp.get_input_details() if inputs_side else interp.get_output_details())[index]["index"]
    for op in interp._get_ops_details():
        if inputs_side and op["op_name"] == "QUANTIZE" and op["inputs"][0] == edge:
            behind = op["outputs"][0]
        elif not inputs_side and op["op_name"] == "DEQUANTIZE" and op["outputs"][0] == edge:
            behind = op["inputs"][0]
        else:
            continue
        return next(t["quantization"] for t in interp.get_tensor_details() if t["index"] == behind)
    raise ValueError(f"no QUANTIZE / DEQUANTIZE at the edge {index}")
def movement_cnn():
    """Data movement in a CNN: ZeroPadding2D (PAD), Cropping2D (STRIDED_SLICE), Permute
    (TRANSPOSE), a split into channel halves joined back in swapped order (SPLIT,
    CONCATENATION), and two branches of different scales concatenated (the converter
    requantizes one with an int8 -> int8 QUANTIZE)."""
    x = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    h = keras.layers.ZeroPadding2D(((1, 0), (0, 2)))(h)
    h = keras.layers.Cropping2D(((1, 1), (0, 1)))(h)
    h = keras.layers.Permute((2, 1, 3))(h)
    h = keras.layers.Lambda(lambda t: tf.concat(tf.split(t, 2, axis=3)[::-1], axis=3))(h)
    b = keras.layers.Conv2D(2, 1)(h)
    h = keras.layers.Concatenate()([h, b])
    h = keras.layers.Flatten()(h)
    return keras.Model(x, keras.layers.Dense(3)(h))


def sequence_slices(pad_value):
    """(input, its Conv1D features h, the padded slices, one time step, its parts reordered):
    movement_sequence's layers, which ops_16x8_sequence shares."""
    x = keras.Input((6, 8), batch_size=1)        # static shapes: no shape arithmetic
    h = keras.layers.Conv1D(8, 1, activation="relu")(x)
    r = keras.layers.Lambda(lambda t: t[:, ::-2, 1:])(h)                      # (3, 7)
    last = keras.layers.Lambda(lambda t: t[:, 2])(h)                          # (8,)
    u = keras.layers.Lambda(lambda t: tf.stack(tf.unstack(t, axis=1)[::-1], axis=2))(r)   # (7, 3)
    u = keras.layers.Lambda(lambda t: tf.slice(t, [0, 1, 0], [-1, 5, 2]))(u)  # (5, 2)
    p = keras.layers.Lambda(lambda t: tf.pad(t, [[0, 0], [1, 2], [0, 1]], constant_values=pad_value))(u)
    parts = keras.layers.Lambda(lambda t: tf.concat(tf.split(t, [3, 5], axis=1)[::-1], axis=1))(last)
    return x, h, p, last, parts


def movement_sequence():
    """Slices of a sequence: reversed time with a step of 2 (STRIDED_SLICE, negative stride),
    one time step (STRIDED_SLICE, shrink_axis), tf.slice (SLICE), unstack and stack in
    another order (UNPACK, PACK), uneven parts (SPLIT_V), a pad with a constant (PADV2)."""
    x, _, p, _, parts = sequence_slices(0.25)
    h = keras.layers.Concatenate()([keras.layers.Reshape((24,))(p), parts])
    return keras.Model(x, keras.layers.Dense(3)(h))


def ops_16x8_cnn():
    """16x8 data movement and activations in a CNN (converted with the 16x8 ops set)."""
    x = keras.Input((12, 10, 1))
    h = keras.layers.Conv2D(6, 3, padding="same")(x)
    h = keras.layers.LeakyReLU(negative_slope=0.1)(h)
    h = keras.layers.ZeroPadding2D(((1, 0), (0, 1)))(h)
    h = keras.layers.Cropping2D(((0, 1), (1, 0)))(h)
    h = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same")(h)
    h = keras.layers.MaxPooling2D(2)(h)
    # (Keras 3's UpSampling2D becomes TILE, which TFLM lacks; tf.image.resize is the op)
    h = keras.layers.Lambda(lambda t: tf.image.resize(t, (12, 10), method="nearest"))(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Permute((2, 1, 3))(h)
    h = keras.layers.Lambda(lambda t: tf.concat(tf.split(t, 2, axis=3)[::-1], axis=3))(h)
    a = keras.layers.Conv2D(4, 1)(h)
    b = keras.layers.Conv2D(4, 1, activation="relu6")(h)
    h = keras.layers.Concatenate()([keras.layers.Maximum()([a, b]), keras.layers.Minimum()([a, b]), h])
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, keras.layers.Dense(4, activation="softmax")(h))


def ops_16x8_sequence():
    """16x8 slices of a sequence (movement_sequence's, a PAD for its PADV2), a SUM and a
    SQUARED_DIFFERENCE."""
    x, h, p, last, parts = sequence_slices(0)          # tf.pad's default: PAD, not PADV2
    total = keras.layers.Lambda(lambda t: tf.reduce_sum(t, axis=1))(h)       # (8,)
    d = keras.layers.Lambda(lambda t: tf.math.squared_difference(t[0], t[1]))([total, last])
    h = keras.layers.Concatenate()([keras.layers.Reshape((24,))(p), parts, d])
    return keras.Model(x, keras.layers.Dense(3)(h))


def seeded(seed, build, shape, classes, batch_size=64):
    """build() trained with weights from its own seed (the same whichever files are made)."""
    keras.utils.set_random_seed(SEED + seed)
    return trained(build(), shape, classes, seed, batch_size)


def expected_outputs(data, shape, seed):
    """(x, y): int8 inputs over the full range and in distribution, and TFLite Micro's int8
    outputs for them, one invocation per sample (int16 for a 16x8 model with int16 edges)."""
    from tflite_micro.python.tflite_micro import runtime
    interp = runtime.Interpreter.from_bytes(data, arena_size=1 << 20)
    details = interp.get_input_details(0)
    s, z = details["quantization_parameters"]["scales"][0], details["quantization_parameters"]["zero_points"][0]
    info = np.iinfo(details["dtype"])
    rng = np.random.default_rng(seed)
    wide = rng.integers(info.min, info.max + 1, size=(64,) + shape).astype(info.dtype)
    wide[0], wide[1] = info.min, info.max
    typical = np.clip(np.round(representative(shape, seed=seed + 1) / s) + z, info.min,
                      info.max).astype(info.dtype)
    x = np.concatenate([wide, typical])
    ys = []
    for sample in x:
        interp.set_input(sample[None], 0)
        interp.invoke()
        ys.append(np.array(interp.get_output(0))[0])
    return x, np.stack(ys)


def convert(model, shape, int8_edges=True, per_channel_dense=True, mode_16x8=False):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if isinstance(shape, list):      # several inputs: one sample of each, by the signature's names
        names = [t.name for t in model.inputs]   # (the converter's input order is not Keras')
        converter.representative_dataset = lambda: (
            dict(zip(names, [x[None] for x in xs]))
            for xs in zip(*[representative(s, seed=i) for i, s in enumerate(shape)]))
    else:
        converter.representative_dataset = lambda: ([x[None]] for x in representative(shape))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if mode_16x8:         # int16 activations, int8 weights, int64 bias; int16 edges
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    if int8_edges:
        converter.inference_input_type = tf.int16 if mode_16x8 else tf.int8
        converter.inference_output_type = tf.int16 if mode_16x8 else tf.int8
    if not per_channel_dense:        # TF 2.21's only switch for per-tensor Dense weights (private)
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    return converter.convert()


def write_atomically(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main(out_dir, only=None):
    os.makedirs(out_dir, exist_ok=True)
    keras.utils.set_random_seed(SEED)
    dense = trained(dense_classifier(), (16,), 4, 1)
    cnn = trained(cnn_residual(), (12, 12, 2), 3, 2)
    fl = trained(float_edges_tanh(), (4, 4, 1), 3, 3)
    c1 = trained(conv1d_squeeze(), (20, 3), 3, 4)
    bad = trained(unsupported_ops(), (8,), 2, 5)
    ew = trained(elementwise_ops(), (12,), 3, 6)
    rb = trained(rescaling_broadcast(), (8, 8, 3), 3, 7)
    act = trained(activations(), (6, 6, 2), 3, 9)
    lstm = trained(lstm_state(), (10, 3), 2, 8, batch_size=1)        # its batch size is fixed
    c16 = trained(cnn_16x8(), (16, 10, 1), 4, 10)
    two_in = trained_multi(two_inputs(), [(12,), (4, 4, 1)], 1, 11)
    two_out = trained_multi(two_outputs(), [(8, 8, 1)], 2, 12)
    two_two = trained_multi(two_in_two_out(), [(10,), (6,)], 2, 13)
    mcnn = trained(movement_cnn(), (8, 8, 3), 3, 14)
    mseq = trained(movement_sequence(), (6, 8), 3, 15, batch_size=1)       # its batch size is fixed
    o16 = seeded(16, ops_16x8_cnn, (12, 10, 1), 4)
    s16 = seeded(17, ops_16x8_sequence, (6, 8), 3, batch_size=1)
    models = {
        "dense_per_channel": (dense, (16,), dict()),
        "dense_per_tensor": (dense, (16,), dict(per_channel_dense=False)),
        "cnn_residual": (cnn, (12, 12, 2), dict()),
        "float_edges_tanh": (fl, (4, 4, 1), dict(int8_edges=False)),
        "conv1d_squeeze": (c1, (20, 3), dict()),
        "unsupported_ops": (bad, (8,), dict()),
        "elementwise_ops": (ew, (12,), dict()),
        "rescaling_broadcast": (rb, (8, 8, 3), dict()),
        "lstm_state": (lstm, (10, 3), dict()),
        "activations": (act, (6, 6, 2), dict()),
        "cnn_16x8": (c16, (16, 10, 1), dict(mode_16x8=True)),
        "cnn_16x8_float_edges": (c16, (16, 10, 1), dict(mode_16x8=True, int8_edges=False)),
        "two_inputs": (two_in, [(12,), (4, 4, 1)], dict()),
        "two_outputs": (two_out, (8, 8, 1), dict()),
        "two_in_two_out_float": (two_two, [(10,), (6,)], dict(int8_edges=False)),
        "movement_cnn": (mcnn, (8, 8, 3), dict()),
        "movement_sequence": (mseq, (6, 8), dict()),
        "ops_16x8_cnn": (o16, (12, 10, 1), dict(mode_16x8=True)),
        "ops_16x8_sequence": (s16, (6, 8), dict(mode_16x8=True)),
    }
    several = ("two_inputs", "two_outputs", "two_in_two_out_float")
    with_expected = ("elementwise_ops", "rescaling_broadcast", "activations", "cnn_16x8",
                     "unsupported_ops", "movement_cnn", "movement_sequence", "ops_16x8_cnn",
                     "ops_16x8_sequence")
    manifest = {"tensorflow": tf.__version__, "keras": keras.__version__, "seed": SEED,
                "made_by": "scripts/make_tflite_testdata.py", "files": {}}
    if only:                         # the other files stay, and their manifest entries
        with open(os.path.join(out_dir, "manifest.json")) as f:
            manifest["files"] = json.load(f)["files"]
        models = {name: models[name] for name in only}
    for name, (model, shape, options) in models.items():
        data = convert(model, shape, **options)
        write_atomically(os.path.join(out_dir, f"{name}.tflite"), data)
        manifest["files"][f"{name}.tflite"] = {"bytes": len(data),
                                                "sha256": hashlib.sha256(data).hexdigest(),
                                                "input_shape": list(shape), **options}
        if name in with_expected or name in several:
            if name in several:
                xs, ys = expected_outputs_multi(data, SEED % 1000)
                arrays = dict(xs, **ys)
            else:
                x, y = expected_outputs(data, shape, SEED % 1000)
                arrays = dict(x=x, y=y)
            path = os.path.join(out_dir, f"{name}.expected.npz")
            np.savez(path + ".tmp.npz", **arrays)
            os.replace(path + ".tmp.npz", path)
            with open(path, "rb") as f:
                manifest["files"][f"{name}.tflite"]["expected_sha256"] = hashlib.sha256(f.read()).hexdigest()
        print(f"{name}.tflite: {len(data)} bytes")
    write_atomically(os.path.join(out_dir, "manifest.json"), (json.dumps(manifest, indent=1) + "\n").encode())


if __name__ == "__main__":
    args = sys.argv[1:]
    only = None
    if "--only" in args:
        i = args.index("--only")
        only, args = args[i + 1].split(","), args[:i] + args[i + 2:]
    main(args[0] if args else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "tflite"),
         only)
