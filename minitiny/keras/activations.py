"""keras.activations: the functions of minitiny.nn, by name (relu, sigmoid, softmax, ...)."""
from minitiny.nn import (ACTIVATIONS, NOT_IMPLEMENTED as _MISSING, deserialize, get, linear,
                         relu, relu6, serialize, sigmoid, silu, softmax, swish, tanh)
from minitiny.keras._names import refuse

NOT_IMPLEMENTED = dict.fromkeys(_MISSING, "")
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
