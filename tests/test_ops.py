"""NN ops: forward against naive nested loops, gradients against finite differences.

The naive loops below are the oracle. They never pad an array: like the TFLite Micro
reference kernels, they walk each window and skip positions that fall outside the input,
starting each window at out * stride - pad_before.
"""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from gradcheck import gradcheck
from minitiny import ops
from minitiny.tensor import Tensor


# ---- the oracle: TensorFlow's padding and naive loops -------------------------------------
def tf_geometry(size, k, stride, padding):
    """Output size and padding before, from TensorFlow's documentation of 'same'/'valid'."""
    if padding == "valid":
        return math.ceil((size - k + 1) / stride), 0
    out = math.ceil(size / stride)
    return out, max((out - 1) * stride + k - size, 0) // 2


def naive_windows(x, kh, kw, strides, padding):
    """Yield (n, oh, ow, [(ih, iw, i, j) in-bounds window positions]) for every output."""
    n_, h, w, _ = x.shape
    ho, top = tf_geometry(h, kh, strides[0], padding)
    wo, left = tf_geometry(w, kw, strides[1], padding)
    for n in range(n_):
        for oh in range(ho):
            for ow in range(wo):
                pos = [(oh * strides[0] - top + i, ow * strides[1] - left + j, i, j)
                       for i in range(kh) for j in range(kw)]
                yield n, oh, ow, [(ih, iw, i, j) for ih, iw, i, j in pos
                                  if 0 <= ih < h and 0 <= iw < w]


def output_shape(x, kh, kw, strides, padding, c):
    return (x.shape[0], tf_geometry(x.shape[1], kh, strides[0], padding)[0],
            tf_geometry(x.shape[2], kw, strides[1], padding)[0], c)


def naive_conv2d(x, w, b, strides, padding):
    kh, kw, cin, cout = w.shape
    out = np.zeros(output_shape(x, kh, kw, strides, padding, cout))
    for n, oh, ow, window in naive_windows(x, kh, kw, strides, padding):
        for co in range(cout):
            acc = b[co]
            for ih, iw, i, j in window:
                for ci in range(cin):
                    acc += x[n, ih, iw, ci] * w[i, j, ci, co]
            out[n, oh, ow, co] = acc
    return out


def naive_depthwise(x, w, b, strides, padding):
    kh, kw, c, m = w.shape
    out = np.zeros(output_shape(x, kh, kw, strides, padding, c * m))
    for n, oh, ow, window in naive_windows(x, kh, kw, strides, padding):
        for ci in range(c):
            for mi in range(m):
                acc = b[ci * m + mi]
                for ih, iw, i, j in window:
                    acc += x[n, ih, iw, ci] * w[i, j, ci, mi]
                out[n, oh, ow, ci * m + mi] = acc
    return out


def naive_pool(x, k, strides, padding, kind):
    out = np.zeros(output_shape(x, k[0], k[1], strides, padding, x.shape[3]))
    for n, oh, ow, window in naive_windows(x, k[0], k[1], strides, padding):
        for c in range(x.shape[3]):
            vals = [x[n, ih, iw, c] for ih, iw, _, _ in window]
            out[n, oh, ow, c] = max(vals) if kind == "max" else sum(vals) / len(vals)
    return out


# ---- hypothesis: a convolution problem -----------------------------------------------------
@st.composite
def conv_problem(draw, max_c=3):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["valid", "same"]))
    h, w = draw(st.integers(kh, 7)), draw(st.integers(kw, 7))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, max_c))
    seed = draw(st.integers(0, 2 ** 16))
    x = np.random.default_rng(seed).uniform(-1, 1, (n, h, w, c))
    return x, (kh, kw), (sh, sw), padding, seed


@given(conv_problem(), st.integers(1, 3), st.booleans())
def test_conv2d_forward_matches_naive_loops(problem, cout, use_bias):
    x, (kh, kw), strides, padding, seed = problem
    rng = np.random.default_rng(seed + 1)
    w = rng.uniform(-1, 1, (kh, kw, x.shape[3], cout))
    b = rng.uniform(-1, 1, cout) if use_bias else np.zeros(cout)
    out = ops.conv2d(Tensor(x), Tensor(w), Tensor(b) if use_bias else None, strides, padding)
    np.testing.assert_allclose(out.data, naive_conv2d(x, w, b, strides, padding), atol=1e-12)


@given(conv_problem(), st.integers(1, 2))
def test_conv2d_gradients(problem, cout):
    x, (kh, kw), strides, padding, seed = problem
    rng = np.random.default_rng(seed + 1)
    w, b = rng.uniform(-1, 1, (kh, kw, x.shape[3], cout)), rng.uniform(-1, 1, cout)
    gradcheck(lambda x_, w_, b_: ops.conv2d(x_, w_, b_, strides, padding), x, w, b)
    gradcheck(lambda x_, w_: ops.conv2d(x_, w_, None, strides, padding), x, w)


@given(conv_problem(), st.integers(1, 3), st.booleans())
def test_depthwise_forward_matches_naive_loops(problem, m, use_bias):
    x, (kh, kw), strides, padding, seed = problem
    rng = np.random.default_rng(seed + 1)
    c = x.shape[3]
    w = rng.uniform(-1, 1, (kh, kw, c, m))
    b = rng.uniform(-1, 1, c * m) if use_bias else np.zeros(c * m)
    out = ops.depthwise_conv2d(Tensor(x), Tensor(w), Tensor(b) if use_bias else None,
                               strides, padding)
    np.testing.assert_allclose(out.data, naive_depthwise(x, w, b, strides, padding), atol=1e-12)


@given(conv_problem(), st.integers(1, 2))
def test_depthwise_gradients(problem, m):
    x, (kh, kw), strides, padding, seed = problem
    rng = np.random.default_rng(seed + 1)
    c = x.shape[3]
    w, b = rng.uniform(-1, 1, (kh, kw, c, m)), rng.uniform(-1, 1, c * m)
    gradcheck(lambda x_, w_, b_: ops.depthwise_conv2d(x_, w_, b_, strides, padding), x, w, b)


def distinct(x):
    """Same order as x with gaps of at least 0.4, so each max-pool window has one winner."""
    ranks = np.argsort(np.argsort(x, axis=None, kind="stable")).reshape(x.shape)
    return ranks + 0.3 * np.tanh(x)


@given(conv_problem())
def test_max_pool_forward_and_gradient(problem):
    x, k, strides, padding, _ = problem
    x = distinct(x)
    out = gradcheck(lambda t: ops.max_pool2d(t, k, strides, padding), x)
    np.testing.assert_array_equal(out.data, naive_pool(x, k, strides, padding, "max"))


@given(conv_problem())
def test_avg_pool_forward_and_gradient(problem):
    x, k, strides, padding, _ = problem
    out = gradcheck(lambda t: ops.avg_pool2d(t, k, strides, padding), x)
    np.testing.assert_allclose(out.data, naive_pool(x, k, strides, padding, "avg"), atol=1e-12)


def test_max_pool_gradient_goes_to_one_winner_on_ties():
    # relu before max pooling makes whole windows of zeros: only one may get the gradient
    x = Tensor(np.zeros((1, 2, 2, 1)), requires_grad=True)
    ops.max_pool2d(x, 2).sum().backward()
    assert x.grad.sum() == 1.0


def test_pool_strides_default_to_pool_size():
    x = Tensor(np.arange(16.0).reshape(1, 4, 4, 1))
    np.testing.assert_array_equal(ops.max_pool2d(x, (2, 2)).data[0, :, :, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(ops.avg_pool2d(x, 2).data[0, :, :, 0],
                                  [[2.5, 4.5], [10.5, 12.5]])


@given(conv_problem())
def test_global_avg_pool(problem):
    x = problem[0]
    out = gradcheck(ops.global_avg_pool2d, x)
    naive = [[sum(x[n, i, j, c] for i in range(x.shape[1]) for j in range(x.shape[2])) /
              (x.shape[1] * x.shape[2]) for c in range(x.shape[3])] for n in range(x.shape[0])]
    np.testing.assert_allclose(out.data, naive)


# ---- dropout -------------------------------------------------------------------------------
def test_dropout_inference_is_identity_and_training_scales_survivors():
    x = Tensor(np.ones((200, 100), np.float32), requires_grad=True)
    assert ops.dropout(x, 0.3, training=False) is x
    y = ops.dropout(x, 0.3, training=True, seed=1)
    kept = y.data != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01            # 20,000 draws: sd ~ 0.003
    np.testing.assert_allclose(y.data[kept], 1 / 0.7, rtol=1e-6)
    assert y.dtype == np.float32
    y.sum().backward()
    np.testing.assert_allclose(x.grad, y.data)          # d/dx = mask / (1 - rate)


def test_dropout_draws_from_the_global_generator():
    import minitiny.random as mtr
    x = Tensor(np.ones((4, 50)))
    mtr.seed(5)
    a = ops.dropout(x, 0.5, training=True).data
    mtr.seed(5)
    np.testing.assert_array_equal(a, ops.dropout(x, 0.5, training=True).data)
    assert not np.array_equal(a, ops.dropout(x, 0.5, training=True).data)


def test_constant_input_gets_no_gradient_but_weights_do():
    # a network's first layer: the images are data, only the kernel and bias learn
    x = np.random.default_rng(0).standard_normal((2, 5, 5, 2))
    w = np.random.default_rng(1).standard_normal((3, 3, 2, 3))
    gradcheck(lambda x_, w_, b_: ops.conv2d(x_, w_, b_, 1, "same"), x, w, np.ones(3),
              wrt=[1, 2])
    gradcheck(lambda x_, w_: ops.depthwise_conv2d(x_, w_, None, 2, "same"), x, w[..., :1],
              wrt=[1])


def test_dropout_gradient():
    x = np.random.default_rng(0).standard_normal((3, 5))
    gradcheck(lambda t: ops.dropout(t, 0.5, training=True, seed=3), x)


def test_dropout_rejects_bad_rate():
    with pytest.raises(ValueError, match="rate"):
        ops.dropout(Tensor(np.ones(3)), 1.0, training=True)


# ---- errors name the shapes ----------------------------------------------------------------
def test_conv_channel_mismatch_names_shapes():
    x, w = Tensor(np.ones((1, 5, 5, 3))), Tensor(np.ones((3, 3, 1, 8)))
    with pytest.raises(ValueError, match=r"3 channels.*\(1, 5, 5, 3\).*\(3, 3, 1, 8\)"):
        ops.conv2d(x, w)
    with pytest.raises(ValueError, match=r"\(1, 5, 5, 3\).*\(3, 3, 1, 8\)"):
        ops.depthwise_conv2d(x, w)
    with pytest.raises(ValueError, match=r"bias shape \(4,\)"):
        ops.conv2d(x, Tensor(np.ones((3, 3, 3, 8))), Tensor(np.ones(4)))


def test_geometry_errors():
    x = Tensor(np.ones((1, 2, 2, 1)))
    with pytest.raises(ValueError, match=r"3x3 is larger than the input 2x2"):
        ops.conv2d(x, Tensor(np.ones((3, 3, 1, 1))))
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        ops.max_pool2d(x, 2, padding="full")
    with pytest.raises(ValueError, match="strides"):
        ops.conv2d(x, Tensor(np.ones((1, 1, 1, 1))), strides=0)
    with pytest.raises(ValueError, match=r"NHWC.*\(2, 2\)"):
        ops.avg_pool2d(Tensor(np.ones((2, 2))))


def test_float32_stays_float32():
    x = Tensor(np.ones((1, 4, 4, 2), np.float32), requires_grad=True)
    w = Tensor(np.ones((3, 3, 2, 2), np.float32), requires_grad=True)
    for y in (ops.conv2d(x, w, padding="same"), ops.depthwise_conv2d(x, w),
              ops.max_pool2d(x), ops.avg_pool2d(x, 3, 1, "same"), ops.global_avg_pool2d(x)):
        assert y.dtype == np.float32
        y.sum().backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32
