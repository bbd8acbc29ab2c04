"""Layers with Keras' names, arguments, defaults and weight layouts.

A layer owns its weights (an ordered dict name -> Tensor, Keras' order) and maps an input
Tensor to an output Tensor. Shapes given to `build` and stored in `input_shape` /
`output_shape` leave out the batch axis N, as Keras' `input_shape=` does. The batch is
always the first axis; images are NHWC.

    Dense                  (N, in)         -> (N, units)          kernel (in, units), bias
    Conv2D                 (N, H, W, C)    -> (N, Ho, Wo, filters) kernel (kh, kw, C, filters)
    DepthwiseConv2D        (N, H, W, C)    -> (N, Ho, Wo, C*M)    depthwise_kernel (kh, kw, C, M)
    MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Flatten, Reshape,
    Dropout, BatchNormalization, Activation, ReLU, Add, InputLayer / Input

Dense, Conv2D and DepthwiseConv2D apply their `activation` themselves ("fused"), as
TFLite's kernels do; `_linear` is the part before the activation (the logits that the
losses prefer, see losses.py).

Calling a layer on `Input(...)` placeholders builds a graph instead of computing
(functional API, see models.py): `y = Conv2D(8, 3)(x)` records that y comes from x.
"""
import math
import re

import numpy as np

from minitiny import geometry, initializers, nn, ops
from minitiny import regularizers as mt_regularizers
from minitiny.arguments import refuse_arguments
from minitiny.geometry import shape_str
from minitiny.tensor import Tensor

# ---- activations, by name (stored as strings so the quantizer and the C know them) ------
# minitiny/nn.py holds the functions (tf.nn.relu, ...) and turns a function into its name.
ACTIVATIONS = nn.ACTIVATIONS


# ---- initialisers (minitiny/initializers.py; Keras': glorot_uniform kernels, zero biases) --
_placeholders = [False]     # True inside placeholder_weights(): weights are zeros, no draws


class placeholder_weights:
    """Inside `with placeholder_weights():` new layers get zero weights instead of drawing
    them: loading a model overwrites every weight anyway, so it neither spends time nor
    moves minitiny.random's stream on them (and np.zeros does not touch memory, so a file
    declaring an absurd size is refused at the shape check, not after filling gigabytes)."""

    def __enter__(self):
        self.saved, _placeholders[0] = _placeholders[0], True

    def __exit__(self, *exc):
        _placeholders[0] = self.saved


def _initializer(value, what, layer):
    """A layer's initializer argument, checked when the layer is made (not at build): a name
    or an Initializer stays as given, Keras' config dict becomes its Initializer."""
    init = initializers.get(value, f"layer {layer!r}: {what}")
    return value if isinstance(value, str) else init


def initialize(kind, shape, dtype="float32"):
    """The first values of a weight: `kind` a name ('he_normal'), an Initializer or Keras'
    config dict (minitiny/initializers.py); draws from minitiny.random unless it has a seed."""
    init = initializers.get(kind)
    if _placeholders[0]:
        return np.zeros(shape, dtype)
    return init(shape, dtype)


# ---- names ------------------------------------------------------------------------------
_name_counts = {}


def _snake_case(name):
    """Keras' to_snake_case: Conv2D -> conv2d, BatchNormalization -> batch_normalization."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(prefix):
    """'dense', then 'dense_1', 'dense_2', ... (Keras' automatic names)."""
    n = _name_counts.get(prefix, 0)
    _name_counts[prefix] = n + 1
    return prefix if n == 0 else f"{prefix}_{n}"


def _pair(v, what, layer):
    return geometry.pair(v, f"layer {layer!r}: {what}")


def _padding(p, layer):
    return geometry.check_padding(p, f"layer {layer!r}: padding")


# ---- registry: saved configs name a class, looked up here (never imported dynamically) --
LAYERS = {}


def layer_from_config(cfg):
    """{'class_name': 'Dense', 'config': {...}} -> a new, unbuilt layer."""
    cls = LAYERS.get(cfg.get("class_name"))
    if cls is None:
        raise ValueError(f"unknown layer class {cfg.get('class_name')!r}; known: "
                         f"{sorted(LAYERS)}")
    return cls(**cfg.get("config", {}))


# ---- the functional API's placeholder ----------------------------------------------------
class SymbolicTensor:
    """What `Input(shape)` and a layer called on it return: a shape (without batch) and the
    layer that produces it. No numbers; Model(inputs, outputs) walks these back."""

    def __init__(self, shape, layer, inputs):
        self._shape, self.layer, self.inputs = tuple(shape), layer, list(inputs)

    shape = property(lambda self: (None,) + self._shape)      # Keras shows the batch as None
    name = property(lambda self: self.layer.name)

    def __repr__(self):
        return f"<SymbolicTensor shape={self.shape} from {self.layer.name!r}>"


# ---- the base class ----------------------------------------------------------------------
class Layer:
    n_inputs = 1            # Add takes a list of >= 2

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if not cls.__name__.startswith("_"):
            LAYERS[cls.__name__] = cls

    def __init__(self, name=None, trainable=True, dtype="float32", input_shape=None,
                 input_dim=None, **unsupported):
        if unsupported:
            refuse_arguments(type(self).__name__, unsupported, type(self).__mro__)
        if input_dim is not None:               # Keras 2's Dense(32, input_dim=784)
            input_shape = (input_dim,)
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"layer name must be a non-empty string, got {name!r}")
        self.name = name or unique_name(_snake_case(type(self).__name__))
        if str(np.dtype(dtype)) not in ("float32", "float64"):
            raise ValueError(f"layer {self.name!r}: dtype must be float32 or float64, got {dtype}")
        self.dtype = str(np.dtype(dtype))
        self.weights = {}                   # name -> Tensor, in Keras' order
        self._trainable_names = set()       # which of them the optimizer may change
        self._trainable = bool(trainable)
        self.built = False
        self.input_shape = self.output_shape = None
        self.declared_input_shape = None if input_shape is None else tuple(input_shape)
        self._inbound = None                # set once the layer is used in a functional graph
        self.regularizers = {}              # weight name -> Regularizer (its penalty joins the loss)

    # ---- weights ----------------------------------------------------------------------
    def add_weight(self, name, shape, initializer, trainable=True):
        t = Tensor(initialize(initializer, tuple(shape), self.dtype),
                   requires_grad=trainable and self._trainable, name=f"{self.name}/{name}")
        self.weights[name] = t
        if trainable:
            self._trainable_names.add(name)
        return t

    def _set_regularizers(self, **by_weight):
        """kernel=..., bias=...: Keras' *_regularizer arguments, checked now."""
        for weight, r in by_weight.items():
            r = mt_regularizers.get(r, f"layer {self.name!r} {weight}_regularizer")
            if r is not None:
                self.regularizers[weight] = r

    def _regularizer_config(self, **names):
        """{'kernel_regularizer': {...} or None, ...} for get_config."""
        return {arg: mt_regularizers.serialize(self.regularizers.get(weight))
                for arg, weight in names.items()}

    def regularization_losses(self):
        """The penalties of this layer's trainable regularized weights (scalar Tensors)."""
        if not self._trainable:
            return []
        return [r(self.weights[n]) for n, r in self.regularizers.items() if n in self.weights]

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """False freezes the layer: fit leaves its weights alone (transfer learning)."""
        self._trainable = bool(value)
        for n in self._trainable_names:
            self.weights[n].requires_grad = self._trainable

    @property
    def trainable_weights(self):
        if not self._trainable:
            return []
        return [t for n, t in self.weights.items() if n in self._trainable_names]

    @property
    def non_trainable_weights(self):
        return [t for n, t in self.weights.items()
                if not (self._trainable and n in self._trainable_names)]

    def get_weights(self):
        return [t.data.copy() for t in self.weights.values()]

    def set_weights(self, arrays):
        if not self.built:
            raise ValueError(f"layer {self.name!r} is not built yet; call it on data or put it "
                             "in a model with a known input shape first")
        arrays = list(arrays)
        if len(arrays) != len(self.weights):
            raise ValueError(f"layer {self.name!r} has {len(self.weights)} weights "
                             f"({', '.join(self.weights) or 'none'}), got {len(arrays)} arrays")
        for (n, t), a in zip(self.weights.items(), arrays):
            a = np.asarray(a)
            if a.shape != t.data.shape:
                raise ValueError(f"layer {self.name!r}: weight {n!r} has shape {t.data.shape}, "
                                 f"got an array of shape {a.shape}")
        for t, a in zip(self.weights.values(), arrays):
            np.copyto(t.data, a, casting="unsafe")     # in place: optimizers keep their state

    def count_params(self):
        return int(sum(t.data.size for t in self.weights.values()))

    # ---- building and calling ---------------------------------------------------------
    def _make_weights(self, input_shape):
        """Subclasses create their weights here, for inputs of `input_shape` (no batch)."""

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def build(self, input_shape):
        """Build for samples of `input_shape` (no batch axis; Keras' leading None is dropped):
        check the shape fits, create the weights, set input_shape / output_shape. Once
        built, insist on the same input shape. Calling the layer builds it on first use."""
        if self.n_inputs == 1 and input_shape and input_shape[0] is None:
            input_shape = input_shape[1:]
        input_shape = self._normalize_shape(input_shape)
        if self.built:
            if input_shape != self.input_shape:
                raise ValueError(f"layer {self.name!r} expects input "
                                 f"{self._shape_text(self.input_shape)}, got "
                                 f"{self._shape_text(input_shape)}")
            return
        out = self.compute_output_shape(input_shape)     # raises if the shape does not fit
        self._make_weights(input_shape)
        self.input_shape, self.output_shape, self.built = input_shape, tuple(out), True

    ensure_built = build                                   # the same, under a clearer name

    def _normalize_shape(self, s):
        return tuple(int(d) for d in s)

    @staticmethod
    def _shape_text(s):
        if s and isinstance(s[0], tuple):
            return " and ".join(shape_str(x) for x in s)
        return shape_str(s)

    def _expect(self, what, input_shape, hint=""):
        """The error every shape check raises: names the layer, the need and the shape."""
        raise ValueError(f"layer {self.name!r} expects input {what}, got "
                         f"{self._shape_text(input_shape)}{hint}")

    def __call__(self, inputs, training=False):
        if isinstance(inputs, SymbolicTensor) or (
                isinstance(inputs, (list, tuple)) and inputs
                and all(isinstance(t, SymbolicTensor) for t in inputs)):
            return self._call_symbolic(inputs)
        if self.n_inputs == 1:
            x = inputs if isinstance(inputs, Tensor) else Tensor(inputs, dtype=self.dtype)
            self.ensure_built(x.shape[1:])
        else:
            x = [t if isinstance(t, Tensor) else Tensor(t, dtype=self.dtype) for t in inputs]
            self.ensure_built([t.shape[1:] for t in x])
        return self.call(x, training=training)

    def _call_symbolic(self, inputs):
        ins = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if self.n_inputs == 1 and len(ins) != 1:
            raise ValueError(f"layer {self.name!r} takes one input, got {len(ins)}")
        if self._inbound is not None:
            raise ValueError(f"layer {self.name!r} is already used in a graph; minitiny does "
                             "not share a layer between two places, create a second layer")
        self.ensure_built([t._shape for t in ins] if self.n_inputs != 1 else ins[0]._shape)
        self._inbound = ins
        return SymbolicTensor(self.output_shape, self, ins)

    def call(self, x, training=False):
        raise NotImplementedError

    def macs(self, input_shape=None):
        """Multiply-accumulates for one sample (0 for layers without a matmul or conv)."""
        return 0

    def get_config(self):
        return {"name": self.name, "trainable": self._trainable, "dtype": self.dtype}

    @classmethod
    def from_config(cls, cfg):
        return cls(**cfg)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} output_shape={self.output_shape}>"


# ---- the input placeholder ----------------------------------------------------------------
class InputLayer(Layer):
    """Stands for the model's input; models refer to it by name (the graph's input_name)."""

    def __init__(self, shape=None, name=None, input_shape=None, **kw):
        shape = shape if shape is not None else input_shape
        if shape is None:
            raise ValueError("InputLayer needs shape=, the shape of one sample (no batch)")
        super().__init__(name=name, **kw)
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if not all(isinstance(d, (int, np.integer)) and d >= 1 for d in shape):
            raise ValueError(f"Input shape must be positive integers (no batch axis), got {shape}")
        self.ensure_built(shape)

    def call(self, x, training=False):
        return x

    def get_config(self):
        return {**super().get_config(), "shape": list(self.input_shape)}


def Input(shape, name=None, dtype="float32"):
    """keras.Input: a placeholder for one sample of `shape` (no batch) -> SymbolicTensor."""
    layer = InputLayer(shape=shape, name=name, dtype=dtype)
    return SymbolicTensor(layer.input_shape, layer, [])


# ---- Dense ------------------------------------------------------------------------------
def dense(x, w, b=None):
    """y = x W + b.   x (N, in), W (in, units), b (units,) -> (N, units)

    dL/dx = g W^T,   dL/dW = x^T g,   dL/db = sum_n g      (one op: no temporaries)
    """
    out = x.data @ w.data
    if b is not None:
        out += b.data
    parents = (x, w) if b is None else (x, w, b)

    def backward(g):
        gx = g @ w.data.T if x.requires_grad else None
        gw = x.data.T @ g if w.requires_grad else None
        if b is None:
            return gx, gw
        return gx, gw, (g.sum(axis=0) if b.requires_grad else None)
    return Tensor.make(out, parents, backward)


class Dense(Layer):
    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kw):
        super().__init__(**kw)
        self._set_regularizers(kernel=kernel_regularizer, bias=bias_regularizer)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"layer {self.name!r}: units must be a positive integer, "
                             f"got {units!r}")
        self.units, self.use_bias = int(units), bool(use_bias)
        self.activation = nn.activation_name(activation, f"layer {self.name!r}")
        self.kernel_initializer = _initializer(kernel_initializer, "kernel_initializer", self.name)
        self.bias_initializer = _initializer(bias_initializer, "bias_initializer", self.name)

    def _normalize_shape(self, s):
        s = super()._normalize_shape(s)
        return (1,) if s == () else s          # Keras: a (N,) input is (N, 1)

    def compute_output_shape(self, s):
        if len(s) != 1:
            self._expect("(N, features)", s, "; add a Flatten layer before it")
        return (self.units,)

    def _make_weights(self, s):
        self.kernel = self.add_weight("kernel", (s[0], self.units), self.kernel_initializer)
        self.bias = self.add_weight("bias", (self.units,), self.bias_initializer) \
            if self.use_bias else None

    def _linear(self, x, training=False):
        if x.ndim == 1:
            x = x.reshape(-1, 1)                # (N,) -> (N, 1)
        return dense(x, self.kernel, self.bias)  # (N, units)

    def call(self, x, training=False):
        return ACTIVATIONS[self.activation](self._linear(x))

    def macs(self, input_shape=None):
        return (input_shape or self.input_shape)[0] * self.units

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias, "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                **self._regularizer_config(kernel_regularizer="kernel", bias_regularizer="bias")}


# ---- convolutions -----------------------------------------------------------------------
def _conv_out(layer, s, k, strides, padding):
    """(H, W) -> (Ho, Wo) by TensorFlow's rules ('same': ceil(in/stride))."""
    if len(s) != 3:
        layer._expect("(N, H, W, C)", s, "; add a Reshape layer to give it height, width "
                      "and channels")
    if padding == "valid" and (s[0] < k[0] or s[1] < k[1]):
        layer._expect(f"of at least {k[0]}x{k[1]} pixels for its {k[0]}x{k[1]} window "
                      "with padding 'valid'", s)
    return tuple(geometry.out_size(padding, n, kk, st) for n, kk, st in zip(s[:2], k, strides))


class Conv2D(Layer):
    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kw):
        super().__init__(**kw)
        self._set_regularizers(kernel=kernel_regularizer, bias=bias_regularizer)
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"layer {self.name!r}: filters must be a positive integer, "
                             f"got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size", self.name)
        self.strides = _pair(strides, "strides", self.name)
        self.padding = _padding(padding, self.name)
        self.activation = nn.activation_name(activation, f"layer {self.name!r}")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _initializer(kernel_initializer, "kernel_initializer", self.name)
        self.bias_initializer = _initializer(bias_initializer, "bias_initializer", self.name)

    def compute_output_shape(self, s):
        return _conv_out(self, s, self.kernel_size, self.strides, self.padding) + (self.filters,)

    def _make_weights(self, s):
        kh, kw = self.kernel_size
        self.kernel = self.add_weight("kernel", (kh, kw, s[2], self.filters),
                                      self.kernel_initializer)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer) \
            if self.use_bias else None

    def _linear(self, x, training=False):
        # (N, H, W, C) -> (N, Ho, Wo, filters)
        return ops.conv2d(x, self.kernel, self.bias, self.strides, self.padding)

    def call(self, x, training=False):
        return ACTIVATIONS[self.activation](self._linear(x))

    def macs(self, input_shape=None):
        s = input_shape or self.input_shape
        ho, wo = _conv_out(self, s, self.kernel_size, self.strides, self.padding)
        return ho * wo * self.kernel_size[0] * self.kernel_size[1] * s[2] * self.filters

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "activation": self.activation,
                "use_bias": self.use_bias, "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                **self._regularizer_config(kernel_regularizer="kernel", bias_regularizer="bias")}


class DepthwiseConv2D(Layer):
    """One kh x kw filter (times depth_multiplier) per input channel; output channel
    c * depth_multiplier + m, TensorFlow's order."""

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
                 activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 **kw):
        super().__init__(**kw)
        self._set_regularizers(depthwise_kernel=depthwise_regularizer, bias=bias_regularizer)
        self.kernel_size = _pair(kernel_size, "kernel_size", self.name)
        self.strides = _pair(strides, "strides", self.name)
        self.padding = _padding(padding, self.name)
        if not isinstance(depth_multiplier, (int, np.integer)) or depth_multiplier < 1:
            raise ValueError(f"layer {self.name!r}: depth_multiplier must be a positive "
                             f"integer, got {depth_multiplier!r}")
        self.depth_multiplier = int(depth_multiplier)
        self.activation = nn.activation_name(activation, f"layer {self.name!r}")
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = _initializer(depthwise_initializer, "depthwise_initializer",
                                                  self.name)
        self.bias_initializer = _initializer(bias_initializer, "bias_initializer", self.name)

    def compute_output_shape(self, s):
        hw = _conv_out(self, s, self.kernel_size, self.strides, self.padding)
        return hw + (s[2] * self.depth_multiplier,)

    def _make_weights(self, s):
        kh, kw = self.kernel_size
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel", (kh, kw, s[2], self.depth_multiplier), self.depthwise_initializer)
        self.bias = self.add_weight("bias", (s[2] * self.depth_multiplier,),
                                    self.bias_initializer) if self.use_bias else None

    def _linear(self, x, training=False):
        # (N, H, W, C) -> (N, Ho, Wo, C * M)
        return ops.depthwise_conv2d(x, self.depthwise_kernel, self.bias, self.strides,
                                    self.padding)

    def call(self, x, training=False):
        return ACTIVATIONS[self.activation](self._linear(x))

    def macs(self, input_shape=None):
        s = input_shape or self.input_shape
        ho, wo = _conv_out(self, s, self.kernel_size, self.strides, self.padding)
        return ho * wo * self.kernel_size[0] * self.kernel_size[1] * s[2] * self.depth_multiplier

    def get_config(self):
        return {**super().get_config(), "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "depth_multiplier": self.depth_multiplier, "activation": self.activation,
                "use_bias": self.use_bias, "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                **self._regularizer_config(depthwise_regularizer="depthwise_kernel", bias_regularizer="bias")}


# ---- pooling ----------------------------------------------------------------------------
class _Pooling2D(Layer):
    _op = None

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", **kw):
        super().__init__(**kw)
        self.pool_size = _pair(pool_size, "pool_size", self.name)
        self.strides = self.pool_size if strides is None else _pair(strides, "strides", self.name)
        self.padding = _padding(padding, self.name)

    def compute_output_shape(self, s):
        return _conv_out(self, s, self.pool_size, self.strides, self.padding) + (s[2],)

    def call(self, x, training=False):
        # (N, H, W, C) -> (N, Ho, Wo, C)
        return type(self)._op(x, self.pool_size, self.strides, self.padding)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


class MaxPooling2D(_Pooling2D):
    _op = staticmethod(ops.max_pool2d)


class AveragePooling2D(_Pooling2D):
    _op = staticmethod(ops.avg_pool2d)


class GlobalAveragePooling2D(Layer):
    def compute_output_shape(self, s):
        if len(s) != 3:
            self._expect("(N, H, W, C)", s)
        return (s[2],)

    def call(self, x, training=False):
        return ops.global_avg_pool2d(x)          # (N, H, W, C) -> (N, C)


# ---- reshaping --------------------------------------------------------------------------
class Flatten(Layer):
    def compute_output_shape(self, s):
        return (math.prod(s),)

    def call(self, x, training=False):
        return x.flatten()                        # (N, ...) -> (N, prod(...))


class Reshape(Layer):
    def __init__(self, target_shape, **kw):
        super().__init__(**kw)
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1 or any(
                d == 0 or d < -1 for d in self.target_shape):
            raise ValueError(f"layer {self.name!r}: target_shape must be positive sizes with at "
                             f"most one -1, got {self.target_shape}")

    def compute_output_shape(self, s):
        n, known = math.prod(s), math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if n % known:
                self._expect(f"a size divisible by {known} to reshape into "
                             f"{self.target_shape}", s)
            return tuple(n // known if d == -1 else d for d in self.target_shape)
        if n != known:
            self._expect(f"{known} values per sample to reshape into "
                         f"{shape_str(self.target_shape)}", s)
        return self.target_shape

    def call(self, x, training=False):
        return x.reshape((x.shape[0],) + self.output_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


# ---- regularisation and normalisation ---------------------------------------------------
class Dropout(Layer):
    def __init__(self, rate, **kw):
        super().__init__(**kw)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"layer {self.name!r}: rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)

    def call(self, x, training=False):
        return ops.dropout(x, self.rate, training)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


def batch_norm_train(x, gamma, beta, epsilon):
    """Normalise with the batch's own statistics (Ioffe & Szegedy 2015, Algorithm 1).

    Per channel c (the last axis), over the m values of the batch (N, or N*H*W):
        mean = sum x / m,  var = sum (x - mean)^2 / m,  xhat = (x - mean) / sqrt(var + eps)
        y = gamma xhat + beta
    Backward (the paper's chain rule, simplified; the sums run over the batch):
        dL/dbeta = sum g,   dL/dgamma = sum g xhat,
        dL/dx = gamma / sqrt(var + eps) * (g - mean(g) - xhat mean(g xhat))
    Returns (y, mean, var) so the layer can update its moving statistics.
    """
    axes = tuple(range(x.ndim - 1))
    mean = x.data.mean(axis=axes)                                 # (C,)
    xc = x.data - mean
    var = (xc * xc).mean(axis=axes)                               # (C,) biased, as Keras
    inv_std = 1.0 / np.sqrt(var + epsilon)
    xhat = xc * inv_std                                           # (..., C)
    out = xhat * gamma.data + beta.data

    def backward(g):
        g_sum = g.sum(axis=axes)
        gx_sum = (g * xhat).sum(axis=axes)
        m = g.size // g.shape[-1]
        gx = None
        if x.requires_grad:
            gx = (gamma.data * inv_std) * (g - g_sum / m - xhat * (gx_sum / m))
        return gx, gx_sum if gamma.requires_grad else None, g_sum if beta.requires_grad else None
    return Tensor.make(out, (x, gamma, beta), backward), mean, var


class BatchNormalization(Layer):
    """Training: normalise with the batch's mean and variance and move the running
    averages  moving = momentum * moving + (1 - momentum) * batch  (Keras 3 uses the biased
    batch variance here too). Inference, and always when the layer is frozen
    (trainable=False, Keras' rule for fine-tuning): use the moving statistics,
        y = gamma (x - moving_mean) / sqrt(moving_variance + eps) + beta.
    Per channel (the last axis). The quantizer folds this into the previous conv."""

    def __init__(self, momentum=0.99, epsilon=1e-3, **kw):
        super().__init__(**kw)
        self.momentum, self.epsilon = float(momentum), float(epsilon)

    def _make_weights(self, s):
        c = s[-1]
        self.gamma = self.add_weight("gamma", (c,), "ones")
        self.beta = self.add_weight("beta", (c,), "zeros")
        self.moving_mean = self.add_weight("moving_mean", (c,), "zeros", trainable=False)
        self.moving_variance = self.add_weight("moving_variance", (c,), "ones", trainable=False)

    def compute_output_shape(self, s):
        if len(s) < 1:
            self._expect("(N, ..., C)", s)
        return tuple(s)

    def call(self, x, training=False):
        if training and self._trainable:
            y, mean, var = batch_norm_train(x, self.gamma, self.beta, self.epsilon)
            for moving, batch in ((self.moving_mean, mean), (self.moving_variance, var)):
                moving.data *= self.momentum
                moving.data += (1.0 - self.momentum) * batch
            return y
        scale = self.gamma * (1.0 / np.sqrt(self.moving_variance.data + self.epsilon))  # (C,)
        return x * scale + (self.beta - self.moving_mean.data * scale)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


# ---- activations as layers ----------------------------------------------------------------
class Activation(Layer):
    def __init__(self, activation, **kw):
        super().__init__(**kw)
        self.activation = nn.activation_name(activation, f"layer {self.name!r}")

    def _linear(self, x, training=False):
        return x                                  # the logits are the input itself

    def call(self, x, training=False):
        return ACTIVATIONS[self.activation](x)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


class ReLU(Layer):
    """max(x, 0), capped at max_value if given (ReLU(6.0) is relu6, MobileNet's)."""

    def __init__(self, max_value=None, **kw):
        super().__init__(**kw)
        if max_value is not None and not max_value > 0:
            raise ValueError(f"layer {self.name!r}: max_value must be > 0, got {max_value!r}")
        self.max_value = None if max_value is None else float(max_value)

    def call(self, x, training=False):
        if self.max_value is None:
            return x.relu()
        if self.max_value == 6.0:
            return x.relu6()
        return x.clip(0.0, self.max_value)

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value}


# ---- merging ------------------------------------------------------------------------------
class Add(Layer):
    """Elementwise sum of two or more inputs of the same shape (residual connections)."""
    n_inputs = None

    def _normalize_shape(self, shapes):
        return tuple(tuple(int(d) for d in s) for s in shapes)

    def compute_output_shape(self, shapes):
        if len(shapes) < 2:
            raise ValueError(f"layer {self.name!r} adds a list of at least 2 inputs, "
                             f"got {len(shapes)}")
        if len(set(shapes)) != 1:
            raise ValueError(f"layer {self.name!r} needs inputs of the same shape, got "
                             + " and ".join(shape_str(s) for s in shapes))
        return shapes[0]

    def call(self, xs, training=False):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


MaxPool2D, AvgPool2D = MaxPooling2D, AveragePooling2D      # Keras' short aliases
