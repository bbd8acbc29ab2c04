"""Activation functions under TensorFlow's names: `tf.nn.relu`, `tf.keras.activations.relu`.

    import minitiny as tf
    tf.keras.layers.Dense(128, activation=tf.nn.relu)      # the same as activation="relu"

Each function takes a Tensor (or anything array-like) and returns a Tensor, and it is the
very function a layer's `activation` runs: layers store the NAME ('relu'), because the
name is what a saved model, the quantizer and the C generator understand. So a function
given as `activation=` must be one of these (found by identity); any other callable is
refused with the list, since minitiny could not save, quantize or compile it.

    linear   x                       relu6    min(max(x, 0), 6)
    relu     max(x, 0)               tanh     (e^x - e^-x) / (e^x + e^-x)
    sigmoid  1 / (1 + e^-x)          softmax  e^x_i / sum_j e^x_j  (over the last axis)
    swish    x sigmoid(x)            (Ramachandran et al. 2017; also called silu)

swish trains like the others; the int8 and float C paths support the first six and name
swish when they refuse it.
"""
from minitiny.tensor import Tensor


def _tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def linear(x):
    return _tensor(x)


def relu(x):
    return _tensor(x).relu()


def relu6(x):
    return _tensor(x).relu6()


def sigmoid(x):
    return _tensor(x).sigmoid()


def tanh(x):
    return _tensor(x).tanh()


def softmax(x, axis=-1):
    return _tensor(x).softmax(axis=axis)


def swish(x):
    x = _tensor(x)
    return x * x.sigmoid()          # d/dx = s + x s (1 - s), by the product rule in tensor.py


silu = swish

# name -> function; the names are what layers store (and Keras' config names)
ACTIVATIONS = {"linear": linear, "relu": relu, "relu6": relu6, "sigmoid": sigmoid,
               "tanh": tanh, "softmax": softmax, "swish": swish}
_NAMES = {fn: name for name, fn in ACTIVATIONS.items()}
_ALIASES = {"silu": "swish"}

# Keras activations minitiny does not have (refused by name, never silently linear)
NOT_IMPLEMENTED = ("elu", "selu", "gelu", "leaky_relu", "softplus", "softsign",
                   "hard_sigmoid", "hard_swish", "hard_silu", "exponential", "mish",
                   "log_softmax", "relu_max")


def activation_name(activation, where="activation"):
    """None, a name ('relu', 'silu') or one of the functions above -> the stored name."""
    if activation is None:
        return "linear"
    if callable(activation):
        name = _NAMES.get(activation)
        if name is None:
            raise ValueError(f"{where}: {getattr(activation, '__name__', activation)!r} is "
                             "not a minitiny activation (custom functions cannot be saved, "
                             "quantized or turned into C); use one of "
                             f"{sorted(ACTIVATIONS)} by name or as minitiny.nn.<name>")
        return name
    name = _ALIASES.get(activation, activation) if isinstance(activation, str) else activation
    if name not in ACTIVATIONS:
        extra = " (a Keras activation minitiny does not implement)" \
            if name in NOT_IMPLEMENTED else ""
        raise ValueError(f"{where}: unknown activation {activation!r}{extra}; choose one of "
                         f"{sorted(ACTIVATIONS)} (or None for linear)")
    return name


def get(identifier):
    """keras.activations.get: a name or function -> the function."""
    return ACTIVATIONS[activation_name(identifier)]


def serialize(activation):
    """keras.activations.serialize: the function -> its name."""
    return activation_name(activation)


def deserialize(name):
    return get(name)
