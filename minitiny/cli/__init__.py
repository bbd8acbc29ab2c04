"""The `minitiny` command: the workflow as subcommands that chain, e.g. in a Makefile.

    minitiny train model.py --data mnist --epochs 10 --out build/model.npz
    minitiny quantize build/model.npz --data mnist --out build/model.qmodel.npz
    minitiny generate build/model.qmodel.npz --out build/digits --name digits
    minitiny verify build/digits --data mnist               # C == NumPy int8 (== TFLite Micro)
    minitiny firmware run build/digits --board cortex-m4     # on an emulated Cortex-M4
    minitiny report build/digits --board nano33ble --data mnist --rate 1/s --battery cr2032
    minitiny demo                                             # all of it, on MNIST

Exit status, for scripts: 0 ok; 1 a check failed (a verification mismatch, a model that does
not fit its board) or the work itself failed; 2 a usage error (bad arguments, a missing or
unreadable file, an unknown name, a tool or feature that is not available, an --out that
cannot be written: found before any work); 130 and 143 interrupted by SIGINT (Ctrl-C) and
SIGTERM, as shells count (train saves the model trained so far first).
Errors print one clear message; --debug prints the Python traceback too. Long work shows a
progress bar on a terminal, never in a pipe, and --quiet silences it.

Each subcommand is one small function `cmd_NAME(args)` that calls the library; this file
only parses, loads files and prints.
"""
import argparse
import importlib.util
import math
import os
import signal
import sys
import tempfile
import tokenize
import traceback

import numpy as np

from minitiny.quant import supported

PROG = "minitiny"


class UsageError(Exception):
    """Bad arguments or input: exit status 2."""


class CheckFailed(Exception):
    """The command ran and a check failed: exit status 1."""


def _say(args, *parts):
    """Print unless --quiet."""
    if not getattr(args, "quiet", False):
        print(*parts, flush=True)


def _bar_enabled(args):
    from minitiny.reporting.progress import on_terminal
    return not getattr(args, "quiet", False) and on_terminal()


# ---- loading what the user names ---------------------------------------------------------
class Data:
    """Arrays from --data: training and test splits (either may be missing), class names."""

    def __init__(self, x_train, y_train, x_test, y_test, classes=None, source=""):
        self.x_train, self.y_train, self.x_test, self.y_test = x_train, y_train, x_test, y_test
        self.classes, self.source = classes, source

    @property
    def test(self):
        """The data to evaluate on: the test split, else the only arrays given."""
        if self.x_test is not None:
            return self.x_test, self.y_test
        return self.x_train, self.y_train

    @property
    def train(self):
        return (self.x_train, self.y_train) if self.x_train is not None else self.test


def _float_images(x):
    """uint8 pixels 0..255 -> float32 0..1 (the scaling every course model uses)."""
    x = np.asarray(x)
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x


def _load_npy(path, what):
    if not os.path.exists(path):
        raise UsageError(f"{what} {path}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    # a damaged .npy header reaches Python's tokenizer/parser inside np.load
    except (OSError, ValueError, EOFError, SyntaxError, tokenize.TokenError) as e:
        raise UsageError(f"{what} {path}: not a readable .npy array "
                         f"({type(e).__name__}: {e})") from None


def load_data(spec):
    """--data: a data set name ('mnist', 'sine', ...) or 'x.npy[,y.npy]' -> Data."""
    if spec is None:
        return None
    if spec.endswith(".npy") or "," in spec or os.sep in spec:
        parts = [p for p in spec.split(",") if p]
        if len(parts) > 2:
            raise UsageError(f"--data {spec}: give 'x.npy' or 'x.npy,y.npy'")
        x = _float_images(_load_npy(parts[0], "--data"))
        y = _load_npy(parts[1], "--data") if len(parts) == 2 else None
        if y is not None and len(y) != len(x):
            raise UsageError(f"--data {spec}: x has {len(x)} samples but y has {len(y)}")
        return Data(x, y, None, None, source=spec)
    from minitiny import datasets
    try:
        info = datasets.info(spec)
    except KeyError as e:
        raise UsageError(f"--data {spec}: {e.args[0]} (or give x.npy,y.npy)") from None
    loaded = getattr(datasets, info.loader)()
    try:
        (x_train, y_train), (x_test, y_test) = loaded
        arrays = [np.asarray(a) for a in (x_train, y_train, x_test, y_test)]
    except (TypeError, ValueError):
        raise UsageError(f"--data {spec}: {info.loader}() does not return "
                         "((x_train, y_train), (x_test, y_test)) arrays; load it in the model "
                         "file's load_data() instead") from None
    x_train, y_train, x_test, y_test = arrays
    return Data(_float_images(x_train), y_train, _float_images(x_test), y_test,
                classes=list(info.classes) or None, source=info.name)


def load_model_file(path):
    """Import a model definition file (it defines build(); optionally load_data())."""
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such model file")
    spec = importlib.util.spec_from_file_location("minitiny_user_model", path)
    if spec is None:
        raise UsageError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        line = next((f.lineno for f in reversed(traceback.extract_tb(e.__traceback__))
                     if os.path.abspath(f.filename) == os.path.abspath(path)), "?")
        raise UsageError(f"{path}, line {line}: {type(e).__name__}: {e}") from e
    if not callable(getattr(module, "build", None)):
        raise UsageError(f"{path} defines no build() function; it must return a compiled model "
                         "(see `minitiny train --help`)")
    return module


def load_float_model(path):
    from minitiny import load_model
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such model file")
    return load_model(path)


def load_qmodel(path):
    from minitiny.quant.graph import GraphError, QModel
    if os.path.isdir(path):
        from minitiny.codegen.loader import read_manifest
        m = read_manifest(path)
        path = os.path.join(path, f"{m['name']}.qmodel.npz")
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such int8 model file")
    try:
        return QModel.load(path)
    except GraphError as e:
        raise UsageError(f"{e} (a float model from `minitiny train` is quantized first: "
                         "minitiny quantize MODEL --data ...)") from None


def writable_out(path, flag="--out"):
    """Check, before any work, that the file `path` can be written: not a directory, every
    parent a directory (made if missing), and a file can be created there (a read-only
    folder or file system is found now, not after an hour of training)."""
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path}: is a directory; name the file to write in it")
    folder = os.path.dirname(os.path.abspath(path))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"{flag} {path}: {existing} is a file, not a directory")
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".minitiny-check-"):
            pass
    except OSError as e:
        raise UsageError(f"{flag} {path}: cannot write in {folder} ({e.strerror or e})") from None


def positive_int(text):
    """argparse type: a whole number >= 1 (argparse turns the error into exit status 2)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


# ---- train ---------------------------------------------------------------------------------
def _from_load_data(loaded, where):
    """load_data()'s (x, y) or ((x_train, y_train), (x_test, y_test)) -> Data."""
    if isinstance(loaded, (tuple, list)) and len(loaded) == 2:
        first, second = loaded
        if isinstance(first, (tuple, list)) and len(first) == 2:
            x_test, y_test = second if second is not None else (None, None)
            return Data(np.asarray(first[0]), np.asarray(first[1]),
                        None if x_test is None else np.asarray(x_test),
                        None if y_test is None else np.asarray(y_test), source="load_data()")
        return Data(np.asarray(first), np.asarray(second), None, None, source="load_data()")
    raise UsageError(f"{where}: load_data() must return (x, y) or "
                     "((x_train, y_train), (x_test, y_test))")


def cmd_train(args):
    import minitiny as mt
    from minitiny.reporting.model_report import save_history
    from minitiny.reporting.progress import TrainingProgress
    writable_out(args.out)
    if args.plot:
        writable_out(args.plot, "--plot")
    module = load_model_file(args.model_file)
    mt.random.seed(args.seed)
    model = module.build()
    if not isinstance(model, mt.Model):
        raise UsageError(f"{args.model_file}: build() returned {type(model).__name__}, not a "
                         "minitiny model")
    if model.loss is None:
        raise UsageError(f"{args.model_file}: build() must compile the model "
                         "(model.compile(optimizer=..., loss=...))")
    data = load_data(args.data)
    if data is None:
        if not callable(getattr(module, "load_data", None)):
            raise UsageError(f"no data: pass --data NAME|x.npy,y.npy or define load_data() in "
                             f"{args.model_file}")
        data = _from_load_data(module.load_data(), args.model_file)
    x, y = data.train
    if y is None:
        raise UsageError(f"--data {args.data}: training needs labels (x.npy,y.npy)")
    epochs = args.epochs if args.epochs is not None else getattr(module, "EPOCHS", 10)
    batch = args.batch_size if args.batch_size is not None else getattr(module, "BATCH_SIZE", 32)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise UsageError(f"{args.model_file}: BATCH_SIZE must be a whole number >= 1, got {batch!r}")
    n_fit = int(np.floor(len(x) * (1.0 - (args.validation_split or 0.0))))   # as fit splits
    progress = TrainingProgress(epochs, max(1, math.ceil(n_fit / batch)),
                                enabled=_bar_enabled(args), verbose=not args.quiet)
    _say(args, f"training {model.name!r} ({model.count_params():,} parameters) on "
               f"{len(x):,} samples from {data.source}, {epochs} epochs")
    history = model.fit(x, y, epochs=epochs, batch_size=batch, verbose=0, callbacks=[progress],
                        validation_split=args.validation_split or 0.0)
    model.save(args.out)
    curves = save_history(args.out, history)
    _say(args, f"wrote {args.out} (and its training curves, {curves})")
    if history.interrupted:               # saved; now exit as the signal asks (130, 143)
        return 128 + signal.Signals[history.interrupted].value
    if data.x_test is not None and data.y_test is not None:
        result = model.evaluate(data.x_test, data.y_test, return_dict=True)
        print("test: " + " - ".join(f"{k}: {v:.4f}" for k, v in result.items()))
    if args.plot:
        from minitiny.reporting import plots
        plots.plot_history(history, args.plot, title=model.name)
        _say(args, f"wrote {args.plot}")
    return 0


# ---- quantize ----------------------------------------------------------------------------
def calibration_observer(observer, percentile, bar):
    """Wrap an observer so that every range update advances `bar` (quantize's observer=)."""
    from minitiny.quant.calibrate import make_observer
    base = make_observer(observer, percentile)

    class Counted:
        def __init__(self):
            self.inner = base()
            self.name = getattr(self.inner, "name", "observer")

        def update(self, values, n_batches=1):
            self.inner.update(values, n_batches)
            bar.update()

        def range(self):
            return self.inner.range()
    return Counted


def cmd_quantize(args):
    from minitiny.quant.lower import lower
    from minitiny.quant.quantizer import quantize
    from minitiny.reporting.progress import Progress
    tflite = _int8_output(args)
    writable_out(args.out)
    model = load_float_model(args.model)
    data = load_data(args.data)
    if data is None:
        raise UsageError("quantize needs representative data: --data NAME|x.npy")
    x_cal = data.train[0][:args.samples]
    batch = 64
    updates = math.ceil(len(x_cal) / batch) * (1 + len(lower(model).ops))
    with Progress(updates, f"calibrating on {len(x_cal)} samples", enabled=_bar_enabled(args)) as bar:
        qmodel = quantize(model, x_cal, observer=calibration_observer(args.observer, 99.99, bar),
                          per_channel_dense=not args.per_tensor, batch_size=batch,
                          activations=args.activations)
    if tflite:
        _write_tflite(args, qmodel)
    else:
        qmodel.save(args.out)
    scheme = "16x8" if args.activations == "int16" else "int8"
    _say(args, f"wrote {args.out}: {len(qmodel.ops)} {scheme} ops, {qmodel.weight_bytes():,} weight "
               f"bytes (calibrated on {len(x_cal)} samples of {data.source}, {args.observer})")
    x_test, y_test = data.test
    if y_test is not None:
        n = min(len(x_test), args.eval_samples)
        int8 = qmodel.evaluate(x_test[:n], y_test[:n])
        pred = model.predict(x_test[:n])
        metric = "accuracy" if pred.shape[-1] > 1 else "mse"
        flt = _metric(pred, y_test[:n], metric)
        print(f"{metric} on {n:,} samples: float {flt:.4f}, {scheme} {int8:.4f}")
    return 0


def _int8_output(args):
    """True for --out x.tflite, False for .npz; --input-type / --output-type need .tflite."""
    ext = os.path.splitext(args.out)[1].lower()
    if ext not in (".npz", ".tflite"):
        raise UsageError(f"--out {args.out}: write minitiny's int8 model (.npz) or a TFLite "
                         "flatbuffer (.tflite); the extension says which")
    if ext == ".npz" and (args.input_type, args.output_type) != ("int8", "int8"):
        raise UsageError("--input-type / --output-type are the edges of a .tflite file: "
                         "use --out NAME.tflite")
    return ext == ".tflite"


def _write_tflite(args, qmodel):
    from minitiny.quant.tflite_io import save_tflite
    save_tflite(qmodel, args.out, input_type=args.input_type, output_type=args.output_type)


def _metric(pred, y, metric):
    y = np.asarray(y)
    if metric == "accuracy":
        labels = y.argmax(-1) if y.ndim == pred.ndim else y.reshape(len(y))
        return float(np.mean(pred.argmax(-1) == labels))
    return float(np.mean((pred.reshape(len(pred), -1) - y.reshape(len(y), -1)) ** 2))


# ---- generate ----------------------------------------------------------------------------
def cmd_generate(args):
    from minitiny import codegen
    qmodel = load_qmodel(args.model)
    g = codegen.generate(qmodel, args.out, name=args.name, variant=args.variant,
                         threshold=args.threshold, dsp_weights=args.dsp_weights, ram_budget=args.ram_budget)
    m = g.manifest
    _say(args, f"wrote {', '.join(g.files)} in {g.dir}")
    print(f"{m['name']}: {len(m['layers'])} layers, {m['macs']:,} MACs, weights {m['weight_bytes']:,} B, "
          f"arena {m['arena_bytes']:,} B (lower bound {m['arena_lower_bound']:,})")
    _say_streams(m)
    return 0


def _say_streams(manifest):
    """One line per streamed run of layers, and per layer computed with the scalar kernel
    for RAM (generate --ram-budget)."""
    for s in manifest.get("streams", []):
        print(f"  streamed: {', '.join(s['ops'])} in bands of {s['band']} rows, "
              f"{s['extra_macs']:,} extra MACs, {s['copied_bytes']:,} B copied")
    for layer in manifest["layers"]:
        if layer.get("scalar_for_ram"):
            print(f"  {layer['name']}: the scalar kernel, no room for the DSP kernel's scratch")


# ---- verify ------------------------------------------------------------------------------
def _compare(label, got, want):
    """'label: k/N outputs identical' and the first difference; True when all are identical."""
    got, want = np.asarray(got), np.asarray(want)
    n = len(want)
    same = np.all(got.reshape(n, -1) == want.reshape(n, -1), axis=1)
    line = f"  {label:52s} {int(same.sum()):>7,}/{n:,} outputs identical"
    if not same.all():
        i = int(np.argmin(same))
        j = int(np.argmax(got.reshape(n, -1)[i] != want.reshape(n, -1)[i]))
        line += (f"  MISMATCH: first at input {i}, output {j}: "
                 f"{int(got.reshape(n, -1)[i, j])} vs {int(want.reshape(n, -1)[i, j])}")
    print(line)
    return bool(same.all())


def _verify_inputs(args, qmodel):
    """The inputs as a list of int8 arrays, one per model input, and what they are. A model
    with several inputs takes --inputs as a .npz holding one array per input (by name, or
    in the model's order: np.savez(path, a, b))."""
    if args.inputs and args.data:
        raise UsageError("give --inputs or --data, not both")
    names = qmodel.inputs
    if args.inputs:
        loaded, what = _load_npy(args.inputs, "--inputs"), args.inputs
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                keys = names if set(names) <= set(loaded.files) else loaded.files
                if len(keys) != len(names):
                    raise UsageError(f"--inputs {args.inputs}: holds arrays {loaded.files}; model "
                                     f"{qmodel.name!r} has the inputs {names}")
                xs = [loaded[k] for k in keys]
        elif len(names) > 1:
            raise UsageError(f"model {qmodel.name!r} has {len(names)} inputs ({', '.join(names)}): "
                             f"give --inputs as a .npz with one array per input")
        else:
            xs = [loaded]
    elif args.data:
        if len(names) > 1:
            raise UsageError(f"--data: model {qmodel.name!r} has {len(names)} inputs "
                             f"({', '.join(names)}); give --inputs as a .npz with one array each")
        data = load_data(args.data)
        xs, what = [data.test[0]], f"the {data.source} test inputs"
    else:                           # over the model's integer range: int8, or int16 (16x8)
        rng = np.random.default_rng(args.seed)
        n = args.n or 256
        dtype = qmodel.tensors[names[0]].dtype
        info = np.iinfo(dtype)
        return ([rng.integers(info.min, info.max + 1, size=(n,) + qmodel.tensors[name].shape, dtype=dtype)
                 for name in names],
                f"{n} random {dtype} inputs (seed {args.seed}; --data or --inputs for real ones)")
    out = []
    for name, x in zip(names, xs):
        x, shape = np.asarray(x), qmodel.tensors[name].shape
        of = f" {name!r}" if len(names) > 1 else ""
        if args.n:
            x = x[:args.n]
        if x.shape[1:] != shape:
            if x.shape[1:] and int(np.prod(x.shape[1:])) == int(np.prod(shape)):
                x = x.reshape((len(x),) + shape)
            else:
                raise UsageError(f"inputs{of} of shape {x.shape} do not fit model {qmodel.name!r}: "
                                 f"(N, {', '.join(map(str, shape))})")
        dtype = qmodel.tensors[name].dtype                  # int8, or int16 (16x8)
        info = np.iinfo(dtype)
        if np.issubdtype(x.dtype, np.floating):
            x = qmodel.tensors[name].quantize(x)
        elif x.min() < info.min or x.max() > info.max:
            raise UsageError(f"integer inputs{of} must be {dtype}, got values in [{x.min()}, {x.max()}]")
        out.append(x.astype(dtype))
    if len({len(x) for x in out}) > 1:
        raise UsageError(f"the inputs hold different numbers of samples: {[len(x) for x in out]}")
    quantized = any(np.issubdtype(np.asarray(x).dtype, np.floating) for x in xs)
    return out, (f"{len(out[0]):,} of {what}, quantized with the input scale" if quantized
                 else f"{len(out[0]):,} int8 inputs from {what}")


def _one_or_list(values):
    """A list of per-tensor arrays as the model functions take and give them."""
    return values if len(values) > 1 else values[0]


def _as_list(values, n):
    return list(values) if n > 1 else [values]


def _compare_outputs(label, got, want, names):
    """_compare for every model output (lists, in the model's order)."""
    if len(names) == 1:
        return _compare(label, got[0], want[0])
    return all([_compare(f"{label}, output {name}", g, w) for name, g, w in zip(names, got, want)])


def cmd_verify(args):
    from minitiny import codegen
    from minitiny.quant import tflm
    from minitiny.reporting.progress import Progress
    if not os.path.isdir(args.dir):
        raise UsageError(f"{args.dir}: not a directory written by `minitiny generate`")
    if args.thorough and args.budget <= 0:
        raise UsageError(f"--budget {args.budget:g}: the time budget must be positive (seconds)")
    qmodel = load_qmodel(args.dir)
    codegen.loader.check_folder(args.dir, qmodel)      # the .c, .h, manifest and .npz: one model
    xs, what = _verify_inputs(args, qmodel)
    n_out = len(qmodel.outputs)
    print(f"verify {args.dir}: {what}")
    ok = True
    reference = _as_list(qmodel.predict_int8(_one_or_list(xs)), n_out)
    fn = codegen.load(args.dir)
    n = len(xs[0])
    with Progress(n, "C on the host", enabled=_bar_enabled(args)) as bar:
        outs = []
        for i in range(0, n, 500):
            outs.append(_as_list(fn(_one_or_list([x[i:i + 500] for x in xs])), n_out))
            bar.update(len(outs[-1][0]))
    outs = [np.concatenate([o[k] for o in outs]) for k in range(n_out)]
    ok &= _compare_outputs("C on the host (cffi) vs NumPy int8", outs, reference, qmodel.outputs)
    if tflm.available():
        if args.tflite:
            with open(args.tflite, "rb") as f:
                tfl = f.read()
            label = f"TFLite Micro ({os.path.basename(args.tflite)})"
        else:
            from minitiny.quant.tflite_io import to_tflite
            tfl, label = to_tflite(qmodel), "TFLite Micro (.tflite written here)"
        # run_tflm_int8 feeds int8 whatever the file's edges are (float edges: s·(q − z) in,
        # and the float outputs mapped back to int8), so any converter output compares
        from minitiny.quant.tflite_read import run_tflm_int8
        theirs = _as_list(run_tflm_int8(tfl, _one_or_list(xs)), n_out)
        ok &= _compare_outputs(f"{label} vs NumPy int8", theirs, reference, qmodel.outputs)
    else:
        print("  TFLite Micro: skipped (not installed: pip install tflite-micro)")
    if args.board:
        ok &= _verify_firmware(args, xs, reference, qmodel.outputs)
    if args.thorough:
        ok &= _verify_thorough(args)
    if not ok:
        raise CheckFailed("outputs differ: the generated code is not bit-exact")
    print("OK: bit-exact")
    return 0


def _verify_thorough(args):
    """minitiny.testing's property suite, the one `pytest --minitiny DIR` runs, in --budget
    seconds: targeted inputs (every weighted layer's rounding ties and clamp bounds), random
    ones, a shrunk counterexample naming the first layer that differs."""
    import time
    from minitiny.reporting.progress import Progress
    from minitiny.testing import suite
    qmodel = suite.load_model(args.dir)
    ok = True
    for name, (_, share) in suite.PROPERTIES.items():
        seconds = args.budget * share
        # one bar per property, erased when it closes, then its result line
        with Progress(max(1, int(math.ceil(seconds))), f"thorough: {name}", enabled=_bar_enabled(args)) as bar:
            start = time.monotonic()

            def progress(count):
                bar.update(max(0, int(time.monotonic() - start) - bar.done), label=f"thorough: {name}, {count:,} inputs")
            r = suite.run_property(name, args.dir, qmodel, args.budget, progress,
                                   **({"tflite": args.tflite} if name == "bit-exact" else {}))
        tried = f"{r.inputs:>9,} inputs  OK" if r.ok else f"{'FAILED':>19s}"
        line = f"  thorough: {name:12s} {tried}  ({r.seconds:.1f} s)"
        print(line if r.ok else line + "\n" + "\n".join("    " + t for t in r.message.splitlines()), flush=True)
        ok &= r.ok
    return ok


def _verify_firmware(args, xs, reference, names):
    from minitiny import firmware
    from minitiny.reporting.model_report import toolchain_missing
    from minitiny.reporting.progress import Progress
    why = toolchain_missing()
    if why:
        print(f"  firmware on {args.board}: skipped ({why})")
        return True
    n = min(len(xs[0]), args.firmware_inputs)
    outs, chunk = [], 16
    with Progress(n, f"firmware on {args.board}", enabled=_bar_enabled(args)) as bar:
        for i in range(0, n, chunk):
            part = slice(i, min(i + chunk, n))
            r = firmware.run(args.dir, board=args.board, inputs=_one_or_list([x[part] for x in xs]),
                             n=None, profile=False, expected=_one_or_list([y[part] for y in reference]))
            if r.outputs is None:
                print(f"  firmware on {args.board}: {r.status}: {r.message}")
                return False
            outs.append(r.outputs_by_tensor)
            bar.update(len(r.outputs))
    outs = [np.concatenate([o[k] for o in outs]) for k in range(len(names))]
    return _compare_outputs(f"firmware on {args.board} vs NumPy int8", outs,
                            [y[:n] for y in reference], names)


# ---- firmware, import, export, data: other parts' entry points ------------------------------
def cmd_firmware(args):
    from minitiny.firmware.__main__ import main as firmware_main
    rest = [a for a in args.rest if a not in ("--debug", "--quiet", "-q")]
    if not rest or rest[0] in ("-h", "--help"):
        print(FIRMWARE_HELP)
        return 0 if rest else 2
    code = firmware_main(rest)
    if "-h" in rest or "--help" in rest:
        print("\n" + FIRMWARE_EXAMPLES)
    return code


def cmd_import(args):
    from minitiny import codegen
    from minitiny.reporting.model_report import tflite_reader
    from_tflite = tflite_reader()
    if from_tflite is None:
        raise UsageError("importing .tflite files is not available in this version of minitiny "
                         "yet (minitiny.from_tflite is missing)")
    if not os.path.exists(args.tflite):
        raise UsageError(f"{args.tflite}: no such file")
    qmodel = from_tflite(args.tflite)
    g = codegen.generate(qmodel, args.out, name=args.name, variant=args.variant,
                         threshold=args.threshold, dsp_weights=args.dsp_weights, ram_budget=args.ram_budget)
    _say(args, f"imported {args.tflite}: wrote {', '.join(g.files)} in {g.dir}")
    _say_streams(g.manifest)
    return 0


def cmd_export(args):
    if args.target == "tflite":
        return _export_tflite(args)
    from minitiny import firmware
    export = getattr(firmware, "export_arduino", None)
    if export is None:
        raise UsageError("exporting an Arduino library is not available in this version of "
                         "minitiny yet (minitiny.firmware.export_arduino is missing)")
    result = export(args.dir, args.out, library_name=args.name, variant=args.variant,
                    dsp_weights=args.dsp_weights)
    _say(args, f"exported {args.dir} for Arduino" + (f": {result}" if result else ""))
    return 0


def _export_tflite(args):
    """An int8 model (.qmodel.npz or a generated directory) -> a .tflite TFLite Micro loads;
    a float model (.npz from `minitiny train`, .keras, .h5) -> a float32 .tflite, as
    TFLiteConverter writes it without optimizations."""
    if args.out is None:
        raise UsageError("export tflite needs --out NAME.tflite")
    if not _int8_output(args):
        raise UsageError(f"--out {args.out}: export tflite writes a .tflite file")
    writable_out(args.out)
    if os.path.splitext(args.dir)[1].lower() in (".keras", ".h5", ".hdf5"):
        return _export_float_tflite(args, load_float_model(args.dir))
    try:
        qmodel = load_qmodel(args.dir)
    except UsageError:
        model = _float_model(args.dir)        # not int8: the float model a .npz may hold
        if model is None:
            raise
        return _export_float_tflite(args, model)
    _write_tflite(args, qmodel)
    _say(args, f"wrote {args.out}: {len(qmodel.ops)} int8 ops, {args.input_type} input, "
               f"{args.output_type} output")
    return 0


def _float_model(path):
    """The float model in `path` (.keras, .h5, or an .npz `model.save` wrote), else None."""
    from minitiny.saving import ModelFileError, load_model
    if os.path.isdir(path) or not os.path.exists(path):
        return None
    try:
        return load_model(path)
    except (ModelFileError, ValueError, KeyError):
        return None


def _export_float_tflite(args, model):
    from minitiny.files import atomic_write
    from minitiny.quant.lower import LoweringError, lower
    from minitiny.quant.tflite_io import to_tflite_float
    if (args.input_type, args.output_type) != ("int8", "int8"):
        raise UsageError(f"{args.dir} is a float model: its .tflite has float32 edges, so "
                         "--input-type / --output-type do not apply (quantize it first for "
                         "int8, uint8 or float32 edges around int8 ops)")
    try:
        graph = lower(model)
    except LoweringError as e:
        raise UsageError(f"{args.dir}: {e}") from None
    atomic_write(args.out, to_tflite_float(graph))
    _say(args, f"wrote {args.out}: {len(graph.ops)} float32 ops, float32 input and output")
    return 0


def cmd_data(args):
    from minitiny.datasets import __main__ as data_main
    if args.data_command == "list":
        return data_main.cmd_list(args)
    return data_main.cmd_fetch(args)


# ---- report ------------------------------------------------------------------------------
def cmd_report(args):
    from minitiny.reporting import collect, format_report, write_html
    data = load_data(args.data)
    x = y = classes = None
    if data is not None:
        x, y = data.test
        x = x[:args.samples] if args.samples else x
        y = None if y is None else (y[:args.samples] if args.samples else y)
        classes = data.classes
    if args.rate and not args.board:
        raise UsageError("--rate needs --board (a board's clock and currents)")
    report = collect(args.model, board=args.board, x=x, y=y, class_names=classes,
                     float_model=args.float_model, rate=args.rate, battery=args.battery,
                     run_firmware=not args.no_firmware, firmware_inputs=args.n)
    print(format_report(report))
    html = args.html or (os.path.join(args.model, "report.html") if os.path.isdir(args.model)
                         else os.path.splitext(args.model)[0] + ".report.html")
    if args.plots:
        os.makedirs(args.plots, exist_ok=True)
    write_html(report, html, plots_dir=args.plots)
    print(f"\nwrote {html}" + (f" and the plots in {args.plots}" if args.plots else ""))
    failed = []
    if report.budget and not report.budget["fits"]:
        failed.append(f"the model does not fit {report.budget['board']}")
    if report.firmware is not None and not report.firmware.ok:
        failed.append(f"the firmware run failed ({report.firmware.status})")
    if failed:
        raise CheckFailed("; ".join(failed))
    return 0


# ---- demo --------------------------------------------------------------------------------
def cmd_demo(args):
    from minitiny.cli import demo
    return demo.run(out=args.out, board=args.board, quick=args.quick, quiet=args.quiet,
                    fetch=not args.no_fetch)


# ---- the parser ----------------------------------------------------------------------------
FIRMWARE_EXAMPLES = """examples:
  minitiny firmware run build/digits --board cortex-m4
  minitiny firmware run build/digits --board nano33ble --inputs x_test.npy -n 16"""
FIRMWARE_HELP = f"""usage: minitiny firmware run DIR [--board BOARD] [--inputs x.npy] [-n N] ...

Build the generated model in DIR for a Cortex-M core or board, run it in QEMU and print the
instructions per layer, flash and RAM (needs arm-none-eabi-gcc and qemu-system-arm).
`minitiny firmware run --help` lists every option.

{FIRMWARE_EXAMPLES}"""

MODEL_FILE_HELP = """The model file is plain Python. It defines build(), returning a compiled model, and
optionally load_data() (returning (x, y) or ((x_train, y_train), (x_test, y_test))),
EPOCHS and BATCH_SIZE:

    import minitiny as mt
    from minitiny.layers import Dense, Flatten

    def build():
        model = mt.Sequential([Flatten(input_shape=(28, 28)),
                               Dense(20, activation="relu"), Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model
"""

COMMANDS = {
    "train": ("train a model defined in a Python file", MODEL_FILE_HELP + """
examples:
  minitiny train digits.py --data mnist --epochs 10 --out build/digits.npz
  minitiny train sine.py --data x.npy,y.npy --epochs 500 --out build/sine.npz --plot build/sine.png"""),
    "quantize": ("quantize a trained model to int8 (post-training, TFLite's scheme)", """
examples:
  minitiny quantize build/digits.npz --data mnist --out build/digits.qmodel.npz
  minitiny quantize build/sine.npz --data x.npy --observer percentile --out build/sine.qmodel.npz
  minitiny quantize build/kws.npz --data x.npy --activations int16 --out build/kws16.tflite"""),
    "generate": ("generate C99 from an int8 model", """
examples:
  minitiny generate build/digits.qmodel.npz --out build/digits --name digits"""),
    "verify": ("check that the C, NumPy int8 and TFLite Micro agree bit for bit", """
examples:
  minitiny verify build/digits --data mnist
  minitiny verify build/digits --inputs x_test.npy --tflite digits.tflite
  minitiny verify build/digits --data mnist --board cortex-m4 --firmware-inputs 32
  minitiny verify build/digits --thorough --budget 60     # targeted search, shrunk counterexample"""),
    "firmware": ("run generated C on an emulated Cortex-M (QEMU)", FIRMWARE_EXAMPLES),
    "import": ("import a .tflite model and generate C from it", """
The model must be full-integer (TFLite's converter with TFLITE_BUILTINS_INT8), with these
operators (docs/OPS.md); anything else is listed, every item with its operator index:

""" + supported.text_table() + """

examples:
  minitiny import model.tflite --out build/kws --name kws"""),
    "export": ("export a generated model as an Arduino library, or a model (int8 or float) as .tflite", """
examples:
  minitiny export arduino build/digits --out build/digits-arduino
  minitiny export tflite build/digits.qmodel.npz --out build/digits.tflite --input-type uint8
  minitiny export tflite build/digits.npz --out build/digits_float.tflite    # float32 ops"""),
    "report": ("write a model report: text, HTML page, plots", """
The report shows per layer the kind, output shape, parameters, MACs, weight and activation
bytes, scale and zero point (and the int8-vs-float error when --float and --data are given);
flash and RAM against the board's budget; the arena plan; float vs int8 accuracy and a
confusion matrix on --data; and with --rate the latency, energy and battery life (from a
firmware run: needs arm-none-eabi-gcc and qemu-system-arm).
Exits 1 when the model does not fit the board or the firmware run fails.

examples:
  minitiny report build/digits --data mnist --float build/digits.npz
  minitiny report build/kws --board nano33ble --rate 1/s --battery cr2032
  minitiny report build/digits.qmodel.npz --board tiny --html digits.html --plots build/plots"""),
    "data": ("list and fetch the data sets", """
examples:
  minitiny data list
  minitiny data fetch mnist fashion_mnist"""),
    "demo": ("the whole workflow on MNIST in a minute or two", """
Trains the course's digit classifier (Flatten -> Dense(20, relu) -> Dense(10, softmax)),
quantizes it to int8, generates C, checks C == NumPy int8 bit for bit on the test set, and
runs it on an emulated Cortex-M4 when arm-none-eabi-gcc and qemu-system-arm are installed.
Without MNIST (and no way to fetch it) it uses the sine model instead.

examples:
  minitiny demo
  minitiny demo --quick --out build/demo"""),
}


def _common():
    """--debug and --quiet, accepted before or after the subcommand."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="print the Python traceback of an error")
    p.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bars and no chatter, only results")
    return p


def _add_codegen_options(p):
    """The C generator's choices, shared by `generate` and `import`."""
    p.add_argument("--variant", choices=("reference", "scalar", "dsp", "auto"), default="reference",
                   help="kernels: reference (default: TFLM's reference kernels, the C to read), "
                        "auto (the fastest on every core: DSP SIMD where __ARM_FEATURE_DSP is "
                        "defined, scalar elsewhere), scalar (tuned portable C, e.g. Cortex-M0/M3), "
                        "dsp (DSP SIMD only: Cortex-M4/M7/M33/M55)")
    p.add_argument("--dsp-weights", choices=("int8", "int16"), default="int8",
                   help="how the DSP kernels keep dense and conv weights in flash: int8 "
                        "(default) or int16 (twice the bytes, faster: a dense layer about 1.05 "
                        "instead of 1.45 instructions per MAC on a Cortex-M4)")
    p.add_argument("--threshold", type=float, metavar="SCORE",
                   help="a detector's float decision threshold, emitted as an int8 constant "
                        "NAME_THRESHOLD_Q and NAME_detect() in the header")
    p.add_argument("--ram-budget", type=positive_int, metavar="BYTES",
                   help="the arena must fit this many bytes: runs of convolutions are then "
                        "computed in bands of rows where the plan needs more (an error names "
                        "the smallest arena reachable when it cannot be met)")


def edge_types(p):
    """--input-type / --output-type: a .tflite file's edges (TFLite's inference_*_type)."""
    for edge in ("input", "output"):
        p.add_argument(f"--{edge}-type", choices=("int8", "uint8", "float32"), default="int8",
                       help=f"the .tflite {edge}'s type (default int8; uint8 and float32 add "
                       "one QUANTIZE / DEQUANTIZE op at that edge)")


def build_parser():
    common = _common()
    parser = argparse.ArgumentParser(
        prog=PROG, parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter,
        description="minitiny: data -> train -> int8 -> C99 -> an emulated Cortex-M.",
        epilog=__doc__.split("\n\n")[1] + "\n\nexit status: 0 ok, 1 a check failed, 2 usage "
               "error, 130/143 interrupted. `minitiny COMMAND --help` for each command.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, run, **kw):
        summary, examples = COMMANDS[name]
        p = sub.add_parser(name, parents=[common], help=summary, description=summary[0].upper()
                           + summary[1:] + ".", epilog=examples.strip("\n"),
                           formatter_class=argparse.RawDescriptionHelpFormatter, **kw)
        p.set_defaults(run=run)
        return p

    p = add("train", cmd_train)
    p.add_argument("model_file", metavar="MODEL_PY", help="a Python file defining build()")
    p.add_argument("--data", metavar="NAME|x.npy,y.npy",
                   help="a data set name (see `minitiny data list`) or arrays; default: the "
                        "file's load_data()")
    p.add_argument("--epochs", type=int, help="passes over the data (default: the file's EPOCHS, else 10)")
    p.add_argument("--batch-size", type=positive_int, help="samples per step (default: BATCH_SIZE, else 32)")
    p.add_argument("--validation-split", type=float, default=0.1,
                   help="fraction held out for validation curves (default 0.1; 0 for none)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default="model.npz", help="the trained model (default model.npz)")
    p.add_argument("--plot", metavar="PNG", help="also draw the loss and accuracy curves")

    p = add("quantize", cmd_quantize)
    p.add_argument("model", metavar="MODEL.npz", help="a float model from `minitiny train`")
    p.add_argument("--data", required=True, metavar="NAME|x.npy[,y.npy]",
                   help="representative data (the training split of a data set)")
    p.add_argument("--out", default="model.qmodel.npz",
                   help="the int8 model: .npz (minitiny's, default model.qmodel.npz) or "
                   ".tflite (a TFLite flatbuffer TFLite Micro loads)")
    edge_types(p)
    p.add_argument("--observer", default="minmax", choices=("minmax", "percentile", "moving_average"),
                   help="how activation ranges are measured (default minmax, as TFLite)")
    p.add_argument("--samples", type=int, default=500, help="calibration samples (default 500)")
    p.add_argument("--per-tensor", action="store_true",
                   help="one weight scale per Dense layer instead of per output channel")
    p.add_argument("--activations", choices=("int8", "int16"), default="int8",
                   help="int8 (default) or int16: TFLite's 16x8 scheme (int16 activations with "
                   "zero point 0, int8 weights, int64 bias); its C has the reference kernels")
    p.add_argument("--eval-samples", type=int, default=10000,
                   help="test samples for the float vs int8 comparison (default 10000)")

    p = add("generate", cmd_generate)
    p.add_argument("model", metavar="MODEL.qmodel.npz", help="an int8 model")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--name", help="C prefix of the generated names (default: the model's name)")
    _add_codegen_options(p)

    p = add("verify", cmd_verify)
    p.add_argument("dir", metavar="DIR", help="a directory from `minitiny generate`")
    p.add_argument("--inputs", metavar="x.npy", help="inputs, float (quantized here) or int8")
    p.add_argument("--data", metavar="NAME|x.npy", help="a data set's test inputs")
    p.add_argument("--tflite", metavar="FILE", help="run this .tflite in TFLite Micro "
                   "(default: the model written as .tflite here)")
    p.add_argument("-n", type=int, help="use the first N inputs (default: all; 256 random)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--board", help="also run on an emulated core or board (cortex-m4, nano33ble)")
    p.add_argument("--firmware-inputs", type=int, default=16,
                   help="inputs to run on the emulator (default 16)")
    p.add_argument("--thorough", action="store_true",
                   help="also run the property suite (minitiny.testing): inputs aimed at every "
                        "layer's rounding ties and clamp bounds, a shrunk counterexample naming the layer")
    p.add_argument("--budget", type=float, default=60.0, metavar="SECONDS",
                   help="time budget of --thorough (default 60)")

    p = add("firmware", cmd_firmware, add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER, help="run DIR --board ... (see above)")

    p = add("import", cmd_import)
    p.add_argument("tflite", metavar="MODEL.tflite")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--name", help="C prefix (default: the model's name)")
    _add_codegen_options(p)

    p = add("export", cmd_export)
    p.add_argument("target", choices=("arduino", "tflite"), help="what to export for")
    p.add_argument("dir", metavar="DIR|MODEL", help="a directory from `minitiny generate` "
                   "(tflite: or an int8 .qmodel.npz; a float model .npz, .keras or .h5 gives "
                   "a float32 .tflite)")
    p.add_argument("--out", metavar="PATH", help="where to write the library (arduino) or "
                   "the .tflite file (tflite)")
    edge_types(p)
    p.add_argument("--name", help="library name (default: from the model's name)")
    p.add_argument("--variant", choices=("reference", "scalar", "dsp", "auto"), default="auto",
                   help="kernels (default auto: DSP SIMD on the Nano 33 BLE's Cortex-M4F)")
    p.add_argument("--dsp-weights", choices=("int8", "int16"),
                   help="DSP dense and conv weights in flash (default: as DIR was generated)")

    p = add("report", cmd_report)
    p.add_argument("model", metavar="MODEL_OR_DIR",
                   help="a generated directory, an int8 .qmodel.npz or a float model .npz")
    p.add_argument("--board", help="budget (and firmware target): a board (nano33ble, "
                   "stm32l4r5, tiny, ...) or a core (cortex-m4)")
    p.add_argument("--data", metavar="NAME|x.npy[,y.npy]",
                   help="test data: accuracy float vs int8, confusion matrix, per-layer error")
    p.add_argument("--float", dest="float_model", metavar="MODEL.npz",
                   help="the float model the int8 one came from (for the float vs int8 columns)")
    p.add_argument("--rate", help="inferences per time for the power estimate: 1/s, 10/min, 0.5Hz")
    p.add_argument("--battery", help="battery for the battery life: cr2032, 2xaa, lipo500")
    p.add_argument("--html", metavar="FILE", help="the HTML page (default: DIR/report.html)")
    p.add_argument("--plots", metavar="DIR", help="also write the plots as PNG files here")
    p.add_argument("--samples", type=int, help="use the first N test samples (default: all)")
    p.add_argument("-n", type=int, default=8, help="inputs for the firmware run (default 8)")
    p.add_argument("--no-firmware", action="store_true", help="skip the firmware run")

    p = add("data", cmd_data)
    dsub = p.add_subparsers(dest="data_command", metavar="list|fetch", required=True)
    dsub.add_parser("list", parents=[common], help="the data sets and their cache status")
    d = dsub.add_parser("fetch", parents=[common], help="fetch data sets into the cache")
    d.add_argument("names", nargs="+", metavar="NAME", help="data set names, or 'all'")

    p = add("demo", cmd_demo)
    p.add_argument("--quick", action="store_true", help="seconds instead of a minute: fewer "
                   "epochs and samples")
    p.add_argument("--board", default="nano33ble", help="emulated board or core (default nano33ble: "
                   "the Arduino Nano 33 BLE Sense's Cortex-M4F with its 1 MB flash and 256 KB RAM)")
    p.add_argument("--out", default=os.path.join("build", "demo"), help="output directory "
                   "(default build/demo)")
    p.add_argument("--no-fetch", action="store_true", help="never download MNIST (use the "
                   "sine model when it is not in the cache)")
    return parser


# ---- errors and exit status ------------------------------------------------------------------
def exit_status(error):
    """0 ok, 1 a check failed (or the work failed), 2 usage: what the caller gave is not usable."""
    if isinstance(error, CheckFailed):
        return 1
    if isinstance(error, (UsageError, ValueError, KeyError, FileNotFoundError,
                          IsADirectoryError, NotADirectoryError, PermissionError)):
        return 2
    try:
        from minitiny.firmware import ToolchainError
        if isinstance(error, ToolchainError):
            return 2
    except ImportError:
        pass
    return 1


def error_message(error):
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    if isinstance(error, (UsageError, CheckFailed)) or type(error).__module__.startswith("minitiny"):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}"


def _delegated(argv):
    """`minitiny firmware ...` goes to the firmware's own command line, options and all."""
    flags = {"--debug", "--quiet", "-q"}
    words = [a for a in argv if a not in flags]
    if not words or words[0] != "firmware":
        return None
    ns = argparse.Namespace(command="firmware", rest=words[1:], run=cmd_firmware,
                            debug="--debug" in argv, quiet=bool(flags & set(argv) - {"--debug"}))
    return ns


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = _delegated(argv) or parser.parse_args(argv)
    except SystemExit as e:                # argparse: 2 for a usage error, 0 after --help
        return e.code
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    args.debug = getattr(args, "debug", False)
    args.quiet = getattr(args, "quiet", False)
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        print(f"\n{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:                # `minitiny report ... | head`: the reader left
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as e:                 # noqa: BLE001  (every error becomes one message)
        status = exit_status(e)
        if args.debug:
            traceback.print_exc()
        lines = error_message(e).splitlines() or [""]
        what = "check failed" if isinstance(e, CheckFailed) else "error"
        print(f"{PROG} {args.command}: {what}: {lines[0]}", file=sys.stderr)
        for line in lines[1:5]:
            print(f"  {line}", file=sys.stderr)
        if len(lines) > 5:
            print(f"  ... ({len(lines) - 5} more lines: run with --debug)", file=sys.stderr)
        if status == 1 and not isinstance(e, CheckFailed) and not args.debug:
            print(f"  (run `{PROG} {args.command} ... --debug` for the traceback)", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
