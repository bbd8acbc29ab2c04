"""Lowering: a float Keras-style model -> a float op graph with the int8 graph's op kinds.

The int8 graph (`graph.py`) speaks TFLite: fully_connected, conv_2d, depthwise_conv_2d,
pools, mean, add, reshape, softmax, logistic, tanh, relu, relu6. A float model speaks Keras:
Dense, Conv2D, BatchNormalization, Dropout, Activation, Flatten... Lowering translates one
into the other once, so that calibration, quantization-aware training and the error report
all walk the same ops over the same tensor names as the final `QModel`:

    Dense                   -> fully_connected   weight (in, out)        -> (out, in)
    Conv2D                  -> conv_2d           kernel (kh, kw, in, out) -> (out, kh, kw, in)
    DepthwiseConv2D         -> depthwise_conv_2d kernel (kh, kw, in, m)   -> (1, kh, kw, in*m)
    BatchNormalization      -> folded into the Dense / Conv2D / DepthwiseConv2D before it
    Dropout, InputLayer     -> removed (identity at inference)
    RandomFlip, RandomZoom, ... (augmentation) -> removed (identity at inference)
    Rescaling (at the input)-> folded into the weighted op that reads it (below)
    activation relu/relu6   -> fused into the op that produces the value (TFLite's fused
                               activation); also a following Activation / ReLU layer
    sigmoid / tanh / softmax-> logistic / tanh / softmax ops
    Flatten, Reshape        -> reshape;  GlobalAveragePooling2D -> mean over H, W
    MaxPooling2D, AveragePooling2D, Add -> max_pool_2d, average_pool_2d, add

Batch-norm folding. At inference BN is an affine map per channel c:
    y = gamma_c * (z - mu_c) / sqrt(var_c + eps) + beta_c,   z = sum_i w_ic x_i + b_c
so with  k_c = gamma_c / sqrt(var_c + eps):
    y = sum_i (w_ic k_c) x_i + ((b_c - mu_c) k_c + beta_c)      w' = w k,  b' = (b - mu) k + beta
This is only the same function if BN sees the conv's output and nothing else does.

Rescaling folding. x' = a x + b (a > 0) read by a weighted op, directly or through reshapes
and pools (which commute with it): sum_i w_i (a x_i + b) = sum_i (a w_i) x_i + b sum_i w_i,
so w' = a w and the bias gains b sum_i w_i. The int8 model then takes the raw input (the
pixels), with no extra op. With b != 0 this is exact only where no zero padding enters the
window (zero padding of x' is not a x + b of any pixel), so 'same' padding that pads is refused.

The folded weights are computed by `folded_weights`, once with float64 copies (for
calibration and conversion) and, in quantization-aware training, with the layers' live
Tensors so that gradients flow back to the original kernel, bias, gamma and beta.
"""
from dataclasses import dataclass, field

import numpy as np

from .. import ops as _ops
from ..geometry import pair, same_padding
from ..tensor import Tensor, no_grad

WEIGHTED = ("fully_connected", "conv_2d", "depthwise_conv_2d")
# Ops that carry a fused activation (QOp option 'activation').
FUSES_ACTIVATION = WEIGHTED + ("max_pool_2d", "average_pool_2d", "add")
# nothing to compute at inference (the Random* augmentations are active in training only)
IDENTITY_LAYERS = ("InputLayer", "Dropout", "RandomFlip", "RandomRotation", "RandomZoom",
                   "RandomTranslation", "RandomContrast")
CARRY_RESCALE = ("reshape", "max_pool_2d", "average_pool_2d", "mean")   # commute with a x + b


class LoweringError(ValueError):
    """A float model that cannot become an int8 graph: names the layer and why."""


@dataclass
class FOp:
    """One float op. Its output tensor has the op's name; shapes exclude the batch axis."""
    kind: str                   # a QOp kind
    name: str
    inputs: list                # activation tensor names
    shape: tuple                # output shape, e.g. (12, 12, 8)
    options: dict = field(default_factory=dict)
    layers: list = field(default_factory=list)   # the Keras layers merged into this op
    source: object = None       # the Dense / Conv2D / DepthwiseConv2D layer with the weights
    bn: object = None           # the BatchNormalization folded into it
    rescale: tuple = None       # (a, b) of a Rescaling folded into it: it reads a x + b
    weight: np.ndarray = None   # float64, TFLite layout, BN folded (set by `lower`)
    bias: np.ndarray = None     # float64 (out,), or None for a layer without bias and BN

    @property
    def layer_names(self):
        return ", ".join(repr(layer.name) for layer in self.layers)


@dataclass
class FloatGraph:
    name: str
    input: str                  # the model input tensor's name
    input_shape: tuple          # without batch
    ops: list
    output: str

    def __iter__(self):
        return iter(self.ops)

    def op(self, name):
        """The op that writes tensor `name`."""
        if getattr(self, "_by_name", None) is None or len(self._by_name) != len(self.ops):
            self._by_name = {op.name: op for op in self.ops}
        return self._by_name[name]

    def run(self, x, hook=None):
        """x (N, *input_shape) -> {tensor name: float64 ndarray} for every tensor, no gradient.

        `hook(op, value)` sees each op's output as soon as it is computed (calibration).
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1 and self.input_shape == (1,):
            x = x[:, None]                  # Keras: a (N,) array fed to input_shape (1,)
        if x.shape[1:] != self.input_shape:
            raise LoweringError(f"model {self.name!r} expects input (N, "
                                f"{', '.join(map(str, self.input_shape))}), got {x.shape}")
        values = {self.input: Tensor(x)}
        with no_grad():
            for op in self.ops:
                w = None if op.weight is None else Tensor(op.weight)
                b = None if op.bias is None else Tensor(op.bias)
                values[op.name] = run_op(op, [values[n] for n in op.inputs], w, b)
                if hook is not None:
                    hook(op, values[op.name].data)
        return {name: t.data for name, t in values.items()}


# ---- running one op with the float engine (NHWC) -------------------------------------------
def engine_layout(kind, w):
    """TFLite layout -> the float engine's (Keras') layout; works on Tensors and ndarrays."""
    if kind == "fully_connected":
        return w.transpose(1, 0)                        # (out, in) -> (in, out)
    if kind == "conv_2d":
        return w.transpose(1, 2, 3, 0)                  # (out, kh, kw, in) -> (kh, kw, in, out)
    return w                                            # depthwise: reshaped in run_op


def tflite_layout(kind, w):
    """Keras layout -> TFLite layout; works on Tensors and ndarrays."""
    if kind == "fully_connected":
        return w.transpose(1, 0)                        # (in, out) -> (out, in)
    if kind == "conv_2d":
        return w.transpose(3, 0, 1, 2)                  # (kh, kw, in, out) -> (out, kh, kw, in)
    kh, kw, cin, m = w.shape                            # depthwise: channel c*m + k, as TFLite
    return w.reshape(1, kh, kw, cin * m)                # (kh, kw, in, m) -> (1, kh, kw, in*m)


def _activate(x, activation):
    if activation == "relu":
        return x.relu()
    if activation == "relu6":
        return x.relu6()
    return x


def run_op(op, args, w=None, b=None):
    """One float op on Tensors. w (TFLite layout) and b are Tensors for weighted ops."""
    o, x = op.options, args[0]
    if op.kind == "fully_connected":
        y = x @ engine_layout(op.kind, w)               # (N, in) @ (in, out) -> (N, out)
        y = y if b is None else y + b
    elif op.kind == "conv_2d":
        y = _ops.conv2d(x, engine_layout(op.kind, w), b, o["stride"], o["padding"])
    elif op.kind == "depthwise_conv_2d":
        _, kh, kw, cm = w.shape
        m = o["depth_multiplier"]
        y = _ops.depthwise_conv2d(x, w.reshape(kh, kw, cm // m, m), b, o["stride"], o["padding"])
    elif op.kind == "max_pool_2d":
        y = _ops.max_pool2d(x, o["pool_size"], o["stride"], o["padding"])
    elif op.kind == "average_pool_2d":
        y = _ops.avg_pool2d(x, o["pool_size"], o["stride"], o["padding"])
    elif op.kind == "mean":
        y = x.mean(axis=tuple(a + 1 for a in o["axes"]), keepdims=o["keep_dims"])
    elif op.kind == "add":
        y = args[0] + args[1]
    elif op.kind == "reshape":
        y = x.reshape((x.shape[0],) + op.shape)
    elif op.kind == "softmax":
        y = (x * o.get("beta", 1.0)).softmax(axis=-1)
    elif op.kind == "logistic":
        y = x.sigmoid()
    elif op.kind in ("tanh", "relu", "relu6"):
        y = getattr(x, op.kind)()
    else:  # pragma: no cover - lower() only emits the kinds above
        raise LoweringError(f"op {op.name!r}: no float implementation for {op.kind!r}")
    return _activate(y, o.get("activation", "none"))


# ---- weights: BN folding and layouts ---------------------------------------------------------
def folded_weights(op, live=False):
    """The op's (weight, bias) in TFLite layout with BN folded in, as Tensors.

    live=False: float64 copies (conversion). live=True: built from the layers' own Tensors
    with differentiable ops, so a loss on the result trains the original weights (QAT).
    """
    def get(layer, name, default=None):
        t = layer.weights.get(name)
        if t is None:
            return default
        return t if live else Tensor(np.asarray(t.data, dtype=np.float64))

    layer = op.source
    kernel = get(layer, "depthwise_kernel" if op.kind == "depthwise_conv_2d" else "kernel")
    bias = get(layer, "bias")
    if op.rescale is not None:                          # w' = a w, b' = b + offset sum_in w
        scale, offset = op.rescale
        if offset:
            fan_in = (0, 1) if op.kind == "depthwise_conv_2d" else tuple(range(kernel.ndim - 1))
            taps = kernel.sum(axis=fan_in).reshape((-1,))           # (out,)
            bias = taps * offset if bias is None else bias + taps * offset
        kernel = kernel * scale
    if op.bn is not None:
        bn = op.bn
        mean, var = get(bn, "moving_mean"), get(bn, "moving_variance")
        gamma, beta = get(bn, "gamma", 1.0), get(bn, "beta", 0.0)
        eps = float(getattr(bn, "epsilon", 1e-3))
        k = gamma / (var + eps).sqrt()                  # (C,) gamma / sqrt(var + eps)
        kk = k.reshape(kernel.shape[-2:]) if op.kind == "depthwise_conv_2d" else k
        kernel = kernel * kk                            # w' = w k, per output channel
        bias = (0.0 if bias is None else bias) - mean   # b' = (b - mu) k + beta
        bias = bias * k + beta
    return tflite_layout(op.kind, kernel), bias


def _check_finite(op):
    """NaN or inf in a layer's weights would silently poison every scale: refuse them."""
    for layer in [op.source] + ([op.bn] if op.bn is not None else []):
        for wname, t in layer.weights.items():
            bad = ~np.isfinite(np.asarray(t.data))
            if bad.any():
                first = tuple(int(i) for i in np.argwhere(bad)[0])
                raise LoweringError(f"layer {layer.name!r} ({type(layer).__name__}): weight "
                                    f"{wname!r} {tuple(t.shape)} has {int(bad.sum())} NaN/inf "
                                    f"values (first at index {first})")
    if op.bn is not None:
        var = np.asarray(op.bn.weights["moving_variance"].data, dtype=np.float64)
        eps = float(getattr(op.bn, "epsilon", 1e-3))
        if (var + eps <= 0).any():
            raise LoweringError(f"layer {op.bn.name!r} (BatchNormalization): moving_variance + "
                                f"epsilon must be > 0, got {var.min() + eps:g}")


# ---- the translation -------------------------------------------------------------------------
def _activation_name(layer):
    """The activation a Dense/Conv/Activation/ReLU layer applies: a string."""
    kind = type(layer).__name__
    if kind == "ReLU":
        mv = getattr(layer, "max_value", None)
        if getattr(layer, "negative_slope", 0) or getattr(layer, "threshold", 0):
            raise LoweringError(f"layer {layer.name!r} (ReLU): negative_slope / threshold are "
                                "not supported by int8 RELU; use ReLU() or ReLU(max_value=6)")
        if mv is None:
            return "relu"
        if float(mv) == 6.0:
            return "relu6"
        raise LoweringError(f"layer {layer.name!r} (ReLU): max_value={mv} has no int8 op; "
                            "only ReLU() and ReLU(max_value=6) (relu6) are supported")
    act = getattr(layer, "activation", None) or "linear"
    if not isinstance(act, str):
        act = getattr(act, "__name__", str(act))
    if act not in ("linear", "relu", "relu6", "sigmoid", "tanh", "softmax"):
        raise LoweringError(f"layer {layer.name!r} ({kind}): activation {act!r} is not supported; "
                            "use linear, relu, relu6, sigmoid, tanh or softmax")
    return act


class _Lowering:
    """One translation: walks the Keras nodes in order and emits FOps.

    `alias` maps each Keras output name to the graph tensor holding that value: a Dropout
    aliases its input, a folded BN or fused activation aliases the op it merged into.
    """

    def __init__(self, model):
        self.nodes = list(model.graph)
        self.input, self.input_shape = model.input_name, tuple(int(d) for d in model.input_shape)
        self.name = getattr(model, "name", None) or "model"
        self.ops, self.producer, self.alias = [], {}, {}
        self.shapes, self.used = {self.input: self.input_shape}, {self.input}
        self.rescale_from, self.rescaled = None, {self.input}    # a Rescaling to fold, and where
        # Dropout and InputLayer are identities: see through them when counting readers.
        self.identity = {n.layer.name: (n.inputs[0] if n.inputs else self.input)
                         for n in self.nodes if type(n.layer).__name__ in IDENTITY_LAYERS}
        self.readers = {}                           # Keras name -> names of layers reading it
        for n in self.nodes:
            if n.layer.name not in self.identity:
                for i in n.inputs:
                    self.readers.setdefault(self.resolve(i), []).append(n.layer.name)

    # ---- helpers ---------------------------------------------------------------------
    def resolve(self, name):
        while name in self.identity:
            name = self.identity[name]
        return name

    def sole_reader(self, tensor):
        """True if one layer alone reads `tensor` (the layer being lowered), so that it may
        merge into the op that writes it. Readers of every Keras value that became this
        tensor count (a no-op Flatten passes its readers on), except layers merged into it."""
        keras = [k for k, t in self.alias.items() if t == tensor]
        who = {r for k in keras for r in self.readers.get(self.resolve(k), [])
               if self.alias.get(r) != tensor}
        return len(who) == 1

    def emit(self, kind, name, inputs, shape, layers, **options):
        base, i = name, 1
        while name in self.used:                    # e.g. 'dense_softmax' taken by a layer
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        op = FOp(kind, name, list(inputs), tuple(int(d) for d in shape), options, list(layers))
        self.ops.append(op)
        self.producer[op.name], self.shapes[op.name] = op, op.shape
        return op

    def activate(self, layer, op, act):
        """Apply activation `act` of `layer` to op's output -> the tensor holding the result.

        relu / relu6 fuse into an op that can carry them (TFLite's fused activation);
        anything else becomes its own op: logistic, tanh, softmax, or a standalone relu.
        """
        if act == "linear":
            return op.name
        if act in ("relu", "relu6") and op.kind in FUSES_ACTIVATION \
                and op.options.get("activation") == "none":
            op.options["activation"] = act
            if layer not in op.layers:
                op.layers.append(layer)
            return op.name
        kind = "logistic" if act == "sigmoid" else act
        name = f"{layer.name}_{kind}" if layer in op.layers else layer.name
        return self.emit(kind, name, [op.name], op.shape, [layer],
                         **({"beta": 1.0} if kind == "softmax" else {})).name

    @staticmethod
    def need_image(where, shape):
        if len(shape) != 3:
            raise LoweringError(f"{where}: needs an (N, H, W, C) input, got (N, "
                                f"{', '.join(map(str, shape))})")

    # ---- one method per layer kind: (node, its input tensors, their shapes) -> tensor ----
    def identity_layer(self, node, ins, shapes, where):
        return ins[0] if ins else self.input

    def dense(self, node, ins, shapes, where):
        layer = node.layer
        if len(shapes[0]) != 1:
            raise LoweringError(f"{where}: input has shape (N, {', '.join(map(str, shapes[0]))}); "
                                "the int8 FULLY_CONNECTED needs a flat (N, features) input - "
                                "put a Flatten() before this Dense")
        units = int(layer.weights["kernel"].shape[1])
        op = self.emit("fully_connected", layer.name, ins, (units,), [layer], activation="none")
        op.source = layer
        return self.activate(layer, op, _activation_name(layer))

    def conv(self, node, ins, shapes, where):
        layer, depthwise = node.layer, type(node.layer).__name__ == "DepthwiseConv2D"
        self.need_image(where, shapes[0])
        if any(d != 1 for d in pair(getattr(layer, "dilation_rate", 1))):
            raise LoweringError(f"{where}: dilation_rate is not supported in int8")
        options = dict(stride=pair(layer.strides), padding=str(layer.padding).lower())
        if depthwise:
            options["depth_multiplier"] = int(layer.depth_multiplier)
        op = self.emit("depthwise_conv_2d" if depthwise else "conv_2d", layer.name, ins,
                       layer.compute_output_shape(shapes[0]), [layer], **options,
                       activation="none")
        op.source = layer
        return self.activate(layer, op, _activation_name(layer))

    def batch_norm(self, node, ins, shapes, where):
        """Fold into the producer (see the module docstring), or explain why it cannot be."""
        prev = self.producer.get(ins[0])
        foldable = prev is not None and prev.kind in WEIGHTED \
            and prev.bn is None and prev.options["activation"] == "none" and len(prev.layers) == 1
        if foldable and self.sole_reader(ins[0]):
            prev.bn = node.layer
            prev.layers.append(node.layer)
            return prev.name
        if ins[0] == self.input:
            after = f"the model input {self.input!r}"
        else:
            last = prev.layers[-1]
            after = f"{last.name!r} ({type(last).__name__})"
        why = "its output also feeds other layers" if foldable else \
            "that is not a Dense, Conv2D or DepthwiseConv2D with a linear activation"
        raise LoweringError(
            f"{where} cannot be folded: it follows {after} and {why}. int8 models have no "
            "batch-norm op: put BatchNormalization directly after a Dense / Conv2D / "
            "DepthwiseConv2D that has activation=None and no other reader, and apply the "
            "activation after the BatchNormalization")

    def activation(self, node, ins, shapes, where):
        act, prev = _activation_name(node.layer), self.producer.get(ins[0])
        if prev is not None and self.sole_reader(ins[0]):
            return self.activate(node.layer, prev, act)       # may fuse into the producer
        if act == "linear":
            return ins[0]
        kind = "logistic" if act == "sigmoid" else act
        return self.emit(kind, node.layer.name, ins, shapes[0], [node.layer],
                         **({"beta": 1.0} if kind == "softmax" else {})).name

    def rescaling(self, node, ins, shapes, where):
        """Fold into the weighted ops that read the model input (see the module docstring):
        the input tensor stands for x from here on, and `run` hands (a, b) on to its readers."""
        layer = node.layer
        if ins[0] != self.input or self.readers.get(self.input) != [layer.name]:
            raise LoweringError(f"{where}: int8 models fold Rescaling into the layer after it "
                                "only when it reads the model input and nothing else does; "
                                "put it first, or rescale the data instead")
        if not layer.scale > 0:
            raise LoweringError(f"{where}: scale {layer.scale} must be > 0 to fold into the "
                                "int8 model (pooling commutes only with a positive scale)")
        self.rescale_from = (layer.scale, layer.offset, where)
        return ins[0]

    def hand_on_rescale(self, op_names, where):
        """The ops just emitted read a rescaled tensor: carry or fold (a, b), or refuse."""
        scale, offset, rescaling = self.rescale_from
        for op in (self.producer[n] for n in op_names):
            if not any(i in self.rescaled for i in op.inputs):
                continue
            if op.kind in CARRY_RESCALE:
                self.rescaled.add(op.name)
            elif op.kind in WEIGHTED and not (offset and self.pads(op)):
                op.rescale = (scale, offset)
            else:
                why = "zero padding ('same') would not be rescaled" if op.kind in WEIGHTED \
                    else f"its {op.kind} does not commute with x * scale + offset"
                raise LoweringError(f"{rescaling} cannot fold into {where}: {why}. Put a Dense "
                                    "or Conv2D (padding='valid' when offset != 0) after it, or "
                                    "rescale the data instead")

    def pads(self, op):
        if op.kind == "fully_connected" or op.options["padding"] == "valid":
            return False
        k = op.source.kernel_size
        return any(same_padding(n, kk, s)[1:] != (0, 0)
                   for n, kk, s in zip(self.shapes[op.inputs[0]], k, op.options["stride"]))

    def reshape(self, node, ins, shapes, where):
        shape = tuple(int(d) for d in node.layer.compute_output_shape(shapes[0]))
        if shape == tuple(shapes[0]):
            return ins[0]                                      # nothing to do
        return self.emit("reshape", node.layer.name, ins, shape, [node.layer]).name

    def pool(self, node, ins, shapes, where):
        layer = node.layer
        self.need_image(where, shapes[0])
        pool = pair(layer.pool_size)
        stride = pool if getattr(layer, "strides", None) is None else pair(layer.strides)
        kind = "max_pool_2d" if type(layer).__name__ == "MaxPooling2D" else "average_pool_2d"
        return self.emit(kind, layer.name, ins, layer.compute_output_shape(shapes[0]), [layer],
                         pool_size=pool, stride=stride, padding=str(layer.padding).lower(),
                         activation="none").name

    def global_pool(self, node, ins, shapes, where):
        self.need_image(where, shapes[0])
        keep = bool(getattr(node.layer, "keepdims", False))
        c = shapes[0][2]
        return self.emit("mean", node.layer.name, ins, (1, 1, c) if keep else (c,), [node.layer],
                         axes=(0, 1), keep_dims=keep).name

    def add(self, node, ins, shapes, where):
        if len(ins) < 2 or len(set(map(tuple, shapes))) != 1:
            raise LoweringError(f"{where}: int8 ADD needs two or more inputs of one shape, got "
                                f"{', '.join(str(tuple(s)) for s in shapes)}")
        op = self.emit("add", node.layer.name, ins[:2], shapes[0], [node.layer], activation="none")
        for i, extra in enumerate(ins[2:], 1):                  # a + b + c = (a + b) + c
            op = self.emit("add", f"{node.layer.name}_{i}", [op.name, extra], shapes[0],
                           [node.layer], activation="none")
        return op.name

    HANDLERS = {**dict.fromkeys(IDENTITY_LAYERS, identity_layer), "Dense": dense,
                "Conv2D": conv, "DepthwiseConv2D": conv, "BatchNormalization": batch_norm,
                "Activation": activation, "ReLU": activation, "Flatten": reshape,
                "Reshape": reshape, "MaxPooling2D": pool, "AveragePooling2D": pool,
                "GlobalAveragePooling2D": global_pool, "Add": add, "Rescaling": rescaling}

    def run(self):
        for node in self.nodes:
            kind = type(node.layer).__name__
            where = f"layer {node.layer.name!r} ({kind})"
            handler = self.HANDLERS.get(kind)
            if handler is None:
                hint = (" (minitiny's int8 ops do not resize: resize the images before they "
                        "reach the model, and train it without Resizing)") \
                    if kind == "Resizing" else ""
                raise LoweringError(f"{where} has no int8 equivalent{hint}. Supported layers: "
                                    f"{', '.join(SUPPORTED_LAYERS)}")
            ins = [self.alias.get(n, n) for n in node.inputs]
            emitted = len(self.ops)
            self.alias[node.layer.name] = handler(self, node, ins, [self.shapes[n] for n in ins],
                                                  where)
            if self.rescale_from is not None:
                self.hand_on_rescale([op.name for op in self.ops[emitted:]], where)
        if not self.ops:
            raise LoweringError(f"model {self.name!r} has no layer to quantize")
        out = self.alias.get(self.nodes[-1].layer.name)
        return FloatGraph(self.name, self.input, self.input_shape, self.ops, out)


SUPPORTED_LAYERS = tuple(_Lowering.HANDLERS)


def lower(model):
    """model (Sequential or functional Model) -> FloatGraph, BN folded. Raises LoweringError."""
    graph = _Lowering(model).run()
    _fold_all(graph)
    return graph


def _fold_all(graph):
    """Fill op.weight / op.bias (float64, TFLite layout, BN folded) for every weighted op."""
    with no_grad():
        for op in graph.ops:
            if op.kind in WEIGHTED:
                _check_finite(op)
                w, b = folded_weights(op)
                op.weight = w.data
                op.bias = None if b is None else np.asarray(b.data, dtype=np.float64)
