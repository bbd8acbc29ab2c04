"""Image folders (minitiny/images.py): Keras' folder rules, checked on PNG files made here.

Oracles: the pixels written to each file (and Pillow's own resize of them, which Keras'
load_img uses), PyTorch's bilinear interpolate for image_dataset_from_directory's resize,
and the folder each file sits in for its label.
"""
import os
import sys

import numpy as np
import pytest

import minitiny as tf
from minitiny.images import ImageDataGenerator, image_dataset_from_directory

Image = pytest.importorskip("PIL.Image")
CLASSES = ("cats", "dogs", "zebras")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """3 classes x 10 PNGs (12 x 16 RGB), pixels drawn at random; one nested sub-folder
    and one file that is not an image (ignored: wrong extension)."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    pixels = {}
    for c in CLASSES:
        os.makedirs(root / c / "more")
        for i in range(10):
            a = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
            path = root / c / ("more" if i == 9 else "") / f"{c}_{i:02d}.png"
            Image.fromarray(a).save(path)
            pixels[str(path)] = a
        (root / c / "notes.txt").write_text("not an image")
    return root, pixels


def _label_of(path):
    return CLASSES.index(os.path.basename(os.path.dirname(path)).replace("more", "") or
                        os.path.basename(os.path.dirname(os.path.dirname(path))))


def test_dataset_files_labels_and_pixels(folder):
    root, pixels = folder
    ds = image_dataset_from_directory(root, image_size=(12, 16), batch_size=7, seed=3)
    assert ds.class_names == list(CLASSES) and len(ds) == 5
    assert sorted(ds.file_paths) == sorted(pixels)            # recursive, images only
    seen = 0
    for x, y in ds:
        assert x.dtype == np.float32 and y.dtype == np.int32 and x.shape[1:] == (12, 16, 3)
        for image, label in zip(x, y):
            path = next(p for p, a in pixels.items() if np.array_equal(a, image))
            assert label == _label_of(path)
            seen += 1
    assert seen == 30


def test_dataset_resizes_bilinearly_as_tf_image_resize(folder):
    torch = pytest.importorskip("torch")
    root, pixels = folder
    ds = image_dataset_from_directory(root, image_size=(5, 23), batch_size=30, shuffle=False)
    x, _ = ds[0]
    raw = np.stack([pixels[p] for p in ds.file_paths]).astype(np.float32)
    want = torch.nn.functional.interpolate(torch.tensor(raw).permute(0, 3, 1, 2), size=(5, 23),
                                           mode="bilinear", align_corners=False)
    np.testing.assert_allclose(x, want.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-3)


def test_validation_split_is_complementary_and_seeded(folder):
    root, _ = folder
    train, val = image_dataset_from_directory(root, validation_split=0.2, subset="both",
                                              seed=7, image_size=(4, 4))
    again = image_dataset_from_directory(root, validation_split=0.2, subset="validation",
                                         seed=7, image_size=(4, 4))
    assert len(val.file_paths) == int(0.2 * 30) == 6
    assert set(train.file_paths) | set(val.file_paths) == set(again.file_paths) | set(
        train.file_paths)
    assert set(train.file_paths).isdisjoint(val.file_paths)
    assert again.file_paths == val.file_paths                # the same seed, the same split
    other = image_dataset_from_directory(root, validation_split=0.2, subset="validation",
                                         seed=8, image_size=(4, 4))
    assert other.file_paths != val.file_paths


@pytest.mark.parametrize("label_mode, color_mode, y_shape, y_dtype, channels", [
    ("int", "grayscale", (6,), np.int32, 1), ("categorical", "rgb", (6, 3), np.float32, 3),
    (None, "rgba", None, None, 4)])
def test_label_and_color_modes(folder, label_mode, color_mode, y_shape, y_dtype, channels):
    root, pixels = folder
    ds = image_dataset_from_directory(root, label_mode=label_mode, color_mode=color_mode,
                                      batch_size=6, image_size=(12, 16), shuffle=False)
    batch = ds[0]
    x = batch[0] if label_mode else batch
    assert x.shape == (6, 12, 16, channels)
    if color_mode == "grayscale":        # Pillow's own conversion of the first file
        want = np.asarray(Image.open(ds.file_paths[0]).convert("L"), dtype=np.float32)
        np.testing.assert_array_equal(x[0, :, :, 0], want)
    if label_mode is not None:
        y = batch[1]
        assert y.shape == y_shape and y.dtype == y_dtype
        labels = y.argmax(1) if label_mode == "categorical" else y
        assert list(labels) == [_label_of(p) for p in ds.file_paths[:6]]


def test_binary_labels(tmp_path, folder):
    root, _ = folder
    two = tmp_path / "two"
    for c in CLASSES[:2]:
        os.makedirs(two / c)
        for f in sorted(os.listdir(root / c))[:3]:
            if f.endswith(".png"):
                (two / c / f).write_bytes((root / c / f).read_bytes())
    x, y = image_dataset_from_directory(two, label_mode="binary", batch_size=6)[0]
    assert y.shape == (6, 1) and y.dtype == np.float32 and set(y.ravel()) == {0.0, 1.0}
    with pytest.raises(ValueError, match="exactly 2 classes"):
        image_dataset_from_directory(root, label_mode="binary")


def test_bad_folders_and_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        image_dataset_from_directory(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(ValueError, match="no class sub-folders"):
        image_dataset_from_directory(tmp_path / "flat")
    os.makedirs(tmp_path / "empty" / "cats")
    with pytest.raises(ValueError, match="holds no images"):
        ImageDataGenerator().flow_from_directory(tmp_path / "empty")
    os.makedirs(tmp_path / "broken" / "cats")
    (tmp_path / "broken" / "cats" / "bad.png").write_bytes(b"\x89PNG not really")
    ds = image_dataset_from_directory(tmp_path / "broken", image_size=(4, 4))
    with pytest.raises(ValueError, match=r"bad\.png: not a readable image"):
        ds[0]


def test_unknown_arguments_are_refused_by_name(folder):
    root, _ = folder
    with pytest.raises(TypeError, match="'pad_to_aspect_ratio'"):
        image_dataset_from_directory(root, pad_to_aspect_ratio=True)
    with pytest.raises(TypeError, match="'shear_range'"):
        ImageDataGenerator(shear_range=0.2)
    ImageDataGenerator(shear_range=0.0, featurewise_center=False)     # defaults are fine
    with pytest.raises(TypeError, match="'save_to_dir'"):
        ImageDataGenerator().flow_from_directory(root, save_to_dir="out")
    with pytest.raises(ValueError, match="needs validation_split"):
        image_dataset_from_directory(root, subset="training")


def test_missing_pillow_names_the_extra(folder, monkeypatch):
    root, _ = folder
    monkeypatch.setitem(sys.modules, "PIL", None)
    ds = image_dataset_from_directory(root, image_size=(4, 4))
    with pytest.raises(ImportError, match=r"minitiny\[images\]"):
        ds[0]


# ---- ImageDataGenerator.flow_from_directory ------------------------------------------------------
def test_flow_rescales_pillow_resized_images_and_splits_each_class(folder):
    root, pixels = folder
    gen = ImageDataGenerator(rescale=1 / 255, validation_split=0.3)
    val = gen.flow_from_directory(root, target_size=(6, 8), batch_size=4, subset="validation",
                                  class_mode="sparse", shuffle=False)
    assert val.class_indices == {c: i for i, c in enumerate(CLASSES)}
    assert val.samples == 9                        # int(0.3 * 10) = 3 per class: their first 3
    for c in CLASSES:
        files = sorted(p for p in val.filenames if _label_of(p) == CLASSES.index(c))
        assert [os.path.basename(p) for p in files] == [f"{c}_{i:02d}.png" for i in range(3)]
    x, y = val[0]
    want = np.stack([np.asarray(Image.fromarray(pixels[p]).resize((8, 6), Image.NEAREST))
                     for p in val.filenames[:4]]).astype(np.float32) * np.float32(1 / 255)
    np.testing.assert_allclose(x, want, rtol=1e-6)
    assert y.dtype == np.float32 and list(y) == [_label_of(p) for p in val.filenames[:4]]
    train = gen.flow_from_directory(root, target_size=(6, 8), subset="training")
    assert train.samples == 21 and set(train.filenames).isdisjoint(val.filenames)
    xc, yc = train[0]
    assert yc.shape == (21, 3) and np.array_equal(yc.sum(1), np.ones(21))     # categorical


def test_flow_flips_and_shifts_exactly(folder):
    root, _ = folder
    plain = ImageDataGenerator().flow_from_directory(root, target_size=(12, 16), batch_size=30,
                                                     shuffle=False)[0][0]
    flipped = ImageDataGenerator(horizontal_flip=True).flow_from_directory(
        root, target_size=(12, 16), batch_size=30, shuffle=False, seed=0)[0][0]
    same = [np.array_equal(f, p) for f, p in zip(flipped, plain)]
    mirrored = [np.allclose(f, p[:, ::-1]) for f, p in zip(flipped, plain)]
    assert all(s or m for s, m in zip(same, mirrored)) and 5 < sum(mirrored) < 25
    shifted = ImageDataGenerator(width_shift_range=[3]).flow_from_directory(
        root, target_size=(12, 16), batch_size=30, shuffle=False, seed=0)[0][0]
    want = np.concatenate([np.repeat(plain[:, :, :1], 3, axis=2), plain[:, :, :-3]], axis=2)
    np.testing.assert_allclose(shifted, want, atol=1e-3)     # right by 3, edge pixels repeated


def test_flow_is_a_sequence_that_reshuffles(folder):
    root, _ = folder
    it = ImageDataGenerator().flow_from_directory(root, target_size=(4, 4), batch_size=8,
                                                  seed=1, class_mode="input")
    assert len(it) == 4 and it[-1][0].shape == (6, 4, 4, 3)
    x, target = it[0]
    assert np.array_equal(x, target)
    first = it[0][0]
    it.on_epoch_end()
    assert not np.array_equal(first, it[0][0])
    with pytest.raises(IndexError):
        it[4]


def test_keras_names_reach_the_loaders():
    assert tf.keras.utils.image_dataset_from_directory is image_dataset_from_directory
    assert tf.keras.preprocessing.image.ImageDataGenerator is ImageDataGenerator
    from minitiny.keras.preprocessing.image import ImageDataGenerator as Gen
    assert Gen is ImageDataGenerator
