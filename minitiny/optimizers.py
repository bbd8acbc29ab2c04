"""Optimizers: turn gradients into weight updates. Sorted in order of increasing complexity.

    SGD                      w -= lr * g
    SGD(momentum=m)          v = m v - lr g;   w += v
    SGD(momentum, nesterov)  v = m v - lr g;   w += m v - lr g   (look one step ahead)
    Adagrad                  a += g^2;  w -= lr g / sqrt(a + eps)   (per-weight steps shrink)
    RMSprop                  a running mean of g^2 instead of the sum, so steps do not vanish
    Adam                     per-weight step sizes from running moments of g and g^2
    AdamW                    Adam with decoupled weight decay

The update rules are Keras' (keras.optimizers.*, Keras 3), so a model trains here as it
does there. Every optimizer takes Keras' `weight_decay` (decoupled, applied before the
update:  w -= w * weight_decay * lr); Keras' other optimizer arguments (clipnorm,
clipvalue, use_ema, ...) are refused by name. The learning rate may be a number or a
schedule (end of this file): a schedule is called with the step count `iterations` (0 for
the first update).

Each `step(params)` reads `p.grad` of every parameter and updates `p.data` IN PLACE.
SGD, Adagrad and RMSprop work through NumPy's `out=` arguments, into one scratch buffer per
parameter allocated on the first step; Adam is written as its three lines of maths (its
temporaries are small beside the forward and backward pass). `p.grad` is left alone
(tensor.py may share it between tensors). Parameters with no gradient are skipped.
"""
import math
import warnings

import numpy as np

from minitiny.arguments import refuse_arguments


class Optimizer:
    def __init__(self, learning_rate, weight_decay=None, name=None, **unsupported):
        if "lr" in unsupported:                 # Keras 2's old name, still in course code
            warnings.warn("'lr' is deprecated in Keras; use learning_rate", DeprecationWarning,
                          stacklevel=3)
            learning_rate = unsupported.pop("lr")
        if unsupported:
            refuse_arguments(type(self).__name__, unsupported, type(self).__mro__)
        if not callable(learning_rate):
            learning_rate = float(learning_rate)
            if not learning_rate > 0:
                raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        if weight_decay is not None and not float(weight_decay) >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self._learning_rate = learning_rate
        self.weight_decay = None if weight_decay is None else float(weight_decay)
        self.name = name or type(self).__name__.lower()
        self.iterations = 0                 # updates applied so far (a schedule's step)
        self._slots = {}                    # id(param) -> per-parameter state arrays

    @property
    def learning_rate(self):
        """The learning rate the next step will use."""
        lr = self._learning_rate
        return float(lr(self.iterations)) if callable(lr) else lr

    @learning_rate.setter
    def learning_rate(self, value):
        """Set a new rate (callbacks such as ReduceLROnPlateau do); as in Keras, a rate
        that comes from a schedule cannot be overwritten by a number."""
        if isinstance(self._learning_rate, LearningRateSchedule) and not callable(value):
            raise TypeError(f"{type(self).__name__} was created with the learning-rate "
                            f"schedule {type(self._learning_rate).__name__}, so its learning "
                            "rate cannot be set; use a number as learning_rate instead")
        self._learning_rate = value if callable(value) else float(value)

    def _state(self, p, n, first=0.0):
        """n arrays shaped like p, made on first use (slot variables in Keras): the first
        filled with `first`, the others with zeros."""
        s = self._slots.get(id(p))
        if s is None or s[0].shape != p.data.shape:
            s = self._slots[id(p)] = [np.full_like(p.data, first if i == 0 else 0.0)
                                      for i in range(n)]
        return s

    def step(self, params):
        """One update of every parameter from its `.grad`."""
        self.apply_gradients((p.grad, p) for p in params)

    def apply_gradients(self, grads_and_vars):
        """Keras' entry point: an iterable of (gradient array, Tensor) pairs."""
        lr = self.learning_rate
        for g, p in grads_and_vars:
            if g is not None:
                if self.weight_decay:                   # decoupled: w -= w * wd * lr
                    p.data *= 1.0 - self.weight_decay * lr
                self._update(p.data, np.asarray(g, dtype=p.data.dtype), lr, p)
        self.iterations += 1

    def _update(self, w, g, lr, p):
        raise NotImplementedError

    def get_config(self):
        lr = self._learning_rate
        return {"learning_rate": serialize_schedule(lr) if callable(lr) else lr,
                "weight_decay": self.weight_decay}


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum, as in Keras."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kw):
        super().__init__(learning_rate, **kw)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _update(self, w, g, lr, p):
        m = self.momentum
        if m == 0.0:
            (buf,) = self._state(p, 1)
            np.multiply(g, lr, out=buf)          # w -= lr g
            w -= buf
            return
        v, buf = self._state(p, 2)
        v *= m                                   # v = m v - lr g
        np.multiply(g, lr, out=buf)
        v -= buf
        if self.nesterov:
            w -= buf                             # w += m v - lr g
            np.multiply(v, m, out=buf)
            w += buf
        else:
            w += v                               # w += v

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011) as in Keras: each weight's steps shrink with the sum of
    its squared gradients, starting from initial_accumulator_value (Keras' 0.1, PyTorch's 0):

        a += g^2
        w -= lr g / sqrt(a + epsilon)          (Keras adds epsilon inside the root)
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 **kw):
        super().__init__(learning_rate, **kw)
        if not initial_accumulator_value >= 0:
            raise ValueError("initial_accumulator_value must be >= 0, got "
                             f"{initial_accumulator_value}")
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)

    def _update(self, w, g, lr, p):
        a, buf = self._state(p, 2, first=self.initial_accumulator_value)
        np.multiply(g, g, out=buf)               # a += g^2
        a += buf
        np.add(a, self.epsilon, out=buf)         # w -= lr g / sqrt(a + eps)
        np.sqrt(buf, out=buf)
        np.divide(g, buf, out=buf)
        buf *= lr
        w -= buf

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon,
                "initial_accumulator_value": self.initial_accumulator_value}


class RMSprop(Optimizer):
    """RMSprop (Hinton, Coursera lecture 6e) as in Keras: divide g by the root of a running
    mean of g^2, so steps stay sized to recent gradients instead of shrinking for ever:

        v = rho v + (1 - rho) g^2
        step = lr g / sqrt(v + epsilon)                  (Keras: epsilon inside the root)
        centered:  a = rho a + (1 - rho) g;  step = lr g / sqrt(v - a^2 + epsilon)
        momentum m > 0:  s = m s + step;  w -= s         else  w -= step
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, **kw):
        super().__init__(learning_rate, **kw)
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"rho must be in [0, 1), got {rho}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)

    def _update(self, w, g, lr, p):
        v, s, a, buf = self._state(p, 4)
        rho = self.rho
        v *= rho                                 # v = rho v + (1 - rho) g^2
        np.multiply(g, g, out=buf)
        buf *= 1 - rho
        v += buf
        np.add(v, self.epsilon, out=buf)         # buf = v + eps
        if self.centered:
            a *= rho                             # a = rho a + (1 - rho) g
            a += (1 - rho) * g
            buf -= a * a                         # buf = v - a^2 + eps
        np.sqrt(buf, out=buf)                    # step = lr g / sqrt(buf)
        np.divide(g, buf, out=buf)
        buf *= lr
        if self.momentum > 0:
            s *= self.momentum                   # s = m s + step;  w -= s
            s += buf
            w -= s
        else:
            w -= buf

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adam(Optimizer):
    """Adam (Kingma & Ba 2014, Algorithm 1) in Keras' form, where epsilon is added to
    sqrt(v) after the bias correction has been folded into the step size:

        m = beta_1 m + (1 - beta_1) g         running mean of g
        v = beta_2 v + (1 - beta_2) g^2       running mean of g^2
        lr_t = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)      (t = iterations + 1)
        w -= lr_t m / (sqrt(v) + epsilon)
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kw):
        super().__init__(learning_rate, **kw)
        for name, b in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {b}")
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def apply_gradients(self, grads_and_vars):
        t = self.iterations + 1
        self._lr_t = self.learning_rate * math.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
        super().apply_gradients(grads_and_vars)

    def _update(self, w, g, lr, p):
        m, v = self._state(p, 2)
        m[...] = self.beta_1 * m + (1 - self.beta_1) * g            # running mean of g
        v[...] = self.beta_2 * v + (1 - self.beta_2) * (g * g)      # running mean of g^2
        w -= m / (np.sqrt(v) + self.epsilon) * self._lr_t            # lr_t: bias-corrected lr

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): before each Adam step
    every weight shrinks by  w -= w * weight_decay * lr,  instead of an L2 term in the loss
    (which Adam's per-weight scaling would distort). Keras' default weight_decay is 0.004."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, **kw):
        if weight_decay is None:
            raise ValueError("AdamW needs a weight_decay (Keras' default is 0.004); for none "
                             "use Adam")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay=weight_decay,
                         **kw)


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam,
              "adamw": AdamW}
_CLASSES = {c.__name__: c for c in OPTIMIZERS.values()}
# Keras optimizers minitiny does not implement (named in the error, never replaced)
NOT_IMPLEMENTED = ("adadelta", "adamax", "nadam", "ftrl", "lion", "lamb", "adafactor")


def get(optimizer):
    """An Optimizer from a Keras name ('sgd', 'rmsprop', 'adam', ...: Keras' defaults) or
    an instance."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        return OPTIMIZERS[optimizer.lower()]()
    lacking = " (a Keras optimizer minitiny does not implement)" \
        if str(optimizer).lower() in NOT_IMPLEMENTED else ""
    raise ValueError(f"unknown optimizer {optimizer!r}{lacking}; use one of "
                     f"{sorted(OPTIMIZERS)} or an instance of minitiny.optimizers."
                     f"{' / '.join(_CLASSES)}")


def serialize(optimizer):
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(cfg):
    cls = _CLASSES.get(cfg.get("class_name"))
    if cls is None:
        raise ValueError(f"unknown optimizer class {cfg.get('class_name')!r}")
    kw = dict(cfg.get("config", {}))
    if isinstance(kw.get("learning_rate"), dict):
        kw["learning_rate"] = deserialize_schedule(kw["learning_rate"])
    return cls(**kw)


# ---- learning-rate schedules (keras.optimizers.schedules) --------------------------------
class LearningRateSchedule:
    """Called with the step (optimizer.iterations, 0 first) -> learning rate."""

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        return dict(self.__dict__)


class ExponentialDecay(LearningRateSchedule):
    """lr = initial * decay_rate ^ (step / decay_steps); staircase floors the exponent."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        if decay_steps <= 0:
            raise ValueError(f"decay_steps must be > 0, got {decay_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps, self.decay_rate = int(decay_steps), float(decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, step):
        p = step / self.decay_steps
        return self.initial_learning_rate * self.decay_rate ** (
            math.floor(p) if self.staircase else p)


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] while step <= boundaries[0], values[1] while step <= boundaries[1], ...,
    values[-1] after the last boundary (Keras' convention: boundaries are inclusive)."""

    def __init__(self, boundaries, values):
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"PiecewiseConstantDecay needs one more value than boundaries, "
                             f"got {len(boundaries)} boundaries and {len(values)} values")
        if list(boundaries) != sorted(boundaries):
            raise ValueError(f"boundaries must increase, got {list(boundaries)}")
        self.boundaries, self.values = list(boundaries), [float(v) for v in values]

    def __call__(self, step):
        for b, v in zip(self.boundaries, self.values):
            if step <= b:
                return v
        return self.values[-1]


class CosineDecay(LearningRateSchedule):
    """Half a cosine from initial to alpha * initial over decay_steps (Loshchilov & Hutter,
    SGDR), then constant:  lr = initial ((1 - alpha) (1 + cos(pi min(step, D) / D)) / 2 + alpha)."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0):
        if decay_steps <= 0:
            raise ValueError(f"decay_steps must be > 0, got {decay_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps, self.alpha = int(decay_steps), float(alpha)

    def __call__(self, step):
        t = min(step, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1 + math.cos(math.pi * t))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)


class schedules:
    """keras.optimizers.schedules.* under the same path: mt.optimizers.schedules.CosineDecay."""
    LearningRateSchedule = LearningRateSchedule
    ExponentialDecay = ExponentialDecay
    PiecewiseConstantDecay = PiecewiseConstantDecay
    CosineDecay = CosineDecay


_SCHEDULES = {c.__name__: c for c in (ExponentialDecay, PiecewiseConstantDecay, CosineDecay)}


def serialize_schedule(s):
    if type(s).__name__ not in _SCHEDULES:
        raise ValueError(f"cannot save learning-rate schedule {s!r}: only "
                         f"{sorted(_SCHEDULES)} are known")
    return {"class_name": type(s).__name__, "config": s.get_config()}


def deserialize_schedule(cfg):
    cls = _SCHEDULES.get(cfg.get("class_name"))
    if cls is None:
        raise ValueError(f"unknown learning-rate schedule {cfg.get('class_name')!r}")
    return cls(**cfg.get("config", {}))
