"""Run a generated model on an emulated Cortex-M: its outputs, exact instruction counts,
flash and RAM.

    result = minitiny.firmware.run("build/sine", board="nano33ble")
    print(result.table())

What happens:
1. model.py reads the generated directory (NAME_model.{h,c}, the manifest, the .npz; and
   any further C files the manifest lists under "sources": a program of several files).
2. harness.c.j2 becomes harness.c with the test inputs compiled in.
3. build.py compiles and links for the board (a model that does not fit fails here).
4. QEMU runs the ELF under a timeout. The TCG plugin mtcount.c logs the instruction count
   at each marker; without plugins the harness reads a counter under -icount instead.
5. The production build (no markers in the model) gives the outputs, the instructions per
   inference, flash and RAM; the profiling build (a marker per layer) the per-layer counts.
6. The outputs are compared with the NumPy int8 reference when there is one.

QEMU counts instructions, not cycles: it has no timing model of a Cortex-M pipeline.
"""
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import build as fwbuild
from . import cores, model, sizes
from .model import layer_c_name
from .report import table
from .toolchain import FirmwareError, ToolchainError, tool

DEFAULT_STACK = 4096        # bytes of RAM reserved for the stack (the link checks it fits)
CALIBRATION_LOOP = 1 + 16 * (1 + 2 * 32768 + 2)  # instructions in harness.c.j2's counter_calibrate
_plugin_refused = False     # set once QEMU refuses the plugin: use -icount from then on
# fault_test=True jumps here: the System region (0xE0000000 up) is never executable on a
# Cortex-M (Armv7-M / Armv8-M ARM, "the System region is Execute Never"), so the jump faults.
FAULT_TEST_ADDRESS = 0xE0100001


@dataclass
class FirmwareResult:
    name: str
    target: cores.Target
    status: str                 # 'ok', 'mismatch', 'fault', 'timeout', 'invoke-error', 'error'
    message: str                # what went wrong, with QEMU's exit status; '' when ok
    exit_status: int            # QEMU's exit status (None after a timeout)
    inputs: np.ndarray          # int8 (N, input_size)
    outputs: np.ndarray         # int8 (N, *output_shape), None if the run failed; several
    #                             outputs: (N, output_size), back to back (outputs_by_tensor)
    reference: np.ndarray = None        # int8, the NumPy reference outputs (None: no reference)
    counter: str = "plugin"             # 'plugin' (exact) or 'icount' (counter fallback)
    instructions_per_input: np.ndarray = None   # (N,) per inference, production build
    layer_instructions: np.ndarray = None       # (N, L) per layer, profiling build
    overhead_instructions: np.ndarray = None    # (N, 2): before layer 0, after the last
    layers: list = field(default_factory=list)  # the manifest's layer entries
    flash: dict = field(default_factory=dict)   # bytes: code, weights, runtime, used, budget, ...
    ram: dict = field(default_factory=dict)     # bytes: arena, runtime, stack_used, ...
    layer_sizes: dict = field(default_factory=dict)  # {layer name: {'code', 'weights', 'ram'}}
    source_sizes: dict = field(default_factory=dict)  # several C files: {file: {'flash', 'ram', ...}}
    build_dir: Path = None
    output_tensors: list = field(default_factory=list)   # model.ModelFiles.outputs

    @property
    def outputs_by_tensor(self):
        """The outputs as one (N, *shape) array per model output, in the model's order."""
        if self.outputs is None:
            return None
        flat = self.outputs.reshape(len(self.outputs), -1)
        ends = np.cumsum([t["size"] for t in self.output_tensors])[:-1]
        return [part.reshape((len(flat),) + tuple(t["shape"]))
                for part, t in zip(np.split(flat, ends, axis=1), self.output_tensors)]

    @property
    def ok(self):
        return self.status == "ok"

    @property
    def matches_reference(self):
        """True/False against the NumPy reference; None when there was none to compare."""
        if self.reference is None or self.outputs is None:
            return None
        return bool(np.array_equal(self.outputs.reshape(len(self.outputs), -1),
                                   self.reference.reshape(len(self.reference), -1)))

    @property
    def instructions(self):
        """Instructions per inference: the most any test input took (production build)."""
        return None if self.instructions_per_input is None else int(self.instructions_per_input.max())

    def table(self):
        return table(self)

    __str__ = table


def run(model_dir, board="cortex-m4", inputs=None, n=8, profile=True, timeout=60, *,
        expected=None, stack=DEFAULT_STACK, counter="auto", cache_dir=None, seed=0,
        fault_test=None, opt="-O2"):
    """Build the model in model_dir for `board` (a core or board name), run it in QEMU.

    inputs:     int8, or float (quantized with the header's input scale and zero point),
                shaped (N, *input_shape) or (N, input_size); the first n are used.
                Default: n random int8 inputs drawn with `seed`.
    expected:   int8 outputs to compare with; default: the NumPy reference of
                NAME.qmodel.npz when the directory has one.
    profile:    also build with a marker per layer, for the per-layer instruction counts.
    counter:    'plugin' (exact, mtcount.c), 'icount' (fallback) or 'auto'.
    stack:      bytes of RAM reserved for the stack; the link checks they fit.
    fault_test: True (or an address) makes the harness jump to an address that faults
                before the first inference: a test of the fault path.

    Raises FirmwareError (ToolchainError, BuildError, DoesNotFit), model.ModelDirError or
    ValueError when it cannot build; what happens at run time (mismatch, fault, timeout)
    is in result.status and result.message.
    """
    files = model.load(model_dir)
    target = cores.target(board)
    if fault_test is True:
        fault_test = FAULT_TEST_ADDRESS
    x = _inputs(files, inputs, n, seed)
    reference = _reference(files, x, expected)
    tool("qemu-system-arm")
    chosen, lib = _choose_counter(counter, cache_dir)
    opts = dict(files=files, target=target, x=x, stack=stack, cache_dir=cache_dir,
                fault_test=fault_test, opt=opt, timeout=timeout, lib=lib)

    main_build, main_run = _build_and_run(profile=False, counter=chosen, **opts)
    if main_run.plugin_refused:
        if counter == "plugin":
            raise FirmwareError(main_run.message + "\nuse counter='icount' (the fallback)")
        return run(model_dir, board, inputs, n, profile, timeout, expected=expected, stack=stack,
                   counter="icount", cache_dir=cache_dir, seed=seed, fault_test=fault_test, opt=opt)
    counter = chosen
    result = FirmwareResult(files.name, target, main_run.status, main_run.message,
                            main_run.exit_status, x, main_run.outputs, reference, counter,
                            layers=files.layers, build_dir=main_build.dir,
                            output_tensors=files.outputs)
    if main_run.outputs is not None:
        result.outputs = main_run.outputs.reshape((len(x),) + tuple(files.output_shape))
    if main_run.intervals is not None:
        result.instructions_per_input = main_run.intervals[:, 0]
    _sizes(result, files, main_build, main_run)

    if profile and files.layers and main_run.status == "ok":
        prof_build, prof_run = _build_and_run(profile=True, counter=counter, **opts)
        if prof_run.status != "ok":
            result.status, result.message = prof_run.status, "profiling build: " + prof_run.message
        elif not np.array_equal(prof_run.outputs, main_run.outputs):
            result.status = "mismatch"
            result.message = "the profiling build's outputs differ from the production build's"
        else:
            iv = prof_run.intervals               # (N, 1 + hooks): harness mark, hooks, harness mark
            if iv is not None:                    # (None: the -icount counter did not calibrate)
                result.overhead_instructions = iv[:, [0, -1]]   # before layer 0, after the last
                result.layer_instructions = iv[:, 1:-1]
    if result.status == "ok" and result.matches_reference is False:
        bad = np.argwhere(result.outputs.reshape(len(x), -1) != reference.reshape(len(x), -1))
        i, j = bad[0]
        result.status = "mismatch"
        starts = np.cumsum([0] + [t["size"] for t in files.outputs])
        k = int(np.searchsorted(starts, j, side="right") - 1)
        where = f"output {j}" if len(files.outputs) == 1 else f"{files.outputs[k]['arg']} value {j - starts[k]}"
        result.message = (f"{len(bad)} of {reference.size} output values differ from the NumPy "
                          f"reference; first: input {i}, {where}: firmware "
                          f"{result.outputs.reshape(len(x), -1)[i, j]}, reference "
                          f"{reference.reshape(len(x), -1)[i, j]}")
    return result


def _choose_counter(counter, cache_dir):
    """-> ('plugin' or 'icount', the plugin library or None)."""
    if counter not in ("auto", "plugin", "icount"):
        raise ValueError(f"counter must be 'auto', 'plugin' or 'icount', got {counter!r}")
    if counter == "icount" or (counter == "auto" and _plugin_refused):
        return "icount", None
    lib = fwbuild.plugin(cache_dir)
    if lib is None:
        if counter == "plugin":
            raise ToolchainError("no host C compiler (cc, gcc or clang) to build the QEMU "
                                         "plugin: apt-get install -y gcc, or use counter='icount'")
        return "icount", None
    return "plugin", lib


# ---- inputs and the reference ---------------------------------------------------------
def _inputs(files, inputs, n, seed):
    """The test inputs as int8 (N, input_size): a model with several inputs keeps a sample's
    inputs back to back, and takes `inputs` as that flat array or as a list of arrays, one
    per model input in its order."""
    if n is not None and n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if inputs is None:
        rng = np.random.default_rng(seed)
        info = np.iinfo(files.dtype)                    # int8, or int16 for a 16x8 model
        return rng.integers(info.min, info.max + 1, size=(n or 8, files.input_size), dtype=files.dtype)
    if isinstance(inputs, (list, tuple)) and len(files.inputs) > 1:
        if len(inputs) != len(files.inputs):
            raise ValueError(f"model {files.name!r} has {len(files.inputs)} inputs: pass a list of "
                             f"{len(files.inputs)} arrays, got {len(inputs)}")
        parts = [_one_input(files, t, a, n) for t, a in zip(files.inputs, inputs)]
        if len({len(p) for p in parts}) > 1:
            raise ValueError(f"the inputs of model {files.name!r} hold different numbers of samples: "
                             f"{[len(p) for p in parts]}")
        return np.concatenate(parts, axis=1)
    whole = {"arg": "input", "macro": "INPUT", "size": files.input_size, "shape": files.input_shape,
             "scale": files.input_scale, "zero_point": files.input_zero_point}
    return _one_input(files, whole, inputs, n)


def _one_input(files, t, inputs, n):
    """One model input (t: an entry of files.inputs) as int8 (N, size)."""
    x = np.asarray(inputs)
    if x.ndim == 0 or x.size == 0:
        raise ValueError(f"inputs: expected an array of shape (N, {t['size']}), got {x.shape}")
    if x.size == t["size"] and x.shape in (tuple(t["shape"]), (t["size"],)):
        x = x[None]
    x = x.reshape(len(x), -1)
    if x.shape[1] != t["size"]:
        raise ValueError(f"inputs of shape {np.asarray(inputs).shape} do not fit model "
                         f"{files.name!r}: each {t['arg']} has {t['size']} values "
                         f"(shape {tuple(t['shape'])})")
    if n is not None:
        x = x[:n]
    if np.issubdtype(x.dtype, np.floating):
        if t["scale"] is None or t["zero_point"] is None:
            raise ValueError(f"float inputs need {files.macro}_{t['macro']}_SCALE and _ZERO_POINT in "
                             f"{files.header.name} to be quantized; pass int8 inputs instead")
        from minitiny.quant.graph import QTensor
        q = QTensor(t["arg"], (t["size"],), files.dtype.name, t["scale"], t["zero_point"])
        return q.quantize(x)
    info = np.iinfo(files.dtype)
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"inputs must be {info.dtype} or float, got dtype {x.dtype}")
    if x.min() < info.min or x.max() > info.max:
        raise ValueError(f"{info.dtype} inputs out of range: [{x.min()}, {x.max()}]")
    return x.astype(files.dtype)


def _reference(files, x, expected):
    """The NumPy reference's outputs as int8 (N, output_size), every output back to back."""
    if expected is not None:
        several = isinstance(expected, (list, tuple)) and len(files.outputs) > 1
        parts = [np.asarray(r) for r in (expected if several else [expected])]
        if sum(r.size for r in parts) != len(x) * files.output_size:
            raise ValueError(f"expected outputs of shape {[r.shape for r in parts]} do not match "
                             f"{len(x)} inputs x {files.output_size} outputs")
        return np.concatenate([r.reshape(len(x), -1) for r in parts], axis=1).astype(files.dtype)
    qmodel = model.load_reference(files)
    if qmodel is None:
        return None
    ends = np.cumsum([t["size"] for t in files.inputs])[:-1]
    xs = [part.reshape((len(x),) + tuple(qmodel.tensors[name].shape))
          for part, name in zip(np.split(x, ends, axis=1), qmodel.inputs)]
    ys = qmodel.predict_int8(xs if len(xs) > 1 else xs[0])
    ys = ys if len(qmodel.outputs) > 1 else [ys]
    return np.concatenate([np.asarray(y).reshape(len(x), -1) for y in ys], axis=1).astype(files.dtype)


# ---- one build, one QEMU run --------------------------------------------------------------
@dataclass
class _Run:
    status: str
    message: str
    exit_status: int
    outputs: np.ndarray = None      # int8 (N, output_size)
    intervals: np.ndarray = None    # (N, marks per run - 1) instructions between markers
    stack_used: int = None
    stack_free: int = None
    plugin_refused: bool = False


def _render_harness(files, x, marks_per_run):
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(fwbuild.HERE)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    offsets = lambda ends: [dict(t, offset=int(sum(u["size"] for u in ends[:i]))) for i, t in enumerate(ends)]
    return env.get_template("harness.c.j2").render(
        name=files.name, NAME=files.macro, n_inputs=len(x), inputs=x.tolist(),
        tensors_in=offsets(files.inputs), tensors_out=offsets(files.outputs),
        marks_per_run=marks_per_run, act_t=f"{files.dtype.name}_t",
        reset=(files.manifest or {}).get("reset"))


def _build_and_run(files, target, x, profile, counter, stack, cache_dir, fault_test, opt,
                   timeout, lib):
    # markers per inference: the harness's two, plus one per layer hook when profiling
    marks_per_run = 2 + ((len(files.layers) + 1) if profile else 0)
    marks_what = "the harness's 2 around the call" + (
        f", and {files.source.name}'s MINITINY_LAYER_HOOK markers: its manifest lists "
        f"{len(files.layers)} layers, so {len(files.layers) + 1} were expected" if profile else "")
    harness = _render_harness(files, x, marks_per_run)
    b = fwbuild.build(files, harness, target, profile=profile, counter=counter, stack=stack,
                      cache_dir=cache_dir, fault_test=fault_test, opt=opt)
    return b, run_elf(b.elf, target.core, len(x), files.output_size, counter=counter,
                      timeout=timeout, plugin_lib=lib, marks_per_run=marks_per_run,
                      marks_what=marks_what, dtype=files.dtype)


def qemu_command(elf, core, counter, plugin_lib=None, marks_log=None):
    """The QEMU command line, each option explained."""
    def esc(path):                  # QEMU option values escape ',' as ',,'
        return str(path).replace(",", ",,")
    cmd = [tool("qemu-system-arm"),
           "-machine", core.machine,          # the board QEMU emulates for this core
           "-nographic",                      # no window
           "-monitor", "none", "-serial", "none",  # nothing else on the terminal
           # semihosting (semihosting.c): the guest writes to QEMU's own stdout and stderr
           # (the file ":tt") and exits through QEMU with a status
           "-semihosting-config", "enable=on,target=native",
           "-kernel", str(elf)]               # load the ELF; the core boots from its vectors
    if counter == "plugin":
        cmd += ["-plugin", f"{esc(plugin_lib)},out={esc(marks_log)}"]   # mtcount.c
    else:
        # virtual time advances exactly 2**shift ns per instruction; the counter reads it
        cmd += ["-icount", f"shift={fwbuild.ICOUNT_SHIFT},sleep=off"]
    return cmd


def run_elf(elf, core, n_inputs, output_size, counter="plugin", timeout=60, plugin_lib=None,
            marks_per_run=2, marks_what="the harness's 2 around the call", dtype=np.int8):
    """Run a harness ELF in QEMU and read back what it reported; every inference must pass
    `marks_per_run` markers (the harness's two, plus the layer hooks when profiling)."""
    work = Path(tempfile.mkdtemp(prefix="minitiny-qemu-"))
    try:
        marks_log = work / "marks.txt"
        cmd = qemu_command(elf, core, counter, plugin_lib, marks_log)
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired:
            return _Run("timeout", f"QEMU did not finish within {timeout} s (killed): the "
                                   f"program hangs or needs a longer timeout", None)
        marks = marks_log.read_text() if marks_log.exists() else ""
        return _parse(p.returncode, p.stdout, p.stderr, marks, n_inputs, output_size, counter,
                      marks_per_run, marks_what, dtype)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _parse(rc, guest, qemu_err, marks, n_inputs, output_size, counter, marks_per_run=2,
           marks_what="the harness's 2 around the call", dtype=np.int8):
    lines = guest.splitlines()
    fault = next((l for l in qemu_err.splitlines() if l.startswith("minitiny-fault")), None)
    if rc != 0 and "plugin" in qemu_err.lower() and "minitiny-begin" not in guest:
        global _plugin_refused
        _plugin_refused = True
        return _Run("error", f"QEMU refused the plugin: {qemu_err.strip()}", rc, plugin_refused=True)
    if fault or rc == 3:
        return _Run("fault", f"the core faulted (QEMU exit status {rc}): "
                             f"{fault or 'no report'}", rc)
    if rc < 0 or rc >= 128:
        return _Run("fault", f"QEMU aborted (exit status {rc}), e.g. the core locked up in a "
                             f"fault handler: {qemu_err.strip()[-400:]}", rc)
    outputs = {}
    values = {}
    for line in lines:
        head, _, rest = line.partition(" ")
        if head == "out":
            idx, *vals = rest.split()
            outputs[int(idx)] = [int(v) for v in vals]
        elif head in ("null-check", "stack-used", "stack-free", "invoke-error"):
            values[head] = int(rest)
        elif head == "stamps":
            values["stamps"] = [int(v, 16) for v in rest.split()]
    if rc == 2:
        return _Run("invoke-error", f"the model's invoke returned {values.get('invoke-error')} "
                                    f"(QEMU exit status {rc})", rc)
    if rc != 0 or "minitiny-end" not in guest:
        return _Run("error", f"QEMU exit status {rc}; guest said {guest.strip()[-300:]!r}; "
                             f"QEMU said {qemu_err.strip()[-300:]!r}", rc)
    if sorted(outputs) != list(range(n_inputs)) or any(len(v) != output_size for v in outputs.values()):
        return _Run("error", f"the harness reported outputs for inputs {sorted(outputs)} "
                             f"instead of {n_inputs} x {output_size} values", rc)
    run = _Run("ok", "", rc, np.array([outputs[i] for i in range(n_inputs)], dtype=dtype),
               stack_used=values.get("stack-used"), stack_free=values.get("stack-free"))
    if values.get("null-check", 1) == 0:
        run.status = "error"
        run.message = "invoke(NULL, output) returned 0; the contract asks for a nonzero status"
    try:
        run.intervals = _intervals(counter, marks, values.get("stamps", []), n_inputs, marks_per_run)
    except MarkerCountError as e:
        run.status, run.message = "error", f"{e} (each inference passes {marks_what})"
    return run


class MarkerCountError(FirmwareError):
    """The counter saw more or fewer markers than the program passes: counts cannot be paired."""


def _intervals(counter, marks_text, stamps, n_inputs, marks_per_run):
    """Instructions between consecutive markers, (N, marks_per_run - 1).

    Each count is the difference of two markers' readings, so one marker missed would pair
    every later reading with the wrong one and shift every figure without a trace. The
    number seen must be exactly n_inputs x marks_per_run, else MarkerCountError.
    """
    if counter == "plugin":
        points = [int(l.split()[1]) for l in marks_text.splitlines() if l.startswith("mark ")]
        _check_marker_count(len(points), n_inputs, marks_per_run, "the TCG plugin (mtcount.c)")
        per_run = np.array(points, dtype=np.int64).reshape(n_inputs, marks_per_run)
        return np.diff(per_run, axis=1) - 1      # minus the marker instruction itself
    _check_marker_count(len(stamps) - 4, n_inputs, marks_per_run, "the -icount counter stamps")
    ticks = lambda a, b: (b - a) % (1 << 32)     # the counter counts up, and wraps
    empty, loop = ticks(stamps[0], stamps[1]), ticks(stamps[2], stamps[3])
    if loop <= empty:
        return None
    per_tick = CALIBRATION_LOOP / (loop - empty)
    per_run = np.array(stamps[4:], dtype=np.int64).reshape(n_inputs, marks_per_run)
    deltas = (per_run[:, 1:] - per_run[:, :-1]) % (1 << 32)
    return np.rint((deltas - empty) * per_tick).astype(np.int64)


def _check_marker_count(seen, n_inputs, marks_per_run, counter):
    expected = n_inputs * marks_per_run
    if seen != expected:
        raise MarkerCountError(
            f"{counter} saw {seen} markers where the program passes {expected} ({n_inputs} "
            f"inputs x {marks_per_run} markers each): a marker was {'missed' if seen < expected else 'counted twice'}, "
            f"so no instruction count can be trusted; none is reported")


def _sizes(result, files, b, r):
    """Fill result.flash / result.ram / result.layer_sizes from the linked ELF's symbols:
    what the model takes after the linker dropped what nothing uses; the rest is runtime."""
    linked = sizes.linker_figures(b.elf)
    kept = sizes.linked_symbols(b.elf)
    mdl = sizes.program_sizes(kept, b.model_objects)
    test_inputs = sum(size for name, size, _, _ in kept if name == "minitiny_test_inputs")
    result.flash = dict(used=linked["flash_used"], budget=b.flash_budget, code=mdl["code"],
                        weights=mdl["weights"], model_data=mdl["data"],
                        runtime=linked["flash_used"] - mdl["flash"], test_inputs=test_inputs)
    if len(b.model_objects) > 1:      # a program of several files: each one's share
        result.source_sizes = {o.with_suffix(".c").name: sizes.program_sizes(kept, [o])
                               for o in b.model_objects}
    frames, calls = sizes.call_graph(b.dir)
    bound, path, exact = sizes.worst_stack(f"{files.name}_invoke", frames, calls)
    result.ram = dict(static=linked["ram_used"], budget=b.ram_budget, arena=mdl["ram"],
                      runtime=linked["ram_used"] - mdl["ram"], stack_reserved=b.stack_reserved,
                      stack_used=r.stack_used, stack_free=r.stack_free,
                      stack_bound=bound, stack_path=path, stack_bound_exact=exact)
    result.layer_sizes, result.flash["unattributed"] = sizes.per_layer(
        mdl["symbols"], [layer_c_name(layer) for layer in files.layers])
    if r.stack_used is not None and r.stack_used > b.stack_reserved and result.status == "ok":
        result.status = "error"
        result.message = (f"the model used {r.stack_used:,} B of stack, more than the "
                          f"{b.stack_reserved:,} B reserved: raise stack=")
