"""Optimizers: turn gradients into weight updates. Sorted in order of increasing complexity.

    SGD                      w -= lr * g
    SGD(momentum=m)          v = m v - lr g;   w += v
    SGD(momentum, nesterov)  v = m v - lr g;   w += m v - lr g   (look one step ahead)
    Adam                     per-weight step sizes from running moments of g and g^2

The update rules are Keras' (keras.optimizers.SGD / Adam), so a model trains here as it
does there. The learning rate may be a number or a schedule (end of this file): a
schedule is called with the step count `iterations` (0 for the first update).

Each `step(params)` reads `p.grad` of every parameter and updates `p.data` IN PLACE with
NumPy's `out=` arguments, into one scratch buffer per parameter allocated on the first
step: no new arrays per step beyond what NumPy needs internally. `p.grad` is left alone
(tensor.py may share it between tensors). Parameters with no gradient are skipped.
"""
import math

import numpy as np


class Optimizer:
    def __init__(self, learning_rate):
        if not callable(learning_rate):
            learning_rate = float(learning_rate)
            if not learning_rate > 0:
                raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        self._learning_rate = learning_rate
        self.iterations = 0                 # updates applied so far (a schedule's step)
        self._slots = {}                    # id(param) -> per-parameter state arrays

    @property
    def learning_rate(self):
        """The learning rate the next step will use."""
        lr = self._learning_rate
        return float(lr(self.iterations)) if callable(lr) else lr

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = value if callable(value) else float(value)

    def _state(self, p, n):
        """n zero arrays shaped like p, made on first use (slot variables in Keras)."""
        s = self._slots.get(id(p))
        if s is None or s[0].shape != p.data.shape:
            s = self._slots[id(p)] = [np.zeros_like(p.data) for _ in range(n)]
        return s

    def step(self, params):
        """One update of every parameter from its `.grad`."""
        lr = self.learning_rate
        for p in params:
            if p.grad is not None:
                self._update(p.data, p.grad, lr, p)
        self.iterations += 1

    def apply_gradients(self, grads_and_vars):
        """Keras' entry point: an iterable of (gradient array, Tensor) pairs."""
        lr = self.learning_rate
        for g, p in grads_and_vars:
            if g is not None:
                self._update(p.data, np.asarray(g, dtype=p.data.dtype), lr, p)
        self.iterations += 1

    def _update(self, w, g, lr, p):
        raise NotImplementedError

    def get_config(self):
        lr = self._learning_rate
        return {"learning_rate": serialize_schedule(lr) if callable(lr) else lr}


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum, as in Keras."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        super().__init__(learning_rate)
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


class Adam(Optimizer):
    """Adam (Kingma & Ba 2014, Algorithm 1) in Keras' form, where epsilon is added to
    sqrt(v) after the bias correction has been folded into the step size:

        m = m + (1 - beta_1) (g - m)          running mean of g
        v = v + (1 - beta_2) (g^2 - v)        running mean of g^2
        lr_t = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)      (t = iterations + 1)
        w -= lr_t m / (sqrt(v) + epsilon)
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(learning_rate)
        for name, b in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {b}")
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def step(self, params):
        t = self.iterations + 1
        self._lr_t = self.learning_rate * math.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
        super().step(params)

    def apply_gradients(self, grads_and_vars):
        t = self.iterations + 1
        self._lr_t = self.learning_rate * math.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
        super().apply_gradients(grads_and_vars)

    def _update(self, w, g, lr, p):
        m, v, buf = self._state(p, 3)
        b1, b2 = self.beta_1, self.beta_2
        m *= b1                                  # m = b1 m + (1 - b1) g
        np.multiply(g, 1 - b1, out=buf)
        m += buf
        v *= b2                                  # v = b2 v + (1 - b2) g^2
        np.multiply(g, g, out=buf)
        buf *= 1 - b2
        v += buf
        np.sqrt(v, out=buf)                      # w -= lr_t m / (sqrt(v) + eps)
        buf += self.epsilon
        np.divide(m, buf, out=buf)
        buf *= self._lr_t
        w -= buf

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def get(optimizer):
    """An Optimizer from 'sgd' / 'adam' (Keras defaults) or an instance."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        return OPTIMIZERS[optimizer.lower()]()
    raise ValueError(f"unknown optimizer {optimizer!r}; use 'sgd', 'adam' or an instance of "
                     "minitiny.optimizers.SGD / Adam")


def serialize(optimizer):
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(cfg):
    cls = {"SGD": SGD, "Adam": Adam}.get(cfg.get("class_name"))
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
