"""Make the Keras-saved model files that tests/test_keras_files.py loads into minitiny.

Run with Keras 3 in an environment of its own (minitiny and its CI do not depend on Keras;
any backend works, e.g. PyTorch's):

    python -m venv /tmp/kerasenv && /tmp/kerasenv/bin/pip install keras h5py torch
    KERAS_BACKEND=torch /tmp/kerasenv/bin/python tests/data/keras/make_keras_files.py

It writes, beside itself, each model as Keras saves it (.keras and legacy .h5) and
expected.npz: for each model the inputs and the outputs Keras' own predict gives.
"""
import os

import keras
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
L = keras.layers


def image_cnn():
    """The course's image CNN, shrunk (Rescaling first, sigmoid output)."""
    return keras.Sequential([
        keras.Input((20, 20, 3)), L.Rescaling(1.0 / 255), L.RandomFlip("horizontal"),
        L.Conv2D(4, (3, 3), activation="relu"), L.MaxPooling2D(2, 2),
        L.Conv2D(8, (3, 3), activation="relu", padding="same"), L.MaxPooling2D(2, 2),
        L.Flatten(), L.Dropout(0.2), L.Dense(16, activation="relu"),
        L.Dense(1, activation="sigmoid")], name="image_cnn")


def residual():
    """A functional model: BatchNormalization, DepthwiseConv2D, Add, ReLU(6), pooling."""
    inp = keras.Input((10, 10, 2), name="pixels")
    x = L.Conv2D(4, 3, padding="same", name="stem")(inp)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.ReLU(6.0)(x)
    y = L.DepthwiseConv2D(3, padding="same", depth_multiplier=1)(x)
    y = L.Activation("relu")(y)
    x = L.Add()([x, y])
    x = L.AveragePooling2D(2)(x)
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(3, activation="softmax", name="classes")(x)
    return keras.Model(inp, out, name="residual")


def unsupported():
    """Layers and arguments minitiny lacks: loading must name them all."""
    return keras.Sequential([
        keras.Input((12, 12, 1)), L.Conv2D(4, 3, dilation_rate=2),
        L.LayerNormalization(), L.Flatten(), L.Dense(2)], name="unsupported")


def main():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    expected = {}
    for make, shape, scale in ((image_cnn, (20, 20, 3), 255.0), (residual, (10, 10, 2), 1.0)):
        model = make()
        if make is residual:                 # moving statistics other than 0 and 1
            bn = model.get_layer("stem_bn")
            bn.set_weights([rng.uniform(0.5, 2, 4), rng.normal(size=4), rng.normal(size=4),
                            rng.uniform(0.5, 2, 4)])
        x = (rng.uniform(0, 1, (4,) + shape) * scale).astype(np.float32)
        x = np.round(x) if scale > 1 else x                # pixels are whole numbers
        expected[f"{model.name}_x"] = x
        expected[f"{model.name}_y"] = model.predict(x, verbose=0)
        model.save(os.path.join(HERE, f"{model.name}.keras"))
        model.save(os.path.join(HERE, f"{model.name}.h5"))
    unsupported().save(os.path.join(HERE, "unsupported.keras"))
    expected["keras_version"] = np.array(keras.__version__)
    np.savez_compressed(os.path.join(HERE, "expected.npz"), **expected)


if __name__ == "__main__":
    main()
