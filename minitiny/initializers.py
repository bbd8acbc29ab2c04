"""Initializers: the first values of a layer's weights, as Keras draws them.

Sorted from the plainest to the ones that look at the layer's shape:

    Zeros, Ones, Constant(value)            no randomness
    RandomUniform(minval, maxval)           U(minval, maxval), Keras' defaults +-0.05
    RandomNormal(mean, stddev)              N(mean, stddev), Keras' default stddev 0.05
    TruncatedNormal(mean, stddev)           N(mean, stddev), values beyond 2 stddev drawn again
    VarianceScaling(scale, mode, distribution)
        n = fan_in, fan_out or their mean (mode), so the weights' variance is scale / n:
        'truncated_normal'    TruncatedNormal(0, sqrt(scale / n) / 0.8796...)  (0.8796 is
                              the stddev of a unit normal cut at +-2: the cut keeps scale / n)
        'untruncated_normal'  RandomNormal(0, sqrt(scale / n))
        'uniform'             RandomUniform(-sqrt(3 scale / n), +sqrt(3 scale / n))
    GlorotUniform, GlorotNormal (Glorot & Bengio 2010)  scale 1, mode 'fan_avg'
    HeUniform, HeNormal (He et al. 2015)                scale 2, mode 'fan_in'
    LecunUniform, LecunNormal (LeCun et al. 1998)       scale 1, mode 'fan_in'

Fans count the receptive field, as Keras does: a kernel (kh, kw, in, out) has fan_in =
kh kw in and fan_out = kh kw out. Formulas and defaults from Keras 3
(keras/src/initializers/random_initializers.py, constant_initializers.py).

Seeds follow Keras 3: an initializer with `seed=n` draws the same values at every call;
without a seed it draws from minitiny.random's global generator (so `minitiny.random.seed`
makes a whole model reproducible). A layer takes an initializer object or its name
(`kernel_initializer='he_normal'`); `get` turns either, or a Keras config dict, into one.
"""
import math

import numpy as np

from . import random as mt_random


def fans(shape):
    """fan_in, fan_out as Keras computes them; conv kernels count the receptive field."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """initializer(shape, dtype) -> an ndarray of that shape."""

    def __call__(self, shape, dtype="float32"):
        return np.asarray(self.draw(tuple(int(d) for d in shape)), dtype=dtype)

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    def draw(self, shape):
        return np.zeros(shape)


class Ones(Initializer):
    def draw(self, shape):
        return np.ones(shape)


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = float(value)

    def draw(self, shape):
        return np.full(shape, self.value)

    def get_config(self):
        return {"value": self.value}


class _Random(Initializer):
    """A random initializer: a fixed seed draws the same values every call (Keras 3)."""

    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"{type(self).__name__}: seed must be a non-negative integer or "
                             f"None, got {seed!r}")
        self.seed = None if seed is None else int(seed)

    def rng(self):
        return mt_random.rng(self.seed)

    def get_config(self):
        return {"seed": self.seed}


def _truncated_normal(rng, mean, stddev, shape):
    """N(mean, stddev) with every value beyond 2 stddev drawn again (Keras, TensorFlow)."""
    a = rng.standard_normal(shape)
    bad = np.abs(a) > 2.0
    while bad.any():
        a[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(a) > 2.0
    return mean + stddev * a


class RandomUniform(_Random):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        if not minval <= maxval:
            raise ValueError(f"RandomUniform: minval {minval} must not exceed maxval {maxval}")
        self.minval, self.maxval = float(minval), float(maxval)

    def draw(self, shape):
        return self.rng().uniform(self.minval, self.maxval, shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


class RandomNormal(_Random):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        if not stddev >= 0:
            raise ValueError(f"{type(self).__name__}: stddev must be >= 0, got {stddev}")
        self.mean, self.stddev = float(mean), float(stddev)

    def draw(self, shape):
        return self.rng().normal(self.mean, self.stddev, shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class TruncatedNormal(RandomNormal):
    def draw(self, shape):
        return _truncated_normal(self.rng(), self.mean, self.stddev, shape)


class VarianceScaling(_Random):
    MODES = ("fan_in", "fan_out", "fan_avg")
    DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")
    TRUNCATED_STDDEV = 0.87962566103423978     # stddev of a unit normal cut at +-2

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        if not scale > 0:
            raise ValueError(f"{type(self).__name__}: scale must be > 0, got {scale}")
        if mode not in self.MODES:
            raise ValueError(f"{type(self).__name__}: mode must be one of {self.MODES}, "
                             f"got {mode!r}")
        distribution = "untruncated_normal" if distribution == "normal" else distribution
        if distribution not in self.DISTRIBUTIONS:
            raise ValueError(f"{type(self).__name__}: distribution must be one of "
                             f"{self.DISTRIBUTIONS}, got {distribution!r}")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def draw(self, shape):
        fan_in, fan_out = fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)                      # Var(w) = scale / n
        if self.distribution == "truncated_normal":
            return _truncated_normal(self.rng(), 0.0,
                                     math.sqrt(variance) / self.TRUNCATED_STDDEV, shape)
        if self.distribution == "untruncated_normal":
            return self.rng().normal(0.0, math.sqrt(variance), shape)
        limit = math.sqrt(3.0 * variance)                         # Var(U(-a, a)) = a^2 / 3
        return self.rng().uniform(-limit, limit, shape)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                **super().get_config()}


def _named(name, scale, mode, distribution):
    """A VarianceScaling with fixed settings, under its own name (GlorotUniform, ...)."""
    def __init__(self, seed=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self):
        return {"seed": self.seed}
    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config,
                                           "__doc__": f"VarianceScaling(scale={scale}, "
                                           f"mode={mode!r}, distribution={distribution!r})"})


GlorotUniform = _named("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _named("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeUniform = _named("HeUniform", 2.0, "fan_in", "uniform")
HeNormal = _named("HeNormal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _named("LecunUniform", 1.0, "fan_in", "uniform")
LecunNormal = _named("LecunNormal", 1.0, "fan_in", "truncated_normal")

CLASSES = {c.__name__: c for c in (
    Zeros, Ones, Constant, RandomUniform, RandomNormal, TruncatedNormal, VarianceScaling,
    GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal)}
# Keras' names for them: 'he_normal' -> HeNormal, also 'random_normal', 'zeros', ...
NAMES = {"".join("_" + ch.lower() if ch.isupper() else ch for ch in n).lstrip("_"): c
         for n, c in CLASSES.items()}


def get(identifier, where="initializer"):
    """A name ('he_normal'), an Initializer, or Keras' config dict ({'class_name': 'HeNormal',
    'config': {...}}) -> an Initializer. Anything else is refused, naming what exists."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str) and identifier in NAMES:
        return NAMES[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in CLASSES:
        return CLASSES[identifier["class_name"]].from_config(dict(identifier.get("config") or {}))
    raise ValueError(f"{where}: unknown initializer {identifier!r}; minitiny has "
                     f"{', '.join(NAMES)} (or the classes {', '.join(CLASSES)})")


def serialize(initializer):
    """What a layer's get_config stores: a name stays a name; an object becomes Keras'
    dict, which Keras' own loader reads too."""
    if isinstance(initializer, str):
        return initializer
    return {"module": "keras.initializers", "class_name": type(initializer).__name__,
            "config": initializer.get_config(), "registered_name": None}
