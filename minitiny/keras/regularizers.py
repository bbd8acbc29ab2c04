"""keras.regularizers: the weight penalties of minitiny.regularizers."""
from minitiny.keras._names import refuse
from minitiny.regularizers import (L1, L1L2, L2, Regularizer, deserialize, get,  # noqa: F401
                                   serialize)

l1, l2, l1_l2 = L1, L2, L1L2            # Keras 2's function-style names
NOT_IMPLEMENTED = {"OrthogonalRegularizer": ""}
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
