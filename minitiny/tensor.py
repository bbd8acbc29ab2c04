"""Tensor: a NumPy array that remembers how it was made, so gradients can flow back.

Reverse-mode automatic differentiation in the style of micrograd and early tinygrad.
Every operation computes its result from NumPy arrays and, right beside it, a `backward`
closure: given dL/d(out) it returns dL/d(input) for each input (the chain rule), using
only what the forward pass saved. `loss.backward()` visits the graph in reverse
topological order and ACCUMULATES into `.grad` of every tensor with `requires_grad`.

Conventions
* float32 by default; a float64 array stays float64 (the gradient checks use it).
  Constants (Python numbers, arrays) take the dtype of the tensor they meet.
* Broadcasting works as in NumPy; the gradient of a broadcast input is summed back over
  the axes it was stretched along (`_unbroadcast`).
* `with no_grad():` records nothing (evaluation, optimiser updates).
* A leaf's `.grad` (a weight's) is a writeable array no other leaf shares; an
  intermediate tensor's `.grad` may share memory with another gradient of the same pass.
"""
import numpy as np

from . import allocator

_grad_enabled = True


class no_grad:
    """Context manager (and decorator) inside which no operation records a graph."""

    def __enter__(self):
        global _grad_enabled
        self._prev, _grad_enabled = _grad_enabled, False

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        return wrapper


def is_grad_enabled():
    return _grad_enabled


def _as_array(data, dtype=None):
    """float32 unless asked otherwise; float64 arrays stay float64."""
    a = np.asarray(data)
    if dtype is not None:
        return a.astype(dtype, copy=False)
    if a.dtype == np.float32 or a.dtype == np.float64:
        return a
    return a.astype(np.float32)


def _unbroadcast(g, shape):
    """Sum g back to `shape`: undo NumPy broadcasting (leading axes, and axes of size 1)."""
    if g.shape == shape:
        return g
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _elementwise(ufunc, x, y):
    """ufunc(x, y) on the arrays, with an error that names the shapes if they don't fit."""
    try:
        return ufunc(x.data, y.data)
    except ValueError:
        raise ValueError(f"{ufunc.__name__}: shapes {x.data.shape} and {y.data.shape} do not "
                         "broadcast (NumPy rules: trailing axes equal or 1)") from None


def _is_basic(index):
    """True for NumPy basic indexing (ints, slices, None, ...): no position chosen twice."""
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, np.integer, slice))
               for i in items)


def _numpy_defaults(dtype, out):
    """np.sum(t), np.mean(t), np.max(t) call the Tensor's own method with dtype=None and
    out=None; other values would need a copy in another type or a buffer: refused."""
    if dtype is not None or out is not None:
        raise ValueError("a Tensor's sum, mean and max take no dtype= or out=; use "
                         "np.asarray(t) for NumPy's own")


def _axes(axis, ndim):
    """Normalise an `axis` argument to a tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axis = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in axis:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(int(a) % ndim for a in axis)


class Tensor:
    __slots__ = ("data", "grad", "requires_grad", "_prev", "_backward", "_g", "name")
    __array_ufunc__ = None        # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad=False, dtype=None, name=None):
        if isinstance(data, Tensor):
            data = data.data
        self.data = _as_array(data, dtype)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._prev = ()           # parent tensors, in the order backward returns their grads
        self._backward = None     # g -> tuple of grads (None where a parent needs none)
        self._g = None            # gradient collected during a backward pass
        self.name = name

    @staticmethod
    def make(data, parents, backward):
        """The result of an op: records `parents` and `backward` when a gradient is needed.

        `backward(g)` receives dL/d(out) and returns one gradient (or None) per parent.
        Custom ops (e.g. a fused loss) build their result with this.
        """
        out = Tensor.__new__(Tensor)
        out.data, out.grad, out._g, out.name = data, None, None, None
        out.requires_grad, out._prev, out._backward = False, (), None
        if _grad_enabled:
            for p in parents:
                if p.requires_grad:
                    out.requires_grad, out._prev, out._backward = True, parents, backward
                    break
        return out

    def _lift(self, other):
        """A constant operand becomes a Tensor of our dtype (no gradient)."""
        if isinstance(other, Tensor):
            return other
        return Tensor(np.asarray(other, dtype=self.data.dtype))

    # ---- plain properties -------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)
    T = property(lambda self: self.transpose())

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        g = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, precision=4, threshold=20)}, " \
               f"dtype={self.data.dtype}{g})"

    def numpy(self):
        return self.data

    def __format__(self, spec):
        """'{:.2f}'.format(t) formats the values, as for an ndarray."""
        return format(self.data.item() if self.data.ndim == 0 else self.data, spec)

    def __array__(self, dtype=None, copy=None):
        """NumPy reads a Tensor as its values, as it reads TensorFlow's tensors
        (np.argmax(tf.nn.softmax(logits))); the result is not tracked for gradients."""
        return self.data if dtype is None else self.data.astype(dtype)

    def item(self):
        return self.data.item()

    def detach(self):
        return Tensor(self.data)

    def zero_grad(self):
        self.grad = None

    # ---- the backward pass ------------------------------------------------------------
    def backward(self, grad=None):
        """Accumulate dself/dt into t.grad for every tensor t that self depends on."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad "
                               "(no input had requires_grad=True, or it was made under no_grad)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without grad= needs a scalar, got shape "
                                   f"{self.data.shape}")
            grad = np.ones(self.data.shape, self.data.dtype)
        else:
            grad = np.array(grad, dtype=self.data.dtype)      # a copy: never alias the caller's
            if grad.shape != self.data.shape:
                raise ValueError(f"backward(): grad shape {grad.shape} != tensor shape "
                                 f"{self.data.shape}")

        # Topological order by iterative depth-first search (deep graphs, no recursion limit):
        # a node is appended after every tensor it was made from.
        order, seen, stack = [], {self}, [(self, iter(self._prev))]
        while stack:
            node, parents = stack[-1]
            for p in parents:
                if p.requires_grad and p not in seen:
                    seen.add(p)
                    stack.append((p, iter(p._prev)))
                    break
            else:
                stack.pop()
                order.append(node)

        # Gradients of this pass collect in `_g`; only at the end are they added to `.grad`,
        # so calling backward twice accumulates (as PyTorch does) without double counting.
        self._g = grad
        try:
            for node in reversed(order):          # from the output back to the leaves
                g = node._g
                if g is None or node._backward is None:
                    continue
                for p, pg in zip(node._prev, node._backward(g)):
                    if pg is None or not p.requires_grad:
                        continue
                    if pg.dtype != p.data.dtype:
                        pg = pg.astype(p.data.dtype)
                    p._g = pg if p._g is None else p._g + pg  # a tensor used twice: add up
        except BaseException:
            for node in order:                    # leave no half-finished pass behind
                node._g = None
            raise
        for node in order:
            g, node._g = node._g, None
            if g is None:
                continue
            if node._backward is None and not g.flags.owndata:
                g = np.array(g)               # a leaf owns its .grad (no views, writeable)
            node.grad = g if node.grad is None else node.grad + g

    # ---- arithmetic (broadcasting) ----------------------------------------------------
    def __add__(self, other):
        x, y = self, self._lift(other)

        def backward(g):                      # d(x+y)/dx = 1, d(x+y)/dy = 1
            gx = _unbroadcast(g, x.data.shape) if x.requires_grad else None
            gy = _unbroadcast(g, y.data.shape) if y.requires_grad else None
            return gx, (gy.copy() if gy is gx and gy is not None else gy)
        return Tensor.make(_elementwise(np.add, x, y), (x, y), backward)

    def __sub__(self, other):
        x, y = self, self._lift(other)

        def backward(g):                      # d(x-y)/dx = 1, d(x-y)/dy = -1
            return (_unbroadcast(g, x.data.shape) if x.requires_grad else None,
                    -_unbroadcast(g, y.data.shape) if y.requires_grad else None)
        return Tensor.make(_elementwise(np.subtract, x, y), (x, y), backward)

    def __mul__(self, other):
        x, y = self, self._lift(other)

        def backward(g):                      # d(x*y)/dx = y, d(x*y)/dy = x
            return (_unbroadcast(g * y.data, x.data.shape) if x.requires_grad else None,
                    _unbroadcast(g * x.data, y.data.shape) if y.requires_grad else None)
        return Tensor.make(_elementwise(np.multiply, x, y), (x, y), backward)

    def __truediv__(self, other):
        x, y = self, self._lift(other)
        out = _elementwise(np.divide, x, y)

        def backward(g):                      # d(x/y)/dx = 1/y, d(x/y)/dy = -x/y^2 = -out/y
            gx = g / y.data if x.requires_grad else None
            return (_unbroadcast(gx, x.data.shape) if gx is not None else None,
                    _unbroadcast(-g * out / y.data, y.data.shape) if y.requires_grad else None)
        return Tensor.make(out, (x, y), backward)

    def __radd__(self, other):
        return self._lift(other) + self

    def __rsub__(self, other):
        return self._lift(other) - self

    def __rmul__(self, other):
        return self._lift(other) * self

    def __rtruediv__(self, other):
        return self._lift(other) / self

    def __neg__(self):
        return Tensor.make(-self.data, (self,), lambda g: (-g,))     # d(-x)/dx = -1

    def __pow__(self, p):
        if isinstance(p, Tensor):
            raise TypeError("Tensor ** Tensor is not supported; the exponent must be a number")
        x, p = self, float(p)

        def backward(g):                      # d(x^p)/dx = p x^(p-1)
            return (g * (p * x.data ** (p - 1)),)
        return Tensor.make(x.data ** p, (x,), backward)

    def __matmul__(self, other):
        x, w = self, self._lift(other)
        if x.data.ndim < 2 or w.data.ndim < 2 or x.data.shape[-1] != w.data.shape[-2]:
            raise ValueError(f"matmul: shapes {x.data.shape} and {w.data.shape} do not fit "
                             "(need (..., n, k) @ (..., k, m), both at least 2-D)")
        try:
            out = x.data @ w.data
        except ValueError:
            raise ValueError(f"matmul: batch dimensions of {x.data.shape} and {w.data.shape} "
                             "do not broadcast") from None

        def backward(g):                      # out = x w:  dL/dx = g w^T,  dL/dw = x^T g
            gx = _unbroadcast(g @ w.data.swapaxes(-1, -2), x.data.shape) \
                if x.requires_grad else None
            gw = _unbroadcast(x.data.swapaxes(-1, -2) @ g, w.data.shape) \
                if w.requires_grad else None
            return gx, gw
        return Tensor.make(out, (x, w), backward)

    def __rmatmul__(self, other):
        return self._lift(other) @ self

    # ---- shape ------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) \
            else shape
        try:
            out = self.data.reshape(shape)
        except ValueError:
            raise ValueError(f"cannot reshape a tensor of shape {self.data.shape} "
                             f"({self.data.size} values) into {shape}") from None
        in_shape = self.data.shape
        return Tensor.make(out, (self,), lambda g: (g.reshape(in_shape),))

    def flatten(self):
        """(N, ...) -> (N, prod(...)): keep the batch axis, as Keras' Flatten does."""
        if self.data.ndim < 1:
            raise ValueError("flatten needs at least one (batch) dimension")
        return self.reshape(self.data.shape[0], -1)

    def transpose(self, *axes):
        axes = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        axes = axes or tuple(reversed(range(self.data.ndim)))
        inverse = tuple(np.argsort(axes))
        return Tensor.make(self.data.transpose(axes), (self,),
                           lambda g: (g.transpose(inverse),))

    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index.data
        x = self

        def backward(g):                      # scatter g back into the selected positions
            gx = np.zeros_like(x.data)
            if _is_basic(index):
                gx[index] = g                  # slices and ints never select twice
            else:
                np.add.at(gx, index, g)        # integer arrays may repeat a position
            return (gx,)
        return Tensor.make(x.data[index], (x,), backward)

    def pad(self, pad_width, value=0.0):
        """NumPy-style pad_width: int, (before, after) or ((b0, a0), (b1, a1), ...)."""
        width = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (self.data.ndim, 2))
        if (width < 0).any():
            raise ValueError(f"pad: negative padding {pad_width!r}")
        out = np.pad(self.data, width, constant_values=value)
        crop = tuple(slice(b, b + n) for (b, _), n in zip(width, self.data.shape))
        return Tensor.make(out, (self,), lambda g: (g[crop],))    # d(pad x)/dx: crop

    # ---- reductions -------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False, dtype=None, out=None):
        _numpy_defaults(dtype, out)
        x, axes = self, _axes(axis, self.data.ndim)

        def backward(g):                      # d(sum x)/dx_i = 1: spread g back
            g = g if keepdims else np.expand_dims(g, axes)
            return (np.broadcast_to(g, x.data.shape),)
        return Tensor.make(np.asarray(x.data.sum(axis=axes, keepdims=keepdims)), (x,), backward)

    def mean(self, axis=None, keepdims=False, dtype=None, out=None):
        _numpy_defaults(dtype, out)
        axes = _axes(axis, self.data.ndim)
        n = int(np.prod([self.data.shape[a] for a in axes]))
        return self.sum(axes, keepdims) * (1.0 / max(n, 1))

    def max(self, axis=None, keepdims=False, out=None):
        _numpy_defaults(None, out)
        x, axes = self, _axes(axis, self.data.ndim)
        m = x.data.max(axis=axes, keepdims=True)

        def backward(g):                      # g goes to the maxima, split evenly between ties
            mask = x.data == m
            g = g if keepdims else np.expand_dims(g, axes)
            return (mask * (g / mask.sum(axis=axes, keepdims=True)),)
        return Tensor.make(m if keepdims else m.squeeze(axes), (x,), backward)

    # ---- elementwise functions --------------------------------------------------------
    def exp(self):
        out = np.exp(self.data)
        return Tensor.make(out, (self,), lambda g: (g * out,))           # d(e^x)/dx = e^x

    def log(self):
        x = self.data
        return Tensor.make(np.log(x), (self,), lambda g: (g / x,))       # d(ln x)/dx = 1/x

    def sqrt(self):
        out = np.sqrt(self.data)
        return Tensor.make(out, (self,), lambda g: (g / (2 * out),))    # d(sqrt x) = 1/(2 sqrt x)

    def relu(self):
        # max(x, 0) as x * (x > 0): NumPy's multiply by a mask is faster than np.maximum
        positive = self.data > 0
        return Tensor.make(self.data * positive, (self,),
                           lambda g: (g * positive,))                  # 1 where x > 0, else 0

    def relu6(self):
        x = self.data
        out = np.clip(x, 0, 6)
        return Tensor.make(out, (self,), lambda g: (g * ((x > 0) & (x < 6)),))

    def clip(self, lo, hi):
        x = self.data
        out = np.clip(x, lo, hi)
        return Tensor.make(out, (self,), lambda g: (g * ((x >= lo) & (x <= hi)),))

    def sigmoid(self):
        # 1/(1+e^-x) overflows for very negative x; with e = e^-|x| both branches are safe:
        # x >= 0: 1/(1+e),   x < 0: e/(1+e).
        x = self.data
        e = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1, e) / (1 + e)
        return Tensor.make(out, (self,), lambda g: (g * out * (1 - out),))   # s' = s(1-s)

    def tanh(self):
        out = np.tanh(self.data)
        return Tensor.make(out, (self,), lambda g: (g * (1 - out * out),))   # tanh' = 1-tanh^2

    def softmax(self, axis=-1):
        # softmax(x) = e^(x - max x) / sum e^(x - max x): subtracting the max avoids overflow.
        e = np.exp(self.data - self.data.max(axis=axis, keepdims=True))
        out = e / e.sum(axis=axis, keepdims=True)

        def backward(g):                      # dL/dx = s * (g - sum(g * s))
            return (out * (g - (g * out).sum(axis=axis, keepdims=True)),)
        return Tensor.make(out, (self,), backward)

    def log_softmax(self, axis=-1):
        # log softmax(x) = (x - max) - log(sum e^(x - max)): never takes the log of 0.
        z = self.data - self.data.max(axis=axis, keepdims=True)
        out = z - np.log(np.exp(z).sum(axis=axis, keepdims=True))

        def backward(g):                      # dL/dx = g - softmax(x) * sum(g)
            return (g - np.exp(out) * g.sum(axis=axis, keepdims=True),)
        return Tensor.make(out, (self,), backward)


def concatenate(tensors, axis=0):
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    try:
        out = np.concatenate([t.data for t in tensors], axis=axis)
    except ValueError:
        raise ValueError("concatenate: shapes " + ", ".join(str(t.shape) for t in tensors) +
                         f" do not fit along axis {axis}") from None
    bounds = np.cumsum([t.data.shape[axis] for t in tensors])[:-1]

    def backward(g):                          # each input gets its slice of g
        return tuple(np.split(g, bounds, axis=axis))
    return Tensor.make(out, tuple(tensors), backward)


def stack(tensors, axis=0):
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors need the same shape, got {sorted(shapes)}")
    return concatenate([t.reshape(t.shape[:axis % (t.ndim + 1)] + (1,) +
                                  t.shape[axis % (t.ndim + 1):]) for t in tensors], axis)


allocator.warm_up()          # keep big blocks on the heap (allocator.py)
