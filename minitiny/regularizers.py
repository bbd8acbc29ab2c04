"""Weight regularizers (keras.regularizers): a penalty on a layer's weights added to the loss.

    L1(l1=0.01)            l1 * sum |w|           pushes weights to exactly 0 (sparse)
    L2(l2=0.01)            l2 * sum w^2           keeps weights small ("weight decay")
    L1L2(l1=0.0, l2=0.0)   both

Given as Dense(..., kernel_regularizer=L2(1e-4)) (or by name: 'l1', 'l2', 'l1l2'), the
penalty joins the loss in fit and evaluate, and the reported loss includes it, as in Keras.
"""
import numpy as np

from minitiny import arguments

from minitiny.tensor import Tensor


class Regularizer:
    def __call__(self, w):
        raise NotImplementedError

    def get_config(self):
        return {}


class L1L2(Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        for name, v in (("l1", l1), ("l2", l2)):
            if not (isinstance(v, (int, float, np.number)) and np.isfinite(v) and v >= 0):
                raise ValueError(f"{type(self).__name__}: {name} must be a number >= 0, "
                                 f"got {v!r}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w):
        """The penalty of weight Tensor w, as a scalar Tensor.
        d/dw (l1 |w| + l2 w^2) = l1 sign(w) + 2 l2 w   (sign(0) = 0, as TensorFlow's)"""
        a = w.data
        value = self.l1 * np.abs(a).sum() + self.l2 * np.vdot(a, a)
        return Tensor.make(np.asarray(value, dtype=a.dtype), (w,),
                           lambda g: (g * (self.l1 * np.sign(a) + 2 * self.l2 * a),))

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1(L1L2):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
_NAMES = {"l1": L1, "l2": L2, "l1l2": L1L2}


def get(identifier, where="regularizer"):
    """None, a Regularizer, a name ('l2'), or a saved config -> a Regularizer or None."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str) and (identifier in _CLASSES or identifier in _NAMES):
        return (_CLASSES.get(identifier) or _NAMES[identifier])()
    raise ValueError(f"{where}: unknown regularizer {identifier!r}; use "
                     "minitiny.regularizers.L1 / L2 / L1L2, or 'l1', 'l2', 'l1l2'")


def serialize(regularizer):
    return None if regularizer is None else arguments.serialize(regularizer)


def deserialize(cfg):
    return arguments.deserialize(_CLASSES, cfg, "regularizer")
