"""Sensor time series: smartwatch exercises, BasicMotions, Wiimote gestures, ACSF1 power.

Every series comes back channels-last, (N, T, C) float32, as a Conv1D or a Dense layer on
a flattened window expects. Sets whose recordings differ in length are padded at the end to
the longest (or `maxlen`), or returned as a list with `ragged=True`.
"""
import io
import pickle

import numpy as np

from . import cache, registry
from .errors import DatasetError
from .split import sequences
from .ts import parse_ts


def _load_ts(name):
    """Parse the TRAIN and TEST .ts files of a data set -> (TsData, TsData)."""
    info = registry.get(name)
    train, test = (parse_ts(cache.read_verified(info, f), cache.stored_path(info, f))
                   for f in info.files)
    return train, test


def _labels(ts):
    return np.array([ts.class_labels.index(label) for label in ts.labels], dtype=np.int64)


def load_basic_motions():
    """BasicMotions: 4 students wearing a smartwatch (3-axis accelerometer + gyroscope, 10 Hz).

    `(x_train, y_train), (x_test, y_test)`, 40 + 40 cases:
        x (N, 100, 6) float32: 10 s at 10 Hz; channels accel x, y, z, gyro x, y, z
        y (N,) int64: 0 Standing, 1 Running, 2 Walking, 3 Badminton (the header's order)
    Fetch: `minitiny-data fetch basic_motions` (PyPI wheel aeon==1.6.0, read as a zip).
    """
    train, test = _load_ts("basic_motions")
    return (train.to_array(), _labels(train)), (test.to_array(), _labels(test))


def load_pickup_gestures(maxlen=None, ragged=False):
    """PickupGestureWiimoteZ: 10 gestures with a Wiimote, z-axis acceleration only.

    `(x_train, y_train), (x_test, y_test)`, 50 + 50 cases (5 per gesture in each):
        x (N, maxlen, 1) float32, zero-padded at the end (maxlen=None: the longest, 361),
          or with ragged=True a list of (T_i, 1) arrays (T_i from 29 to 361)
        y (N,) int64: the file's label minus 1, i.e. 0 pick-up, 1 shake, 2 right, 3 left,
          4 up, 5 down, 6 left circle, 7 right circle, 8 toward screen, 9 away from screen
    Fetch: `minitiny-data fetch pickup_gestures` (PyPI wheel aeon==1.6.0).
    """
    train, test = _load_ts("pickup_gestures")
    if maxlen is None:                             # one length for both parts
        maxlen = max(s.shape[1] for s in train.series + test.series)
    return tuple((sequences([s.T for s in ts.series], ragged, maxlen), _labels(ts))
                 for ts in (train, test))


def load_acsf1_anomaly(normal_class=0, return_groups=False):
    """ACSF1 appliance power, cast as anomaly detection: one appliance is 'normal'.

    ACSF1 holds 200 one-day power traces (1460 samples, z-normalised) of 10 appliance
    categories (mobile phones, coffee machines, computer stations, fridges/freezers, Hi-Fi,
    CFL lamps, laptops, microwaves, printers, TVs; the file labels them 0..9 without saying
    which number is which). The split, for an autoencoder or a one-class model:
        train: the 10 TRAIN traces of `normal_class`, y all 0       (normal data only)
        test:  all 100 TEST traces, y = 0 for `normal_class` (10), 1 for the rest (90)
    `(x_train, y_train), (x_test, y_test)`: x (N, 1460, 1) float32, y (N,) int64 0/1.
    With return_groups=True each part is (x, y, groups), groups (N,) int64 the original
    appliance class 0..9, for per-appliance metrics.
    Fetch: `minitiny-data fetch acsf1` (PyPI wheel aeon==1.6.0).
    """
    if normal_class not in range(10):
        raise ValueError(f"normal_class must be 0..9, got {normal_class}")
    train, test = _load_ts("acsf1")
    c_train, c_test = _labels(train), _labels(test)
    keep = c_train == normal_class
    x_train, g_train = train.to_array()[keep], c_train[keep]
    x_test, g_test = test.to_array(), c_test
    y_train = np.zeros(len(x_train), dtype=np.int64)
    y_test = (g_test != normal_class).astype(np.int64)
    if return_groups:
        return (x_train, y_train, g_train), (x_test, y_test, g_test)
    return (x_train, y_train), (x_test, y_test)


# ---- the smartwatch set: a pickled dict, unpickled with an allow-list ----

class _ArraysOnly(pickle.Unpickler):
    """An unpickler that can build NumPy arrays and nothing else.

    pickle can call any importable function, so an unchecked .npy with allow_pickle=True
    can run code. The bytes are SHA-256-checked before we get here, and on top of that
    only the four globals a pickled array needs are allowed.
    """
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if module == "numpy.core.multiarray":      # NumPy 2 moved numpy.core to numpy._core
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def _load_pickled_npy(data, where):
    f = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f".npy version {version} is not supported")
        shape, _fortran, dtype = read_header(f)
        if dtype != object or shape != ():
            raise ValueError(f"{dtype} array of shape {shape}, expected one pickled object")
        array = _ArraysOnly(f).load()                 # a 0-d object array holding a dict
        return array.item() if isinstance(array, np.ndarray) else array
    except Exception as e:                            # a corrupt pickle can raise almost anything
        raise DatasetError(f"{where}: cannot read the pickled .npy ({e})") from None


def load_watch(test_subjects=(9, 10), maxlen=None, ragged=False, return_groups=False):
    """Shoulder physiotherapy exercises recorded by a smartwatch (seglearn's watch set).

    140 recordings: 10 subjects x 7 exercises x 2 sides (left, right arm). 6 channels at
    50 Hz: accelerometer ax, ay, az and gyroscope wx, wy, wz; 947..2618 samples each.
    Classes (Burns et al. 2018): 0 PEN pendulum, 1 ABD abduction, 2 FEL forward elevation,
    3 IR internal rotation, 4 ER external rotation, 5 TRAP trapezius, 6 ROW row.
    The split is by subject, so no one is in both parts (default: subjects 9 and 10 test,
    112 train + 28 test):
        `(x_train, y_train), (x_test, y_test)`
        x (N, maxlen, 6) float32, zero-padded at the end (maxlen=None: the longest), or with
          ragged=True a list of (T_i, 6) arrays
        y (N,) int64
    With return_groups=True each part is (x, y, subject) with subject (N,) int64 in 1..10.
    Fetch: `minitiny-data fetch watch` (PyPI wheel seglearn==1.2.5, read as a zip).
    """
    info = registry.get("watch")
    f = info.files[0]
    where = cache.stored_path(info, f)
    d = _load_pickled_npy(cache.read_verified(info, f), where)
    try:
        seqs, y, subject = d["X"], np.asarray(d["y"], np.int64), np.asarray(d["subject"], np.int64)
    except (KeyError, TypeError, IndexError) as e:
        raise DatasetError(f"{where}: not the expected dict with X, y, subject ({e})") from None
    test = np.isin(subject, test_subjects)
    x = sequences(seqs, ragged, maxlen)
    parts = []
    for mask in (~test, test):
        idx = np.flatnonzero(mask)
        xs = [x[i] for i in idx] if ragged else x[idx]
        parts.append((xs, y[idx], subject[idx]) if return_groups else (xs, y[idx]))
    return tuple(parts)
