"""minitiny.data.Dataset: tf.data's semantics for the calls Keras guides make."""
import numpy as np
import pytest

import minitiny as mt
from minitiny.data import Dataset


def test_slices_batches_map_take():
    x, y = np.arange(10).reshape(5, 2), np.arange(5)
    ds = Dataset.from_tensor_slices((x, y))
    assert len(ds) == 5 and [int(b) for _, b in ds] == [0, 1, 2, 3, 4]
    batches = list(ds.batch(2))
    assert [b[0].shape for b in batches] == [(2, 2), (2, 2), (1, 2)] and len(ds.batch(2)) == 3
    assert len(list(ds.batch(2, drop_remainder=True))) == 2 == len(ds.batch(2, True))
    doubled = ds.map(lambda a, b: (a * 2, b)).take(2)
    assert [a.tolist() for a, _ in doubled] == [[0, 2], [4, 6]] and len(doubled) == 2
    assert [v.tolist() for v in Dataset.from_tensor_slices(x).map(lambda a: a.sum())] == \
        [1, 5, 9, 13, 17]
    assert len(list(ds.repeat(3))) == 15 and ds.prefetch(mt.data.AUTOTUNE) is ds
    with pytest.raises(ValueError, match="same first dimension"):
        Dataset.from_tensor_slices((x, y[:3]))
    with pytest.raises(TypeError, match="unknown"):
        len(ds.repeat())


@pytest.mark.parametrize("n, buffer", [(1, 1), (50, 1), (50, 7), (50, 50), (1000, 1000)])
def test_shuffle_is_a_permutation_reshuffled_each_pass(n, buffer):
    ds = Dataset.from_tensor_slices(np.arange(n)).shuffle(buffer, seed=3)
    first, second = [int(v) for v in ds], [int(v) for v in ds]
    assert sorted(first) == list(range(n)) == sorted(second)
    if buffer == 1:
        assert first == list(range(n))                   # a buffer of one keeps the order
    elif n > 10:
        assert first != second                           # reshuffled every iteration
        # buffered: element i cannot come out before position i - buffer + 1
        assert all(pos >= v - buffer + 1 for pos, v in enumerate(first))
    again = [int(v) for v in Dataset.from_tensor_slices(np.arange(n)).shuffle(buffer, seed=3)]
    assert again == first                                # a seed fixes the sequence
    fixed = Dataset.from_tensor_slices(np.arange(n)).shuffle(buffer,
                                                              reshuffle_each_iteration=False)
    assert list(map(int, fixed)) == list(map(int, fixed))


def test_cache_runs_a_map_once():
    calls = []
    ds = Dataset.from_tensor_slices(np.arange(4)).map(lambda v: calls.append(1) or v).cache()
    assert list(map(int, ds)) == list(map(int, ds)) == [0, 1, 2, 3] and len(calls) == 4
