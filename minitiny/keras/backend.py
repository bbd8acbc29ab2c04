"""keras.backend: the few helpers course code calls. minitiny computes in NumPy, channels
last (NHWC, as TFLite)."""
from minitiny import layers as _layers
from minitiny.keras._names import refuse
from minitiny.losses import EPSILON as _EPSILON


def epsilon():
    return _EPSILON


def floatx():
    return "float32"


def image_data_format():
    return "channels_last"


def clear_session():
    """Forget automatic layer names, so the next model's layers are 'dense', 'dense_1', ..."""
    _layers._name_counts.clear()


NOT_IMPLEMENTED = dict.fromkeys(("set_floatx", "set_image_data_format", "variable",
                                 "constant", "function", "gradients", "get_value",
                                 "set_value"), "")
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
