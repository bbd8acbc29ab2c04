"""keras.initializers: minitiny's layers take their initializers by name."""
from minitiny.keras._names import refuse
from minitiny.layers import _INITIALIZERS

NAMES = _INITIALIZERS
_BY_NAME = ("give the initializer by name, e.g. kernel_initializer='he_normal'; minitiny "
            f"has {', '.join(_INITIALIZERS)}")
NOT_IMPLEMENTED = dict.fromkeys((
    "GlorotUniform", "GlorotNormal", "HeNormal", "HeUniform", "LecunNormal", "LecunUniform",
    "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform", "TruncatedNormal",
    "Orthogonal", "Identity", "VarianceScaling", "glorot_uniform", "he_normal", "he_uniform",
    "zeros", "ones", "get"), _BY_NAME)
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
