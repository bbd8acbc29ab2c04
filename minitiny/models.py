"""Models: a graph of layers, and the training loop (Keras' Sequential / Model API).

    model = Sequential([Dense(16, activation="relu", input_shape=[4]), Dense(3, "softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=20, validation_split=0.2)

Functional models allow branches (residual blocks):

    x = Input((32, 32, 3)); y = Conv2D(3, 3, padding="same")(x); z = Add()([x, y])
    model = Model(x, z)

The graph (read by the quantizer): `model.graph` is a list of `Node(layer, inputs)` in
execution order, `inputs` naming the model input (`model.input_name`) or earlier layers;
the last node is the output. `forward_all(x)` returns every node's output by name.

One training step (Model._train_step) is the whole of deep learning in five lines:
forward, loss, clear gradients, backward, optimizer step.
"""
import json
import sys
import warnings
from dataclasses import dataclass

import numpy as np

from minitiny import allocator
from minitiny import batches as mt_batches
from minitiny import callbacks as mt_callbacks
from minitiny import losses as mt_losses
from minitiny import metrics as mt_metrics
from minitiny import optimizers as mt_optimizers
from minitiny import random as mt_random
from minitiny import saving as mt_saving
from minitiny.data import check_finite
from minitiny.geometry import shape_str
from minitiny.layers import (BatchNormalization, InputLayer, Layer, SymbolicTensor,
                             layer_from_config, unique_name)
from minitiny.tensor import Tensor, no_grad


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


@dataclass
class Node:
    layer: Layer
    inputs: list            # names: the model's input_name or earlier layers' names

    @property
    def name(self):
        return self.layer.name


class Model:
    """Functional model: Model(inputs=Input(...), outputs=<SymbolicTensor>)."""

    def __init__(self, inputs=None, outputs=None, name=None):
        self.name = name or unique_name("sequential" if isinstance(self, Sequential)
                                        else "functional")
        self.optimizer = self.loss = None
        self.metric_names, self.metrics = [], []      # as compiled; the metric objects
        self.history = None
        self.stop_training = False
        self._input_layer, self._graph = None, None
        if isinstance(self, Sequential):
            return
        if inputs is None or outputs is None:
            raise ValueError("Model(inputs, outputs) needs both: inputs=Input(shape) and the "
                             "output of the last layer")
        self._trace(inputs, outputs)

    # ---- building the graph -------------------------------------------------------------
    def _trace(self, inputs, outputs):
        inputs = inputs[0] if isinstance(inputs, (list, tuple)) and len(inputs) == 1 else inputs
        outputs = outputs[0] if isinstance(outputs, (list, tuple)) and len(outputs) == 1 \
            else outputs
        if not isinstance(inputs, SymbolicTensor) or not isinstance(inputs.layer, InputLayer):
            raise ValueError("Model inputs must be one placeholder made by minitiny.Input(shape)")
        if not isinstance(outputs, SymbolicTensor):
            raise ValueError("Model outputs must be the result of calling a layer on the "
                             "input (one output; minitiny models have one output)")
        graph, seen = [], set()

        def visit(t):                            # depth-first: inputs before their users
            if t.layer is inputs.layer:
                return
            if isinstance(t.layer, InputLayer):
                raise ValueError(f"the graph uses Input {t.layer.name!r}, which is not the "
                                 f"model's input {inputs.layer.name!r}")
            if id(t.layer) in seen:
                return
            for i in t.inputs:
                visit(i)
            seen.add(id(t.layer))
            graph.append(Node(t.layer, [i.name for i in t.inputs]))

        visit(outputs)
        if not graph:
            raise ValueError("the model has no layers between its input and its output")
        self._set_graph(inputs.layer, graph)

    def _set_graph(self, input_layer, graph):
        names = [input_layer.name] + [n.layer.name for n in graph]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model {self.name!r}: layer names must be unique, {dupes} appear "
                             "more than once (each layer object can be used once)")
        self._input_layer, self._graph = input_layer, graph

    # ---- the graph contract ------------------------------------------------------------
    @property
    def built(self):
        return self._graph is not None

    def _require_built(self):
        if not self.built:
            raise ValueError(f"model {self.name!r} is not built yet: give the first layer "
                             "input_shape=..., start with minitiny.Input(shape), or call fit "
                             "or predict once")

    @property
    def graph(self):
        self._require_built()
        return self._graph

    @property
    def layers(self):
        return [n.layer for n in self.graph]

    def get_layer(self, name=None, index=None):
        """The layer called `name`, or the one at `index` in `layers` (Keras' get_layer)."""
        if (name is None) == (index is None):
            raise ValueError("get_layer needs exactly one of name= or index=")
        layers = self.layers
        if index is not None:
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"model {self.name!r} has {len(layers)} layers, "
                                 f"no index {index}")
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"model {self.name!r} has no layer {name!r}; its layers: "
                         f"{[layer.name for layer in layers]}")

    @property
    def input_name(self):
        self._require_built()
        return self._input_layer.name

    @property
    def input_shape(self):
        self._require_built()
        return self._input_layer.input_shape

    @property
    def output_shape(self):
        return self.graph[-1].layer.output_shape

    @property
    def dtype(self):
        return self.layers[0].dtype

    def forward(self, x, training=False, pre_activation=False):
        """Run the graph on a batch -> Tensor. pre_activation: the last layer stops before
        its activation (the logits the cross-entropy losses want)."""
        x = x if isinstance(x, Tensor) else Tensor(x, dtype=self.dtype)
        values = {self._input_layer.name: x}
        last = self._graph[-1].layer
        for node in self._graph:
            ins = [values[n] for n in node.inputs]
            arg = ins[0] if len(ins) == 1 and node.layer.n_inputs == 1 else ins
            if pre_activation and node.layer is last:
                out = node.layer._linear(arg, training)
            else:
                out = node.layer.call(arg, training=training)
            values[node.layer.name] = out
        return out

    def forward_all(self, x):
        """{input_name: x, layer name: that layer's output} as ndarrays, inference mode."""
        x = self._check_x(x, "x")
        values = {self.input_name: Tensor(x)}
        with no_grad():
            for node in self._graph:
                ins = [values[n] for n in node.inputs]
                arg = ins[0] if len(ins) == 1 and node.layer.n_inputs == 1 else ins
                values[node.layer.name] = node.layer.call(arg, training=False)
        return {k: v.data for k, v in values.items()}

    def __call__(self, x, training=False):
        if isinstance(x, SymbolicTensor):
            raise ValueError("calling a model on Input(...) (nesting models) is not supported; "
                             "use its layers directly")
        if isinstance(x, Tensor):                    # keep its graph; check only the shape
            self._ensure_built_for(x)
            shape = x.shape[1:] if x.ndim > 1 or self.input_shape != (1,) else (1,)
            if shape != self.input_shape:
                self._check_x(x.data, "x")               # raises the usual clear error
        else:
            x = self._check_x(x, "x")
        return self.forward(x, training=training)

    def _ensure_built_for(self, x):
        """Sequential models without an input shape build on the first data they see."""

    # ---- data checks -------------------------------------------------------------------
    def _check_x(self, x, name):
        if isinstance(x, Tensor):
            x = x.data
        try:
            x = np.asarray(x)
        except Exception as e:
            raise ValueError(f"{name} cannot be turned into an array: {e}") from None
        if x.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold numbers, got dtype {x.dtype}")
        if x.ndim == 0:
            raise ValueError(f"{name} must have a batch axis, got a scalar")
        check_finite(x, name, self.dtype)
        self._ensure_built_for(x)
        want = self.input_shape
        if x.ndim == 1 and want == (1,):
            x = x.reshape(-1, 1)                      # Keras: rank-1 x is (N, 1)
        if x.shape[1:] != want:
            first = next(n.layer.name for n in self._graph if self.input_name in n.inputs)
            hint = "; for one sample use x[None]" if x.shape == want else ""
            raise ValueError(f"model {self.name!r}: layer {first!r} expects input "
                             f"{shape_str(want)}, got {name} of shape {shape_str(x.shape[1:])}"
                             f"{hint}")
        return x.astype(self.dtype, copy=False)

    def _check_y(self, y, name, n):
        if y is None:
            raise ValueError(f"{name} is missing: fit and evaluate need labels")
        y = np.asarray(y.data if isinstance(y, Tensor) else y)
        if y.ndim == 0:
            raise ValueError(f"{name} must have one entry per sample, got a scalar")
        if y.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold numbers, got dtype {y.dtype}")
        if len(y) != n:
            raise ValueError(f"x has {n} samples but {name} has {len(y)}; they must match")
        check_finite(y, name, self.dtype)
        try:
            return self.loss.prepare(y, self.output_shape, self.dtype)
        except ValueError as e:
            if name == "y":
                raise
            raise ValueError(f"{name}: {e}") from None      # say which labels are wrong

    # ---- compile -----------------------------------------------------------------------
    def compile(self, optimizer="sgd", loss=None, metrics=None):
        """optimizer: 'sgd' | 'adam' | Optimizer; loss: Keras name or Loss; metrics: names."""
        self.optimizer = mt_optimizers.get(optimizer)
        self.loss = None if loss is None else mt_losses.get(loss)
        if isinstance(metrics, str):
            metrics = [metrics]
        self.metric_names = list(metrics or [])
        for m in self.metric_names:               # fail now on a typo, not after building
            mt_metrics.get(m, (2,), (2,))

    def _require_compiled(self):
        if self.optimizer is None or self.loss is None:
            raise ValueError(f"model {self.name!r} is not compiled with a loss: call "
                             "model.compile(optimizer=..., loss=...) before fit or evaluate")

    def _loss_plan(self):
        """Where the loss reads from: (pre_activation, loss_on_logits, metric_logits,
        logits_loss): logits_loss is the activation a from_logits=True loss implies
        ('sigmoid' / 'softmax'), else False (metrics.py reads the last two)."""
        last = self._graph[-1].layer
        act = getattr(last, "activation", None)
        if self.loss.from_logits:
            if act in ("softmax", "sigmoid"):
                warnings.warn(f"loss {self.loss.name!r} has from_logits=True but layer "
                              f"{last.name!r} ends in {act!r}: the loss will treat "
                              "probabilities as logits. Use from_logits=False, or drop the "
                              "activation.", stacklevel=3)
            return False, True, None, self.loss.activation or True
        if self.loss.activation is not None and act == self.loss.activation:
            return True, True, act, False            # use the logits before softmax/sigmoid
        return False, False, None, False

    # ---- training ----------------------------------------------------------------------
    def trainable_params(self):
        return [t for layer in self.layers for t in layer.trainable_weights]

    @property
    def trainable(self):
        """Keras' model.trainable: True while any layer trains; setting it sets every
        layer's (base.trainable = False freezes a base model for transfer learning)."""
        return any(layer.trainable for layer in self.layers)

    @trainable.setter
    def trainable(self, value):
        for layer in self.layers:
            layer.trainable = value

    @property
    def losses(self):
        """The weight penalties (kernel_regularizer=...) fit and evaluate add to the loss,
        as scalar Tensors (Keras' model.losses)."""
        return [p for layer in self.layers for p in layer.regularization_losses()]

    def _train_step(self, xb, tb, wb, params, plan):
        out = self.forward(Tensor(xb), training=True, pre_activation=plan[0])   # forward
        loss = self.loss.compute(tb, out, plan[1], wb)                           # how wrong
        for penalty in self.losses:                                              # + weight
            loss = loss + penalty                                                #   penalties
        if not np.isfinite(loss.data):
            raise NonFiniteLoss(float(loss.data))       # before it can change any weight
        for p in params:                                                         # clear
            p.grad = None
        if loss.requires_grad:
            loss.backward()                                                      # backward
            self.optimizer.step(params)                                          # update
        return float(loss.data), out.data

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1, seed=None):
        """Train for `epochs` passes over the data -> History.

        x, y: arrays, or x alone as a Keras Sequence, a minitiny.data.Dataset or a Python
        generator of (x, y) / (x, y, sample_weight) batches (see batches.py), with
        steps_per_epoch; validation_data likewise, or (x_val, y_val[, sample_weight]).
        sample_weight (N,) or class_weight {class: weight} weigh each sample's loss.
        validation_split takes the LAST fraction of x, y (before any shuffling), as Keras.
        verbose=1 prints Keras' progress bar line per epoch, 2 one plain line per epoch.
        seed reseeds minitiny.random first: same seed, same batches, same dropout, same
        history. Ctrl-C or SIGTERM stops cleanly after the current step: the history holds
        the epochs already finished (history.interrupted names the signal), callbacks still
        get on_train_end (EarlyStopping restores its best weights), and checkpoints already
        written stay whole. A loss that
        turns NaN or infinite stops training too (Keras' TerminateOnNaN, always on), with
        the weights of the last step whose loss was finite.
        """
        self._require_compiled()
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
        if seed is not None:
            mt_random.seed(seed)
        train, val = self._fit_data(x, y, sample_weight, class_weight, batch_size, shuffle,
                                    steps_per_epoch, validation_split, validation_data,
                                    validation_steps, validation_batch_size)
        plan = self._loss_plan()
        params, last_good = self.trainable_params(), _LastGoodWeights(self.layers)
        if not params:
            warnings.warn(f"model {self.name!r} has no trainable weights (every layer is "
                          "frozen); fit will not change it", stacklevel=2)
        history = mt_callbacks.History()
        others = list(callbacks or [])
        cbs = others + [history]                       # History last, as Keras: it records
        for cb in cbs:                                 # what the others add to the logs
            cb.set_model(self)
        progress = mt_callbacks.Progbar(train.steps, verbose, epochs)
        self.history, self.stop_training = history, False
        epoch = initial_epoch
        for cb in cbs:
            cb.on_train_begin()
        # heap_reuse: each step reuses the pages the last one freed (allocator.py)
        with mt_callbacks.StopOnSignal() as stop, allocator.heap_reuse():
            try:
                for epoch in range(initial_epoch, epochs):             # the training loop
                    progress.epoch_begin(epoch)
                    for cb in cbs:
                        cb.on_epoch_begin(epoch)
                    logs = self._train_epoch(train, params, plan, cbs, stop, last_good,
                                             progress)
                    if train.ran_out:
                        _say_ran_out(train, epochs)
                        break
                    if val is not None and (epoch + 1) % validation_freq == 0:
                        val_logs = self._evaluate_batches(val, plan)
                        logs.update({"val_" + k: v for k, v in val_logs.items()})
                    try:
                        for cb in others:
                            cb.on_epoch_end(epoch, logs)
                    finally:                            # recorded even if a callback is
                        history.on_epoch_end(epoch, logs)   # interrupted (Ctrl-C mid-save)
                    progress.epoch_end(logs)
                    stop.check()                        # a signal: stop between two epochs
                    if self.stop_training:
                        break
            except KeyboardInterrupt:
                self.stop_training = stop.handled = True
                history.interrupted = stop.received or "SIGINT"           # Ctrl-C
                _say_interrupted(history.interrupted, epoch, epochs, history)
            except NonFiniteLoss as e:
                self.stop_training = True
                went_back_to = "the last step whose loss was finite" if last_good.restore() \
                    else "the start of training (no step had a finite loss)"
                print(f"\nTraining stopped: the loss is {e.loss} in epoch {epoch + 1}/{epochs}, "
                      f"batch {e.batch + 1}; the weights are back to those of {went_back_to}. "
                      "Lower the learning rate, or check the data.", file=sys.stderr, flush=True)
        for cb in cbs:
            cb.on_train_end()
        return history

    def _fit_data(self, x, y, sample_weight, class_weight, batch_size, shuffle, steps,
                  validation_split, validation_data, validation_steps, validation_batch_size):
        """The training batches and the validation batches (or None) fit works on."""
        if not mt_batches.is_arrays(x):
            if validation_split:
                raise ValueError("validation_split needs arrays; with a Sequence, Dataset "
                                 "or generator pass validation_data instead (as Keras)")
            train = self._batches(x, y, sample_weight, class_weight, batch_size, steps,
                                  shuffle, "fit")
            return train, self._validation_batches(validation_data, validation_steps,
                                                   validation_batch_size)
        x = self._check_x(x, "x")
        target = self._check_y(y, "y", len(x))
        weights = mt_batches.sample_weights(sample_weight, class_weight, target, "")
        if len(x) == 0:
            raise ValueError(f"fit needs at least one sample: x holds none (shape {x.shape})")
        batch_size = 32 if batch_size is None else batch_size
        _check_batch_size(batch_size)
        if validation_data is not None or not validation_split:
            return (mt_batches.ArrayBatches((x, target, weights), batch_size, shuffle, steps),
                    self._validation_batches(validation_data, validation_steps,
                                             validation_batch_size or batch_size))
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
        split_at = int(np.floor(len(x) * (1.0 - validation_split)))
        if split_at == 0 or split_at == len(x):
            raise ValueError(f"validation_split={validation_split} of {len(x)} samples "
                             "leaves no training or no validation data")
        head, tail = slice(None, split_at), slice(split_at, None)
        part = [(x[s], target[s], None if weights is None else weights[s]) for s in (head, tail)]
        return (mt_batches.ArrayBatches(part[0], batch_size, shuffle, steps),
                mt_batches.ArrayBatches(part[1], validation_batch_size or batch_size))

    def _validation_batches(self, data, steps, batch_size):
        if data is None:
            return None
        if mt_batches.is_arrays(data):
            if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
                raise ValueError("validation_data must be a pair (x_val, y_val), a triple "
                                 "(x_val, y_val, sample_weight), a Sequence, a Dataset or a "
                                 "generator")
            x_val = self._check_x(data[0], "validation x")
            t_val = self._check_y(data[1], "validation y", len(x_val))
            w_val = mt_batches.sample_weights(data[2] if len(data) == 3 else None, None,
                                              t_val, "validation ")
            if len(x_val) == 0:
                raise ValueError("validation_data holds no samples: pass a non-empty "
                                 "(x_val, y_val) pair, or leave validation_data out")
            return mt_batches.ArrayBatches((x_val, t_val, w_val), batch_size or 32,
                                           steps=steps)
        return self._batches(data, None, None, None, None, steps, False, "validation_data")

    def _batches(self, x, y, sample_weight, class_weight, batch_size, steps, shuffle, what,
                 need_y=True):
        """A Sequence / Dataset / generator as checked batches (x, target, weights)."""
        if y is not None or sample_weight is not None:
            raise ValueError(f"{what}: y and sample_weight must be left out when x is a "
                             f"{type(x).__name__}: its batches carry them, as (x, y) or "
                             "(x, y, sample_weight)")
        if batch_size is not None:
            raise ValueError(f"{what}: batch_size must be left out when x is a "
                             f"{type(x).__name__}: its batches already have their size")

        def check(xb, yb, wb, where):
            xb = self._check_x(xb, f"x of {where}")
            if not need_y:
                return xb, None, None
            tb = self._check_y(yb, f"y of {where}", len(xb))
            return xb, tb, mt_batches.sample_weights(wb, class_weight, tb, f"{where}: ")
        return mt_batches.SourceBatches(x, check, steps, shuffle, need_y, what)

    def _train_epoch(self, train, params, plan, cbs, stop, last_good, progress):
        """One pass over the training batches -> the epoch's logs (sample means)."""
        metrics = None
        loss_sum = seen = 0.0
        begin, end = ([getattr(cb, hook) for cb in cbs if hasattr(cb, hook)]   # duck-typed
                      for hook in ("on_train_batch_begin", "on_train_batch_end"))  # too
        for b, (xb, tb, wb) in enumerate(train.epoch()):
            for hook in begin:
                hook(b)
            last_good.before_step()
            try:
                loss, out = self._train_step(xb, tb, wb, params, plan)
            except NonFiniteLoss as e:
                e.batch = b
                raise
            loss_sum, seen = loss_sum + loss * len(xb), seen + len(xb)
            metrics = metrics or self._fresh_metrics(tb)
            for m in metrics:
                m.update(tb, out, plan[2], plan[3], wb)
            for hook in end:
                hook(b, {"loss": loss})
            progress.batch(b + 1, lambda: self._logs(loss_sum / seen, metrics))
            stop.check()                                # a signal: stop between two steps
        train.end_epoch()
        return self._logs(loss_sum / max(seen, 1), metrics or [])

    def _fresh_metrics(self, target):
        """The compiled metrics, reset, for labels like `target` (Keras' model.metrics)."""
        self.metrics = [mt_metrics.get(m, target.shape[1:], self.output_shape)
                        for m in self.metric_names]
        for m in self.metrics:
            m.reset_state()
        return self.metrics

    @staticmethod
    def _logs(loss, metrics):
        return {"loss": loss, **{m.name: m.result() for m in metrics}}

    # ---- inference ---------------------------------------------------------------------
    def _evaluate_batches(self, batches, plan, progress=None):
        metrics = None
        loss_sum = seen = 0.0
        with no_grad():
            penalty = sum(float(p.data) for p in self.losses)      # the same for every batch
            for b, (xb, tb, wb) in enumerate(batches.epoch()):
                out = self.forward(Tensor(xb), training=False, pre_activation=plan[0])
                loss = float(self.loss.compute(tb, out, plan[1], wb).data) + penalty
                loss_sum, seen = loss_sum + loss * len(xb), seen + len(xb)
                metrics = metrics or self._fresh_metrics(tb)
                for m in metrics:
                    m.update(tb, out.data, plan[2], plan[3], wb)
                if progress is not None:
                    progress.batch(b + 1, lambda: self._logs(loss_sum / seen, metrics))
        batches.end_epoch()
        if seen == 0:
            raise ValueError(f"no data to evaluate: the {getattr(batches, 'kind', 'input')} "
                             "gave no batches")
        return self._logs(loss_sum / seen, metrics)

    def evaluate(self, x=None, y=None, batch_size=None, verbose=0, sample_weight=None,
                 steps=None, return_dict=False):
        """Loss (and compiled metrics) on the data in inference mode: the loss, or
        [loss, *metrics] when metrics were compiled, or a dict with return_dict. x, y as
        in fit: arrays, or x alone as a Sequence, Dataset or generator (with steps)."""
        self._require_compiled()
        if mt_batches.is_arrays(x):
            x = self._check_x(x, "x")
            target = self._check_y(y, "y", len(x))
            if len(x) == 0:
                raise ValueError(f"evaluate needs at least one sample: x holds none (shape "
                                 f"{x.shape})")
            weights = mt_batches.sample_weights(sample_weight, None, target, "")
            batch_size = 32 if batch_size is None else batch_size
            _check_batch_size(batch_size)
            batches = mt_batches.ArrayBatches((x, target, weights), batch_size, steps=steps)
        else:
            batches = self._batches(x, y, sample_weight, None, batch_size, steps, False,
                                    "evaluate")
        progress = mt_callbacks.Progbar(batches.steps, 1 if verbose else 0)
        logs = self._evaluate_batches(batches, self._loss_plan(), progress)
        progress.epoch_end(logs)
        if return_dict:
            return logs
        return list(logs.values()) if self.metric_names else logs["loss"]

    def predict(self, x, batch_size=None, verbose=0, steps=None):
        """Outputs for every sample (inference mode) -> ndarray (N, *output_shape).

        x: an array, or a Sequence, Dataset or generator of batches (x alone or (x, y)).
        A Python list of numbers is an array too: `model.predict([10.0])` works, as it did
        in Keras 2 (the course's first notebook does it); Keras 3 refuses lists, minitiny
        follows Keras 2 there on purpose."""
        if mt_batches.is_arrays(x):
            x = self._check_x(x, "x")
            batch_size = 32 if batch_size is None else batch_size
            _check_batch_size(batch_size)
            batches = mt_batches.ArrayBatches((x,), batch_size, steps=steps)
        else:
            batches = self._batches(x, None, None, None, batch_size, steps, False, "predict",
                                    need_y=False)
        progress = mt_callbacks.Progbar(batches.steps, 1 if verbose else 0)
        outs = []
        with no_grad():
            for b, (xb, *_) in enumerate(batches.epoch()):
                outs.append(self.forward(Tensor(xb), training=False).data)
                progress.batch(b + 1, dict)
        batches.end_epoch()
        progress.epoch_end({})
        if not outs:
            return np.empty((0,) + self.output_shape, dtype=self.dtype)
        return np.concatenate(outs)

    # ---- one batch at a time (Keras' *_on_batch) ---------------------------------------
    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One training step on (x, y) -> its loss (and metrics, for this batch alone)."""
        self._require_compiled()
        x = self._check_x(x, "x")
        target = self._check_y(y, "y", len(x))
        weights = mt_batches.sample_weights(sample_weight, class_weight, target, "")
        plan = self._loss_plan()
        loss, out = self._train_step(x, target, weights, self.trainable_params(), plan)
        metrics = self._fresh_metrics(target)
        for m in metrics:
            m.update(target, out, plan[2], plan[3], weights)
        return self._batch_result(self._logs(loss, metrics), return_dict)

    def test_on_batch(self, x, y, sample_weight=None, return_dict=False):
        """The loss (and metrics) of one batch in inference mode."""
        logs = self.evaluate(x, y, batch_size=max(len(np.asarray(x)), 1),
                             sample_weight=sample_weight, return_dict=True)
        return self._batch_result(logs, return_dict)

    def predict_on_batch(self, x):
        x = self._check_x(x, "x")
        with no_grad():
            return self.forward(Tensor(x), training=False).data

    def _batch_result(self, logs, return_dict):
        if return_dict:
            return logs
        return list(logs.values()) if self.metric_names else logs["loss"]

    # ---- weights -----------------------------------------------------------------------
    def get_weights(self):
        """Every layer's weights, in layer order, each layer in Keras' order."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, arrays):
        arrays = list(arrays)
        want = sum(len(layer.weights) for layer in self.layers)
        if len(arrays) != want:
            listing = "; ".join(f"{layer.name}: {', '.join(layer.weights)}"
                                for layer in self.layers if layer.weights)
            raise ValueError(f"model {self.name!r} has {want} weight arrays ({listing}), "
                             f"got {len(arrays)}")
        i = 0
        for layer in self.layers:                  # check every shape before changing any
            for (n, t), a in zip(layer.weights.items(), arrays[i:i + len(layer.weights)]):
                if np.shape(a) != t.data.shape:
                    raise ValueError(f"set_weights: layer {layer.name!r} weight {n!r} has shape "
                                     f"{t.data.shape}, got an array of shape {np.shape(a)}")
            i += len(layer.weights)
        i = 0
        for layer in self.layers:
            layer.set_weights(arrays[i:i + len(layer.weights)])
            i += len(layer.weights)

    def count_params(self):
        return sum(layer.count_params() for layer in self.layers)

    def save_weights(self, path):
        """Every weight, no architecture: 'NAME.weights.npz', or Keras 3's 'NAME.weights.h5'."""
        return mt_saving.save_weights(self, path)

    def load_weights(self, path):
        """Weights written by save_weights (minitiny or Keras 3), layer by layer in order."""
        mt_saving.load_weights(self, path)

    def save(self, path):
        """One .npz file: weights + JSON config, written atomically (see saving.py)."""
        return mt_saving.save_model(self, path)

    # ---- config (saving.py stores it) --------------------------------------------------
    def get_config(self):
        return {"class_name": "Sequential" if isinstance(self, Sequential) else "Model",
                "name": self.name, "input_name": self.input_name,
                "input_shape": list(self.input_shape),
                "input_dtype": self._input_layer.dtype,
                "layers": [{"class_name": type(n.layer).__name__,
                            "config": n.layer.get_config(), "inputs": list(n.inputs)}
                           for n in self.graph]}

    @classmethod
    def from_config(cls, cfg):
        """Rebuild an (untrained) functional model from get_config(); layers from the
        registry (layers.LAYERS)."""
        inp, layers = _input_and_layers(cfg)
        values = {inp.name: SymbolicTensor(inp.input_shape, inp, [])}
        for layer, lc in zip(layers, cfg["layers"]):
            try:
                ins = [values[n] for n in lc["inputs"]]
            except KeyError as e:
                raise ValueError(f"layer {layer.name!r} reads {e.args[0]!r}, which is not an "
                                 "earlier layer or the input") from None
            if not ins:
                raise ValueError(f"layer {layer.name!r} reads no input")
            values[layer.name] = layer(ins if layer.n_inputs != 1 else ins[0])
        return Model(values[inp.name], values[layers[-1].name], name=cfg["name"])

    def to_json(self, **json_kwargs):
        """The architecture (get_config) as JSON text, no weights; models.model_from_json
        rebuilds it. minitiny's config layout, not Keras'."""
        return json.dumps(self.get_config(), **json_kwargs)

    # ---- summary -----------------------------------------------------------------------
    def summary(self, board=None, print_fn=None):
        """A table of layers (output shape, parameters, multiply-accumulates) and totals:
        float32 and int8 sizes, and with `board` (e.g. 'cortex-m4') the flash and RAM
        estimates against that board's budget."""
        print_fn = print_fn or print
        rows, functional = [], not isinstance(self, Sequential)
        for node in self.graph:
            layer = node.layer
            rows.append((f"{layer.name} ({type(layer).__name__})",
                         str((None,) + layer.output_shape), f"{layer.count_params():,}",
                         f"{layer.macs():,}", ", ".join(node.inputs)))
        head = ("Layer (type)", "Output Shape", "Param #", "MACs", "Connected to")
        cols = 5 if functional else 4
        width = [max(len(r[i]) for r in rows + [head]) for i in range(cols)]

        def line(r):
            cells = [r[0].ljust(width[0]), r[1].ljust(width[1]),
                     r[2].rjust(width[2]), r[3].rjust(width[3])] + \
                    ([r[4].ljust(width[4])] if functional else [])
            return "  ".join(cells).rstrip()
        rule = "=" * len(line(head))
        total = self.count_params()
        trainable = sum(t.data.size for t in self.trainable_params())
        macs = sum(layer.macs() for layer in self.layers)
        flash, ram, ram_at = self.memory_estimate()
        out = [f'Model: "{self.name}"', line(head), rule] + [line(r) for r in rows] + [rule]
        out += [f"Total params: {total:,} (trainable {trainable:,}, non-trainable "
                f"{total - trainable:,})",
                f"Total MACs per inference: {macs:,}",
                f"Weights: {4 * total:,} bytes as float32; about {flash:,} bytes as int8 "
                "(int8 weights, int32 biases, BatchNorm folded)",
                f"Largest activations (input + output of one layer, int8): {ram:,} bytes "
                f"at {ram_at!r}"]
        if board is not None:          # the board table belongs to deployment
            from minitiny.deploy.boards import summary_lines
            out += summary_lines(board, flash, ram)
        print_fn("\n".join(out))

    def memory_estimate(self):
        """(int8 weight bytes, largest input+output activation bytes, at which layer).

        Weights: kernels 1 byte per value, biases 4 (int32), BatchNormalization 0 (folded
        into the previous layer by the quantizer). Activations: int8, 1 byte per value;
        a layer needs its inputs and its output alive at once. With skip connections more
        tensors stay alive, so this is a lower bound; the code generator's arena planner
        gives the exact figure."""
        flash = 0
        for layer in self.layers:
            if not isinstance(layer, BatchNormalization):
                flash += sum(t.data.size * (4 if n == "bias" else 1)
                             for n, t in layer.weights.items())
        sizes = {self.input_name: int(np.prod(self.input_shape))}
        ram, ram_at = 0, self.input_name
        for node in self.graph:
            sizes[node.name] = int(np.prod(node.layer.output_shape))
            need = sum(sizes[n] for n in node.inputs) + sizes[node.name]
            if need > ram:
                ram, ram_at = need, node.name
        return flash, ram, ram_at


class Sequential(Model):
    """A plain stack: each layer feeds the next."""

    def __init__(self, layers=None, name=None):
        super().__init__(name=name)
        self._layers = []
        self._pending_input = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        if isinstance(layer, SymbolicTensor) and isinstance(layer.layer, InputLayer):
            if self._layers:
                raise ValueError("an Input can only be the first entry of a Sequential model")
            self._pending_input = layer.layer
            return
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError("an InputLayer can only be the first entry of a Sequential "
                                 "model")
            self._pending_input = layer
            return
        if isinstance(layer, Sequential):
            # Keras keeps a nested Sequential as one layer; minitiny adds its layers, the
            # same objects, so their weights stay shared with it (as Keras shares them) and
            # inner.trainable = False still freezes them. model.layers lists them one by one.
            if not self._layers and self._pending_input is None and layer.built:
                self._pending_input = InputLayer(shape=layer.input_shape,
                                                 dtype=layer._input_layer.dtype)
            for inner in layer.layers:
                self.add(inner)
            return
        if isinstance(layer, Model):
            raise TypeError(f"nesting the functional model {layer.name!r} inside a Sequential "
                            "is not supported (a nested Sequential is); call its layers "
                            "on the Sequential's output in a functional Model instead")
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential takes layers, got {type(layer).__name__}")
        self._layers.append(layer)
        if self.built:
            prev = self._graph[-1].layer
            layer.ensure_built(prev.output_shape)
            self._set_graph(self._input_layer, self._graph + [Node(layer, [prev.name])])
        elif self._pending_input is not None:
            self.build(self._pending_input.input_shape)
        elif len(self._layers) == 1 and layer.declared_input_shape is not None:
            self.build(layer.declared_input_shape)

    def build(self, input_shape):
        """Build every layer for samples of `input_shape` (Keras' (None, ...) also works)."""
        input_shape = tuple(input_shape)
        if input_shape and input_shape[0] is None:
            input_shape = input_shape[1:]
        if not self._layers:
            raise ValueError(f"model {self.name!r} has no layers")
        if self._pending_input is not None and self._pending_input.input_shape == input_shape:
            inp = self._pending_input
        else:
            inp = InputLayer(shape=input_shape, dtype=self._layers[0].dtype)
        shape, graph, prev = inp.input_shape, [], inp.name
        for layer in self._layers:
            layer.ensure_built(shape)
            shape = layer.output_shape
            graph.append(Node(layer, [prev]))
            prev = layer.name
        self._set_graph(inp, graph)

    @property
    def layers(self):
        return list(self._layers)

    @classmethod
    def from_config(cls, cfg):
        """Rebuild an (untrained) Sequential model from get_config()."""
        inp, layers = _input_and_layers(cfg)
        return Sequential([inp] + layers, name=cfg["name"])

    def _ensure_built_for(self, x):
        if not self.built:
            x = x.data if isinstance(x, Tensor) else np.asarray(x)
            self.build(x.shape[1:] if x.ndim > 1 else (1,))


def _input_and_layers(cfg):
    """The InputLayer and the layers (from layers.LAYERS) a model config names."""
    layers = [layer_from_config(lc) for lc in cfg["layers"]]
    inp = InputLayer(shape=cfg["input_shape"], name=cfg["input_name"],
                     dtype=cfg.get("input_dtype", "float32"))
    return inp, layers


mt_saving.register_model_class(Model)
mt_saving.register_model_class(Sequential)


# ---- what fit leans on: a diverged loss, undoing a step, its messages ---------------------
class NonFiniteLoss(ArithmeticError):
    """A training step's loss is NaN or infinite; raised before the step changes a weight."""

    def __init__(self, loss, batch=None):
        super().__init__(f"the loss is {loss}")
        self.loss, self.batch = loss, batch


class _LastGoodWeights:
    """Copies of every weight (trainable or not) from before each of the last two steps.
    When step k's loss is not finite, the weights from before step k-1 are the last ones
    whose loss was finite, and restore() brings them back. One copy per step, into two
    buffers made once."""

    def __init__(self, layers):
        self.tensors = [t for layer in layers for t in layer.weights.values()]
        self.copies = [[t.data.copy() for t in self.tensors] for _ in range(2)]
        self.steps = 0

    def before_step(self):
        for copy, t in zip(self.copies[self.steps % 2], self.tensors):
            np.copyto(copy, t.data)
        self.steps += 1

    def restore(self):
        """Put back the weights from before the step preceding the latest one (before the
        first step: the starting weights) -> True if a step with a finite loss existed."""
        for copy, t in zip(self.copies[(self.steps - 2) % 2 if self.steps >= 2 else 0],
                           self.tensors):
            t.data[...] = copy
        return self.steps >= 2


def _say_ran_out(train, epochs):
    warnings.warn(f"Your input ran out of data; interrupting training. Make sure that your "
                  f"{train.kind if hasattr(train, 'kind') else 'data'} can generate at least "
                  f"steps_per_epoch * epochs batches ({train.steps} * {epochs} here).",
                  stacklevel=3)


def _say_interrupted(why, epoch, epochs, history):
    """The one line an interrupted fit prints: where it stopped and what it kept."""
    done = len(history.epoch)
    where = f"after epoch {epoch + 1}/{epochs}" if done and history.epoch[-1] == epoch \
        else f"during epoch {epoch + 1}/{epochs}"
    print(f"\nTraining interrupted ({why}) {where}: keeping the history of the {done} "
          "finished epoch(s); the weights are those of the last finished step.",
          file=sys.stderr, flush=True)
