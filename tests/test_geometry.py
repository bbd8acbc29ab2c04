"""minitiny/geometry.py: the window rules every part of minitiny uses, against TensorFlow's
documented examples and against counting window positions by brute force."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minitiny import geometry


def test_same_padding_follows_tensorflow():
    # (in, k, stride) -> (out, before, after), worked from TF's documented formula:
    # out = ceil(in/s), total = max((out-1)*s + k - in, 0), before = total//2
    assert geometry.same_padding(5, 3, 2) == (3, 1, 1)
    assert geometry.same_padding(4, 3, 2) == (2, 0, 1)        # the odd pixel goes after
    assert geometry.same_padding(28, 3, 1) == (28, 1, 1)
    assert geometry.same_padding(7, 2, 3) == (3, 0, 1)
    assert geometry.same_padding(6, 1, 2) == (3, 0, 0)
    assert geometry.same_padding(2, 5, 1) == (2, 2, 2)


def window_starts(size, k_eff, stride, before, after):
    """Brute force: slide the window over the padded row, one start after another."""
    starts, start = [], -before
    while start + k_eff <= size + after:
        starts.append(start)
        start += stride
    return starts


@given(size=st.integers(1, 300), k=st.integers(1, 12), stride=st.integers(1, 6),
       dilation=st.integers(1, 4))
def test_out_size_counts_the_window_positions(size, k, stride, dilation):
    k_eff = geometry.effective_kernel(k, dilation)
    valid = window_starts(size, k_eff, stride, 0, 0)
    assert geometry.out_size("valid", size, k, stride, dilation) == len(valid)
    out, before, after = geometry.same_padding(size, k, stride, dilation)
    assert out == math.ceil(size / stride) == geometry.out_size("same", size, k, stride, dilation)
    # 'same' pads just enough that out windows fit, the odd one after; every window's first
    # tap lies inside the input (TF never starts a window in the padding)
    assert window_starts(size, k_eff, stride, before, after)[:out] == \
        [i * stride - before for i in range(out)]
    assert before + after == max((out - 1) * stride + k_eff - size, 0)
    assert after - before in (0, 1)
    assert geometry.pad_before("same", size, k, stride, dilation) == before
    assert geometry.pad_before("valid", size, k, stride, dilation) == 0


def test_pair_and_padding_checks_name_the_argument():
    assert geometry.pair(3) == (3, 3) and geometry.pair((2, np.int64(5))) == (2, 5)
    for bad in (0, (1, 2, 3), (1, 0), 2.0, "3", True, None):
        with pytest.raises(ValueError, match="strides must be a positive int or a pair"):
            geometry.pair(bad, "strides")
    assert geometry.check_padding("SAME") == "same"
    with pytest.raises(ValueError, match="layer 'c': padding must be 'valid' or 'same', got 'full'"):
        geometry.check_padding("full", "layer 'c': padding")


def test_shape_str():
    assert geometry.shape_str((28, 28, 1)) == "(N, 28, 28, 1)"
    assert geometry.shape_str(()) == "(N,)"
