"""Callbacks: code that `fit` runs at the start and end of training, of every epoch and of
every batch.

Keras names and behaviour: `History` (fit always adds one and returns it),
`EarlyStopping` (stop when a monitored number stops improving, optionally go back to the
best weights), `ModelCheckpoint` (save the model, every epoch or only when it improved),
`TerminateOnNaN` (stop when the loss is no longer a number), `ReduceLROnPlateau` and
`LearningRateScheduler` (change the optimizer's learning rate), `CSVLogger` (one CSV row
per epoch), `LambdaCallback` (plain functions as hooks).
`logs` is the epoch's dict: {'loss': ..., 'accuracy': ..., 'val_loss': ..., ...}; a batch's
logs hold that batch's loss.

At the end, `StopOnSignal`: not a callback but what fit wraps its loop in, so Ctrl-C and
SIGTERM stop training between two steps.
"""
import csv
import inspect
import math
import os
import signal
import sys
import threading
import time
import warnings

import numpy as np

from minitiny.arguments import refuse_arguments
from minitiny.saving import check_model_path


class Callback:
    model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): self.on_batch_begin(batch, logs)
    def on_train_batch_end(self, batch, logs=None): self.on_batch_end(batch, logs)
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_end(self, logs=None): pass
    # Keras 2's names for the batch hooks (Keras' base class forwards to them too)
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass


class History(Callback):
    """Records every epoch's logs: history.history['loss'][i] is epoch i's loss.
    `interrupted` names the signal that stopped fit early ('SIGINT', 'SIGTERM'), else None."""

    def __init__(self):
        self.history, self.epoch, self.interrupted = {}, [], None

    def on_train_begin(self, logs=None):
        self.epoch = []                       # Keras keeps `history` across fit calls only
        self.history = {}                     # through model.history; each fit starts fresh

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


def _mode(mode, monitor):
    """'min' or 'max'; 'auto' means max for accuracies, min for everything else (Keras)."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if ("acc" in monitor or "auc" in monitor) else "min"
    return mode


def _monitored(logs, monitor, who):
    value = (logs or {}).get(monitor)
    if value is None:
        warnings.warn(f"{who}: the monitored quantity {monitor!r} is not in the logs "
                      f"(available: {sorted(logs or {})}); did you pass validation data?",
                      stacklevel=3)
    return value


class EarlyStopping(Callback):
    """Stop training once `monitor` has not improved by more than `min_delta` for
    `patience` epochs. With restore_best_weights the model ends with the weights of its
    best epoch (Keras 3 restores them at the end of training, stopped early or not)."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto",
                 restore_best_weights=False, start_from_epoch=0):
        self.monitor, self.patience, self.verbose = monitor, int(patience), verbose
        self.min_delta = abs(float(min_delta))
        self.mode = _mode(mode, monitor)
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = int(start_from_epoch)

    def _improved(self, current, best):
        if self.mode == "min":
            return current < best - self.min_delta
        return current > best + self.min_delta

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best = np.inf if self.mode == "min" else -np.inf
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = _monitored(logs, self.monitor, "EarlyStopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._improved(current, self.best):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model at the end of every epoch (or only when `monitor` improved, with
    save_best_only). The path may name the epoch and logs: 'ckpt_{epoch:02d}.npz'.
    Saving is atomic (saving.py), so an interrupted run never leaves half a file."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 mode="auto"):
        self.filepath, self.monitor, self.verbose = os.fspath(filepath), monitor, verbose
        check_model_path(self.filepath)          # a bad extension now, not after an epoch
        self.save_best_only = save_best_only
        self.mode = _mode(mode, monitor)
        self.best = np.inf if self.mode == "min" else -np.inf

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = _monitored(logs, self.monitor, "ModelCheckpoint")
            if current is None:
                return
            better = current < self.best if self.mode == "min" else current > self.best
            if not better:
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}, saving model to {path}")
            self.best = current
        elif self.verbose:
            print(f"Epoch {epoch + 1}: saving model to {path}")
        self.model.save(path)


class TerminateOnNaN(Callback):
    """Stop training when a batch's loss is NaN or infinite (Keras' TerminateOnNaN).

    minitiny's fit already stops on such a loss by itself, before the step that produced
    it changes any weight, and goes back to the weights of the last finite loss; this
    callback is here so Keras code that lists it runs unchanged."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


def _learning_rate(model, who):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise ValueError(f"{who} needs a compiled model (model.compile(optimizer=...))")
    return float(optimizer.learning_rate)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` once `monitor` has not improved by more than
    `min_delta` for `patience` epochs; then wait `cooldown` epochs before counting again;
    never go below `min_lr`. Adds 'learning_rate' to the epoch's logs (Keras 3)."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **unsupported):
        if unsupported:
            refuse_arguments("ReduceLROnPlateau", unsupported, [ReduceLROnPlateau])
        if not 0 <= factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in [0, 1), got {factor}")
        self.monitor, self.factor, self.patience = monitor, float(factor), int(patience)
        self.verbose, self.min_delta = verbose, float(min_delta)
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)
        self.mode = _mode(mode, monitor)

    def on_train_begin(self, logs=None):
        self.wait, self.cooldown_counter = 0, 0
        self.best = np.inf if self.mode == "min" else -np.inf

    def _improved(self, current):
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = _learning_rate(self.model, "ReduceLROnPlateau")
        current = _monitored(logs, self.monitor, "ReduceLROnPlateau")
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = logs["learning_rate"]
                if old > np.float32(self.min_lr):
                    new = max(old * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new
                    if self.verbose:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning "
                              f"rate to {new}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class LearningRateScheduler(Callback):
    """At the start of every epoch set the learning rate to schedule(epoch, lr) (or
    schedule(epoch) for a one-argument function); epochs count from 0. Adds
    'learning_rate' to the epoch's logs (Keras 3)."""

    def __init__(self, schedule, verbose=0):
        if not callable(schedule):
            raise ValueError(f"LearningRateScheduler needs a function, got {schedule!r}")
        self.schedule, self.verbose = schedule, verbose
        try:
            params = inspect.signature(schedule).parameters.values()
            self._two = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                            for p in params) >= 2 or any(p.kind is p.VAR_POSITIONAL
                                                         for p in params)
        except (TypeError, ValueError):          # a builtin without a signature
            self._two = True

    def on_epoch_begin(self, epoch, logs=None):
        lr = _learning_rate(self.model, "LearningRateScheduler")
        new = self.schedule(epoch, lr) if self._two else self.schedule(epoch)
        if isinstance(new, (bool, np.bool_)) or not isinstance(new, (int, float, np.number)) \
                or not math.isfinite(new) or new <= 0:
            raise ValueError(f"LearningRateScheduler: schedule({epoch}) must return a "
                             f"positive finite number, got {new!r}")
        self.model.optimizer.learning_rate = float(new)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{float(new)}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _learning_rate(self.model, "LearningRateScheduler")


class LambdaCallback(Callback):
    """Plain functions as hooks: LambdaCallback(on_epoch_end=lambda epoch, logs: ...).
    Each takes the arguments of the Callback method of the same name."""

    HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
             "on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")

    def __init__(self, **hooks):
        for name, fn in hooks.items():
            if name not in self.HOOKS:
                raise TypeError(f"LambdaCallback: {name!r} is not a hook minitiny calls; "
                                f"use {', '.join(self.HOOKS)}")
            if fn is not None and not callable(fn):
                raise TypeError(f"LambdaCallback: {name} must be a function, got {fn!r}")
        self.hooks = {name: fn for name, fn in hooks.items() if fn is not None}

    def _run(self, name, *args):
        if name in self.hooks:
            self.hooks[name](*args)

    def on_train_begin(self, logs=None): self._run("on_train_begin", logs)
    def on_train_end(self, logs=None): self._run("on_train_end", logs)
    def on_epoch_begin(self, epoch, logs=None): self._run("on_epoch_begin", epoch, logs)
    def on_epoch_end(self, epoch, logs=None): self._run("on_epoch_end", epoch, logs)
    def on_batch_begin(self, batch, logs=None): self._run("on_batch_begin", batch, logs)
    def on_batch_end(self, batch, logs=None): self._run("on_batch_end", batch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._run("on_train_batch_begin", batch, logs)
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._run("on_train_batch_end", batch, logs)
        self.on_batch_end(batch, logs)


class CSVLogger(Callback):
    """One row per epoch into a CSV file: the column 'epoch' (from 0), then the logs' keys
    sorted, as Keras writes it (csv's excel dialect, so lines end in \\r\\n). With append
    the rows go after an existing file's, without a second header."""

    def __init__(self, filename, separator=",", append=False):
        self.filename, self.separator = os.fspath(filename), separator
        self.append = bool(append)
        self.file = self.writer = self.keys = None

    def on_train_begin(self, logs=None):
        header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename) as f:
                header = not f.readline()
        self.file = open(self.filename, "a" if self.append else "w", newline="")
        self.header, self.writer, self.keys = header, None, None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.writer is None:
            self.keys = sorted(logs)
            self.writer = csv.DictWriter(self.file, fieldnames=["epoch"] + self.keys,
                                         delimiter=self.separator)
            if self.header:
                self.writer.writeheader()
        self.writer.writerow({"epoch": epoch, **{k: logs.get(k, "NA") for k in self.keys}})
        self.file.flush()

    def on_train_end(self, logs=None):
        if self.file is not None:
            self.file.close()
        self.file = self.writer = None


# ---- what fit(verbose=1 / 2), evaluate and predict print ----------------------------------
def _format_value(v):
    return f"{v:.4f}" if abs(v) > 1e-3 else f"{v:.4e}"


def _format_per_step(seconds):
    """Keras' time per step: 1s/step, 12ms/step, 80us/step."""
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


class Progbar:
    """Keras' progress output (Keras 2's Progbar, as the course shows it):

        Epoch 1/5
        1875/1875 [==============================] - 2s 1ms/step - loss: 0.4993 - accuracy: 0.8251

    verbose=1 redraws the bar after each batch (ETA and running means) on a terminal and
    prints just the finished line elsewhere (a log, a pipe, a notebook's captured output);
    verbose=2 prints one line per epoch:  1875/1875 - 2s - loss: ... - 2s/epoch - 1ms/step.
    'Epoch i/n' heads each epoch when there is more than one, as in Keras."""

    def __init__(self, steps, verbose=1, epochs=1, stream=None):
        if verbose == "auto":
            verbose = 1
        if verbose not in (0, 1, 2, True, False):
            raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
        self.steps, self.verbose, self.epochs = steps, int(verbose), epochs
        self.stream = stream
        self.start = self.last_draw = time.perf_counter()
        self.seen = 0

    def _out(self):
        return self.stream or sys.stdout

    def _dynamic(self):
        try:
            return self._out().isatty()
        except (AttributeError, ValueError):
            return False

    def epoch_begin(self, epoch):
        self.start = self.last_draw = time.perf_counter()
        self.seen = 0
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", file=self._out(), flush=True)

    def _bar(self, current):
        total = self.steps or current
        width = len(str(total))
        done = int(30 * current / total) if total else 30
        arrow = ">" if current < total else "="
        bar = ("=" * (done - 1) + arrow if done > 0 else "") + "." * (30 - done)
        return f"{current:>{width}}/{total} [{bar}]"

    @staticmethod
    def _values(logs):
        return "".join(f" - {k}: {_format_value(v)}" for k, v in logs.items())

    def batch(self, current, logs):
        """After batch `current` (from 1); `logs()` gives the running means when drawn."""
        self.seen = current
        now = time.perf_counter()
        if self.verbose != 1 or not self._dynamic() or now - self.last_draw < 0.05:
            return
        self.last_draw = now
        per_step = (now - self.start) / current
        eta = per_step * (self.steps - current) if self.steps else 0
        eta = f"{int(eta) // 3600}:{int(eta) % 3600 // 60:02d}:{int(eta) % 60:02d}" \
            if eta > 3600 else f"{int(eta) // 60}:{int(eta) % 60:02d}" if eta > 60 \
            else f"{eta:.0f}s"
        self._out().write(f"\r{self._bar(current)} - ETA: {eta}{self._values(logs())}")
        self._out().flush()

    def epoch_end(self, logs):
        if not self.verbose:
            return
        took = time.perf_counter() - self.start
        steps = self.seen or self.steps or 0
        per_step = _format_per_step(took / steps) if steps else ""
        if self.verbose == 1:
            start = "\r" if self._dynamic() else ""
            print(f"{start}{self._bar(steps)} - {took:.0f}s {per_step}{self._values(logs)}",
                  file=self._out(), flush=True)
        else:
            print(f"{steps}/{self.steps or steps} - {took:.0f}s{self._values(logs)} - "
                  f"{took:.0f}s/epoch - {per_step}", file=self._out(), flush=True)


# ---- while fit runs: Ctrl-C and SIGTERM ask for a clean stop -------------------------------
class StopOnSignal:
    """While fit runs, SIGINT (Ctrl-C) and SIGTERM (`kill`, a job scheduler's time limit)
    ask for a clean stop instead of killing the process or raising mid-step.

        with StopOnSignal() as stop:
            for each step: ...; stop.check()      # raises KeyboardInterrupt(signal name)

    The handler only sets a flag; fit looks at it after every step and every epoch, so a
    step is never half applied (some weights updated, others not), an epoch's logs are
    recorded whole or not at all, and a checkpoint being written is finished. A second
    signal raises KeyboardInterrupt at once, for a step that takes too long. Handlers are
    installed only in the main thread (Python delivers signals there) and only over the
    default ones -- a handler the program installed itself is left alone -- and the previous
    handlers come back on leaving the `with`. `received` names the signal ('SIGTERM'), or
    is None. Set `handled` once the stop has been acted on; a signal that arrives after the
    loop's last look is delivered again on leaving, rather than swallowed."""
    SIGNALS = {"SIGINT": signal.default_int_handler, "SIGTERM": signal.SIG_DFL}

    def __init__(self):
        self.received, self.handled, self.saved = None, False, {}

    def _handle(self, signum, frame):
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for name, default in self.SIGNALS.items():
                sig = getattr(signal, name, None)
                if sig is not None and signal.getsignal(sig) is default:
                    self.saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, previous in self.saved.items():
            signal.signal(sig, previous)
        if self.received is not None and not self.handled:
            # it came after the loop's last look (training had just ended): deliver it as
            # if no handler had been there, rather than swallow the request to stop
            signal.raise_signal(getattr(signal, self.received))

    def check(self):
        if self.received is not None:
            raise KeyboardInterrupt(self.received)
