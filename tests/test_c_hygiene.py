"""The generated C: warning-free everywhere, clean under sanitizers and cppcheck, bounded stack.

For a handful of models (tests/test_equivalence.py's drawer: every op kind, residual and
diamond graphs, single rounding, and the float32 C of an unquantized model), for every
kernel variant codegen offers:

* compiled with -std=c99 -Wall -Wextra -Werror -pedantic plus the extra warnings a strict
  firmware build may add, by gcc (-O2, -O3) and clang (-O2) and arm-none-eabi-gcc -Os for
  Cortex-M0+, M4 (hard float), M33 and M55: zero warnings; for the Cortex-M4 by both
  arm-none-eabi-gcc and clang --target=arm-none-eabi (Arm's own compilers are clang-based)
  at -O0, -Os, -O2 and -O3, every variant (a compile that was clean once is remembered by
  the hash of its compiler, flags and sources, so a re-run compiles only what changed); and
  by clang --target=arm-none-eabi -O2 for the M33 and M55 (the DSP kernels compiled in);
* checked by cppcheck --enable=warning,style,performance,portability --std=c99;
* built under -fsanitize=address,undefined for models drawn by hypothesis and run on inputs
  with -128 and 127 in every sample: no report, and the same bits as the NumPy reference;
* the worst-case stack of NAME_invoke on a Cortex-M4 (gcc -fstack-usage and its call
  graph): static frames only, no recursion, and at most STACK_LIMIT bytes.

The counts (compilations, warnings, cppcheck findings, sanitizer runs, deepest stack) are
printed at the end of the module.
"""
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import int8_oracle as O
from test_data_movement import movement_chain
import test_equivalence as E
from minitiny import codegen
from minitiny.codegen import generator
from minitiny.quant.graph import QModel, QOp
from minitiny.testing.models import multi_io_model
import figures  # noqa: E402  (tests/figures.py)

GCC, CLANG = shutil.which("gcc"), shutil.which("clang")
ARM_GCC, CPPCHECK = shutil.which("arm-none-eabi-gcc"), shutil.which("cppcheck")
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
EXTRA = ["-Wshadow", "-Wconversion", "-Wsign-conversion", "-Wcast-qual", "-Wcast-align",
         "-Wstrict-prototypes", "-Wmissing-prototypes", "-Wundef", "-Wdouble-promotion",
         "-Wpointer-arith", "-Wvla", "-Wredundant-decls", "-Wswitch-default", "-Wwrite-strings",
         "-Wformat=2", "-Wnull-dereference", "-Wunused"]
ARM_CPUS = {"cortex-m0plus": [], "cortex-m4": ["-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
            "cortex-m33": [], "cortex-m55": []}    # Armv6-M, v7E-M (+FPU), v8-M, v8.1-M
# clang for Arm beyond the M4 (test_every_variant_compiles_for_the_m4_at_every_level): the
# other cores with the DSP extension, where the DSP kernels are compiled in
CLANG_ARM_CPUS = ("cortex-m33", "cortex-m55")
STACK_LIMIT = 512       # bytes; the models here need ~100-200 (printed below)
CPPCHECK_ARGS = ["--enable=warning,style,performance,portability", "--std=c99", "--quiet",
                 "--template={file}:{line}: {severity} [{id}] {message}"]

FIGURES = {"compilations": 0, "warnings": 0, "cppcheck runs": 0, "cppcheck findings": {},
           "sanitizer runs": 0, "sanitizer outputs": 0, "max stack (bytes)": 0}


@pytest.fixture(scope="module", autouse=True)
def report_figures(request):
    yield
    f = FIGURES
    text = (f"\ngenerated C hygiene: {f['compilations']} compilations, {f['warnings']} warnings; "
            f"cppcheck: {f['cppcheck runs']} runs, findings {f['cppcheck findings'] or 0}; "
            f"sanitizers: {f['sanitizer runs']} models, {f['sanitizer outputs']} outputs, 0 reports; "
            f"worst stack of NAME_invoke on a Cortex-M4: {f['max stack (bytes)']} bytes")
    figures.show(request, text)


def single_rounding(model):
    ops = [QOp(op.kind, op.name, op.inputs, op.outputs, op.options) for op in model.ops]
    return QModel(model.name, model.tensors, ops, model.inputs, model.outputs, single_rounding=True)


def float_model():
    import minitiny as mt
    L = mt.layers
    mt.random.seed(0)
    x = mt.Input((6, 5, 2))
    a = L.Conv2D(3, 3, padding="same", activation="relu")(x)
    b = L.DepthwiseConv2D(2, depth_multiplier=2, strides=2, padding="same", activation="relu6")(a)
    c = L.Add()([b, L.Conv2D(6, 1)(b)])
    d = L.MaxPooling2D(2, padding="same")(L.BatchNormalization()(c))
    e = L.Dense(4, activation="softmax")(L.Flatten()(L.AveragePooling2D((1, 2), strides=1)(d)))
    return mt.Model(x, e, name="float model")


def models():
    out = {label: E.build(*spec) for label, spec in E.M4_MODELS.items() if not label.startswith("random")}
    out["single rounding"] = single_rounding(out["every kind"])
    out["one input value"] = E.build(3, ["fully_connected"], spatial=False)
    # Draws of test_equivalence's strategy that once gave cppcheck findings: an activation
    # range entirely below zero (act_max < 0) in ADD and in DEPTHWISE_CONV_2D, whose chained
    # ternary clamp cppcheck 2.10 called "always true"; and a LOGISTIC whose input zero point
    # is -128, so no int8 input reaches the low saturation branch (the template omits it).
    out["add, act max < 0"] = E.build(2727303856, ["add", "depthwise_conv_2d"])
    out["depthwise, act max < 0"] = E.build(3415706595, ["add", "depthwise_conv_2d"])
    out["logistic, no low saturation"] = E.build(2805079345, ["logistic"])
    # Input scales so large that TFLM's input_range_radius is 0: every input saturates, the
    # kernel holds no fixed point and no condition the constants decide.
    from int8_oracle import elementwise_model
    out["logistic, every input saturates"] = elementwise_model("logistic", np.float32(8.0), 0)
    out["tanh, every input saturates"] = elementwise_model("tanh", np.float32(20.0), 127)
    # Fewer than 4 channels: the DSP max-pool uses none of its 4-channel helpers (issue 21)
    b = O.Builder(5, (4, 4, 1), "max pool, 1 channel")
    out["max pool, 1 channel"] = b.pool("max_pool_2d", (2, 2), (2, 2), "valid").model()
    # Several inputs and outputs: one pointer each in NAME_invoke, macros per tensor
    out["2 inputs, 3 outputs"] = multi_io_model(21, 2, 3)
    out["3 inputs, 1 output"] = multi_io_model(22, 3, 1)
    out["1 input, 2 outputs"] = multi_io_model(23, 1, 2)
    # Every data-movement kind in one chain (tests/test_data_movement.py)
    out["data movement"] = movement_chain(0)
    # Issue 19's spatial ops and reductions (the tuned variants' transpose_conv among them)
    out["spatial ops"] = O.spatial_model()
    # The tuned variants' table kernels (codegen/lut.py): one table, tables per channel, and
    # a table shared by two layers
    b = O.Builder(6, (16, 16, 3), "tables", np.float32(0.05), 4)
    b.binary("add", other_shape=(3,), constant=True).hard_swish().logistic().binary(
        "mul", other_shape=(), constant=True, constant_first=True)
    out["tables"] = b.model()
    # The builtins TFLM runs in int8 beyond issue 19's list (abs, rsqrt, l2_normalization, ...)
    out["more ops"] = O.more_ops_model()
    # An LSTM: its state in the arena across invokes, int16 gates and cell state
    out["lstm"] = O.lstm_model(3, 5, 3, 6, cell_clip=1.0)
    return out


MODELS = models()
VARIANTS = sorted(generator.KERNEL_VARIANTS)
# a variant without the scalar fallback needs the Arm DSP extension (Cortex-M4 and up)
NEEDS_DSP = generator.DSP_VARIANTS - generator.BOTH_KERNELS
DSP_CPUS = {"cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """{(label, variant): Generated} for every model and variant, plus the float C."""
    out = {}
    root = tmp_path_factory.mktemp("hygiene")
    for label, model in MODELS.items():
        for variant in VARIANTS:
            out[label, variant] = codegen.generate(model, root / f"{len(out)}", name="m", variant=variant)
    out["float model", "float"] = codegen.generate(float_model(), root / "float", name="f")
    return out


def compile_all(jobs):
    """Compile every (cc, flags, source) job, two at a time per core; assert no output."""
    def one(job):
        cc, flags, source = job
        return job, subprocess.run([cc] + flags + ["-c", str(source), "-o", os.devnull],
                                   capture_output=True, text=True)
    failures = []
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:
        for (cc, flags, source), result in pool.map(one, jobs):
            FIGURES["compilations"] += 1
            FIGURES["warnings"] += len(re.findall(r"\bwarning\b|\berror\b", result.stderr))
            if result.returncode != 0 or result.stderr.strip():
                failures.append(f"$ {cc} {' '.join(flags)} {source}\n{result.stderr}")
    assert not failures, "\n".join(failures[:3])


def has_math_h(cc, flags):
    """arm-none-eabi-gcc without newlib has no <math.h> (the float C's expf, tanhf)."""
    result = subprocess.run([cc] + flags + ["-x", "c", "-fsyntax-only", "-"], input="#include <math.h>\n",
                            capture_output=True, text=True)
    return result.returncode == 0


@pytest.mark.skipif(GCC is None and CLANG is None, reason="neither gcc nor clang is installed")
def test_host_compilers_give_no_warning(generated):
    jobs = []
    for cc, opts in ((GCC, ["-O2", "-O3"]), (CLANG, ["-O2"])):
        if cc is None:
            continue
        for (label, variant), g in generated.items():
            if variant in NEEDS_DSP:
                continue
            for opt in opts:
                jobs.append((cc, STRICT + EXTRA + [opt], g.source))
            jobs.append((cc, STRICT + EXTRA + ["-O2", "-DMINITINY_FLOAT_HELPERS"], g.source))
    compile_all(jobs)


@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc is not installed")
def test_arm_none_eabi_gcc_gives_no_warning(generated):
    jobs = []
    for cpu, extra in ARM_CPUS.items():
        flags = STRICT + EXTRA + [f"-mcpu={cpu}", "-mthumb", "-Os", "-ffreestanding"] + extra
        for (label, variant), g in generated.items():
            if variant in NEEDS_DSP and cpu not in DSP_CPUS:
                continue
            if variant == "float" and not has_math_h(ARM_GCC, flags):
                continue
            jobs.append((ARM_GCC, flags, g.source))
    compile_all(jobs)


M4_COMPILERS = {   # compile only (-c): no C library is needed, <arm_acle.h> comes with each
    "arm-none-eabi-gcc": [ARM_GCC, "-mcpu=cortex-m4"],
    "clang --target=arm-none-eabi": [CLANG, "--target=arm-none-eabi", "-mcpu=cortex-m4"]}
M4_LEVELS = ("-O0", "-Os", "-O2", "-O3")
# (model, variant, compiler) known to fail, each once reproduced: the test checks they still
# fail, so a fix is noticed and its entry removed. None left: clang's -Wunused-function on
# DSP helpers a model did not use (issue 21 item 9: the max-pool's 4-channel helpers with 1
# channel, write_s16x2 in the strided CNN) is fixed, only what a model calls is emitted.
KNOWN_M4_FAILURES = set()


def _clean_before(job):
    """The cache key of a compile job if an identical one was clean before (else None)."""
    cc, flags, source = job
    key = hashlib.sha256(subprocess.run([cc, "--version"], capture_output=True).stdout)
    for part in flags + [os.path.basename(source)]:
        key.update(part.encode() + b"\0")
    for f in sorted(os.listdir(os.path.dirname(source))):
        if f.endswith((".c", ".h")):
            with open(os.path.join(os.path.dirname(source), f), "rb") as fh:
                key.update(f.encode() + b"\0" + fh.read())
    path = os.path.join(codegen.loader.cache_dir(), "hygiene", key.hexdigest()[:32])
    return path, os.path.exists(path)


@pytest.mark.skipif(ARM_GCC is None or CLANG is None, reason="arm-none-eabi-gcc or clang is missing")
def test_every_variant_compiles_for_the_m4_at_every_level(generated):
    jobs, known = [], {}
    for name, cc in M4_COMPILERS.items():
        for level in M4_LEVELS:
            flags = cc[1:] + ["-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-ffreestanding",
                              level] + STRICT + EXTRA
            for (label, variant), g in generated.items():
                if variant == "float" and not has_math_h(cc[0], flags):
                    continue
                job = (cc[0], flags, str(g.source))
                if (label, variant, name) in KNOWN_M4_FAILURES:
                    known[cc[0], tuple(flags), str(g.source)] = (label, variant, name)
                else:
                    jobs.append(job)
    todo = []
    for job in jobs:
        path, clean = _clean_before(job)
        if clean:
            FIGURES["compilations"] += 1                   # clean before, and nothing changed
        else:
            todo.append((job, path))
    compile_all([job for job, _ in todo])                  # asserts: no warning, no error
    for _, path in todo:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").close()
    for (cc, flags, source), what in known.items():
        result = subprocess.run([cc, *flags, "-c", source, "-o", os.devnull], capture_output=True)
        assert result.returncode != 0, f"{what} compiles clean now: remove it from KNOWN_M4_FAILURES"


@pytest.mark.skipif(CLANG is None, reason="clang is not installed")
def test_clang_for_arm_gives_no_warning(generated):
    """Every variant, DSP kernels compiled in: clang --target=arm-none-eabi, compile only."""
    jobs = []
    for cpu in CLANG_ARM_CPUS:
        flags = STRICT + EXTRA + ["--target=arm-none-eabi", f"-mcpu={cpu}", "-mthumb", "-O2", "-ffreestanding"]
        jobs += [(CLANG, flags, g.source) for (label, variant), g in generated.items() if variant != "float"]
    compile_all(jobs)


# ---- cppcheck ---------------------------------------------------------------------------------
_CPPCHECKED = {}


def cppcheck(g):
    """cppcheck's findings on one generated model (run once per model)."""
    if g.source in _CPPCHECKED:
        return _CPPCHECKED[g.source]
    result = subprocess.run([CPPCHECK] + CPPCHECK_ARGS + [str(g.source), str(g.header)],
                            capture_output=True, text=True)
    FIGURES["cppcheck runs"] += 1
    findings = [line for line in result.stderr.splitlines() if re.search(r"\[\w+\]", line)]
    for line in findings:
        key = re.search(r"\[(\w+)\]", line).group(1)
        FIGURES["cppcheck findings"][key] = FIGURES["cppcheck findings"].get(key, 0) + 1
    _CPPCHECKED[g.source] = findings
    return findings


# Findings tolerated by the test below: none left. The templates emit a window clamp, a
# modulo or an activation clamp only when the layer's constants need it
# (codegen/generator.py window_edges), requantize_fast takes the sign with an unsigned shift,
# and conv_2d_dsp's im2col no longer assigns a pointer after its last use.
CONSTANT_CONDITIONS = set()
DSP_FINDINGS = set()


def cppchecked(generated):
    """The models cppcheck reads: every variant but those that only combine others ('auto'
    holds the scalar and the DSP kernels, each checked on its own), checked in parallel."""
    chosen = {k: g for k, g in generated.items() if k[1] not in getattr(generator, "BOTH_KERNELS", ())}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(cppcheck, chosen.values()))
    return chosen


@pytest.mark.skipif(CPPCHECK is None, reason="cppcheck is not installed")
def test_cppcheck_finds_nothing_beyond_constant_conditions(generated):
    for (label, variant), g in cppchecked(generated).items():
        known = CONSTANT_CONDITIONS | (DSP_FINDINGS if variant in generator.DSP_VARIANTS else set())
        other = [f for f in cppcheck(g) if re.search(r"\[(\w+)\]", f).group(1) not in known]
        assert not other, f"{label} ({variant}):\n" + "\n".join(other)


@pytest.mark.skipif(CPPCHECK is None, reason="cppcheck is not installed")
def test_cppcheck_is_clean(generated):
    dirty = {label: cppcheck(g) for (label, _), g in cppchecked(generated).items()}
    assert not any(dirty.values()), dirty


# ---- sanitizers --------------------------------------------------------------------------------
@pytest.mark.skipif(GCC is None, reason="gcc is not installed")
@settings(max_examples=12)          # each example builds a sanitized executable (~0.8 s)
@given(E.models(), st.integers(0, 2 ** 16), st.sampled_from(sorted(set(VARIANTS) - NEEDS_DSP)))
def test_random_models_run_clean_under_asan_and_ubsan(model, input_seed, variant):
    x = E.inputs(model, input_seed)
    with tempfile.TemporaryDirectory() as d:
        codegen.generate(model, d, name="m", variant=variant)
        got = codegen.load(d, sanitize=True)(x)          # raises SanitizerError on a report
    np.testing.assert_array_equal(got, model.predict_int8(x))
    FIGURES["sanitizer runs"] += 1
    FIGURES["sanitizer outputs"] += got.size


@pytest.mark.skipif(GCC is None, reason="gcc is not installed")
@pytest.mark.parametrize("label", list(MODELS))
def test_fixed_models_run_clean_under_asan_and_ubsan(generated, label):
    model = MODELS[label]
    xs = O.random_inputs(model, 1, 32)
    x = xs if len(xs) > 1 else xs[0]
    for variant in sorted(set(VARIANTS) - NEEDS_DSP):
        got = codegen.load(generated[label, variant].dir, sanitize=True)(x)
        want = model.predict_int8(x)
        for g, w in zip(*((got, want) if len(model.outputs) > 1 else ([got], [want]))):
            np.testing.assert_array_equal(g, w)
            FIGURES["sanitizer outputs"] += g.size
        FIGURES["sanitizer runs"] += 1


# ---- stack -------------------------------------------------------------------------------------
@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc is not installed")
def test_stack_of_invoke_is_static_and_bounded(generated, tmp_path):
    from minitiny.firmware import sizes
    for (label, variant), g in generated.items():
        if variant == "float" and not has_math_h(ARM_GCC, ["-mcpu=cortex-m4", "-mthumb"]):
            continue
        work = tmp_path / f"{label}-{variant}".replace(" ", "_")
        work.mkdir()
        shutil.copy(g.source, work)
        shutil.copy(g.header, work)
        subprocess.run([ARM_GCC, "-mcpu=cortex-m4", "-mthumb", "-O2", "-std=c99", "-ffreestanding",
                        "-fstack-usage", "-fcallgraph-info=su", "-c", os.path.basename(g.source)],
                       cwd=work, check=True, capture_output=True)
        frames, calls = sizes.call_graph(work)
        entry = g.manifest.get("invoke") or f"{g.name}_invoke"
        assert entry in frames, sorted(frames)
        total, path, exact = sizes.worst_stack(entry, frames, calls)
        assert exact, f"{label} ({variant}): a dynamic frame or recursion on {path}"
        # 0 is a real figure: a leaf invoke that needs no saved register (a model of one
        # saturating logistic); `entry in frames` above shows it was measured
        assert 0 <= total <= STACK_LIMIT, f"{label} ({variant}): {total} bytes along {path}"
        FIGURES["max stack (bytes)"] = max(FIGURES["max stack (bytes)"], total)
