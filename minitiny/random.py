"""One global random number generator for everything random in minitiny.

Initialisers, shuffling, dropout masks and data splits all draw from `rng()` unless they
are given their own `seed=`. So `seed(0)` before building and fitting a model gives the
same weights, the same batches and the same history every time.
"""
import numpy as np

_rng = np.random.default_rng()


def seed(n):
    """Reseed the global generator: same seed, same weights, same history."""
    global _rng
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"seed must be a non-negative integer, got {n!r}")
    _rng = np.random.default_rng(int(n))


set_seed = seed         # TensorFlow's name: tf.random.set_seed(42)


def rng(seed=None):
    """The global `np.random.Generator`, or a fresh one when a `seed` is given."""
    if seed is not None:
        return np.random.default_rng(seed)
    return _rng
