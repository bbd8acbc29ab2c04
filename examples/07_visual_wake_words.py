"""Example 7: visual wake words -- is there a face? Transfer learning, and a MobileNet for 256 KB.

A camera-triggered device wakes up when a person is in view. The real Visual Wake Words set
(COCO images, 96x96) is not available offline; scikit-image's 200 images of faces and of
background, 25x25 grey, stand in for it: small enough to show the two ideas that matter.

  1. Transfer learning. 160 training images are few. A small CNN first learns to tell
     clothes apart on Fashion-MNIST (cropped to 25x25): its convolutions become a feature
     extractor (edges, blobs, textures). Frozen (trainable=False), they feed a new head,
     the only part trained on the faces. We compare it with the same network trained from
     scratch on the faces alone.
  2. Sizing for the board. The model TFLite Micro's person detector uses is a MobileNet v1
     with width 0.25 on 96x96 grey images. Ours has the same shape; trained here on the
     faces scaled up to 96x96, quantized, and linked against the Arduino Nano 33 BLE Sense's
     budget (1 MB flash, 256 KB RAM): the table shows what it takes of each.

The 40 test images give wide confidence intervals (about +-10 points at 80%): the printed
intervals say so.

    python examples/07_visual_wake_words.py [--quick] [--out build/07_visual_wake_words]
"""
import numpy as np

import minitiny as mt
from minitiny.reporting.evaluation import wilson_interval
from minitiny.layers import (BatchNormalization, Conv2D, Dense, DepthwiseConv2D, Flatten,
                             GlobalAveragePooling2D, MaxPooling2D, ReLU)

from common import accuracy, arguments, budget_text, deploy, print_table, result, step


def feature_extractor():
    """Two conv blocks for 25x25 grey images -> (4, 4, 16) features."""
    return [Conv2D(8, 3, activation="relu", input_shape=(25, 25, 1)),   # (23, 23, 8)
            MaxPooling2D(),                                              # (11, 11, 8)
            Conv2D(16, 3, activation="relu"),                            # (9, 9, 16)
            MaxPooling2D(),                                              # (4, 4, 16)
            Flatten()]                                                   # (256,)


def classifier(extractor, n_classes, hidden=16):
    model = mt.Sequential(extractor + [Dense(hidden, activation="relu"),
                                       Dense(n_classes, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def mobilenet_v1_025(input_shape=(96, 96, 1), n_classes=2):
    """MobileNet v1, width 0.25 (Howard et al. 2017): a 3x3 conv, then 13 depthwise-separable
    blocks (3x3 depthwise + BN + ReLU6, 1x1 conv + BN + ReLU6); strides 2 halve the image
    five times, 96 -> 3; global average pooling; a dense classifier."""
    channels = (16, 32, 32, 64, 64, 128, 128, 128, 128, 128, 128, 256, 256)
    strides = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)

    def bn():
        return BatchNormalization(momentum=0.9)
    layers = [Conv2D(8, 3, strides=2, padding="same", use_bias=False, input_shape=input_shape),
              bn(), ReLU(max_value=6)]                                  # (48, 48, 8)
    for ch, s in zip(channels, strides):
        layers += [DepthwiseConv2D(3, strides=s, padding="same", use_bias=False), bn(), ReLU(max_value=6),
                   Conv2D(ch, 1, use_bias=False), bn(), ReLU(max_value=6)]
    layers += [GlobalAveragePooling2D(), Dense(n_classes, activation="softmax")]   # (256,) -> (2,)
    model = mt.Sequential(layers)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def resize(images, size):
    """(N, h, w) -> (N, size, size) by bilinear interpolation (pixel centres aligned)."""
    n, h, w = images.shape
    ys = np.clip((np.arange(size) + 0.5) * h / size - 0.5, 0, h - 1)
    xs = np.clip((np.arange(size) + 0.5) * w / size - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[None, :, None], (xs - x0)[None, None, :]
    top = images[:, y0][:, :, x0] * (1 - fx) + images[:, y0][:, :, x1] * fx
    bottom = images[:, y1][:, :, x0] * (1 - fx) + images[:, y1][:, :, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def ci_text(acc, n):
    lo, hi = wilson_interval(round(acc * n), n)
    return f"{acc:.3f} (95% CI {lo:.2f}-{hi:.2f}, n={n})"


def main(argv=None):
    args = arguments("07_visual_wake_words", __doc__.splitlines()[0], argv)
    rows = []

    # ---- 1. Goal ----------------------------------------------------------------------
    step(1, "Goal")
    print("Tell a face from background in a small grey image, within a microcontroller's memory.")

    # ---- 2. Data ------------------------------------------------------------------------
    step(2, "Data: faces vs background, 25x25 (scikit-image's lfw_subset)")
    (x_faces, y_faces), (x_test, y_test) = mt.datasets.load_faces(seed=args.seed)
    x_faces, x_test = x_faces[..., None], x_test[..., None]                    # (N, 25, 25, 1)
    n_val = 32
    x_train, y_train, x_val, y_val = x_faces[n_val:], y_faces[n_val:], x_faces[:n_val], y_faces[:n_val]
    print(f"train {len(x_train)}, validation {len(x_val)}, test {len(x_test)} images; "
          f"classes: {', '.join(mt.datasets.info('faces').classes)}")

    # ---- 3-4. Transfer learning ------------------------------------------------------------
    step(3, "Model: a small CNN; first trained on another task (Fashion-MNIST)")
    (xf, yf), _ = mt.datasets.load_fashion_mnist()
    n_pre = 6000 if args.quick else 30000
    xf = (xf[:n_pre, 1:26, 1:26].astype(np.float32) / 255)[..., None]         # crop 28 -> 25
    source = classifier(feature_extractor(), 10, hidden=32)
    step(4, f"Training the feature extractor: Fashion-MNIST, {n_pre:,} images")
    h = source.fit(xf, yf[:n_pre].astype(np.int64), epochs=2 if args.quick else 5, batch_size=64,
                   validation_split=0.1, verbose=0)
    print(f"Fashion-MNIST validation accuracy {h.history['val_accuracy'][-1]:.3f}")

    step(4, "A new head on the frozen features, trained on the faces")
    epochs = 30 if args.quick else 60

    def frozen_transfer():
        extractor = feature_extractor()
        model = classifier(extractor, 2)
        for new, old in zip(extractor, source.layers):   # copy the learned convolutions, freeze them
            new.set_weights(old.get_weights())
            new.trainable = False
        return model

    comparison = {}
    few = np.concatenate([np.flatnonzero(y_train == c)[:8] for c in (0, 1)])   # 8 faces, 8 backgrounds
    for n_images, idx in ((len(few), few), (len(y_train), np.arange(len(y_train)))):
        for label, make in (("transfer", frozen_transfer), ("scratch", lambda: classifier(feature_extractor(), 2))):
            mt.random.seed(args.seed)
            model = make()
            model.fit(x_train[idx], y_train[idx], epochs=epochs, batch_size=16, verbose=0)
            comparison[label, n_images] = (model, model.evaluate(x_test, y_test)[1])
    transfer, acc_transfer = comparison["transfer", len(y_train)]
    acc_scratch = comparison["scratch", len(y_train)][1]
    print(f"trainable parameters of the transfer model: {sum(w.size for w in transfer.trainable_params()):,} "
          f"of {transfer.count_params():,} (the head only)")
    for n_images in (len(few), len(y_train)):
        print(f"trained on {n_images:3d} face images: frozen Fashion-MNIST features + new head "
              f"{ci_text(comparison['transfer', n_images][1], len(y_test))}; from scratch "
              f"{ci_text(comparison['scratch', n_images][1], len(y_test))}")
    if comparison["transfer", len(few)][1] <= comparison["scratch", len(few)][1]:
        print("Transfer does not help here: faces vs background patches is easy enough that even 16 "
              "images teach the small network its own features, and clothes are far from faces. "
              "Transfer pays when the new task has too few examples to learn features from and the "
              "first task is close to it (ImageNet -> people, as for Visual Wake Words).")
    else:
        print("With only 16 images, the features learnt on clothes beat features learnt from scratch.")

    step(6, "The transfer model in C")
    d = deploy(transfer, x_train, x_test, "faces_transfer", args)
    rows.append(result("visual wake words: 25x25 CNN, transfer", "accuracy", acc_transfer,
                       accuracy(d.out, y_test), d, len(y_test),
                       notes=f"frozen features from Fashion-MNIST; from scratch {acc_scratch:.3f}; with 16 "
                             f"training images: transfer {comparison['transfer', len(few)][1]:.3f}, scratch "
                             f"{comparison['scratch', len(few)][1]:.3f}; int8 "
                             f"{ci_text(accuracy(d.out, y_test), len(y_test))}"))

    # ---- The 96x96 MobileNet for the Nano 33 BLE Sense ------------------------------------------
    step(3, "Model: MobileNet v1 0.25 on 96x96 grey, for the Nano 33 BLE Sense")
    mt.random.seed(args.seed)
    net = mobilenet_v1_025()
    net.summary(board="nano33ble")
    big = lambda x: resize(x[..., 0], 96)[..., None]                         # (N, 96, 96, 1)
    x_train96, x_val96, x_test96 = big(x_train), big(x_val), big(x_test)
    epochs96 = 2 if args.quick else 40
    step(4, f"Training: the faces scaled up to 96x96, {epochs96} epochs")
    h = net.fit(x_train96, y_train, epochs=epochs96, batch_size=16, validation_data=(x_val96, y_val),
                verbose=0 if args.quick else 1)
    step(6, "In C, linked against the Nano 33 BLE's 1 MB flash and 256 KB RAM")
    d96 = deploy(net, x_train96, x_test96, "mobilenet96", args, board="nano33ble", n_m4=1 if args.quick else 2)
    fits = budget_text(d96, "nano33ble")
    print(f"Nano 33 BLE: {fits}")
    acc96 = net.evaluate(x_test96, y_test)[1]
    rows.append(result("visual wake words: 96x96 MobileNet v1 0.25", "accuracy", acc96, accuracy(d96.out, y_test),
                       d96, len(y_test), notes=f"trained on the 25x25 faces scaled up; on the Nano 33 BLE: {fits}"))
    return print_table(rows, args)


if __name__ == "__main__":
    main()
