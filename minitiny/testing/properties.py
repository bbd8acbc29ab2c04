"""Properties of the model itself, the ones a TinyML user cares about.

    assert_int8_agrees_with_float(model, qmodel, tolerance, x)   # quantization error bounded
    assert_stable(qmodel, x, noise=2)          # the class does not flip under +-2 LSB noise
    assert_invariant(qmodel, x, transform)     # the class survives a declared transformation
    assert_monotonic(qmodel, x, feature=3)     # an output never falls as feature 3 rises

`x` are the user's own samples (e.g. a test split): stability and invariance are questions
about real inputs, not random ones. A QModel works on int8 inputs (noise in LSB of the
input quantization); anything with predict_int8, or an int8 callable (codegen.load), too.
Each failure raises AssertionError naming the sample, the perturbation and both outputs.
"""
import numpy as np


def _int8_fn(model):
    return model.predict_int8 if hasattr(model, "predict_int8") else model


def _scores(fn, x):
    out = np.asarray(fn(np.asarray(x, np.int8)))
    return out.reshape(len(x), -1).astype(np.int32)


def _classes(scores):
    return np.argmax(scores, axis=1)


def assert_int8_agrees_with_float(model, qmodel, tolerance, x, classes=False):
    """|float model output - dequantized int8 output| <= tolerance for every sample of x
    (float inputs, quantized with the model's input scale), or with classes=True the same
    class for all but a `tolerance` share of them."""
    x = np.asarray(x, np.float32)
    want = np.asarray(model.predict(x), np.float64).reshape(len(x), -1)
    got = np.asarray(qmodel.predict(x), np.float64).reshape(len(x), -1)
    if classes:
        flips = np.flatnonzero(_classes(want) != _classes(got))
        if len(flips) > tolerance * len(x):
            i = int(flips[0])
            raise AssertionError(f"int8 and float disagree on the class of {len(flips)} of {len(x)} samples "
                                 f"(allowed {tolerance:.2%}); e.g. sample {i}: float class "
                                 f"{int(_classes(want)[i])}, int8 class {int(_classes(got)[i])}")
        return
    err = np.abs(want - got)
    if err.max(initial=0) > tolerance:
        i, j = np.unravel_index(np.argmax(err), err.shape)
        raise AssertionError(f"int8 output differs from float by {err[i, j]:.6g} > {tolerance:g}: sample {i}, "
                             f"output {j}: float {want[i, j]:.6g}, int8 {got[i, j]:.6g} "
                             f"(output scale {float(qmodel.output.scale):.6g})")


def assert_stable(model, x, noise=1, tries=64, seed=0):
    """No sample of x (int8) changes class under noise of at most +-`noise` LSB per value.

    Per sample: the corner noises (every value +-noise, random signs) and a greedy search
    that moves, one value at a time, toward the smallest margin between the top class and
    the runner-up (the adversarial direction random noise rarely finds)."""
    fn, rng = _int8_fn(model), np.random.default_rng(seed)
    x = np.asarray(x, np.int8)
    base = _scores(fn, x)
    for i in range(len(x)):
        xi = x[i].astype(np.int16)
        c = int(_classes(base[i:i + 1])[0])
        signs = rng.choice([-noise, noise], size=(tries,) + xi.shape)
        cands = np.clip(xi + signs, -128, 127)
        cands = np.concatenate([cands, _greedy_noise(fn, xi, c, noise)[None]])
        s = _scores(fn, cands)
        flips = np.flatnonzero(_classes(s) != c)
        if len(flips):
            k = int(flips[0])
            d = cands[k] - xi
            raise AssertionError(f"sample {i}: class {c} becomes {int(_classes(s[k:k + 1])[0])} under "
                                 f"noise within +-{noise} LSB ({int(np.count_nonzero(d))} values moved; "
                                 f"noise {_sparse(d)})")


def _margin(scores, c):
    other = scores.copy()
    other[:, c] = np.iinfo(np.int32).min
    return scores[:, c] - other.max(axis=1)


def _greedy_noise(fn, x, c, noise, rounds=4, batch=256):
    """Coordinate descent on the margin of class c: each round tries every value at +-noise,
    a block of values at a time, and keeps the best move of each block if it lowers the margin."""
    y = x.copy().reshape(-1)
    for _ in range(rounds):
        best = _margin(_scores(fn, np.clip(y, -128, 127).reshape((1,) + x.shape)), c)[0]
        improved = False
        for start in range(0, y.size, batch // 2):
            idx = np.arange(start, min(start + batch // 2, y.size))
            cands = np.repeat(y[None], 2 * len(idx), axis=0)
            for j, i in enumerate(idx):
                cands[2 * j, i] = x.reshape(-1)[i] + noise
                cands[2 * j + 1, i] = x.reshape(-1)[i] - noise
            cands = np.clip(cands, -128, 127)
            m = _margin(_scores(fn, cands.reshape((-1,) + x.shape)), c)
            j = int(np.argmin(m))
            if m[j] < best:
                y[idx[j // 2]] = cands[j, idx[j // 2]]
                best, improved = m[j], True
        if not improved:
            break
    return np.clip(y, -128, 127).reshape(x.shape)


def _sparse(d, limit=12):
    nz = np.argwhere(d != 0)
    text = ", ".join(f"[{', '.join(map(str, i))}]{int(d[tuple(i)]):+d}" for i in nz[:limit])
    return text + (" ..." if len(nz) > limit else "") if len(nz) else "none"


def assert_invariant(model, x, transform, name=None):
    """The class of every sample of x (int8) equals the class of transform(sample), e.g. a
    shift of an image by one pixel with the zero point shifted in."""
    fn = _int8_fn(model)
    x = np.asarray(x, np.int8)
    moved = np.stack([np.asarray(transform(xi), np.int8) for xi in x])
    a, b = _classes(_scores(fn, x)), _classes(_scores(fn, moved))
    bad = np.flatnonzero(a != b)
    if len(bad):
        i = int(bad[0])
        what = name or getattr(transform, "__name__", "the transformation")
        raise AssertionError(f"{len(bad)} of {len(x)} samples change class under {what}; e.g. sample "
                             f"{i}: class {int(a[i])} becomes {int(b[i])}")


def assert_monotonic(model, x, feature, output=0, increasing=True):
    """Output `output` (an int8 value) never falls (increasing=True; never rises else) as
    input value `feature` (a flat index) sweeps all 256 int8 values, the rest of each
    sample fixed: exhaustive along the feature."""
    fn = _int8_fn(model)
    x = np.asarray(x, np.int8)
    values = np.arange(-128, 128)
    for i in range(len(x)):
        sweep = np.repeat(x[i].reshape(1, -1), 256, axis=0)
        sweep[:, feature] = values
        y = _scores(fn, sweep.reshape((256,) + x.shape[1:]))[:, output]
        steps = np.diff(y) if increasing else -np.diff(y)
        if np.any(steps < 0):
            k = int(np.argmax(steps < 0))
            raise AssertionError(f"sample {i}: output {output} {'falls' if increasing else 'rises'} from "
                                 f"{int(y[k])} to {int(y[k + 1])} as input {feature} goes from "
                                 f"{int(values[k])} to {int(values[k + 1])}")
