"""keras.datasets.fashion_mnist."""
from minitiny.datasets import load_fashion_mnist


def load_data():
    """(x_train, y_train), (x_test, y_test): (60000, 28, 28) uint8 images, (60000,) uint8
    labels 0..9 (T-shirt/top ... Ankle boot), then 10000 of each, as Keras returns them.
    Reads minitiny's offline cache (`minitiny-data fetch fashion_mnist`)."""
    return load_fashion_mnist()
