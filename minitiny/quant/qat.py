"""Quantization-aware training (QAT): fine-tune a float model while it feels int8 rounding.

    qat = quantize_aware(model, representative_data=x_train[:500])
    qat.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    qat.fit(x_train, y_train, epochs=3)
    qmodel = quantize(qat)                    # converts with the ranges learned in training

Post-training quantization rounds a model that never saw rounding. QAT runs the forward
pass through the same ops the int8 model will run (the lowered graph: BN folded,
activations fused) with "fake quantization" wherever the int8 model rounds:

    fake_quant(x) = s * (clamp(round(x / s) + z, -128, 127) - z)      a float on the int8 grid

* weights: per output channel, symmetric, the scale the converter will pick (max|w| / 127);
* activations: every op output (and the model input) with the int8 scale and zero point
  of its range. The range is an exponential moving average of the batch min / max, updated
  in training and frozen in inference (TensorFlow's MovingAverageQuantizer); softmax,
  logistic and tanh use their fixed output params, pools and reshape their input's.

Rounding has zero gradient almost everywhere, so backward uses the straight-through
estimator (Bengio et al. 2013; TF's fake_quant_with_min_max_vars): the gradient passes
unchanged where x lies inside the representable range and is 0 where x was clamped.

The gradients reach the ORIGINAL layers' Tensors (kernel, bias, gamma, beta): fitting the
QAT model fine-tunes the float model it wraps. BatchNormalization is folded with its moving
statistics: BN statistics are frozen during QAT (gamma and beta still train). Dropout is
left out (the lowered graph has none).
"""
import numpy as np

from ..models import Model
from ..tensor import Tensor
from .calibrate import calibrate
from .fixedpoint import round_half_away
from .lower import WEIGHTED, folded_weights, lower, run_op
from .quantizer import (FIXED_OUTPUT, NO_RANGE_NEEDED, SAME_AS_INPUT, QuantizationError,
                        activation_params, weight_scales)


# ---- the fake-quantization ops, forward and backward side by side ---------------------------
def fake_quant(x, scale, zero_point):
    """Activation fake quant: x -> s * (clamp(round(x / s) + z, -128, 127) - z).

    Backward (straight-through): d/dx = 1 where s(-128 - z) <= x <= s(127 - z), else 0.
    """
    s, z = np.float64(scale), int(zero_point)
    q = np.clip(round_half_away(x.data / s) + z, -128, 127)
    out = (s * (q - z)).astype(x.data.dtype)
    inside = (x.data >= s * (-128 - z)) & (x.data <= s * (127 - z))
    return Tensor.make(out, (x,), lambda g: (g * inside,))


def fake_quant_weights(w, axis):
    """Weight fake quant, per channel along `axis`, symmetric: s_c = max|w_c| / 127,
    w -> s_c * clamp(round(w / s_c), -127, 127). Nothing is clamped (the scale comes from
    the weights themselves), so backward is the identity."""
    s = weight_scales(w.data, axis).astype(np.float64)
    shape = [1] * w.ndim
    shape[axis] = -1
    s = s.reshape(shape)
    out = (s * np.clip(round_half_away(w.data / s), -127, 127)).astype(w.data.dtype)
    return Tensor.make(out, (w,), lambda g: (g,))


# ---- the model ------------------------------------------------------------------------------
class QATModel(Model):
    """A float model seen through fake quantization. Shares (and trains) its layers."""

    def __init__(self, model, momentum=0.99):
        if not isinstance(model, Model):
            raise TypeError(f"quantize_aware needs a minitiny model, got {type(model).__name__}")
        if isinstance(model, QATModel):
            raise TypeError("this model is already quantization-aware")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.model = model
        self.graph_ops = lower(model)            # the structure; weights are read live
        # Model's state, set by hand: the graph (hence layers, trainable_params, shapes)
        # is the wrapped model's, so fit() trains the original layers.
        self.name = f"{model.name}_qat"
        self.optimizer = self.loss = None
        self.metric_names, self.history, self.stop_training = [], None, False
        self._input_layer, self._graph = model._input_layer, model._graph
        self.momentum = float(momentum)
        self._ranges = {}                        # tensor name -> [min, max] (EMA)

    # ---- ranges ----------------------------------------------------------------------
    def needs_range(self, name):
        g = self.graph_ops
        return name == g.input or g.op(name).kind not in NO_RANGE_NEEDED

    def ranges(self):
        """{tensor: (min, max)} learned so far (only tensors whose params come from a range)."""
        return {k: (float(lo), float(hi)) for k, (lo, hi) in self._ranges.items()}

    def calibrate(self, representative_data, batch_size=64):
        """Start every range from a min/max calibration, as post-training quantization would."""
        r = calibrate(self.lowered(refresh=True), representative_data, "minmax",
                      batch_size=batch_size)
        self._ranges = {k: [lo, hi] for k, (lo, hi) in r.items() if self.needs_range(k)}

    def graph_and_ranges(self, representative_data, observer, percentile, batch_size):
        """What `quantize` converts: the lowered graph and the ranges learned in training,
        calibrated on representative_data only for tensors that never got one."""
        graph = self.lowered(refresh=True)
        ranges = self.ranges()
        # Tensors whose params are fixed or inherited need no range.
        missing = [n for n in [graph.input] + [op.name for op in graph.ops] if n not in ranges
                   and (n == graph.input or graph.op(n).kind not in NO_RANGE_NEEDED)]
        if missing:
            if representative_data is None:
                raise QuantizationError(
                    "the quantization-aware model has no range for "
                    f"{', '.join(map(repr, missing))}: fit it first or pass representative_data")
            calibrated = calibrate(graph, representative_data, observer, percentile, batch_size)
            ranges.update({n: calibrated[n] for n in missing})
        return graph, ranges

    def lowered(self, refresh=True):
        """The float op graph with the current (fine-tuned) weights folded in."""
        if refresh:
            self.graph_ops = lower(self.model)
        return self.graph_ops

    def _observe(self, name, y):
        """Training: move the range of tensor `name` towards this batch's min and max."""
        lo, hi = float(y.data.min()), float(y.data.max())
        r = self._ranges.get(name)
        if r is None:                                       # the first batch starts it
            self._ranges[name] = [lo, hi]
        else:                                               # EMA, as MovingAverageQuantizer
            m = self.momentum
            r[0], r[1] = m * r[0] + (1 - m) * lo, m * r[1] + (1 - m) * hi

    def _params(self, name, kind=None, input_params=None):
        """The (scale, zero_point) the int8 model will give tensor `name`; None if unknown."""
        if kind in FIXED_OUTPUT:
            return FIXED_OUTPUT[kind]
        if kind in SAME_AS_INPUT:
            return input_params
        r = self._ranges.get(name)
        return None if r is None else activation_params(*r)

    @staticmethod
    def _fake_quant(y, params):
        return y if params is None else fake_quant(y, *params)   # unknown range: stay float

    # ---- forward: the lowered graph with fake quantization -----------------------------
    def forward(self, x, training=False, pre_activation=False):
        g = self.graph_ops
        x = x if isinstance(x, Tensor) else Tensor(x, dtype=self.dtype)
        if x.ndim == 1 and g.input_shape == (1,):
            x = x.reshape(-1, 1)                            # Keras: (N,) is (N, 1)
        if training:
            self._observe(g.input, x)
        params = {g.input: self._params(g.input)}           # tensor -> (scale, zero_point)
        values = {g.input: self._fake_quant(x, params[g.input])}
        for op in g.ops:
            w = b = None
            if op.kind in WEIGHTED:
                w, b = folded_weights(op, live=True)       # differentiable in the layers' Tensors
                w = fake_quant_weights(w, 3 if op.kind == "depthwise_conv_2d" else 0)
            y = run_op(op, [values[n] for n in op.inputs], w, b)
            if training and op.kind not in NO_RANGE_NEEDED:
                self._observe(op.name, y)
            params[op.name] = self._params(op.name, op.kind, params[op.inputs[0]])
            values[op.name] = self._fake_quant(y, params[op.name])
        last = g.ops[-1]
        if pre_activation and last.kind in ("softmax", "logistic") and last.name == g.output:
            return values[last.inputs[0]]                   # the (fake-quantized) logits
        return values[g.output]

    def save(self, path):
        raise NotImplementedError("a quantization-aware model is not saved itself: save the "
                                  "float model it trains (qat.model.save(path)) or the int8 "
                                  "model (quantize(qat).save(path))")


def quantize_aware(model, representative_data=None, momentum=0.99):
    """Wrap a trained float model for quantization-aware fine-tuning -> QATModel.

    representative_data (optional): start the activation ranges from a min/max calibration;
    without it each range starts from the first training batch.
    momentum: EMA factor of the activation ranges (TF uses 0.999 for long training runs;
    0.99 suits the few epochs of fine-tuning a small model needs).
    """
    qat = QATModel(model, momentum)
    if representative_data is not None:
        qat.calibrate(representative_data)
    return qat
