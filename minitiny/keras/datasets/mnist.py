"""keras.datasets.mnist."""
from minitiny.datasets import load_mnist


def load_data(path=None):
    """(x_train, y_train), (x_test, y_test): (60000, 28, 28) uint8 images, (60000,) uint8
    labels, then 10000 of each, as Keras returns them. Reads minitiny's offline cache
    (`minitiny-data fetch mnist`); `path` (Keras' download file name) must stay None."""
    if path not in (None, "mnist.npz"):
        raise ValueError("load_data(path=...) names Keras' download file; minitiny reads its "
                         "offline cache instead (set MINITINY_DATA to move it)")
    return load_mnist()
