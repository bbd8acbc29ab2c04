"""The one helper that checks an op's gradient: backward() against central differences.

In the spirit of tinygrad's `helper_test_op`. Everything runs in float64 so the finite
differences are accurate to ~1e-8. The op is reduced to a scalar with a fixed random
weighting, L = sum(f(x) * R), so every output element matters (a plain sum would give
softmax a gradient of exactly zero and test nothing).

    dL/dx_i  ~=  (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)        (error O(eps^2))
"""
import numpy as np

from minitiny.tensor import Tensor, no_grad


def numerical_grad(loss, arrays, k, eps):
    """Central differences of the scalar `loss(arrays)` with respect to arrays[k]."""
    x = arrays[k]
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)        # views: edit x in place
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = loss(arrays)
        flat[i] = old - eps
        down = loss(arrays)
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def gradcheck(fn, *inputs, wrt=None, eps=1e-6, atol=1e-6, rtol=1e-5, seed=0):
    """Assert that the gradients of `fn(*tensors)` match central finite differences.

    inputs: arrays (converted to float64); wrt: indices of the inputs to differentiate
    (default: all). Returns the output of fn for further checks.
    """
    arrays = [np.array(a, dtype=np.float64) for a in inputs]
    wrt = range(len(arrays)) if wrt is None else wrt
    tensors = [Tensor(a.copy(), requires_grad=(k in wrt)) for k, a in enumerate(arrays)]
    out = fn(*tensors)
    assert out.dtype == np.float64, f"op changed float64 into {out.dtype}"
    weights = np.random.default_rng(seed).standard_normal(out.shape)

    (out * weights).sum().backward()

    def loss(arrs):
        with no_grad():
            return float((fn(*[Tensor(a) for a in arrs]).data * weights).sum())

    for k in wrt:
        analytic = tensors[k].grad
        assert analytic is not None, f"input {k} got no gradient"
        assert analytic.shape == arrays[k].shape, \
            f"input {k}: gradient shape {analytic.shape} != input shape {arrays[k].shape}"
        numeric = numerical_grad(loss, arrays, k, eps)
        np.testing.assert_allclose(analytic, numeric, atol=atol, rtol=rtol,
                                   err_msg=f"gradient of input {k} (shape {arrays[k].shape})")
    return out
