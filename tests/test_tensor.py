"""Tensor autodiff: every op's gradient against central finite differences (float64),
broadcasting, accumulation, no_grad, dtypes, stability and error messages."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minitiny.random as mtr
from gradcheck import gradcheck
from minitiny.tensor import Tensor, concatenate, is_grad_enabled, no_grad, stack

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def values(shape, lo=-3.0, hi=3.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(lo, hi))


def away_from(x, kinks, gap=0.1):
    """Move values at least `gap` away from the points where an op has a kink."""
    for k in kinks:
        x = np.where(np.abs(x - k) < gap, k + np.where(x >= k, gap, -gap), x)
    return x


def distinct(x):
    """Same order as x but with gaps of at least 0.4, so a max has one clear winner."""
    ranks = np.argsort(np.argsort(x, axis=None, kind="stable")).reshape(x.shape)
    return ranks + 0.3 * np.tanh(x)


# ---- binary arithmetic with broadcasting -------------------------------------------------
@given(st.data(), hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
       st.sampled_from(["add", "sub", "mul", "div", "radd", "rsub", "rmul", "rdiv"]))
def test_binary_ops_gradients_broadcast(data, bshapes, op):
    sa, sb = bshapes.input_shapes
    a = data.draw(values(sa))
    b = data.draw(values(sb, 0.5, 3.0))       # a denominator away from zero
    fns = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y,
           "mul": lambda x, y: x * y, "div": lambda x, y: x / y,
           "radd": lambda x, y: y.__radd__(x), "rsub": lambda x, y: y.__rsub__(x),
           "rmul": lambda x, y: y.__rmul__(x), "rdiv": lambda x, y: y.__rtruediv__(x)}
    out = gradcheck(fns[op], a, b)
    assert out.shape == bshapes.result_shape


@given(st.data(), shapes, st.sampled_from([2, 3, 0.5, -1.0, 1.5]))
def test_pow_and_neg_gradients(data, shape, p):
    x = data.draw(values(shape, 0.5, 2.0))
    gradcheck(lambda t: t ** p, x)
    gradcheck(lambda t: -t, x)


def test_constants_on_either_side():
    x = Tensor(np.array([1.0, 2.0, 4.0]), requires_grad=True)
    y = 2.0 - x * 3 + 1 / x + np.array([1.0, 1.0, 1.0])
    y.sum().backward()
    np.testing.assert_allclose(y.data, 2.0 - 3 * x.data + 1 / x.data + 1)
    np.testing.assert_allclose(x.grad, -3 - 1 / x.data ** 2)     # d/dx (2 - 3x + 1/x)
    x.zero_grad()                              # an ndarray or NumPy scalar on the left:
    z1 = np.full(3, 2.0) * x                   # NumPy defers to Tensor's reflected ops
    z2 = np.float64(1.0) / x
    z3 = np.ones((2, 3)) @ x.reshape(3, 1)     # (2, 1)
    assert all(isinstance(z, Tensor) for z in (z1, z2, z3))
    (z1.sum() - z2.sum() + z3.sum()).backward()
    np.testing.assert_allclose(x.grad, 2 + 1 / x.data ** 2 + 2)


def test_broadcast_error_names_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) do not broadcast"):
        Tensor(np.ones((2, 3))) + Tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2,\)"):
        Tensor(np.ones((2, 3))) * np.ones(2)


# ---- matmul --------------------------------------------------------------------------------
@given(st.data(), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4),
       st.sampled_from([(), (2,), (3, 1)]), st.sampled_from([(), (1,), (2,)]))
def test_matmul_gradients(data, n, k, m, batch_x, batch_w):
    if batch_x == (3, 1) and batch_w == (2,):
        batch_w = (1,)                          # keep the batch dims broadcastable
    x = data.draw(values(batch_x + (n, k)))
    w = data.draw(values(batch_w + (k, m)))
    out = gradcheck(lambda a, b: a @ b, x, w)
    np.testing.assert_allclose(out.data, np.matmul(x, w))


def test_matmul_shape_error_names_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        Tensor(np.ones(3)) @ Tensor(np.ones((3, 2)))


# ---- shape ops ---------------------------------------------------------------------------
@given(st.data(), hnp.array_shapes(min_dims=2, max_dims=4, max_side=3))
def test_reshape_transpose_flatten_gradients(data, shape):
    x = data.draw(values(shape))
    axes = data.draw(st.permutations(range(len(shape))))
    gradcheck(lambda t: t.transpose(*axes), x)
    gradcheck(lambda t: t.reshape(-1), x)
    gradcheck(lambda t: t.reshape((shape[0], -1)), x)
    out = gradcheck(lambda t: t.flatten(), x)
    assert out.shape == (shape[0], int(np.prod(shape[1:])))
    gradcheck(lambda t: t.T, x)


@given(st.data(), hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
def test_basic_indexing_gradient(data, shape):
    x = data.draw(values(shape))
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True))
    gradcheck(lambda t: t[index] * 1.0, x)


def test_integer_array_index_with_repeats_accumulates():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    x[np.array([0, 0, 2])].sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, 1.0])


@given(st.data(), hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
def test_pad_gradient(data, shape):
    x = data.draw(values(shape))
    width = data.draw(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                               min_size=len(shape), max_size=len(shape)))
    out = gradcheck(lambda t: t.pad(width, value=0.5), x)
    np.testing.assert_array_equal(out.data, np.pad(x, width, constant_values=0.5))


def test_reshape_error_names_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        Tensor(np.ones((2, 3))).reshape(4)


@given(st.data(), st.integers(1, 3), st.integers(0, 1))
def test_concatenate_and_stack_gradients(data, count, axis):
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=2, max_side=3))
    arrays = [data.draw(values(shape)) for _ in range(count)]
    gradcheck(lambda *ts: concatenate(ts, axis=axis), *arrays)
    out = gradcheck(lambda *ts: stack(ts, axis=axis), *arrays)
    np.testing.assert_array_equal(out.data, np.stack(arrays, axis=axis))


# ---- reductions ----------------------------------------------------------------------------
@given(st.data(), hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), st.booleans())
def test_sum_mean_max_gradients(data, shape, keepdims):
    x = data.draw(values(shape))
    axis = data.draw(st.none() | st.integers(-len(shape), len(shape) - 1) |
                     st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True)
                     .map(tuple))
    out = gradcheck(lambda t: t.sum(axis, keepdims), x)
    np.testing.assert_allclose(out.data, x.sum(axis=axis, keepdims=keepdims))
    gradcheck(lambda t: t.mean(axis, keepdims), x)
    xd = distinct(x)
    out = gradcheck(lambda t: t.max(axis, keepdims), xd)
    np.testing.assert_array_equal(out.data, xd.max(axis=axis, keepdims=keepdims))


def test_max_splits_gradient_between_ties():
    x = Tensor(np.array([[1.0, 3.0, 3.0], [0.0, -1.0, 2.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5], [0, 0, 1]])


def test_axis_out_of_range_is_a_clear_error():
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        Tensor(np.ones((2, 3))).sum(axis=2)


# ---- elementwise functions -----------------------------------------------------------------
@given(st.data(), shapes)
def test_smooth_unary_gradients(data, shape):
    x = data.draw(values(shape))
    gradcheck(lambda t: t.exp(), x)
    gradcheck(lambda t: t.sigmoid(), x)
    gradcheck(lambda t: t.tanh(), x)
    pos = np.abs(x) + 0.5
    gradcheck(lambda t: t.log(), pos)
    gradcheck(lambda t: t.sqrt(), pos)


@given(st.data(), shapes)
def test_piecewise_unary_gradients(data, shape):
    x = data.draw(values(shape, -8.0, 8.0))
    gradcheck(lambda t: t.relu(), away_from(x, [0.0]))
    gradcheck(lambda t: t.relu6(), away_from(x, [0.0, 6.0]))
    gradcheck(lambda t: t.clip(-1.5, 2.0), away_from(x, [-1.5, 2.0]))
    out = Tensor(x).relu6()
    np.testing.assert_array_equal(out.data, np.minimum(np.maximum(x, 0), 6))


@given(st.data(), hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
def test_softmax_and_log_softmax_gradients(data, shape):
    x = data.draw(values(shape, -5.0, 5.0))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    out = gradcheck(lambda t: t.softmax(axis), x)
    np.testing.assert_allclose(out.data.sum(axis=axis), 1.0)
    out = gradcheck(lambda t: t.log_softmax(axis), x)
    # independent formula: log(e^x_i / sum_j e^x_j)
    np.testing.assert_allclose(out.data, np.log(np.exp(x) / np.exp(x).sum(axis, keepdims=True)))


def test_sigmoid_softmax_log_softmax_stable_at_extremes():
    x = Tensor(np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0], dtype=np.float32))
    with np.errstate(over="raise", divide="raise", invalid="raise"):   # underflow to 0 is fine
        s = x.sigmoid().data
        # math.exp on the safe side of each value as the reference
        ref = [1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))
               for v in x.data.astype(float)]
        np.testing.assert_allclose(s, ref, rtol=1e-6)
        big = Tensor(np.array([[1000.0, 0.0], [-1000.0, -1000.0]], dtype=np.float32))
        np.testing.assert_allclose(big.softmax().data, [[1, 0], [0.5, 0.5]])
        # log_softmax([1000, 0]) = [0 - log(1 + e^-1000), -1000 - log(1 + e^-1000)] = [0, -1000]
        np.testing.assert_allclose(big.log_softmax().data, [[0, -1000], [-math.log(2)] * 2])


# ---- the graph: accumulation, no_grad, detach ----------------------------------------------
def test_tensor_used_twice_accumulates_gradient():
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    y = x * x + x                              # dy/dx = 2x + 1
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 1)


def test_backward_twice_accumulates_and_zero_grad_resets():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3.0                                # an intermediate between x and the loss
    loss = (h * h).sum()                       # d/dx = 18x
    loss.backward()
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * 18 * x.data)
    x.zero_grad()
    assert x.grad is None
    loss.backward()
    np.testing.assert_allclose(x.grad, 18 * x.data)


def test_same_gradient_to_two_leaves_is_not_shared():
    a, b = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    (a + b).sum().backward()
    a.grad *= 2                                # must not change b's gradient
    np.testing.assert_array_equal(b.grad, np.ones(3))


def test_no_grad_records_nothing():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        y = (x @ x).relu().sum()
    assert is_grad_enabled()
    assert not y.requires_grad and y._prev == () and y._backward is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()

    @no_grad()
    def f(t):
        return t * 2
    assert not f(x).requires_grad and (x * 2).requires_grad


def test_constants_and_detach_get_no_gradient():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = Tensor(np.array([3.0, 4.0]))
    (x * c + x.detach()).sum().backward()
    assert c.grad is None
    np.testing.assert_array_equal(x.grad, c.data)


def test_backward_needs_scalar_or_matching_grad():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"scalar.*\(2, 3\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        (x * 2).backward(np.ones(3))
    (x * 2).backward(np.full((2, 3), 0.5))
    np.testing.assert_array_equal(x.grad, np.ones((2, 3)))


def test_deep_graph_has_no_recursion_limit():
    x = Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + 1.0
    y.sum().backward()
    assert x.grad[0] == 1.0


# ---- dtypes, construction ------------------------------------------------------------------
def test_dtypes():
    assert Tensor([1, 2]).dtype == np.float32
    assert Tensor(np.arange(3)).dtype == np.float32
    assert Tensor(np.ones(3)).dtype == np.float64              # float64 stays float64
    assert Tensor(np.ones(3), dtype=np.float32).dtype == np.float32
    x = Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    y = ((x * 2.5 + np.ones(2) - np.float64(1.0)) / 3 ** 1).softmax().log_softmax()
    assert y.dtype == np.float32                               # constants adopt our dtype
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_properties():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and len(x) == 2
    assert isinstance(x.numpy(), np.ndarray) and Tensor(5.0).item() == 5.0
    assert "Tensor(" in repr(x)


def test_global_seed_reproducible():
    mtr.seed(7)
    a = mtr.rng().standard_normal(4)
    mtr.seed(7)
    np.testing.assert_array_equal(a, mtr.rng().standard_normal(4))
    np.testing.assert_array_equal(mtr.rng(3).random(2), mtr.rng(3).random(2))
    with pytest.raises(ValueError, match="seed"):
        mtr.seed(-1)


def test_numpy_reads_a_tensor_as_its_values():
    """As NumPy reads TensorFlow's tensors: np.argmax(tf.nn.softmax(logits)), formatting."""
    t = Tensor(np.array([0.5, 2.0, -1.0]))
    assert np.argmax(t) == 1 and np.asarray(t).tolist() == [0.5, 2.0, -1.0]
    assert f"{np.max(t) * 100:.1f}" == "200.0" and float(np.sum(t).data) == 1.5
    with pytest.raises(ValueError, match="no dtype= or out="):
        np.sum(t, dtype=np.float32)
