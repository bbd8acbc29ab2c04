"""Image folders -> batches for fit, as Keras reads them (Pillow decodes the files).

    main_directory/
        cats/  cat001.png  cat002.jpg ...
        dogs/  dog001.png ...

    train = image_dataset_from_directory("main_directory", image_size=(150, 150),
                                         validation_split=0.2, subset="training", seed=1)
    gen = ImageDataGenerator(rescale=1/255, rotation_range=40, horizontal_flip=True)
    train = gen.flow_from_directory("main_directory", target_size=(150, 150),
                                    class_mode="binary", batch_size=20)

Both give a Keras `Sequence`: len() batches, seq[i] -> (x, y), on_epoch_end() reshuffles,
so fit / evaluate / predict take them directly. Their rules are Keras':

* Classes are the sub-folders, sorted by name (class_indices {'cats': 0, 'dogs': 1});
  files are found recursively in each, sorted, keeping .png .jpg .jpeg .bmp .gif.
* image_dataset_from_directory shuffles the file list with np.random.RandomState(seed)
  (Keras' exact order), then validation_split keeps the LAST fraction for 'validation';
  images are resized bilinearly (tf.image.resize's rule), pixels stay in [0, 255].
  Labels: 'int' int32 (N,), 'categorical' one-hot, 'binary' float32 (N, 1).
* flow_from_directory splits each class folder: its first validation_split of files are
  'validation', the rest 'training'; images are resized with Pillow (nearest by default);
  then each image gets a random rotation / shift / zoom / flip (ImageDataGenerator), then
  `rescale`. Labels: 'categorical' one-hot, 'binary' and 'sparse' float32 (N,).

A folder without class sub-folders, a folder without images, or a file that is not a
readable image is one ValueError naming the folder or file.
"""
import inspect
import math
import os

import numpy as np

from minitiny import random as mt_random
from minitiny.preprocessing import affine_sample, resize, rotation_matrices

IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
COLOR_MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading images needs Pillow, minitiny's optional 'images' extra: "
                          "pip install 'minitiny[images]' (or pip install pillow)") from None
    return Image


# ---- finding the files -----------------------------------------------------------------------
def _class_folders(directory, classes=None):
    """Sorted class sub-folders of `directory` (or the given `classes`, checked)."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"image folder {directory!r} does not exist or is not a folder")
    found = sorted(d for d in os.listdir(directory)
                   if os.path.isdir(os.path.join(directory, d)) and not d.startswith("."))
    if classes is not None:
        missing = [c for c in classes if c not in found]
        if missing:
            raise ValueError(f"image folder {directory!r} has no sub-folder for the classes "
                             f"{missing}; its sub-folders are {found}")
        return list(classes)
    if not found:
        raise ValueError(f"image folder {directory!r} has no class sub-folders: put the "
                         "images of each class in a folder of their own (e.g. "
                         f"{os.path.join(directory, 'cats')}{os.sep})")
    return found


def _image_files(folder):
    """Image files under `folder`, recursively, each folder's files sorted (Keras' order)."""
    files = []
    for root, dirs, names in sorted(os.walk(folder)):
        dirs.sort()
        files += [os.path.join(root, n) for n in sorted(names)
                  if n.lower().endswith(IMAGE_FORMATS)]
    return files


def _index(directory, classes):
    """(file paths, class indices, class names) of an image folder."""
    names = _class_folders(directory, classes)
    paths, labels = [], []
    for i, name in enumerate(names):
        found = _image_files(os.path.join(os.fspath(directory), name))
        paths += found
        labels += [i] * len(found)
    if not paths:
        raise ValueError(f"image folder {os.fspath(directory)!r} holds no images "
                         f"({', '.join(IMAGE_FORMATS)}) in its class sub-folders {names}")
    return paths, np.asarray(labels, dtype=np.int64), names


def load_image(path, color_mode="rgb", size=None, interpolation="nearest"):
    """One image file -> float32 (H, W, C) in [0, 255]; `size` (height, width) resizes it,
    with Pillow for 'nearest' (Keras' load_img) and tf.image.resize's bilinear rule."""
    image_module = _pillow()
    try:
        with image_module.open(path) as img:
            img = img.convert(COLOR_MODES[color_mode])
            if size is not None and interpolation == "nearest" and img.size != size[::-1]:
                img = img.resize(tuple(size[::-1]), image_module.NEAREST)
            a = np.asarray(img, dtype=np.float32)
    except (OSError, ValueError, SyntaxError) as e:     # PIL's UnidentifiedImageError is OSError
        raise ValueError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    a = a[:, :, None] if a.ndim == 2 else a                 # (H, W) grayscale -> (H, W, 1)
    if size is not None and a.shape[:2] != tuple(size):
        a = resize(a[None], size, interpolation)[0]
    return a


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest"):
    """keras.utils.load_img: a Pillow image, converted to `color_mode`, resized to
    target_size (height, width) with Pillow's `interpolation`."""
    image_module = _pillow()
    _check_choice(color_mode, COLOR_MODES, "color_mode")
    try:
        with image_module.open(path) as img:
            img = img.convert(COLOR_MODES[color_mode])
    except (OSError, ValueError, SyntaxError) as e:
        raise ValueError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    if target_size is not None:
        resample = {"nearest": image_module.NEAREST, "bilinear": image_module.BILINEAR,
                    "bicubic": image_module.BICUBIC}[_check_choice(
                        interpolation, ("nearest", "bilinear", "bicubic"), "interpolation")]
        img = img.resize(tuple(_check_size(target_size, "target_size")[::-1]), resample)
    return img


def img_to_array(img, dtype="float32"):
    """keras.utils.img_to_array: (H, W, C) array of the image's pixels."""
    a = np.asarray(img, dtype=dtype)
    return a[:, :, None] if a.ndim == 2 else a


def _refuse_others(function, kwargs):
    """Keras arguments minitiny does not implement: refused by name, never ignored."""
    if kwargs:
        takes = [p for p in inspect.signature(function).parameters
                 if p not in ("self", "kwargs")]
        raise TypeError(f"{function.__name__}: argument {', '.join(map(repr, kwargs))} is not "
                        f"implemented in minitiny; it takes: {', '.join(takes)}")


def _check_choice(value, options, what):
    if value not in options:
        raise ValueError(f"{what} must be one of {list(options)}, got {value!r}")
    return value


def _check_size(size, what):
    try:
        size = tuple(int(d) for d in size)
    except (TypeError, ValueError):
        size = ()
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"{what} must be (height, width), two positive integers, got {size!r}")
    return size


# ---- one Sequence for both loaders -------------------------------------------------------------
class ImageBatches:
    """A Keras Sequence over image files: len() batches, [i] -> (x, y) or x alone.

    x: float32 (B, H, W, C); labels as `label_mode` says. The order is reshuffled at every
    on_epoch_end() when `shuffle` (from minitiny.random, or from its own `seed`)."""

    def __init__(self, paths, labels, class_names, label_mode, image_size, color_mode,
                 batch_size, shuffle, seed, interpolation, transform=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.file_paths, self.labels, self.class_names = list(paths), labels, list(class_names)
        self.label_mode, self.image_size = label_mode, image_size
        self.color_mode, self.batch_size, self._shuffle = color_mode, int(batch_size), shuffle
        self.interpolation, self.transform = interpolation, transform
        self._rng = mt_random.rng() if seed is None else np.random.default_rng(seed)
        self._order = np.arange(len(self.file_paths))
        self._cache = None
        self.on_epoch_end()

    # Keras' names for the same facts
    samples = property(lambda self: len(self.file_paths))
    filenames = property(lambda self: list(self.file_paths))
    classes = property(lambda self: self.labels)
    num_classes = property(lambda self: len(self.class_names))
    class_indices = property(lambda self: {c: i for i, c in enumerate(self.class_names)})
    image_shape = property(lambda self: self.image_size + (len(COLOR_MODES[self.color_mode]),))

    def __len__(self):
        return math.ceil(len(self.file_paths) / self.batch_size)

    def on_epoch_end(self):
        if self._shuffle:
            self._order = self._rng.permutation(len(self.file_paths))

    def _image(self, i):
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        a = load_image(self.file_paths[i], self.color_mode, self.image_size, self.interpolation)
        if self._cache is not None:
            self._cache[i] = a
        return a

    def __getitem__(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        index %= len(self)
        picked = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        x = np.stack([self._image(i) for i in picked])          # (B, H, W, C)
        if self.transform is not None:
            x = self.transform(x)
        y = self.labels[picked] if self.labels is not None else None
        mode = self.label_mode
        if mode is None:
            return x
        if mode == "input":
            return x, x
        if mode == "categorical":
            return x, np.eye(len(self.class_names), dtype=np.float32)[y]
        if mode == "int":
            return x, y.astype(np.int32)
        if mode == "binary" and self.transform is None:     # image_dataset_from_directory
            return x, y.astype(np.float32)[:, None]
        return x, y.astype(np.float32)                      # flow_from_directory binary, sparse

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # tf.data's calls that tutorials chain on these datasets
    def cache(self, filename=""):
        """Keep decoded images in memory after their first use (filename: not implemented)."""
        if filename:
            raise ValueError("cache(filename=...) is not implemented in minitiny: it caches in "
                             "memory only")
        self._cache = {} if self._cache is None else self._cache
        return self

    def prefetch(self, buffer_size=None):
        return self                                          # batches are made when asked for

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=True):
        """Reshuffle the images at every epoch (the whole set: no buffer is needed here)."""
        if not reshuffle_each_iteration:
            raise ValueError("shuffle(reshuffle_each_iteration=False) is not implemented in "
                             "minitiny")
        self._shuffle = True
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.on_epoch_end()
        return self


# ---- image_dataset_from_directory --------------------------------------------------------------
def image_dataset_from_directory(directory, labels="inferred", label_mode="int",
                                 class_names=None, color_mode="rgb", batch_size=32,
                                 image_size=(256, 256), shuffle=True, seed=None,
                                 validation_split=None, subset=None, interpolation="bilinear",
                                 follow_links=False, crop_to_aspect_ratio=False, **kwargs):
    """keras.utils.image_dataset_from_directory: an `ImageBatches` (two for subset='both')."""
    _refuse_others(image_dataset_from_directory, kwargs)
    if crop_to_aspect_ratio:
        raise ValueError("crop_to_aspect_ratio=True is not implemented in minitiny")
    if labels not in ("inferred", None):
        raise ValueError("labels must be 'inferred' (from the sub-folders) or None; a list of "
                         "labels is not implemented in minitiny")
    label_mode = None if labels is None else _check_choice(
        label_mode, ("int", "categorical", "binary", None), "label_mode")
    _check_choice(color_mode, COLOR_MODES, "color_mode")
    _check_choice(interpolation, ("bilinear", "nearest"), "interpolation")
    image_size = _check_size(image_size, "image_size")
    paths, classes, names = _index(directory, class_names)
    if label_mode == "binary" and len(names) != 2:
        raise ValueError(f"label_mode='binary' needs exactly 2 classes, {os.fspath(directory)!r} "
                         f"has {len(names)}: {names}")
    print(f"Found {len(paths)} files belonging to {len(names)} classes.")     # as Keras says
    if shuffle:                                     # Keras' index_directory, same order
        seed = np.random.randint(1_000_000) if seed is None else seed
        np.random.RandomState(seed).shuffle(paths)
        np.random.RandomState(seed).shuffle(classes)
    parts = _split(paths, classes, validation_split, subset, shuffle, seed)

    def batches(p, c):
        return ImageBatches(p, c, names, label_mode, image_size, color_mode, batch_size,
                            shuffle, seed, interpolation)
    made = [batches(p, c) for p, c in parts]
    return tuple(made) if subset == "both" else made[0]


def _split(paths, classes, validation_split, subset, shuffle, seed):
    """Keras' get_training_or_validation_split: the last int(split * n) are validation."""
    if not validation_split:
        if subset is not None:
            raise ValueError(f"subset={subset!r} needs validation_split")
        return [(paths, classes)]
    if not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split!r}")
    _check_choice(subset, ("training", "validation", "both"), "subset (with validation_split)")
    n_val = int(validation_split * len(paths))
    if n_val == 0 or n_val == len(paths):
        raise ValueError(f"validation_split={validation_split} of {len(paths)} images leaves "
                         "no training or no validation images")
    train = (paths[:-n_val], classes[:-n_val])
    val = (paths[-n_val:], classes[-n_val:])
    for name, part in (("training", train), ("validation", val)):
        if subset in (name, "both"):
            print(f"Using {len(part[0])} files for {name}.")
    return {"training": [train], "validation": [val], "both": [train, val]}[subset]


# ---- ImageDataGenerator --------------------------------------------------------------------------
class ImageDataGenerator:
    """keras.preprocessing.image.ImageDataGenerator: random rotation (degrees), shifts
    (a fraction of the size, or pixels when >= 1), zoom ([1 - z, 1 + z] or a pair; < 1
    zooms in), flips, then `preprocessing_function` and `rescale`. Arguments minitiny does
    not implement are refused by name when set."""
    NOT_IMPLEMENTED = {"featurewise_center": False, "samplewise_center": False,
                       "featurewise_std_normalization": False,
                       "samplewise_std_normalization": False, "zca_whitening": False,
                       "brightness_range": None, "shear_range": 0.0,
                       "channel_shift_range": 0.0, "zca_epsilon": 1e-6,
                       "data_format": None, "interpolation_order": 1, "dtype": None}

    def __init__(self, rotation_range=0, width_shift_range=0.0, height_shift_range=0.0,
                 zoom_range=0.0, fill_mode="nearest", cval=0.0, horizontal_flip=False,
                 vertical_flip=False, rescale=None, preprocessing_function=None,
                 validation_split=0.0, **kwargs):
        set_ = {k: v for k, v in kwargs.items()
                if not (k in self.NOT_IMPLEMENTED and v in (self.NOT_IMPLEMENTED[k], None))}
        _refuse_others(ImageDataGenerator, set_)
        self.rotation_range = float(rotation_range)
        self.width_shift_range, self.height_shift_range = width_shift_range, height_shift_range
        if isinstance(zoom_range, (int, float)):
            zoom_range = (1 - zoom_range, 1 + zoom_range)
        self.zoom_range = tuple(float(z) for z in zoom_range)
        if len(self.zoom_range) != 2 or min(self.zoom_range) <= 0:
            raise ValueError(f"zoom_range must be a float or a pair of positive floats, got "
                             f"{zoom_range!r}")
        self.fill_mode = _check_choice(fill_mode, ("nearest", "constant", "reflect", "wrap"),
                                       "fill_mode")
        self.cval, self.horizontal_flip, self.vertical_flip = cval, horizontal_flip, vertical_flip
        self.rescale, self.preprocessing_function = rescale, preprocessing_function
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        self.validation_split = float(validation_split)

    def _shifts(self, shift_range, size, n, rng):
        """Keras: a float < 1 is a fraction of the size, >= 1 pixels; an int or a list
        draws whole pixels."""
        if isinstance(shift_range, (list, tuple, np.ndarray)):
            return rng.choice(np.asarray(shift_range, dtype=np.float64), n)
        if isinstance(shift_range, (int, np.integer)) and shift_range >= 1:
            return rng.integers(-int(shift_range) + 1, int(shift_range), n).astype(float)
        shift = rng.uniform(-shift_range, shift_range, n) if shift_range else np.zeros(n)
        return shift * size if abs(shift_range) < 1 else shift

    def random_transform(self, x, rng):
        """Every image of x (N, H, W, C) turned, shifted, zoomed and flipped at random."""
        n, h, w, _ = x.shape
        angles = np.deg2rad(rng.uniform(-self.rotation_range, self.rotation_range, n)) \
            if self.rotation_range else np.zeros(n)
        shift = np.stack([self._shifts(self.height_shift_range, h, n, rng),
                          self._shifts(self.width_shift_range, w, n, rng)], -1)
        zoom = rng.uniform(*self.zoom_range, (n, 2)) if self.zoom_range != (1.0, 1.0) \
            else np.ones((n, 2))
        a = rotation_matrices(angles) * zoom[:, :, None]      # rows scaled: y by zy, x by zx
        flips = np.ones((n, 2))
        if self.vertical_flip:
            flips[:, 0] = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        if self.horizontal_flip:
            flips[:, 1] = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        a = a * flips[:, None, :]                              # flip the output's axes first
        return affine_sample(x, a, shift, self.fill_mode, self.cval)

    def standardize(self, x):
        if self.preprocessing_function is not None:
            x = np.stack([self.preprocessing_function(image) for image in x])
        if self.rescale:
            x = x * np.float32(self.rescale)
        return x.astype(np.float32)

    def flow_from_directory(self, directory, target_size=(256, 256), color_mode="rgb",
                            classes=None, class_mode="categorical", batch_size=32,
                            shuffle=True, seed=None, subset=None, interpolation="nearest",
                            follow_links=False, **kwargs):
        """Batches of augmented images from a folder of class sub-folders (Keras' rules,
        see the module docstring) -> ImageBatches."""
        _refuse_others(self.flow_from_directory, kwargs)
        class_mode = _check_choice(class_mode, ("categorical", "binary", "sparse", "input",
                                                None), "class_mode")
        _check_choice(color_mode, COLOR_MODES, "color_mode")
        _check_choice(interpolation, ("nearest", "bilinear"), "interpolation")
        target_size = _check_size(target_size, "target_size")
        names = _class_folders(directory, classes)
        if class_mode == "binary" and len(names) != 2:
            raise ValueError(f"class_mode='binary' needs exactly 2 classes, "
                             f"{os.fspath(directory)!r} has {len(names)}: {names}")
        if subset is not None:
            _check_choice(subset, ("training", "validation"), "subset")
            if not self.validation_split:
                raise ValueError(f"subset={subset!r} needs ImageDataGenerator(validation_split=...)")
        paths, labels = [], []
        for i, name in enumerate(names):                 # the split runs per class folder
            found = _image_files(os.path.join(os.fspath(directory), name))
            cut = int(self.validation_split * len(found))
            found = found[:cut] if subset == "validation" else \
                found[cut:] if subset == "training" else found
            paths += found
            labels += [i] * len(found)
        if not paths:
            raise ValueError(f"image folder {os.fspath(directory)!r} holds no images "
                             f"({', '.join(IMAGE_FORMATS)}) in its class sub-folders {names}"
                             + (f" for subset {subset!r}" if subset else ""))
        print(f"Found {len(paths)} images belonging to {len(names)} classes.")   # as Keras
        rng = mt_random.rng() if seed is None else np.random.default_rng(seed + 1)

        def transform(x):
            return self.standardize(self.random_transform(x, rng))
        return ImageBatches(paths, np.asarray(labels, dtype=np.int64), names, class_mode,
                            target_size, color_mode, batch_size, shuffle, seed, interpolation,
                            transform)
