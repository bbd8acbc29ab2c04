"""Generated sets: nothing to fetch, the same numbers on every machine for a given seed.

In teaching order: the straight line a single neuron learns, the sine wave of TFLite
Micro's "hello world", interleaved spirals for a small classifier, and a machine-vibration
generator for anomaly detection.
"""
import numpy as np



def load_linear(n=None, noise=0.0, seed=0):
    """y = 2x - 1, the data of the classic single-neuron example.

    With n=None: the six points of that example, x = -1, 0, 1, 2, 3, 4 (train), and the
    question it ends on, x = 10 (test, y = 19). With n: n random x in [-5, 5) for training
    and n // 4 (at least 1) for testing, y = 2x - 1 + noise * N(0, 1).
    `(x_train, y_train), (x_test, y_test)`, all (N, 1) float32.
    """
    if n is None:
        x_train, x_test = np.arange(-1, 5, dtype=np.float32), np.array([10], dtype=np.float32)
        y_train, y_test = 2 * x_train - 1, 2 * x_test - 1
    else:
        rng = np.random.default_rng(seed)
        x = rng.uniform(-5, 5, size=n + max(1, n // 4)).astype(np.float32)
        y = (2 * x - 1 + noise * rng.standard_normal(len(x))).astype(np.float32)
        x_train, x_test, y_train, y_test = x[:n], x[n:], y[:n], y[n:]
    col = lambda a: a.reshape(-1, 1)                          # (N,) -> (N, 1)
    return (col(x_train), col(y_train)), (col(x_test), col(y_test))


def load_sine(n=1000, noise=0.1, test_fraction=0.2, seed=0):
    """x uniform in [0, 2 pi), y = sin(x) + noise * N(0, 1): TFLite Micro's hello_world data.

    The first (1 - test_fraction) * n points train, the rest test (the points are drawn
    independently, so a cut needs no shuffle). `(x_train, y_train), (x_test, y_test)`,
    all (N, 1) float32; 800 + 200 by default.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 2 * np.pi, size=n)
    y = np.sin(x) + noise * rng.standard_normal(n)
    cut = n - int(round(test_fraction * n))
    x, y = x.astype(np.float32).reshape(-1, 1), y.astype(np.float32).reshape(-1, 1)
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def make_spirals(n, classes=3, seed=0):
    """Interleaved 2-D spirals, n points per class: a small nonlinear classification task.

    Point of class c at radius t ~ U(0, 1): angle 2 pi c / classes + 4 t + N(0, 0.2^2),
    (x, y) = t (cos angle, sin angle). Shuffled. `x` (classes * n, 2) float32, `y` int64.
    """
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, (classes, n))
    angle = np.arange(classes)[:, None] * 2 * np.pi / classes + 4 * t + rng.normal(0, 0.2, t.shape)
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], -1).reshape(-1, 2).astype(np.float32)
    y = np.repeat(np.arange(classes), n)
    order = rng.permutation(len(x))
    return x[order], y[order]


# ---- machine vibration -------------------------------------------------------------------

VIBRATION_KINDS = ("normal", "bearing", "imbalance", "drift")


def make_vibration(kind, n, length=1024, sample_rate=1000, noise=0.1, rng=None):
    """n accelerometer traces of a rotating machine, (n, length) float32.

    normal: the shaft turns at f0 ~ U(20, 30) Hz; the trace is a few of its harmonics plus
        sensor noise,  x(t) = sum_k a_k sin(2 pi k f0 t + phi_k) + noise * N(0, 1),
        k = 1..4, a_k = U(0.8, 1.2) / k, phi_k random.
    imbalance: a mass off the axis pulls once per turn, so the 1x component grows:
        a_1 *= U(2, 4).
    bearing: a defect on the outer race is struck each time a ball passes, at the ball-pass
        frequency BPFO ~ 0.4 * n_balls * f0 (here 9 balls: 3.6 f0); each strike rings the
        housing's resonance f_r ~ U(250, 400) Hz and dies away (tau = 5 ms):
        A exp(-(t - t_i) / tau) sin(2 pi f_r (t - t_i)) for t >= t_i, A ~ U(1, 2)
        (Randall & Antoni, "Rolling element bearing diagnostics -- a tutorial", 2011).
    drift: the sensor's offset wanders: a ramp from 0 to D, |D| ~ U(1, 2), is added.
    """
    if kind not in VIBRATION_KINDS:
        raise ValueError(f"kind must be one of {VIBRATION_KINDS}, got {kind!r}")
    rng = np.random.default_rng() if rng is None else rng
    t = np.arange(length) / sample_rate                       # (T,) seconds
    out = np.empty((n, length), dtype=np.float32)
    for i in range(n):
        f0 = rng.uniform(20, 30)
        amps = rng.uniform(0.8, 1.2, size=4) / np.arange(1, 5)
        if kind == "imbalance":
            amps[0] *= rng.uniform(2, 4)
        phases = rng.uniform(0, 2 * np.pi, size=4)
        x = (amps[:, None] * np.sin(2 * np.pi * np.arange(1, 5)[:, None] * f0 * t
                                    + phases[:, None])).sum(axis=0)   # (T,)
        if kind == "bearing":
            f_r, period = rng.uniform(250, 400), 1 / (3.6 * f0)
            for t_i in np.arange(rng.uniform(0, period), t[-1], period):
                after = t >= t_i
                dt = t[after] - t_i
                x[after] += rng.uniform(1, 2) * np.exp(-dt / 0.005) * np.sin(2 * np.pi * f_r * dt)
        if kind == "drift":
            x += np.linspace(0, rng.uniform(1, 2) * rng.choice([-1, 1]), length)
        out[i] = x + noise * rng.standard_normal(length)
    return out


def load_vibration_anomaly(n_train=200, n_test_normal=100, n_test_faults=100, length=1024,
                           sample_rate=1000, seed=0, return_groups=False):
    """Synthetic vibration, split for anomaly detection: train on normal machines only.

        train: n_train normal traces, y all 0
        test:  n_test_normal normal (y 0) + n_test_faults faults (y 1), the faults shared
               shared among bearing, imbalance and drift (34, 33, 33 by default), all in a
               seeded random order
    `(x_train, y_train), (x_test, y_test)`: x (N, length, 1) float32 (1.024 s at 1 kHz by
    default), y (N,) int64. With return_groups=True each part is (x, y, groups), groups
    (N,) int64 indexing VIBRATION_KINDS (0 normal, 1 bearing, 2 imbalance, 3 drift).
    """
    rng = np.random.default_rng(seed)
    make = lambda kind, n: make_vibration(kind, n, length, sample_rate, rng=rng)
    x_train = make("normal", n_train)
    per_fault = np.diff(np.linspace(0, n_test_faults, 4).round().astype(int))   # 3 near-equal counts
    parts = [make("normal", n_test_normal)] + [make(k, c) for k, c in zip(VIBRATION_KINDS[1:], per_fault)]
    g_test = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)]).astype(np.int64)
    order = rng.permutation(len(g_test))
    x_test, g_test = np.concatenate(parts)[order], g_test[order]
    y_train, g_train = np.zeros(n_train, np.int64), np.zeros(n_train, np.int64)
    y_test = (g_test > 0).astype(np.int64)
    x_train, x_test = x_train[..., None], x_test[..., None]   # (N, T) -> (N, T, 1)
    if return_groups:
        return (x_train, y_train, g_train), (x_test, y_test, g_test)
    return (x_train, y_train), (x_test, y_test)
