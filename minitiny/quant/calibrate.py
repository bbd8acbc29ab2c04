"""Calibration: run the float op graph on representative data and record each tensor's range.

Every int8 activation needs a real interval [min, max] that its 256 levels will cover. The
interval comes from watching the float model on data like the data it will see in the field
("representative data"), one observer per tensor:

    minmax          the smallest and largest value ever seen (TFLite's converter does this).
                    One outlier stretches the range and costs every other value resolution.
    percentile      the p-th and (100-p)-th percentiles (e.g. 99.99): outliers are clipped
                    so that the bulk of the values keeps its resolution.
    moving_average  an exponential moving average of each batch's min and max, as
                    TensorFlow's quantization-aware training tracks activation ranges
                    (MovingAverageQuantizer): a rare extreme batch moves it only a little.

All observers extend the range to contain 0 (zero must be exactly representable: padding
and ReLU produce exact zeros).
"""
import numpy as np

from .. import random as _random
from ..tensor import Tensor
from .lower import LoweringError


class CalibrationError(ValueError):
    """Representative data that cannot calibrate the model: names the tensor and the problem."""


class MinMaxObserver:
    name = "minmax"

    def __init__(self):
        self.lo, self.hi = np.inf, -np.inf

    def update(self, values, n_batches=1):
        self.lo = min(self.lo, float(values.min()))
        self.hi = max(self.hi, float(values.max()))

    def range(self):
        return min(self.lo, 0.0), max(self.hi, 0.0)


class PercentileObserver:
    """Percentiles over a uniform subsample of every value seen (at most `max_values`)."""
    name = "percentile"

    def __init__(self, percentile=99.99, max_values=1 << 20, seed=0):
        if not 50.0 < float(percentile) <= 100.0:
            raise ValueError(f"percentile must be in (50, 100], got {percentile!r}")
        self.percentile, self.max_values = float(percentile), int(max_values)
        self.kept, self.rng = [], _random.rng(seed)     # own generator: calibration is repeatable

    def update(self, values, n_batches=1):
        flat = values.reshape(-1)
        budget = max(self.max_values // max(n_batches, 1), 1)
        if flat.size > budget:
            flat = self.rng.choice(flat, budget, replace=False)
        self.kept.append(np.asarray(flat, dtype=np.float64))

    def range(self):
        values = np.concatenate(self.kept)
        lo, hi = np.percentile(values, [100.0 - self.percentile, self.percentile])
        return min(float(lo), 0.0), max(float(hi), 0.0)


class MovingAverageObserver:
    """range <- momentum * range + (1 - momentum) * batch range; the first batch starts it."""
    name = "moving_average"

    def __init__(self, momentum=0.9):
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum, self.lo, self.hi = float(momentum), None, None

    def update(self, values, n_batches=1):
        lo, hi = float(values.min()), float(values.max())
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            m = self.momentum
            self.lo, self.hi = m * self.lo + (1 - m) * lo, m * self.hi + (1 - m) * hi

    def range(self):
        return min(self.lo, 0.0), max(self.hi, 0.0)


OBSERVERS = {"minmax": MinMaxObserver, "percentile": PercentileObserver,
             "moving_average": MovingAverageObserver}


def make_observer(observer="minmax", percentile=99.99):
    """An observer factory from a name (see OBSERVERS) or a zero-argument callable."""
    if callable(observer):
        return observer
    if observer == "percentile":
        return lambda: PercentileObserver(percentile)
    if observer not in OBSERVERS:
        raise ValueError(f"unknown observer {observer!r}: use one of {', '.join(OBSERVERS)}")
    return OBSERVERS[observer]


def _check_finite(values, what):
    bad = ~np.isfinite(values)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise CalibrationError(f"{what}: {int(bad.sum())} NaN/inf values (first at index {first})")


def from_generator(make, input_shape):
    """TFLite's representative_dataset: a function returning an iterable whose items are
    [x] (a list holding one batch per model input; minitiny models have one) or x itself,
    with or without the batch axis -> one float64 array (N, *input_shape)."""
    try:
        items = iter(make())
    except TypeError as e:
        raise CalibrationError(f"representative_dataset must be a function returning an "
                               f"iterable of [input] lists (a generator function), calling it "
                               f"failed: {e}") from None
    batches = []
    for i, item in enumerate(items):
        if isinstance(item, dict) or (isinstance(item, (list, tuple)) and len(item) != 1):
            raise CalibrationError(f"representative_dataset item {i} holds "
                                   f"{len(item)} entries; minitiny models have one input: "
                                   "yield [x]")
        item = item[0] if isinstance(item, (list, tuple)) else item
        try:
            a = np.asarray(item.data if isinstance(item, Tensor) else item, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise CalibrationError(f"representative_dataset item {i} is not an array of "
                                   f"numbers ({e})") from None
        if a.shape == tuple(input_shape):
            a = a[None]                                   # one sample without its batch axis
        if a.shape[1:] != tuple(input_shape):
            raise CalibrationError(f"representative_dataset item {i} has shape {a.shape}; "
                                   f"the model expects (N, {', '.join(map(str, input_shape))})")
        batches.append(a)
    if not batches:
        raise CalibrationError("representative_dataset yielded nothing")
    return np.concatenate(batches)


def prepare_data(graph, data):
    """Representative data -> float64 (N, *input_shape), checked: shape, size, finite.
    `data` is an array, or a generator function as TFLite's representative_dataset."""
    if data is None:
        raise CalibrationError("quantize needs representative_data: a few hundred typical "
                               "inputs (e.g. x_train[:500]) to measure activation ranges")
    if callable(data):
        data = from_generator(data, graph.input_shape)
    try:
        x = np.asarray(data.data if isinstance(data, Tensor) else data, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise CalibrationError(f"representative_data is not an array of numbers ({e})") from None
    if x.ndim == 1 and graph.input_shape == (1,):
        x = x[:, None]
    if x.shape[1:] != graph.input_shape:
        raise CalibrationError(f"representative_data has shape {x.shape}; model {graph.name!r} "
                               f"expects (N, {', '.join(map(str, graph.input_shape))})")
    if len(x) == 0:
        raise CalibrationError("representative_data is empty")
    _check_finite(x, "representative_data")
    return x


def calibrate(graph, data, observer="minmax", percentile=99.99, batch_size=64):
    """Run `graph` on `data` batch by batch -> {tensor name: (min, max)} for every tensor.

    The model input gets a range too (TFLite quantizes the input with the input's range).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    x = prepare_data(graph, data)
    factory = make_observer(observer, percentile)
    observers = {graph.input: factory()}
    observers.update({op.name: factory() for op in graph.ops})
    n_batches = -(-len(x) // batch_size)

    def hook(op, value):
        if not np.all(np.isfinite(value)):
            _check_finite(value, f"op {op.name!r} ({op.kind}, from layer {op.layer_names}) "
                                 "produced non-finite output on representative_data")
        observers[op.name].update(value, n_batches)

    try:
        for i in range(0, len(x), batch_size):
            observers[graph.input].update(x[i:i + batch_size], n_batches)
            graph.run(x[i:i + batch_size], hook=hook)
    except LoweringError as e:
        raise CalibrationError(str(e)) from None
    return {name: obs.range() for name, obs in observers.items()}
