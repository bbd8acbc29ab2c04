"""keras.datasets: mnist and fashion_mnist with Keras' load_data(), read from minitiny's
offline cache (minitiny.datasets; `minitiny-data fetch NAME` fills it). The other data sets
keep their minitiny loaders: `python -m minitiny.datasets list`."""
from minitiny.keras._names import refuse
from minitiny.keras.datasets import fashion_mnist, mnist  # noqa: F401

_OTHERS = "not in minitiny's cache; minitiny's own sets: python -m minitiny.datasets list"
NOT_IMPLEMENTED = dict.fromkeys(("cifar10", "cifar100", "imdb", "reuters", "boston_housing",
                                 "california_housing"), _OTHERS)
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
