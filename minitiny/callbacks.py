"""Callbacks: code that `fit` runs at the start and end of training and of every epoch.

Keras names and behaviour: `History` (fit always adds one and returns it),
`EarlyStopping` (stop when a monitored number stops improving, optionally go back to the
best weights), `ModelCheckpoint` (save the model, every epoch or only when it improved),
`TerminateOnNaN` (stop when the loss is no longer a number).
`logs` is the epoch's dict: {'loss': ..., 'accuracy': ..., 'val_loss': ..., ...}.

At the end, `StopOnSignal`: not a callback but what fit wraps its loop in, so Ctrl-C and
SIGTERM stop training between two steps.
"""
import math
import os
import signal
import threading
import warnings

import numpy as np


class Callback:
    model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_end(self, logs=None): pass


class History(Callback):
    """Records every epoch's logs: history.history['loss'][i] is epoch i's loss."""

    def __init__(self):
        self.history, self.epoch = {}, []

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
