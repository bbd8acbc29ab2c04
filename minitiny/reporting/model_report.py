"""Gather everything a model report shows, from whatever the user has: `collect(...)`.

A report answers four questions about one model, each from its own source:

    what is it?        per layer: kind, output shape, parameters, MACs, weight bytes,
                       activation bytes, scale and zero point    (the int8 graph, the manifest)
    does it fit?       flash and RAM against a board's budget    (manifest; a firmware build)
    is it still good?  float vs int8: per-layer error, accuracy, (quantization_report,
                       a confusion matrix, ROC                    evaluate_report, the data)
    what does it cost? instructions, latency, energy, battery    (a firmware run, power.py)

The model can be a directory written by `minitiny generate` (NAME_manifest.json and
NAME.qmodel.npz), an int8 model file (.qmodel.npz), or a float model file (.npz, from
model.save). A float model with data is quantized here (post-training, min/max) so the
report can compare the two; a float model alone gets a float-only layer table.
Nothing here prints: the text and HTML views (text.py, html.py) read the ModelReport.
"""
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field

import numpy as np

from minitiny.files import atomic_write


class ReportError(ValueError):
    """The report cannot be made from what was given: names the file, flag or value."""


@dataclass
class LayerRow:
    index: int
    name: str
    kind: str                       # int8 op kind ('fully_connected'), or the float layer class
    output_shape: tuple             # without the batch
    params: int                     # weights + biases (values, not bytes)
    macs: int
    weight_bytes: int               # in flash: int8 weights, int32 biases, multipliers
    activation_bytes: int           # the output tensor in RAM
    scale: float = None             # the output's quantization (int8 models)
    zero_point: int = None
    activation: str = ""            # fused activation ('relu', ...)
    error: dict = None              # float vs int8: rmse, lsb, sqnr_db, rel, alone_lsb


@dataclass
class ModelReport:
    name: str
    source: str                     # the path the report was made from
    kind: str                       # 'int8' or 'float'
    layers: list = field(default_factory=list)
    input_shape: tuple = ()
    output_shape: tuple = ()
    totals: dict = field(default_factory=dict)       # params, macs, weight/code/arena bytes
    plan: list = field(default_factory=list)         # arena buffers: offset, size, first, last, tensors
    steps: list = field(default_factory=list)        # per step: live bytes and tensors, in place, peak
    op_names: list = field(default_factory=list)     # x axis of the arena timeline
    budget: dict = None             # board, flash/RAM used and budget, measured?, fits
    task: str = None                # 'classifier', 'binary', 'regression', 'anomaly'
    metrics: dict = None            # {'metric': 'accuracy', 'float': .., 'int8': .., 'n': ..}
    confusion: dict = None          # {'matrix': [[..]], 'classes': [..], 'model': 'int8'}
    roc: dict = None                # {'auc': {'int8': .., 'float': ..}}
    evaluation: object = None       # evaluation.EvaluationReport, when there were labels
    firmware: object = None         # firmware.FirmwareResult
    firmware_note: str = None       # why there is no firmware run
    power: object = None            # power.Estimate
    power_note: str = None          # why there is no power estimate
    sanity: str = None              # power.sanity_table text (Cortex-M4 boards)
    history: dict = None            # training curves {'loss': [...], ...}
    card: object = None             # modelcard.ModelCard
    notes: list = field(default_factory=list)
    # what the plots need (not shown directly)
    arrays: dict = field(default_factory=dict)
    manifest: dict = None
    qmodel: object = None
    float_model: object = None


# ---- reading models -------------------------------------------------------------------
def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_any(path):
    """A path -> ('dir', manifest, qmodel or None) | ('int8', None, qmodel) | ('float', None, model)."""
    from minitiny.quant.graph import GraphError, QModel
    path = os.fspath(path)
    if os.path.isdir(path):
        from minitiny.codegen.loader import read_manifest
        manifest = read_manifest(path)
        npz = os.path.join(path, f"{manifest['name']}.qmodel.npz")
        return "dir", manifest, (QModel.load(npz) if os.path.exists(npz) else None)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or directory (expected a directory from "
                                "`minitiny generate`, a .qmodel.npz or a float model .npz)")
    if path.endswith(".tflite"):
        from_tflite = tflite_reader()
        if from_tflite is None:
            raise ReportError(f"{path}: reading .tflite files is not available in this version "
                              "of minitiny yet (minitiny.from_tflite is missing)")
        return "int8", None, from_tflite(path)
    try:
        return "int8", None, QModel.load(path)
    except GraphError as int8_error:
        from minitiny.saving import ModelFileError, load_model
        try:
            return "float", None, load_model(path)
        except ModelFileError as float_error:
            raise ReportError(f"{path}: neither an int8 model ({int8_error}) nor a float model "
                              f"({float_error})") from None


def tflite_reader():
    """minitiny.from_tflite (.tflite -> QModel), or None in a version without it."""
    import importlib
    import minitiny
    try:
        return minitiny.from_tflite
    except AttributeError:
        pass
    try:                                  # where the reader lives, if the export lags behind
        return importlib.import_module("minitiny.quant.tflite_read").from_tflite
    except (ImportError, AttributeError):
        return None


def history_path(model_path):
    """model.npz -> model.history.json: where `minitiny train` keeps the training curves."""
    base = os.fspath(model_path)
    base = base[:-4] if base.endswith(".npz") else base
    return base + ".history.json"


def save_history(model_path, history):
    """Write fit's history ({'loss': [...], ...}) beside the model, atomically; -> the path."""
    path = history_path(model_path)
    h = getattr(history, "history", history)
    return atomic_write(path, json.dumps({k: [float(v) for v in vs] for k, vs in h.items()},
                                         indent=1))


# ---- the per-layer table --------------------------------------------------------------
def int8_rows(qmodel, manifest):
    by_name = {layer["name"]: layer for layer in manifest["layers"]} if manifest else {}
    rows = []
    for i, op in enumerate(qmodel.ops):
        out = qmodel.tensors[op.outputs[0]]
        consts = [qmodel.tensors[n] for n in op.inputs if qmodel.tensors[n].is_constant]
        m = by_name.get(op.name, {})
        rows.append(LayerRow(
            index=i, name=op.name, kind=op.kind, output_shape=tuple(out.shape),
            params=int(sum(int(np.prod(t.shape)) for t in consts)),
            macs=int(m.get("macs", (op.params or {}).get("macs", 0))),
            weight_bytes=int(m.get("weight_bytes", sum(t.nbytes for t in consts))),
            activation_bytes=out.nbytes, scale=float(out.scale), zero_point=int(out.zero_point),
            activation=op.options.get("activation", "none")))
    return rows


def float_rows(model):
    """The layer table of a float model, with the bytes its int8 version would take
    (weights 1 byte, biases 4; BatchNormalization folds away, as Model.memory_estimate)."""
    from minitiny.layers import BatchNormalization
    rows = []
    for i, layer in enumerate(model.layers):
        flash = 0 if isinstance(layer, BatchNormalization) else \
            sum(t.data.size * (4 if n == "bias" else 1) for n, t in layer.weights.items())
        rows.append(LayerRow(
            index=i, name=layer.name, kind=type(layer).__name__,
            output_shape=tuple(layer.output_shape), params=int(layer.count_params()),
            macs=int(layer.macs()), weight_bytes=int(flash),
            activation_bytes=int(np.prod(layer.output_shape)),
            activation=getattr(layer, "activation", "") or ""))
    return rows


# ---- budgets --------------------------------------------------------------------------
def budget_of(board):
    """(name, flash bytes, RAM bytes, what it is) for a board of boards.json or a bare core."""
    from minitiny.deploy import boards
    try:
        b = boards.get(board)
        return b.name, b.flash_bytes, b.ram_bytes, f"{b.title} ({b.mcu}, {b.core})"
    except boards.BoardError as board_error:
        try:
            from minitiny.firmware import cores
            t = cores.target(board)
        except (ImportError, ValueError):
            raise ReportError(str(board_error)) from None
        return t.name, t.flash_bytes, t.ram_bytes, (f"{t.core.name} core: all the memory QEMU "
                                                    f"emulates ({t.core.machine})")


def _budget(report, board):
    name, flash_budget, ram_budget, what = budget_of(board)
    t = report.totals
    flash, ram, measured = t.get("flash_estimate"), t.get("ram_estimate"), False
    fw = report.firmware
    if fw is not None and fw.flash and fw.ram:
        flash = fw.flash["used"]
        ram = fw.ram["static"] + fw.ram["stack_reserved"]
        measured = True
    return {"board": name, "what": what, "flash_used": flash, "flash_budget": flash_budget,
            "ram_used": ram, "ram_budget": ram_budget, "measured": measured,
            "fits": flash <= flash_budget and ram <= ram_budget}


# ---- data: accuracy, confusion matrix, ROC ----------------------------------------------
def task_of(qmodel_or_model, y, input_shape, output_shape):
    last_kind = None
    if hasattr(qmodel_or_model, "ops"):
        last_kind = qmodel_or_model.ops[-1].kind
    else:
        last_kind = {"sigmoid": "logistic", "softmax": "softmax"}.get(
            getattr(qmodel_or_model.layers[-1], "activation", None))
    size = int(np.prod(output_shape))
    if tuple(output_shape) == tuple(input_shape) and size > 1:
        return "anomaly" if y is not None else None
    if size > 1:
        return "classifier"
    if last_kind == "logistic":
        return "binary"
    return "regression"


def _evaluate(report, x, y, class_names):
    """Float vs int8 on the data: the metric, a confusion matrix, ROC; and the plots' arrays."""
    from minitiny.reporting import evaluation
    q, f = report.qmodel, report.float_model
    if q is not None and (len(q.inputs) > 1 or len(q.outputs) > 1):
        raise ReportError(f"model {q.name!r} has {len(q.inputs)} inputs and {len(q.outputs)} outputs: "
                          f"the report evaluates data on models with one of each; leave out --data "
                          f"(`minitiny verify DIR --inputs x.npz` checks every output)")
    model = q if q is not None else f
    task = report.task = task_of(model, y, report.input_shape, report.output_shape)
    if task is None:
        return
    n = len(x)
    outs = {}
    if f is not None:
        outs["float"] = f.predict(x)
    if q is not None:
        outs["int8"] = q.predict(x)
    report.arrays.update(x=x, y=y, outputs=outs)
    if y is None:
        report.notes.append("no labels given: accuracy and the confusion matrix need y")
        return
    if task == "regression":
        y2 = np.asarray(y, dtype=np.float64).reshape(n, -1)
        mse = {k: float(np.mean((v.reshape(n, -1) - y2) ** 2)) for k, v in outs.items()}
        report.metrics = dict(metric="mean squared error", n=n, lower_is_better=True, **mse)
        return
    if task == "anomaly":
        scores = {k: np.mean((v.reshape(n, -1) - x.reshape(n, -1)) ** 2, axis=1)
                  for k, v in outs.items()}
        report.arrays["scores"] = scores
        try:
            aucs = {k: evaluation.roc_auc(y, s) for k, s in scores.items()}
        except evaluation.EvaluationError as e:
            report.notes.append(f"ROC: {e}")
            return
        report.roc = {"auc": aucs, "score": "mean squared reconstruction error"}
        report.metrics = dict(metric="ROC AUC (reconstruction error)", n=n, **aucs)
        return
    primary = "int8" if "int8" in outs else "float"
    other = {"float": outs["float"]} if primary == "int8" and "float" in outs else None
    ev = evaluation.evaluate_report(y_score=outs[primary], y=y, class_names=class_names,
                                    compare=other, name=primary)
    report.evaluation = ev
    acc = {primary: float(ev.overall["accuracy"])}
    for name, r in ev.compared.items():
        acc[name] = float(r.overall["accuracy"])
    report.metrics = dict(metric="accuracy", n=n, **acc)
    report.confusion = {"matrix": ev.confusion.tolist(), "classes": list(ev.class_names),
                        "model": primary}
    if task == "binary":
        scores = {k: v.reshape(n) for k, v in outs.items()}
        report.arrays["scores"] = scores
        try:
            report.roc = {"auc": {k: evaluation.roc_auc(y, s) for k, s in scores.items()},
                          "score": "the sigmoid output"}
        except evaluation.EvaluationError as e:
            report.notes.append(f"ROC: {e}")


# ---- firmware and power ----------------------------------------------------------------
def toolchain_missing():
    """None when arm-none-eabi-gcc and qemu-system-arm are installed, else what is missing."""
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
    if not missing:
        return None
    return (f"{' and '.join(missing)} not installed (Debian/Ubuntu: apt-get install -y "
            "--no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")


def _run_firmware(report, model_dir, board, x, n):
    why = toolchain_missing()
    if why:
        report.firmware_note = f"no firmware run: {why}"
        return
    from minitiny import firmware
    inputs = None
    if x is not None and report.qmodel is not None:
        inputs = report.qmodel.quantize_input(x[:n])
    try:
        report.firmware = firmware.run(model_dir, board=board, inputs=inputs, n=n)
    except firmware.FirmwareError as e:
        report.firmware_note = f"the firmware build failed: {str(e).splitlines()[0]}"
        return
    if not report.firmware.ok:
        report.notes.append(f"firmware run on {board}: {report.firmware.status}: "
                            f"{report.firmware.message}")


def _power(report, board, rate, battery):
    from minitiny.deploy import boards, power
    try:
        b = boards.get(board)
    except boards.BoardError as e:
        report.power_note = (f"no power estimate: {board!r} is not a board with a clock and "
                             f"currents in boards.json ({e})")
        return
    fw = report.firmware
    if fw is None or fw.instructions is None:
        why = report.firmware_note or (f"the firmware run did not count instructions "
                                       f"({fw.status if fw else 'no run'})")
        report.power_note = f"latency, energy and battery life are unavailable: {why}"
        return
    macs = report.totals.get("macs") or None
    report.power = power.estimate(fw.instructions, b, rate, battery=battery, macs=macs)
    if b.core == "cortex-m4":
        report.sanity = power.sanity_table(fw.instructions, macs)


# ---- the whole report -----------------------------------------------------------------
def collect(model_path, *, board=None, x=None, y=None, class_names=None, float_model=None,
            rate=None, battery=None, run_firmware=True, firmware_inputs=8, calibration=500,
            max_error_samples=1000, card=True, firmware_result=None):
    """Everything the report shows -> ModelReport.

    model_path:    generated directory, .qmodel.npz or float model .npz
    board:         a board of boards.json ('nano33ble') or a core ('cortex-m4'): the budget,
                   and the target of a firmware run when the toolchain is installed
    x, y:          test data (float inputs, labels) for accuracy, confusion matrix, per-layer
                   error; y may be None
    float_model:   the float model (or its .npz path) the int8 model came from
    rate, battery: inference rate ('1/s') and battery name for the power estimate
    run_firmware:  False: no firmware run (no instructions, so no power estimate)
    firmware_result: a firmware.run result made already (it is not run again)
    """
    from minitiny import load_model
    from minitiny.quant.graph import QModel
    what, manifest, model = load_any(model_path)
    qmodel = model if isinstance(model, QModel) else None
    fmodel = None if isinstance(model, QModel) or what == "dir" else model
    if isinstance(float_model, (str, os.PathLike)):
        hist = history_path(float_model)
        float_model = load_model(float_model)
    else:
        hist = history_path(model_path) if fmodel is not None else None
    fmodel = float_model if float_model is not None else fmodel
    if x is not None:
        x = np.asarray(x, dtype=np.float32)
    notes = []
    if qmodel is None and fmodel is not None and x is not None:
        from minitiny.quant.quantizer import quantize
        qmodel = quantize(fmodel, x[:calibration])
        notes.append(f"quantized here: post-training, min/max ranges from the first "
                     f"{min(calibration, len(x))} samples of the data given")
    name = (manifest or {}).get("model_name") or getattr(qmodel, "name", None) or \
        getattr(fmodel, "name", "model")
    report = ModelReport(name=name, source=os.fspath(model_path),
                         kind="int8" if qmodel is not None else "float", notes=notes,
                         qmodel=qmodel, float_model=fmodel)
    if hist and os.path.exists(hist):
        report.history = _read_json(hist)

    tmp = None
    try:
        model_dir = os.fspath(model_path) if what == "dir" else None
        if qmodel is not None and manifest is None:
            from minitiny import codegen
            tmp = tempfile.mkdtemp(prefix="minitiny-report-")
            generated = codegen.generate(qmodel, os.path.join(tmp, "c"))
            manifest, model_dir = generated.manifest, generated.dir
        report.manifest = manifest
        if qmodel is not None:
            report.layers = int8_rows(qmodel, manifest)
            # several inputs or outputs: a tuple of shapes, in the model's order
            shapes = lambda names: (qmodel.tensors[names[0]].shape if len(names) == 1 else
                                    tuple(qmodel.tensors[n].shape for n in names))
            report.input_shape, report.output_shape = shapes(qmodel.inputs), shapes(qmodel.outputs)
            report.plan = manifest["plan"]
            report.steps = manifest.get("steps", [])
            report.op_names = [op.name for op in qmodel.ops]
            report.totals = {
                "params": sum(r.params for r in report.layers), "macs": int(manifest["macs"]),
                "weight_bytes": int(manifest["weight_bytes"]),
                "code_bytes_estimate": int(manifest["code_bytes_estimate"]),
                "arena_bytes": int(manifest["arena_bytes"]),
                "arena_lower_bound": int(manifest["arena_lower_bound"]),
                "flash_estimate": int(manifest["weight_bytes"] + manifest["code_bytes_estimate"]),
                "ram_estimate": int(manifest["arena_bytes"])}
        elif fmodel is not None:
            report.layers = float_rows(fmodel)
            report.input_shape, report.output_shape = fmodel.input_shape, fmodel.output_shape
            flash, ram, _ = fmodel.memory_estimate()
            report.totals = {"params": fmodel.count_params(),
                             "macs": sum(r.macs for r in report.layers),
                             "weight_bytes": sum(r.weight_bytes for r in report.layers),
                             "float_bytes": 4 * fmodel.count_params(),
                             "flash_estimate": flash, "ram_estimate": ram}
            report.notes.append("a float model without data: sizes are estimates for its int8 "
                                "version (give --data to quantize it and compare)")
        else:
            raise ReportError(f"{model_path}: the directory has a manifest but no "
                              f"{manifest['name']}.qmodel.npz; regenerate it with minitiny generate")

        if x is not None:
            _evaluate(report, x, y, class_names)
            if qmodel is not None and fmodel is not None:
                _layer_errors(report, x[:max_error_samples])
        if board is not None:
            if firmware_result is not None:
                report.firmware = firmware_result
            elif not run_firmware:
                report.firmware_note = "no firmware run (--no-firmware)"
            elif model_dir is None:
                report.firmware_note = ("no firmware run: a float model has no C yet "
                                        "(minitiny quantize, then minitiny generate)")
            else:
                _run_firmware(report, model_dir, board, x, firmware_inputs)
            report.budget = _budget(report, board)
            if rate is not None:
                _power(report, board, rate, battery)
        elif rate is not None:
            report.power_note = "a power estimate needs --board (its clock and currents)"
        if card:
            report.card = _card(report, manifest)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return report


def _layer_errors(report, x):
    from minitiny.quant.report import quantization_report
    try:
        qr = quantization_report(report.float_model, report.qmodel, x)
    except ValueError as e:
        report.notes.append(f"no per-layer error: {e}")
        return
    by_name = {r.name: r for r in qr.rows}
    for row in report.layers:
        r = by_name.get(row.name)
        if r is not None:
            row.error = {"rmse": r.rmse, "lsb": r.lsb, "rel": r.rel, "sqnr_db": r.sqnr_db,
                         "alone_lsb": r.alone_lsb}
    if qr.first_divergent is not None:
        d = qr.first_divergent
        report.notes.append(f"int8 starts to diverge at {d.name!r} ({d.kind}): RMSE {d.lsb:.1f} "
                            f"LSB, {100 * d.rel:.2f}% of its range")


def _card(report, manifest):
    try:
        from minitiny.reporting.modelcard import model_card
    except ImportError:
        return None
    return model_card(report.evaluation, name=report.name,
                      model=report.qmodel or report.float_model, manifest=manifest,
                      firmware=report.firmware, power=report.power)
