"""Shrink a failing int8 input to a smallest one that still fails.

"Small" is measured from the input zero point (the real value 0): first the number of
values away from it, then their total distance. `shrink` tries, in batches, inputs that
are smaller in that order and keeps the first that still fails:

    1. blocks of values set to the zero point (halving the block size: delta debugging);
    2. each remaining value set to the zero point, moved halfway to it, or one step toward it.

Every accepted step makes the input strictly smaller and the order is well-founded, so it
terminates; it stops when no single value can be set to the zero point or moved one step
toward it without the failure going away (a 1-minimal input).
"""
import numpy as np


def _first_failing(cands, fails, batch):
    for i in range(0, len(cands), batch):
        bad = np.asarray(fails(np.stack(cands[i:i + batch])))
        if bad.any():
            return cands[i + int(np.argmax(bad))]
    return None


def _block_candidates(x, zp, block):
    flat = x.reshape(-1)
    out = []
    for start in range(0, flat.size, block):
        if np.any(flat[start:start + block] != zp):
            y = flat.copy()
            y[start:start + block] = zp
            out.append(y.reshape(x.shape))
    return out


def _value_candidates(x, zp):
    flat = x.reshape(-1).astype(np.int16)
    out = []
    for i in np.flatnonzero(flat != zp):
        v = int(flat[i])
        for new in dict.fromkeys((zp, zp + (v - zp) // 2, v - np.sign(v - zp))):
            if new != v:
                y = flat.copy()
                y[i] = new
                out.append(y.astype(np.int8).reshape(x.shape))
    return out


def shrink(x, fails, zero_point=0, batch=64, max_steps=100_000):
    """A smallest int8 input below `x` (one input, any shape) for which `fails` still holds.

    fails: (k, *shape) int8 -> (k,) bool, True where the input still shows the failure."""
    x = np.asarray(x, np.int8).copy()
    zp = int(zero_point)
    block = max(x.size // 2, 1)
    steps = 0
    while block >= 1 and steps < max_steps:
        y = _first_failing(_block_candidates(x, zp, block), fails, batch)
        if y is None:
            block //= 2
        else:
            x, steps = y, steps + 1
    while steps < max_steps:
        y = _first_failing(_value_candidates(x, zp), fails, batch)
        if y is None:
            break
        x, steps = y, steps + 1
    return x
