"""Image programs as Keras users write them, with only their imports swapped: the course's
horses-or-humans CNN (ImageDataGenerator, RMSprop) and TensorFlow's image classification
tutorial (image_dataset_from_directory, Rescaling, augmentation layers, then tf.lite).

The folders of PNG files are made here: each class is a pattern (stripes of one
orientation, or one dominant colour) under random colours, phases and noise, so a small
CNN separates them and the checks can ask for a high validation accuracy. The .tflite file
the tutorial writes is run in TensorFlow Lite Micro, which must give minitiny's integers.
"""
import os

import numpy as np
import pytest

import minitiny as mt
from keras_swap import run, swapped_source
from minitiny.quant import tflm

Image = pytest.importorskip("PIL.Image")


def stripes(rng, size, vertical):
    period = rng.integers(4, 8)
    ramp = np.arange(size) + rng.integers(0, period)
    wave = ((ramp // (period // 2)) % 2).astype(float)                # 0 1 0 1 ...
    plane = np.tile(wave, (size, 1)) if vertical else np.tile(wave[:, None], (1, size))
    fg, bg = rng.uniform(120, 255, 3), rng.uniform(0, 100, 3)
    image = plane[:, :, None] * fg + (1 - plane[:, :, None]) * bg
    return image + rng.normal(0, 10, image.shape)


def tinted(rng, size, channel):
    image = rng.uniform(0, 120, (size, size, 3))
    image[:, :, channel] += rng.uniform(100, 135)
    return image


def write_pngs(folder, classes, n, size, seed):
    rng = np.random.default_rng(seed)
    for name, draw in classes.items():
        os.makedirs(folder / name, exist_ok=True)
        for i in range(n):
            pixels = np.clip(draw(rng, size), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{name}{i:03d}.png")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_horses_or_humans_with_image_data_generator_and_rmsprop(in_tmp, capsys):
    """Keras 3.15.1 itself (PyTorch backend, its legacy ImageDataGenerator, which is tf.keras
    2's code) on the same program and folders, seeds 0, 1, 2: final val_accuracy 1.0,
    0.979, 1.0 (with_keras.py beside this file measures it)."""
    classes = {"horses": lambda r, s: stripes(r, s, False),
               "humans": lambda r, s: stripes(r, s, True)}
    write_pngs(in_tmp / "horse-or-human" / "train", classes, 64, 40, seed=1)
    write_pngs(in_tmp / "horse-or-human" / "validation", classes, 24, 40, seed=2)
    assert swapped_source("horses_or_humans")[1] == 3
    mt.random.seed(0)
    ns = run("horses_or_humans")
    out = capsys.readouterr().out
    assert "Found 128 images belonging to 2 classes." in out
    assert "Found 48 images belonging to 2 classes." in out
    history = ns["history"].history
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history["loss"]) == 8
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] >= 0.85
    assert ns["train_generator"].class_indices == {"horses": 0, "humans": 1}


def test_flowers_tutorial_with_image_dataset_and_rescaling(in_tmp, capsys):
    classes = {"daisy": lambda r, s: tinted(r, s, 0), "roses": lambda r, s: tinted(r, s, 1),
               "tulips": lambda r, s: tinted(r, s, 2)}
    write_pngs(in_tmp / "flower_photos", classes, 40, 30, seed=3)
    mt.random.seed(0)
    ns = run("flowers_dataset")
    assert ns["class_names"] == ["daisy", "roses", "tulips"]
    history = ns["history"].history
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history["val_accuracy"][-1] >= 0.9
    out = capsys.readouterr().out
    folder = os.path.basename(os.path.dirname(ns["sunflower_path"]))
    assert out.count(f"most likely belongs to {folder}") == 2     # float and int8 agree
    # the int8 model takes the raw pixels (Rescaling folded): uint8 zero point 0 is pixel 0,
    # one step is the calibrated pixel range / 255
    details = ns["input_details"]
    assert details["dtype"] == np.uint8 and details["quantization"][1] == 0
    assert 0.9 < details["quantization"][0] <= 1.0 + 1e-6
    if tflm.available():
        micro = tflm.interpreter(open(in_tmp / "model.tflite", "rb").read())
        micro.set_input(ns["img_array"].astype(np.uint8), 0)
        micro.invoke()
        assert np.array_equal(np.array(micro.get_output(0)).reshape(1, -1),
                              ns["predictions_lite"])
