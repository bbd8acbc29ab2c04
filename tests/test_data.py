"""Data helpers against naive re-implementations (loops, collections.Counter) and counts."""
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minitiny as mt
from minitiny.data import Normalizer, check_finite, one_hot, sliding_windows, \
    train_val_test_split


# ---- train / val / test ------------------------------------------------------------------
def test_split_sizes_are_disjoint_and_cover_everything():
    x = np.arange(100).reshape(50, 2)
    y = np.arange(50)
    (xa, ya), (xb, yb), (xc, yc) = train_val_test_split(x, y, seed=0)
    assert (len(ya), len(yb), len(yc)) == (30, 10, 10)            # 60 / 20 / 20
    assert sorted(np.concatenate([ya, yb, yc]).tolist()) == list(range(50))
    np.testing.assert_array_equal(xa[:, 0], 2 * ya)               # rows stay paired
    assert ya.tolist() != sorted(ya.tolist())                     # shuffled


def test_split_seed_reproduces_and_no_shuffle_keeps_order():
    x, y = np.arange(20), np.arange(20)
    a = train_val_test_split(x, y, seed=3)
    b = train_val_test_split(x, y, seed=3)
    for (xa, _), (xb, _) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
    (xa, _), (xb, _), (xc, _) = train_val_test_split(x, y, (0.5, 0.25, 0.25), shuffle=False)
    assert xa.tolist() == list(range(10)) and xb.tolist() == list(range(10, 15))
    assert xc.tolist() == list(range(15, 20))


def test_stratified_split_keeps_class_proportions():
    y = np.array([0] * 50 + [1] * 30 + [2] * 20)
    x = np.arange(100)
    parts = train_val_test_split(x, y, seed=1, stratify=True)
    for (_, ys), frac in zip(parts, (0.6, 0.2, 0.2)):
        counts = Counter(ys.tolist())
        assert counts == {0: round(50 * frac), 1: round(30 * frac), 2: round(20 * frac)}
    assert sorted(np.concatenate([p[0] for p in parts]).tolist()) == list(range(100))


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.6, 0.3, 0.3), (1.2, -0.1, -0.1), "abc"])
def test_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions"):
        train_val_test_split(np.zeros(10), np.zeros(10), fractions)


def test_split_length_mismatch():
    with pytest.raises(ValueError, match="x has 10 samples but y has 9"):
        train_val_test_split(np.zeros(10), np.zeros(9))


# ---- normalisation -----------------------------------------------------------------------
def test_standard_normalizer_uses_training_statistics_only():
    r = np.random.default_rng(0)
    train = r.normal([1.0, -5.0, 100.0], [2.0, 0.5, 10.0], size=(500, 3))
    test = r.normal(size=(20, 3))
    n = Normalizer().fit(train)
    z = n.transform(train)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose(n.transform(test), (test - train.mean(0)) / train.std(0),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(n.inverse_transform(n.transform(test)), test, rtol=1e-5, atol=1e-4)


def test_minmax_normalizer_per_channel_of_images_and_constant_feature():
    r = np.random.default_rng(1)
    x = r.uniform(-3, 7, size=(10, 4, 4, 2))
    x[..., 1] = 5.0                                               # never varies
    n = Normalizer("minmax").fit(x)
    z = n.transform(x)
    assert z[..., 0].min() == pytest.approx(0, abs=1e-6)     # offset and scale are float32
    assert z[..., 0].max() == pytest.approx(1, abs=1e-6)
    np.testing.assert_array_equal(z[..., 1], 0.0)                 # scale 1, not 1/0
    cfg = n.get_config()
    assert cfg["method"] == "minmax" and cfg["scale"][1] == 1.0
    twin = Normalizer.from_config(cfg)
    np.testing.assert_array_equal(twin.transform(x), z)


def test_normalizer_errors():
    with pytest.raises(ValueError, match="not fitted"):
        Normalizer().transform(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="fitted on 3 features"):
        Normalizer().fit(np.zeros((4, 3))).transform(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="method"):
        Normalizer("zscore")
    with pytest.raises(ValueError, match=r"x contains nan at index \(1, 0\)"):
        Normalizer().fit(np.array([[1.0, 2.0], [np.nan, 3.0]]))


# ---- sliding windows ---------------------------------------------------------------------
@given(T=st.integers(1, 30), window=st.integers(1, 8), step=st.integers(1, 5),
       channels=st.integers(0, 3), seed=st.integers(0, 1000))
def test_sliding_windows_match_a_loop(T, window, step, channels, seed):
    r = np.random.default_rng(seed)
    series = r.normal(size=(T, channels) if channels else (T,))
    labels = r.integers(0, 3, T)
    if window > T:
        with pytest.raises(ValueError, match=f"window {window} is longer than the series"):
            sliding_windows(series, window, step)
        return
    want, last, major = [], [], []
    start = 0
    while start + window <= T:
        want.append(series[start:start + window])
        last.append(labels[start + window - 1])
        counts = Counter(labels[start:start + window].tolist())
        top = max(counts.values())
        major.append(min(k for k, v in counts.items() if v == top))   # ties: smaller label
        start += step
    np.testing.assert_array_equal(sliding_windows(series, window, step), np.array(want))
    w, lab = sliding_windows(series, window, step, labels=labels)
    assert lab.tolist() == last
    _, lab = sliding_windows(series, window, step, labels=labels, label_mode="majority")
    assert lab.tolist() == major


def test_sliding_window_errors():
    with pytest.raises(ValueError, match="window must be a positive integer"):
        sliding_windows(np.zeros(5), 0)
    with pytest.raises(ValueError, match=r"one entry per time step, shape \(5,\)"):
        sliding_windows(np.zeros(5), 2, labels=np.zeros(4))
    with pytest.raises(ValueError, match="label_mode"):
        sliding_windows(np.zeros(5), 2, labels=np.zeros(5), label_mode="first")


# ---- one-hot and finiteness ------------------------------------------------------------
def test_one_hot():
    y = np.array([2, 0, 1, 2])
    out = one_hot(y, 4)
    want = np.zeros((4, 4))
    for i, c in enumerate(y):
        want[i, c] = 1
    np.testing.assert_array_equal(out, want)
    assert out.dtype == np.float32 and one_hot(y).shape == (4, 3)
    with pytest.raises(ValueError, match=r"label 5 at y\[1\] is out of range \[0, 4\)"):
        one_hot([0, 5], 4)
    with pytest.raises(ValueError, match="integer"):
        one_hot([0.5, 1], 2)


def test_check_finite_names_array_and_index():
    check_finite(np.ones((2, 2)), "x")
    with pytest.raises(ValueError, match=r"y contains inf at index 3"):
        check_finite(np.array([0, 1, 2, np.inf]), "y")


def test_data_is_reachable_from_the_package():
    assert mt.data.one_hot is one_hot
