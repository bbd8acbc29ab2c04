"""Make the architectures users bring, as `.tflite` files with TFLite Micro's outputs beside.

    python scripts/make_architectures.py [--refresh-outputs] [OUT_DIR [NAME ...]]
                                       (default: tests/data/architectures, all)

Run with TensorFlow 2.21.0 in an environment of its own, as scripts/make_tflite_testdata.py
says (tensorflow-cpu, tf-keras, tflite-micro). Each model is a SMALL version of what users
build with ordinary Keras code (small inputs, alpha 0.25, a few classes; every file under
300 KB), trained briefly on structured synthetic data (`keras.applications` with
weights=None: nothing is downloaded), then converted with TensorFlow's own post-training
integer quantization: int8, or the 16x8 mode for `cnn_16x8`.

    mobilenet_v2               keras.applications.MobileNetV2, alpha 0.25, 32x32x3, 4 classes
    mobilenet_v3_small         MobileNetV3Small, alpha 0.25, include_preprocessing=True
                               (Rescaling at the input), hard-swish and squeeze-excite blocks,
                               without its top: average pooling and a Dense head
    mobilenet_v3_small_min     the same, minimalistic=True (ReLU, no squeeze-excite)
    conv1d_gap                 a sensor model: Conv1D x2, GlobalAveragePooling1D, Dense
    lstm                       tf_keras (Keras 2) LSTM: the fused UNIDIRECTIONAL_SEQUENCE_LSTM
                               with its state in variable tensors
    gru_unrolled               GRU(unroll=True): a GRU has no fused op, it becomes many small ones
    inception                  an inception block: 1x1, 3x3, 5x5 and pool branches concatenated
    leaky_prelu_cnn            LeakyReLU and PReLU (one alpha per channel) in a CNN
    autoencoder                Conv2D stride 2, Conv2DTranspose, Resizing (nearest); Keras 3's
                               UpSampling2D becomes TILE, which TFLite Micro does not run
    cnn_16x8                   a CNN in TFLite's 16x8 mode (int16 activations, int8 weights)
    dilated_depthwise          dilated Conv2D and DepthwiseConv2D, a depth multiplier of 2; the
                               batch size fixed at 1, so the converter fuses the dilations
    dilated_unfused            the same with Keras' default batch size: TF 2.21 leaves
                               SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND around each dilated conv.
                               TFLite Micro runs that chain non-deterministically (see
                               `reference_outputs`): its expected outputs come from TensorFlow
                               Lite's reference kernels, and manifest.json says so ("oracle")
    dilated_tcn                a temporal convolutional network: causal and 'same' dilated
                               Conv1D, an asymmetric dilated Conv2D; unfused as above
    two_heads                  one input, two outputs (a class and a regression head)
    float_edges                a CNN with float32 input and output (QUANTIZE/DEQUANTIZE edges)
    uint8_edges                a CNN with uint8 input and output, as for camera pixels
    dense_on_sequence          Conv1D, Dense at every time step (FULLY_CONNECTED keep_num_dims),
                               GlobalMaxPooling1D (REDUCE_MAX); the batch size fixed at 1
    unet_small                 a U-Net in miniature: Conv2DTranspose, a skip CONCATENATION,
                               bilinear Resizing (RESIZE_BILINEAR); the batch size fixed at 1
    kws_separable              a keyword-spotting CNN: BatchNormalization at the input,
                               SeparableConv2D, ZeroPadding2D (PAD), GlobalMaxPooling2D
    sensor_normalized          an IMU model: Normalization (adapted), Conv1D, MaxPooling1D,
                               Permute (TRANSPOSE), Flatten, Dense

Beside each file, `NAME.expected.npz` holds the inputs `x0, x1, ...` and TFLite Micro's
outputs `y0, y1, ...` (one per model input and output, in the file's order) as the
integers minitiny's NumPy reference and C see them: int8 (int16 in 16x8 mode). Where an
edge is float32 or uint8, TFLM was fed its float s * (q - z) or q + 128 and its output
mapped back the same way (as minitiny.quant.tflite_read.run_tflm_int8 does). The inputs
are random over the full integer range (the extremes first) followed by in-distribution
samples quantized. Each sample runs on a freshly reset interpreter; a model with variable
tensors (the LSTM) also has `stream_y0, ...`: the same samples invoked one after another
without a reset, TFLM carrying its state across invocations.

manifest.json records the TensorFlow version and each file's size, SHA-256, mode, edges,
and description. Seeds are fixed.
"""
import hashlib
import json
import os
import sys

import numpy as np
import tensorflow as tf

from make_tflite_testdata import write_atomically

keras = tf.keras
SEED = 20261207
SAMPLE_BYTES = 48_000           # bound on the stored inputs per file (half full-range, half typical)


# ---------------------------------------------------------------------------------------
# Structured synthetic data: a class is the argmax of a fixed smooth random projection
# ---------------------------------------------------------------------------------------
def features(shape, n, seed, kind="normal"):
    """n float samples: 'normal' N(0, 1), or 'pixels' smooth images in 0..255."""
    rng = np.random.default_rng(seed)
    if kind == "pixels":
        coarse = rng.uniform(0, 255, size=(n, 4, 4, shape[-1]))
        x = np.repeat(np.repeat(coarse, shape[0] // 4, 1), shape[1] // 4, 2)
        return np.clip(x + rng.normal(0, 20, size=x.shape), 0, 255).astype(np.float32)
    return rng.normal(0.0, 1.0, size=(n,) + shape).astype(np.float32)


def labels(x, classes, seed):
    proj = np.random.default_rng(seed).normal(size=(int(np.prod(x.shape[1:])), classes))
    return (x.reshape(len(x), -1) @ proj).argmax(-1)


def trained(model, shape, kind, seed, epochs=2, batch_size=32, targets=None):
    """A few epochs: classification on the projection labels, or whatever `targets` makes."""
    x = features(shape, 512, seed, kind)
    outputs = model.outputs
    if targets is not None:
        y, loss = targets(x)
    else:
        y, loss = labels(x, int(outputs[0].shape[-1]), seed + 1), "sparse_categorical_crossentropy"
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)
    return model


# ---------------------------------------------------------------------------------------
# The architectures
# ---------------------------------------------------------------------------------------
def mobilenet_v2():
    return keras.applications.MobileNetV2((32, 32, 3), alpha=0.25, weights=None, classes=4,
                                          classifier_activation="softmax")


def mobilenet_v3_small(minimalistic):
    """The transfer-learning pattern: the base without its top (whose 1x1 conv to 1024
    channels alone would double the file), global average pooling, a Dense head."""
    base = keras.applications.MobileNetV3Small((32, 32, 3), alpha=0.25, weights=None,
                                               include_top=False, pooling="avg",
                                               minimalistic=minimalistic, include_preprocessing=True)
    return keras.Model(base.input, keras.layers.Dense(4, activation="softmax")(base.output))


def conv1d_gap():
    return keras.Sequential([keras.Input((64, 3)),
                             keras.layers.Conv1D(8, 5, activation="relu"),
                             keras.layers.Conv1D(12, 3, strides=2, padding="same", activation="relu"),
                             keras.layers.GlobalAveragePooling1D(),
                             keras.layers.Dense(4, activation="softmax")])


def lstm():
    """Keras 2's LSTM converts to the fused op (Keras 3's becomes a WHILE loop that the int8
    calibrator of TF 2.21 cannot handle). A fixed batch size keeps the shapes static."""
    import tf_keras
    x = tf_keras.Input((16, 3), batch_size=1)
    h = tf_keras.layers.LSTM(12)(x)
    return tf_keras.Model(x, tf_keras.layers.Dense(3, activation="softmax")(h))


def gru_unrolled():
    x = keras.Input((8, 3), batch_size=1)
    h = keras.layers.GRU(8, unroll=True)(x)
    return keras.Model(x, keras.layers.Dense(3, activation="softmax")(h))


def inception():
    x = keras.Input((12, 12, 4))
    a = keras.layers.Conv2D(4, 1, activation="relu")(x)
    b = keras.layers.Conv2D(4, 1, activation="relu")(x)
    b = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(b)
    c = keras.layers.Conv2D(2, 1, activation="relu")(x)
    c = keras.layers.Conv2D(4, 5, padding="same", activation="relu")(c)
    d = keras.layers.MaxPooling2D(3, strides=1, padding="same")(x)
    d = keras.layers.Conv2D(4, 1, activation="relu")(d)
    h = keras.layers.Concatenate()([a, b, c, d])
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, keras.layers.Dense(3, activation="softmax")(h))


def leaky_prelu_cnn():
    return keras.Sequential([keras.Input((12, 12, 2)),
                             keras.layers.Conv2D(6, 3), keras.layers.LeakyReLU(negative_slope=0.2),
                             keras.layers.Conv2D(8, 3), keras.layers.PReLU(shared_axes=[1, 2]),
                             keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
                             keras.layers.Dense(3, activation="softmax")])


def autoencoder():
    return keras.Sequential([keras.Input((16, 16, 1)),
                             keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
                             keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
                             keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same",
                                                          activation="relu"),
                             keras.layers.Resizing(16, 16, interpolation="nearest"),
                             keras.layers.Conv2D(1, 3, padding="same")])


def cnn_16x8():
    x = keras.Input((16, 16, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    d = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(h)
    h = keras.layers.Add()([h, d])
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Conv2D(8, 3, activation="relu")(h)
    h = keras.layers.AveragePooling2D(2)(h)
    h = keras.layers.Flatten()(h)
    return keras.Model(x, keras.layers.Dense(4, activation="softmax")(h))


def dilated_depthwise(batch_size=1):
    """With the batch size fixed at 1 the converter fuses each dilated convolution into one
    CONV_2D / DEPTHWISE_CONV_2D with dilation factors; with Keras' default (None) it leaves
    SPACE_TO_BATCH_ND -> conv -> BATCH_TO_SPACE_ND around each."""
    return keras.Sequential([keras.Input((16, 16, 2), batch_size=batch_size),
                             keras.layers.Conv2D(4, 3, dilation_rate=2, activation="relu"),
                             keras.layers.DepthwiseConv2D(3, depth_multiplier=2, activation="relu"),
                             keras.layers.DepthwiseConv2D(3, dilation_rate=2, padding="same",
                                                          activation="relu"),
                             keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(3, activation="softmax")])


def dilated_tcn():
    """A temporal convolutional network for sensor data: causal and 'same' dilated Conv1D
    (dilations 2 and 4), then an asymmetric dilated Conv2D over (time, axis) pairs; Keras'
    default batch size, so every dilation stays SPACE_TO_BATCH_ND -> conv -> BATCH_TO_SPACE_ND
    (with EXPAND_DIMS / RESHAPE inside for Conv1D)."""
    return keras.Sequential([keras.Input((40, 3)),
                             keras.layers.Conv1D(6, 3, dilation_rate=2, padding="causal",
                                                 activation="relu"),
                             keras.layers.Conv1D(6, 3, dilation_rate=4, padding="same",
                                                 activation="relu"),
                             keras.layers.Reshape((40, 6, 1)),
                             keras.layers.Conv2D(4, (3, 2), dilation_rate=(3, 2), padding="same",
                                                 activation="relu"),
                             keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(3, activation="softmax")])


def two_heads():
    x = keras.Input((10, 10, 2))
    h = keras.layers.Conv2D(6, 3, activation="relu")(x)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Flatten()(h)
    label = keras.layers.Dense(3, activation="softmax", name="label")(h)
    value = keras.layers.Dense(1, name="value")(h)
    return keras.Model(x, [label, value])


def two_heads_targets(x):
    flat = x.reshape(len(x), -1)
    return ([labels(x, 3, 5), flat.mean(-1, keepdims=True)],
            ["sparse_categorical_crossentropy", "mse"])


def small_cnn():
    return keras.Sequential([keras.Input((12, 12, 3)),
                             keras.layers.Conv2D(6, 3, activation="relu"),
                             keras.layers.MaxPooling2D(2),
                             keras.layers.Conv2D(8, 3, activation="relu"),
                             keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(3, activation="softmax")])


def pixel_cnn():
    return keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255.0),
                             keras.layers.Conv2D(6, 3, strides=2, activation="relu"),
                             keras.layers.Conv2D(8, 3, activation="relu"),
                             keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(3, activation="softmax")])


def dense_on_sequence():
    """Dense applied at every time step (FULLY_CONNECTED on a rank-3 input, keep_num_dims)
    and GlobalMaxPooling1D (REDUCE_MAX over the time axis). The batch size fixed at 1: with
    Keras' default the converter computes the Dense's reshape with REDUCE_PROD, which TFLite
    Micro does not run."""
    return keras.Sequential([keras.Input((32, 4), batch_size=1),
                             keras.layers.Conv1D(8, 3, padding="same", activation="relu"),
                             keras.layers.Dense(6, activation="relu"),
                             keras.layers.GlobalMaxPooling1D(),
                             keras.layers.Dense(3, activation="softmax")])


def unet_small():
    """A U-Net in miniature: the decoder's Conv2DTranspose concatenated with the encoder's
    feature map (CONCATENATION of different scales), a bilinear Resizing at the head."""
    x = keras.Input((16, 16, 1), batch_size=1)
    e = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)          # (16, 16, 4)
    h = keras.layers.MaxPooling2D(2)(e)                                          # (8, 8, 4)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(h)
    h = keras.layers.Conv2DTranspose(4, 2, strides=2, padding="same", activation="relu")(h)
    h = keras.layers.Concatenate()([h, e])                                       # (16, 16, 8)
    h = keras.layers.Conv2D(2, 3, padding="same")(h)
    h = keras.layers.Resizing(24, 24, interpolation="bilinear")(h)
    return keras.Model(x, keras.layers.Conv2D(1, 1)(h))


def unet_targets(x):
    up = np.repeat(np.repeat(x, 3, 1), 3, 2)[:, ::2, ::2]                        # (N, 24, 24, 1)
    return up, "mse"


def kws_separable():
    """A keyword-spotting CNN on (49, 10) MFCCs: BatchNormalization at the input (a constant
    MUL and ADD per feature), SeparableConv2D (DEPTHWISE_CONV_2D then CONV_2D), ZeroPadding2D
    (PAD) and GlobalMaxPooling2D (REDUCE_MAX over H and W)."""
    return keras.Sequential([keras.Input((49, 10, 1)), keras.layers.BatchNormalization(),
                             keras.layers.Conv2D(8, (5, 3), strides=2, padding="same", activation="relu"),
                             keras.layers.SeparableConv2D(8, 3, padding="same", activation="relu"),
                             keras.layers.ZeroPadding2D(((1, 0), (0, 1))),
                             keras.layers.MaxPooling2D(2),
                             keras.layers.GlobalMaxPooling2D(),
                             keras.layers.Dense(4, activation="softmax")])


def sensor_normalized():
    """An IMU model: Normalization adapted to the data (per-channel constants), Conv1D,
    MaxPooling1D, Permute (TRANSPOSE), Flatten, Dense."""
    norm = keras.layers.Normalization(axis=-1)
    norm.adapt(features((32, 6), 256, 3) * np.arange(1, 7, dtype=np.float32) + 2.0)
    return keras.Sequential([keras.Input((32, 6)), norm,
                             keras.layers.Conv1D(8, 3, activation="relu"),
                             keras.layers.MaxPooling1D(2),
                             keras.layers.Permute((2, 1)),
                             keras.layers.Flatten(),
                             keras.layers.Dense(3, activation="softmax")])


# name -> (build, input shape, data kind, conversion options, training options)
ARCHITECTURES = {
    "mobilenet_v2": (mobilenet_v2, (32, 32, 3), "normal", {}, {}),
    "mobilenet_v3_small": (lambda: mobilenet_v3_small(False), (32, 32, 3), "pixels", {}, {}),
    "mobilenet_v3_small_min": (lambda: mobilenet_v3_small(True), (32, 32, 3), "pixels", {}, {}),
    "conv1d_gap": (conv1d_gap, (64, 3), "normal", {}, {}),
    "lstm": (lstm, (16, 3), "normal", {}, dict(batch_size=1)),
    "gru_unrolled": (gru_unrolled, (8, 3), "normal", {}, dict(batch_size=1)),
    "inception": (inception, (12, 12, 4), "normal", {}, {}),
    "leaky_prelu_cnn": (leaky_prelu_cnn, (12, 12, 2), "normal", {}, {}),
    "autoencoder": (autoencoder, (16, 16, 1), "normal", {},
                    dict(targets=lambda x: (x, "mse"))),
    "cnn_16x8": (cnn_16x8, (16, 16, 1), "normal", dict(mode="int16x8"), {}),
    "dilated_depthwise": (dilated_depthwise, (16, 16, 2), "normal", {}, dict(batch_size=1)),
    "dilated_unfused": (lambda: dilated_depthwise(None), (16, 16, 2), "normal", {}, {}),
    "two_heads": (two_heads, (10, 10, 2), "normal", {}, dict(targets=two_heads_targets)),
    "float_edges": (small_cnn, (12, 12, 3), "normal", dict(edges="float32"), {}),
    "uint8_edges": (pixel_cnn, (16, 16, 3), "pixels", dict(edges="uint8"), {}),
    "dense_on_sequence": (dense_on_sequence, (32, 4), "normal", {}, dict(batch_size=1)),
    "unet_small": (unet_small, (16, 16, 1), "normal", {}, dict(batch_size=1, targets=unet_targets)),
    "kws_separable": (kws_separable, (49, 10, 1), "normal", {}, {}),
    "sensor_normalized": (sensor_normalized, (32, 6), "normal", {}, {}),
    "dilated_tcn": (dilated_tcn, (40, 3), "normal", {}, {}),
}


# ---------------------------------------------------------------------------------------
# Conversion and TFLite Micro's outputs
# ---------------------------------------------------------------------------------------
def convert(model, shape, kind, mode="int8", edges=None):
    """TensorFlow's post-training integer quantization; edges default to the mode's integers."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[None]] for x in features(shape, 64, 1, kind))
    if mode == "int16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    edge = {"int8": tf.int8, "int16x8": tf.int16, "uint8": tf.uint8}.get(edges or mode)
    if edge is not None:                                  # float32: the converter's default
        converter.inference_input_type = edge
        converter.inference_output_type = edge
    return converter.convert()


def edge_quantization(data):
    """For each model input and output: (file dtype, scale, zero point, integer dtype) of the
    integer tensor minitiny sees there (behind a QUANTIZE or DEQUANTIZE edge if there is one)."""
    interp = tf.lite.Interpreter(model_content=data)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()

    def integer(index):
        q = tensors[index]["quantization_parameters"]
        return float(q["scales"][0]), int(q["zero_points"][0]), str(np.dtype(tensors[index]["dtype"]))

    edges = {"inputs": [], "outputs": []}
    for d in interp.get_input_details():
        inner = d["index"]
        if d["dtype"] != np.int8 and d["dtype"] != np.int16:
            inner = next(op["outputs"][0] for op in ops
                         if op["op_name"] == "QUANTIZE" and op["inputs"][0] == d["index"])
        edges["inputs"].append((str(np.dtype(d["dtype"])),) + integer(inner))
    for d in interp.get_output_details():
        inner = d["index"]
        if d["dtype"] == np.int32:              # ARG_MAX's indices: no quantization, no edge op
            edges["outputs"].append(("int32", 1.0, 0, "int32"))
            continue
        if d["dtype"] != np.int8 and d["dtype"] != np.int16:
            inner = next(op["inputs"][0] for op in ops
                         if op["op_name"] == "DEQUANTIZE" and op["outputs"][0] == d["index"]
                         or op["op_name"] == "QUANTIZE" and op["outputs"][0] == d["index"])
        edges["outputs"].append((str(np.dtype(d["dtype"])),) + integer(inner))
    return edges


def to_file(q, edge):
    """minitiny's integers -> what the file's edge takes."""
    file_type, s, z, _ = edge
    if file_type == "float32":
        return np.float32(s) * (q.astype(np.float32) - np.float32(z))
    if file_type == "uint8":
        return (q.astype(np.int16) + 128).astype(np.uint8)
    return q


def from_file(y, edge):
    """What the file's edge gives -> minitiny's integers."""
    file_type, s, z, integer = edge
    info = np.iinfo(integer)
    if file_type == "float32":
        return np.clip(np.round(y.astype(np.float64) / s) + z, info.min, info.max).astype(integer)
    if file_type == "uint8":
        return (y.astype(np.int16) - 128).astype(integer)
    return y.astype(integer)


def inputs(edges, shape, kind, seed):
    """Full-range random integers (the two extremes first), then typical samples quantized."""
    _, s, z, integer = edges["inputs"][0]
    info = np.iinfo(integer)
    n = max(8, min(64, SAMPLE_BYTES // (2 * int(np.prod(shape)) * info.bits // 8)))
    rng = np.random.default_rng(seed)
    wide = rng.integers(info.min, info.max + 1, size=(n,) + shape).astype(integer)
    wide[0], wide[1] = info.min, info.max
    typical = np.clip(np.round(features(shape, n, seed + 1, kind) / s) + z, info.min, info.max)
    return np.concatenate([wide, typical.astype(integer)])


def tflm_outputs(data, edges, x, reset=True):
    """TFLite Micro's outputs, in minitiny's integers, one invocation per sample; the
    interpreter reset before each (or never, carrying a stateful model's state along)."""
    from tflite_micro.python.tflite_micro import runtime
    interp = runtime.Interpreter.from_bytes(data, arena_size=1 << 21)
    ys = [[] for _ in edges["outputs"]]
    for sample in x:
        if reset:
            interp.reset()
        interp.set_input(to_file(sample[None], edges["inputs"][0]), 0)
        interp.invoke()
        for j, edge in enumerate(edges["outputs"]):
            ys[j].append(from_file(np.array(interp.get_output(j))[0], edge))
    return [np.stack(y) for y in ys]


def reference_outputs(data, edges, x):
    """TensorFlow Lite's reference kernels' outputs (the interpreter's BUILTIN_REF resolver),
    in minitiny's integers: the oracle for a model TFLite Micro cannot run. TFLM runs
    SPACE_TO_BATCH_ND -> CONV_2D -> BATCH_TO_SPACE_ND (a dilated convolution TensorFlow did not
    fuse) on tensors sized from the file, where the batch inside is 1 but is block_h * block_w
    at run time: two runs on the same input give different outputs."""
    interp = tf.lite.Interpreter(
        model_content=data,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    ys = [[] for _ in edges["outputs"]]
    for sample in x:
        interp.set_tensor(interp.get_input_details()[0]["index"], to_file(sample[None], edges["inputs"][0]))
        interp.invoke()
        for j, (d, edge) in enumerate(zip(interp.get_output_details(), edges["outputs"])):
            ys[j].append(from_file(interp.get_tensor(d["index"])[0], edge))
    return [np.stack(y) for y in ys]


def tflm_runs_it(data):
    interp = tf.lite.Interpreter(model_content=data)
    return not any(op["op_name"] in ("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND")
                   for op in interp._get_ops_details())


def has_variable_tensors(data):
    interp = tf.lite.Interpreter(model_content=data)
    return any(op["op_name"] == "UNIDIRECTIONAL_SEQUENCE_LSTM" for op in interp._get_ops_details())


def main(out_dir, only=(), refresh=False, table=None, made_by="scripts/make_architectures.py"):
    """Make the files of `table` (default ARCHITECTURES) named in `only` (all if empty); with
    `refresh`, keep each existing .tflite file and its inputs and compute only the expected
    outputs again."""
    table = ARCHITECTURES if table is None else table
    os.makedirs(out_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, "manifest.json")
    manifest = {"tensorflow": tf.__version__, "keras": keras.__version__, "seed": SEED,
                "made_by": made_by, "files": {}}
    if only and os.path.exists(manifest_path):                  # a partial run keeps the others
        with open(manifest_path) as f:
            manifest["files"] = json.load(f)["files"]
    for i, (name, (build, shape, kind, conversion, training)) in enumerate(table.items()):
        if only and name not in only:
            continue
        if refresh:
            with open(os.path.join(out_dir, f"{name}.tflite"), "rb") as f:
                data = f.read()
            edges = edge_quantization(data)
            x = np.load(os.path.join(out_dir, f"{name}.expected.npz"))["x0"]
        else:
            keras.utils.set_random_seed(SEED + i)
            model = trained(build(), shape, kind, SEED + i, **training)
            data = convert(model, shape, kind, **conversion)
            edges = edge_quantization(data)
            x = inputs(edges, shape, kind, SEED + i)
        arrays = {"x0": x}
        oracle = tflm_outputs if tflm_runs_it(data) else reference_outputs
        arrays.update({f"y{j}": y for j, y in enumerate(oracle(data, edges, x))})
        if has_variable_tensors(data):
            arrays.update({f"stream_y{j}": y for j, y in enumerate(tflm_outputs(data, edges, x, False))})
        write_atomically(os.path.join(out_dir, f"{name}.tflite"), data)
        path = os.path.join(out_dir, f"{name}.expected.npz")
        np.savez_compressed(path + ".tmp.npz", **arrays)
        os.replace(path + ".tmp.npz", path)
        with open(path, "rb") as f:
            expected_sha = hashlib.sha256(f.read()).hexdigest()
        manifest["files"][f"{name}.tflite"] = {
            "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "expected_sha256": expected_sha, "input_shape": list(shape),
            "mode": conversion.get("mode", "int8"), "edges": edges, "samples": len(x),
            "oracle": "tflite-micro" if oracle is tflm_outputs else "tflite-reference-kernels"}
        manifest["files"] = dict(sorted(manifest["files"].items()))
        write_atomically(manifest_path, (json.dumps(manifest, indent=1) + "\n").encode())
        print(f"{name}.tflite: {len(data)} bytes, {len(x)} samples", flush=True)


def command_line(default_dir, **table):
    """[--refresh-outputs] [OUT_DIR [NAME ...]] -> main."""
    args = [a for a in sys.argv[1:] if a != "--refresh-outputs"]
    main(args[0] if args else os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                                           default_dir),
         set(args[1:]), refresh="--refresh-outputs" in sys.argv, **table)


if __name__ == "__main__":
    command_line("architectures")
