"""Shrink a failing int8 input to a smallest one that still fails.

"Small" is measured from the input zero point (the real value 0): first the number of
values away from it, then their total distance. `shrink` tries, in batches, inputs that
are smaller in that order and keeps the first that still fails:

    1. blocks of values set to the zero point (halving the block size: delta debugging);
    2. passes over the remaining values: each set to the zero point, moved halfway to it,
       or one step toward it (until a pass changes nothing).

Every accepted step makes the input strictly smaller and the order is well-founded, so it
terminates; it stops when no single value can be set to the zero point or moved one step
toward it without the failure going away (a 1-minimal input) - or, given a `deadline`, when
time runs out: every input it holds fails, so stopping early returns a failing input that is
merely less small.
"""
import time

import numpy as np


def _first_failing(cands, fails, batch, deadline=None):
    for i in range(0, len(cands), batch):
        if _late(deadline):
            return None
        bad = np.asarray(fails(np.stack(cands[i:i + batch])))
        if bad.any():
            return cands[i + int(np.argmax(bad))]
    return None


def _block_candidates(x, zp, block):
    flat = x.reshape(-1)
    out = []
    for start in range(0, flat.size, block):
        if np.any(flat[start:start + block] != zp[start:start + block]):
            y = flat.copy()
            y[start:start + block] = zp[start:start + block]
            out.append(y.reshape(x.shape))
    return out


def _options(v, zp):
    """Smaller values for one entry: the zero point, halfway to it, one step toward it."""
    return [new for new in dict.fromkeys((zp, zp + (v - zp) // 2, v - int(np.sign(v - zp)))) if new != v]


def _late(deadline):
    return deadline is not None and time.monotonic() > deadline


def _sweep(x, zp, fails, batch, deadline=None):
    """One pass over the entries away from the zero point, in order: for each, the first
    of its smaller values that still fails is kept. Candidates of several entries share a
    batch; after a success the pass goes on from that entry. -> (x, changed)."""
    flat = x.reshape(-1).astype(np.int16)
    todo = list(np.flatnonzero(flat != zp))
    changed = False
    while todo and not _late(deadline):
        cands, owners = [], []
        for j in todo:
            for new in _options(int(flat[j]), int(zp[j])):
                y = flat.copy()
                y[j] = new
                cands.append(y)
                owners.append(j)
            if len(cands) >= batch:
                break
        bad = np.asarray(fails(np.stack(cands).astype(np.int8).reshape((-1,) + x.shape)))
        if bad.any():                     # keep it; go on from that entry (it may shrink more)
            k = int(np.argmax(bad))
            flat, changed, j = cands[k], True, owners[k]
            todo = todo[todo.index(j) + (1 if flat[j] == zp[j] else 0):]
        else:
            todo = todo[todo.index(owners[-1]) + 1:]
    return flat.astype(np.int8).reshape(x.shape), changed


def shrink(x, fails, zero_point=0, batch=64, max_steps=100_000, deadline=None):
    """A smallest int8 input below `x` (one input, any shape) for which `fails` still holds.

    fails: (k, *shape) int8 -> (k,) bool, True where the input still shows the failure.
    zero_point: one for all values, or one per value (an array of x's shape: several model
    inputs packed into one row, each with its own zero point); deadline: a time.monotonic()
    after which no new batch of candidates is tried."""
    x = np.asarray(x, np.int8).copy()
    zp = np.broadcast_to(np.asarray(zero_point, np.int16), x.shape).reshape(-1)
    block = max(x.size // 2, 1)
    steps = 0
    while block >= 1 and steps < max_steps and not _late(deadline):
        y = _first_failing(_block_candidates(x, zp, block), fails, batch, deadline)
        if y is None:
            block //= 2
        else:
            x, steps = y, steps + 1
    changed = True
    while changed and steps < max_steps and not _late(deadline):
        x, changed = _sweep(x, zp, fails, batch, deadline)
        steps += 1
    return x
