"""A progress bar with no dependencies, for long work: training, calibration, firmware runs.

    with Progress(total=1688, label="epoch 1/10") as bar:
        for batch in batches:
            ...
            bar.update()

It draws only on a terminal (the stream's isatty()), so a pipe, a log file or a Makefile
stays clean, and `enabled=False` (the command line's --quiet) silences it everywhere. It
redraws at most ten times a second and erases itself when closed, so the line printed next
(Keras' "Epoch 1/10 - loss: ...") starts on a clean line.
"""
import shutil
import sys
import time


def on_terminal(stream=None):
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):      # closed or not a real file
        return False


class Progress:
    """label [#########.........]  1200/1688  3s"""

    def __init__(self, total, label="", stream=None, enabled=None, min_interval=0.1):
        self.total, self.label, self.done = max(int(total), 0), label, 0
        self.stream = sys.stderr if stream is None else stream
        self.enabled = on_terminal(self.stream) if enabled is None else bool(enabled)
        self.min_interval = min_interval
        self.start = self.last_draw = time.monotonic()
        self.drawn = False

    def update(self, n=1, label=None):
        self.done = min(self.done + n, self.total) if self.total else self.done + n
        if label is not None:
            self.label = label
        now = time.monotonic()
        if self.enabled and (now - self.last_draw >= self.min_interval or self.done == self.total):
            self.last_draw = now
            self._draw(now)

    def _draw(self, now):
        width = shutil.get_terminal_size((80, 24)).columns
        count = f"{self.done}/{self.total}" if self.total else str(self.done)
        tail = f"  {count}  {int(now - self.start)}s"
        room = width - len(self.label) - len(tail) - 4           # 4: ' [', ']' and a margin
        bar = ""
        if self.total and room >= 10:
            filled = room * self.done // self.total
            bar = " [" + "#" * filled + "." * (room - filled) + "]"
        text = (self.label + bar + tail)[:width - 1]
        self.stream.write("\r" + text + " " * max(width - 1 - len(text), 0))
        self.stream.flush()
        self.drawn = True

    def close(self):
        """Erase the bar (the next line starts clean)."""
        if self.enabled and self.drawn:
            width = shutil.get_terminal_size((80, 24)).columns
            self.stream.write("\r" + " " * (width - 1) + "\r")
            self.stream.flush()
            self.drawn = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class TrainingProgress:
    """A `fit` callback: a bar over each epoch's batches, then Keras' line for the epoch.

    Use it with fit(verbose=0): it prints the epoch lines itself, after erasing the bar, so
    the two never share a line. verbose=False keeps only the bar (and --quiet not even that).
    """

    def __init__(self, epochs, steps, enabled=None, verbose=True, stream=None, out=None):
        self.epochs, self.steps, self.verbose = epochs, steps, verbose
        self.enabled, self.stream, self.out = enabled, stream, out
        self.bar, self.t0, self.model = None, 0.0, None

    # the Callback interface of minitiny/callbacks.py (duck-typed so this file stays standalone)
    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()
        self.bar = Progress(self.steps, f"Epoch {epoch + 1}/{self.epochs}", self.stream, self.enabled)

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            self.bar.update()

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.close()
        if self.verbose:
            dt = time.perf_counter() - self.t0
            took = f"{dt:.1f}s" if dt >= 1 else f"{1000 * dt:.0f}ms"
            print(f"Epoch {epoch + 1}/{self.epochs} - {took} - "
                  + " - ".join(f"{k}: {v:.4f}" for k, v in (logs or {}).items()),
                  file=self.out or sys.stdout, flush=True)

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
