"""Make one small TensorFlow-converted model per operator and mode that no other test file
covers, with TFLite Micro's outputs beside each (tests/data/ops/).

    python scripts/make_op_models.py [--refresh-outputs] [OUT_DIR [NAME ...]]
                                     (default: tests/data/ops, all)

Run with TensorFlow 2.21.0 as scripts/make_architectures.py says; this script uses its
machinery (training on structured synthetic data, conversion, the stored inputs and
outputs, manifest.json) with its own table. tests/test_op_models.py imports every file,
and checks that every (builtin, mode) row of minitiny/quant/supported.py has some
TensorFlow-made file under tests/data.

    sum_relu6                  int8: a SUM over time, a standalone RELU6 (nothing before
                               it fuses one)
    sequence_16x8              16x8: Conv1D (EXPAND_DIMS), SUB, MUL, a dilated Conv1D that
                               TensorFlow leaves as SPACE_TO_BATCH_ND -> CONV_2D ->
                               BATCH_TO_SPACE_ND (its bias an ADD after), MEAN. TFLM runs no
                               int16 SPACE_TO_BATCH_ND: the outputs are TFLite's reference
                               kernels' (manifest.json: "oracle")
    sum_relu6_16x8             sum_relu6 in 16x8: SUM, the standalone RELU6, RELU, SOFTMAX
    abs_rsqrt                  int8: Dense -> tf.abs -> + 1 -> tf.math.rsqrt (ABS, ADD, RSQRT)
    depth_space                int8: Conv2D -> tf.nn.depth_to_space -> Conv2D -> tf.nn.space_to_depth
    attention                  int8: keras Attention over two Dense projections (BATCH_MATMUL
                               with adj_y, SOFTMAX, BATCH_MATMUL)
    multi_head_attention       int8: keras MultiHeadAttention, 2 heads (BATCH_MATMUL of rank 4,
                               TRANSPOSE, MUL, SOFTMAX)
    l2_mirror                  int8: tf.pad REFLECT and SYMMETRIC, tf.math.l2_normalize
                               (MIRROR_PAD, L2_NORMALIZATION)
    layer_norm                 int8: keras LayerNormalization over a Dense's rows (MEAN, NEG in
                               float32 between DEQUANTIZE and QUANTIZE, SQUARED_DIFFERENCE, ADD,
                               RSQRT, MUL)
    unit_norm                  int8: keras UnitNormalization (SQUARE in float32 between
                               DEQUANTIZE and QUANTIZE, SUM, RSQRT, MINIMUM, MUL)
    reduce_min                 int8: tf.reduce_min over time of a Dense's rows (REDUCE_MIN)
    arg_heads                  int8: a classifier (trained first) with its class probabilities
                               and two int32 heads, tf.argmax and tf.argmin over the classes
                               (ARG_MAX, ARG_MIN with output_type int32: TFLM stops on int64)

The models with a Lambda or an attention layer fix their batch size to 1: with batch None,
Keras 3 computes their reshapes' shapes at run time (SHAPE, GATHER, REDUCE_PROD, ...), which
TFLM cannot allocate.

What TensorFlow 2.21 does not write from Keras code, so no file here has it: SQUEEZE
(keras.ops.squeeze becomes RESHAPE), an int8 ELU (the converter keeps ELU in float32, between
DEQUANTIZE and QUANTIZE).

Append new entries at the end of OP_MODELS (each file's seed follows its position).
"""
import numpy as np
from make_architectures import SEED, command_line, keras  # noqa: F401  (SEED: the manifest's)

ops = keras.ops


def sum_relu6():
    x = keras.Input((6, 8, 3))
    h = keras.layers.Conv2D(4, (6, 1))(x)                                   # (1, 8, 4)
    h = keras.layers.Reshape((8, 4))(h)
    h = keras.layers.Lambda(lambda t: ops.sum(t, axis=1))(h)                # SUM -> (8,)
    h = keras.layers.ReLU(max_value=6.0)(h)                                 # RELU6
    h = keras.layers.Dense(8, activation="relu")(h)
    return keras.Model(x, keras.layers.Dense(3, activation="softmax")(h))


def sequence_16x8():
    x = keras.Input((20, 3))
    a = keras.layers.Conv1D(6, 3, padding="same")(x)
    b = keras.layers.Conv1D(6, 3, padding="same", activation="relu")(x)
    h = keras.layers.Subtract()([a, b])
    h = keras.layers.Multiply()([h, b])
    h = keras.layers.Conv1D(8, 3, dilation_rate=2, padding="same", activation="relu")(h)
    # no Dense head: TFLite's reference FULLY_CONNECTED in 16x8 (this file's oracle, as TFLM
    # runs no int16 SPACE_TO_BATCH_ND) rounds 1 LSB off TFLM's on a few values
    return keras.Model(x, keras.layers.GlobalAveragePooling1D()(h))


def abs_rsqrt():
    x = keras.Input((8,), batch_size=1)
    h = keras.layers.Dense(6)(x)
    return keras.Model(x, keras.layers.Lambda(lambda t: ops.rsqrt(ops.abs(t) + 1.0))(h))


def depth_space():
    import tensorflow as tf
    x = keras.Input((6, 6, 2), batch_size=1)
    h = keras.layers.Conv2D(8, 1, activation="relu")(x)
    h = keras.layers.Lambda(lambda t: tf.nn.depth_to_space(t, 2))(h)         # (12, 12, 2)
    h = keras.layers.Conv2D(3, 3, padding="same")(h)
    h = keras.layers.Lambda(lambda t: tf.nn.space_to_depth(t, 3))(h)         # (4, 4, 27)
    return keras.Model(x, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(h)))


def attention():
    q = keras.Input((5, 8), batch_size=1)
    h = keras.layers.Attention()([keras.layers.Dense(8)(q), keras.layers.Dense(8)(q)])
    return keras.Model(q, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(h)))


def multi_head_attention():
    q = keras.Input((6, 8), batch_size=1)
    h = keras.layers.MultiHeadAttention(2, 4)(q, q)
    return keras.Model(q, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(h)))


def l2_mirror():
    import tensorflow as tf
    x = keras.Input((6, 6, 2), batch_size=1)
    h = keras.layers.Conv2D(4, 3, activation="relu")(x)                      # (4, 4, 4)
    h = keras.layers.Lambda(lambda t: tf.pad(t, [[0, 0], [1, 2], [0, 1], [0, 0]], "REFLECT"))(h)
    h = keras.layers.Lambda(lambda t: tf.pad(t, [[0, 0], [2, 0], [1, 1], [0, 0]], "SYMMETRIC"))(h)
    h = keras.layers.Conv2D(6, 3)(h)
    h = keras.layers.Lambda(lambda t: tf.math.l2_normalize(t, axis=-1))(h)
    return keras.Model(x, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(h)))


def layer_norm():
    x = keras.Input((5, 8), batch_size=1)
    h = keras.layers.LayerNormalization()(keras.layers.Dense(8)(x))
    return keras.Model(x, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(h)))


def unit_norm():
    x = keras.Input((10,))
    h = keras.layers.UnitNormalization()(keras.layers.Dense(6)(x))
    return keras.Model(x, keras.layers.Dense(3, activation="softmax")(h))


def reduce_min():
    x = keras.Input((6, 8), batch_size=1)
    h = keras.layers.Lambda(lambda t: ops.min(t, axis=1))(keras.layers.Dense(8)(x))
    return keras.Model(x, keras.layers.Dense(3, activation="softmax")(h))


def arg_heads():
    """Trained as a classifier here (an int32 output has no loss), then given its heads."""
    import tensorflow as tf
    from make_architectures import trained
    x = keras.Input((12,))
    probs = keras.layers.Dense(6, activation="softmax")(keras.layers.Dense(16, activation="relu")(x))
    trained(keras.Model(x, probs), (12,), "normal", 7)
    heads = [keras.layers.Lambda(lambda t, f=f: f(t, axis=-1, output_type=tf.int32))(probs)
             for f in (tf.argmax, tf.argmin)]
    return keras.Model(x, [probs] + heads)


def mean_targets(x):
    """A regression target for a model ending in 8 pooled features."""
    return np.repeat(np.tanh(x.mean(axis=(1, 2)))[:, None], 8, axis=1), "mse"


OP_MODELS = {
    # name: (build, input shape, data kind, conversion options, training options)
    "sum_relu6": (sum_relu6, (6, 8, 3), "normal", {}, {}),
    "sequence_16x8": (sequence_16x8, (20, 3), "normal", dict(mode="int16x8"),
                      dict(targets=mean_targets)),
    "sum_relu6_16x8": (sum_relu6, (6, 8, 3), "normal", dict(mode="int16x8"), {}),
    "abs_rsqrt": (abs_rsqrt, (8,), "normal", {}, dict(batch_size=1)),
    "depth_space": (depth_space, (6, 6, 2), "normal", {}, dict(batch_size=1)),
    "attention": (attention, (5, 8), "normal", {}, dict(batch_size=1)),
    "multi_head_attention": (multi_head_attention, (6, 8), "normal", {}, dict(batch_size=1)),
    "l2_mirror": (l2_mirror, (6, 6, 2), "normal", {}, dict(batch_size=1)),
    "arg_heads": (arg_heads, (12,), "normal", {}, dict(epochs=0)),
    "layer_norm": (layer_norm, (5, 8), "normal", {}, dict(batch_size=1)),
    "unit_norm": (unit_norm, (10,), "normal", {}, {}),
    "reduce_min": (reduce_min, (6, 8), "normal", {}, dict(batch_size=1)),
}


if __name__ == "__main__":
    command_line("ops", table=OP_MODELS, made_by="scripts/make_op_models.py")
