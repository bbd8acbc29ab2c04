"""Make the five MLPerf Tiny reference models as int8 `.tflite` files in tests/data/mlperf/.

    python scripts/make_mlperf_tiny.py [OUT_DIR]      (default: tests/data/mlperf)

Run with TensorFlow in a virtual environment of its own, as scripts/make_tflite_testdata.py
describes (whose training and conversion helpers this script uses). The architectures are
those of MLPerf Tiny's training scripts (github.com/mlcommons/tiny, training/): the layer
shapes decide the arena, so they follow the reference exactly; the weights come from a few
epochs on synthetic data (the reference data sets are not downloaded), so the files show the
memory and the arithmetic of the real models, not their accuracy.

    kws_ds_cnn.tflite        keyword spotting: DS-CNN, 49x10x1 MFCCs, Conv2D 64 10x4 stride 2,
                             four depthwise-separable blocks of 64, average pool, Dense 12
                             (training/keyword_spotting/keras_model.py, 'ds_cnn')
    vww_mobilenet_v1.tflite  visual wake words: MobileNetV1 alpha 0.25 on 96x96x3, Dense 2
                             (training/visual_wake_words/vww_model.py)
    ic_resnet8.tflite        image classification: ResNet-8 on 32x32x3, three stacks of
                             16, 32, 64 filters with 1x1 stride-2 shortcuts, Dense 10
                             (training/image_classification/keras_model.py, resnet_v1_eembc)
    micro_speech.tflite      TFLM's micro_speech 'tiny_conv': 49x40x1, Conv2D 8 10x8 stride 2,
                             Dense 4 (tensorflow/examples/speech_commands/models.py)
    ad_autoencoder.tflite    anomaly detection: FC autoencoder 640-128x4-8-128x4-640
                             (training/anomaly_detection/keras_model.py)

Batch normalization is folded into the convolutions by the converter, and dropout vanishes,
as in the reference files. Also written: manifest.json (TensorFlow version, each file's size
and SHA-256, input shape). Seeds are fixed: a second run writes the same bytes.
"""
import hashlib
import json
import os
import sys

import tensorflow as tf

from make_tflite_testdata import convert, trained, write_atomically

keras = tf.keras
layers = keras.layers
SEED = 20250102


def conv_bn_relu(x, filters, kernel, strides=1, **options):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", **options)(x)
    return layers.ReLU()(layers.BatchNormalization()(x))


def depthwise_separable(x, filters, strides=1):
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same")(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    return conv_bn_relu(x, filters, 1)


def kws_ds_cnn():
    x = keras.Input((49, 10, 1))
    h = conv_bn_relu(x, 64, (10, 4), strides=2)                        # (25, 5, 64)
    for _ in range(4):
        h = depthwise_separable(h, 64)
    h = layers.AveragePooling2D(pool_size=(25, 5))(h)
    return keras.Model(x, layers.Dense(12, activation="softmax")(layers.Flatten()(h)))


def vww_mobilenet_v1():
    x = keras.Input((96, 96, 3))
    h = conv_bn_relu(x, 8, 3, strides=2)                               # (48, 48, 8)
    for filters, strides in ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2),
                             (128, 1), (128, 1), (128, 1), (128, 1), (128, 1), (256, 2), (256, 1)):
        h = depthwise_separable(h, filters, strides)
    h = layers.AveragePooling2D(pool_size=h.shape[1:3])(h)             # (1, 1, 256)
    return keras.Model(x, layers.Dense(2, activation="softmax")(layers.Flatten()(h)))


def ic_resnet8():
    x = keras.Input((32, 32, 3))
    h = conv_bn_relu(x, 16, 3)
    for filters, strides in ((16, 1), (32, 2), (64, 2)):
        y = conv_bn_relu(h, filters, 3, strides)
        y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same")(y))
        if strides > 1:                                                 # the shortcut's 1x1 conv
            h = layers.Conv2D(filters, 1, strides=strides, padding="same")(h)
        h = layers.ReLU()(layers.Add()([h, y]))
    h = layers.AveragePooling2D(pool_size=8)(h)
    return keras.Model(x, layers.Dense(10, activation="softmax")(layers.Flatten()(h)))


def micro_speech():
    x = keras.Input((49, 40, 1))
    h = layers.Conv2D(8, (10, 8), strides=2, padding="same", activation="relu")(x)  # (25, 20, 8)
    return keras.Model(x, layers.Dense(4, activation="softmax")(layers.Flatten()(h)))


def ad_autoencoder():
    x = keras.Input((640,))
    h = x
    for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        h = layers.ReLU()(layers.BatchNormalization()(layers.Dense(units)(h)))
    return keras.Model(x, layers.Dense(640)(h))


MODELS = {                       # name: (builder, input shape, classes for the synthetic task)
    "kws_ds_cnn": (kws_ds_cnn, (49, 10, 1), 12),
    "vww_mobilenet_v1": (vww_mobilenet_v1, (96, 96, 3), 2),
    "ic_resnet8": (ic_resnet8, (32, 32, 3), 10),
    "micro_speech": (micro_speech, (49, 40, 1), 4),
}


def trained_autoencoder(model, seed):
    """The autoencoder learns to reproduce its input (its real task), on synthetic spectra."""
    import numpy as np
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, size=(512, 640)).astype("float32")
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, x, epochs=3, batch_size=64, verbose=0)
    return model


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    keras.utils.set_random_seed(SEED)
    models = {name: (trained(build(), shape, classes, seed), shape)
              for seed, (name, (build, shape, classes)) in enumerate(MODELS.items())}
    models["ad_autoencoder"] = (trained_autoencoder(ad_autoencoder(), 9), (640,))
    manifest = {"tensorflow": tf.__version__, "keras": keras.__version__, "seed": SEED,
                "made_by": "scripts/make_mlperf_tiny.py", "files": {}}
    for name, (model, shape) in models.items():
        data = convert(model, shape)
        write_atomically(os.path.join(out_dir, f"{name}.tflite"), data)
        manifest["files"][f"{name}.tflite"] = {"bytes": len(data),
                                                "sha256": hashlib.sha256(data).hexdigest(),
                                                "input_shape": list(shape)}
        print(f"{name}.tflite: {len(data)} bytes")
    write_atomically(os.path.join(out_dir, "manifest.json"), (json.dumps(manifest, indent=1) + "\n").encode())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..",
                                                             "tests", "data", "mlperf"))
