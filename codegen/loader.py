"""Run generated C on the host: `load(dir)` compiles NAME_model.c and returns a callable.

    fn = minitiny.codegen.load("build/sine")
    y = fn(x_int8)            # (N, *input_shape) int8 -> (N, *output_shape) int8
    y0, y1 = fn([x0, x1])     # several inputs and outputs: lists, in the model's order

How. The model is compiled as a shared library with the same strict flags a firmware build
uses (-std=c99 -Wall -Wextra -Werror -pedantic) and called through cffi's ABI mode
(`ffi.dlopen`): no Python extension is built, so any C compiler works (gcc, clang). The
library goes into a cache directory keyed by the SHA-256 of the sources, the flags and the
compiler's version ($MINITINY_CACHE, default ~/.cache/minitiny/cffi), so identical sources
are compiled once, across test runs too.

`load(dir, sanitize=True)` builds a standalone executable instead, under
-fsanitize=address,undefined, with a small C main (templates/host_main.c.j2) that reads the
inputs from a file and writes the outputs to another. (AddressSanitizer inside a cffi module
loaded by Python would need LD_PRELOAD; a separate process is simpler.) Any out-of-bounds
access or undefined behaviour aborts it, and the error carries the sanitizer's report.

Before compiling, `load` checks that the .c, the .h and the manifest are of one model: each
names the model hash (`Model hash: sha256:...` at the top of the C files, "model_hash" in the
manifest), and a folder whose files disagree (torn by an interrupted write of an older
minitiny, or mixed by hand) is refused with MixedModelError naming each file's hash.

The callable is not thread-safe: the generated model keeps its activations in one static arena.
"""
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np

from minitiny.files import recover

from .generator import model_hash
from .templating import environment

STRICT_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SHARED_FLAGS = ["-O2", "-fPIC", "-shared", "-DMINITINY_FLOAT_HELPERS"]
SANITIZE_FLAGS = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                  "-fno-sanitize-recover=all", "-DMINITINY_FLOAT_HELPERS"]


class CompileError(RuntimeError):
    """The C compiler refused the generated code: carries the command and its messages."""


class SanitizerError(RuntimeError):
    """The sanitized build found an error at run time: carries the sanitizer's report."""


class MixedModelError(ValueError):
    """The files of a generated folder are of different models: names each file's hash."""


HASH_LINE = re.compile(rb"Model hash: sha256:([0-9a-f]{64})")   # model.h.j2, model.c.j2


def check_one_model(model_dir, manifest, sources, qmodel_hash=None):
    """Refuse a folder whose files are of different models. sources: {file name: bytes} of
    the .c and the .h; qmodel_hash: the model hash of the NAME.qmodel.npz beside them, if
    read. Files without a hash (float C, a program's own C) are checked when any has one."""
    name = manifest.get("name", "NAME")
    hashes = {f"{name}_manifest.json": manifest.get("model_hash")}
    for fname, data in sources.items():
        found = HASH_LINE.search(data)
        hashes[fname] = found.group(1).decode() if found else None
    if qmodel_hash is not None:
        hashes[f"{name}.qmodel.npz"] = qmodel_hash
    if len(set(hashes.values())) > 1:
        listed = ", ".join(f"{f} {'sha256:' + h[:16] if h else 'no model hash'}"
                           for f, h in hashes.items())
        raise MixedModelError(f"{model_dir}: its files are of different models ({listed}); "
                              f"generate the folder again")


def cache_dir():
    return os.environ.get("MINITINY_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "minitiny", "cffi")


_VERSIONS = {}


def compiler_version(cc):
    """The first line of `cc --version` (part of the cache key)."""
    if cc not in _VERSIONS:
        try:
            out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            raise CompileError(f"C compiler {cc!r} cannot be run: {e}") from None
        _VERSIONS[cc] = out.stdout.splitlines()[0] if out.stdout else cc
    return _VERSIONS[cc]


def default_compiler():
    return os.environ.get("CC") or shutil.which("gcc") or shutil.which("clang") or "cc"


def read_manifest(model_dir, name=None):
    """The manifest of the model in `model_dir` (the only one, or the one called `name`).
    A folder that a killed generate left moved aside (minitiny/files.py) is put back first."""
    model_dir = os.fspath(model_dir)
    if not os.path.isdir(model_dir):
        recover(model_dir)
    if name is not None:
        paths = [os.path.join(model_dir, f"{name}_manifest.json")]
        if not os.path.exists(paths[0]):
            raise FileNotFoundError(f"{model_dir}: no model {name!r} ({name}_manifest.json is missing)")
    else:
        paths = sorted(glob.glob(os.path.join(glob.escape(model_dir), "*_manifest.json")))
        if not paths:
            raise FileNotFoundError(f"{model_dir}: no generated model here (no *_manifest.json); "
                                    f"run minitiny.codegen.generate first")
        if len(paths) > 1:
            names = [os.path.basename(p)[:-len("_manifest.json")] for p in paths]
            raise ValueError(f"{model_dir} holds several models {names}: pass name=...")
    with open(paths[0], encoding="utf-8") as f:
        try:
            manifest = json.load(f)
        except ValueError as e:
            raise ValueError(f"{paths[0]}: not a readable manifest ({e})") from None
    return _check_manifest(manifest, paths[0])


def _check_manifest(manifest, where):
    """The files a manifest names are plain file names inside its own folder: a path in a
    model file is never followed (a forged manifest could otherwise make load() read and
    compile any file on the machine)."""
    if not isinstance(manifest, dict):
        raise ValueError(f"{where}: a manifest is a JSON object, got {type(manifest).__name__}")
    for key in ("name", "header", "source"):
        value = manifest.get(key)
        if not isinstance(value, str) or not value:
            raise ValueError(f"{where}: '{key}' must be a non-empty string, got {value!r}")
    for key in ("header", "source"):
        value = manifest[key]
        if value != os.path.basename(value) or value in (".", "..") or "\\" in value:
            raise ValueError(f"{where}: '{key}' must be a file name in the model's folder, "
                             f"got the path {value!r}")
    return manifest


def check_folder(model_dir, qmodel=None, name=None):
    """check_one_model on a generated folder as it is on disk, with the hash of `qmodel`
    (the NAME.qmodel.npz a caller loaded from it) if given; -> the manifest."""
    manifest = read_manifest(model_dir, name)
    sources = {}
    for fname in (manifest["header"], manifest["source"]):
        with open(os.path.join(model_dir, fname), "rb") as f:
            sources[fname] = f.read()
    check_one_model(model_dir, manifest, sources, None if qmodel is None else model_hash(qmodel))
    return manifest


def build(model_dir, manifest, cc, flags, kind, extra_sources=None):
    """Compile (or find in the cache) a shared library (kind 'shared') or an executable
    ('exe'); return its path. manifest names the main files ('name', 'header', 'source' in
    model_dir); extra_sources {file name: bytes} are compiled beside them."""
    sources = {manifest["header"]: None, manifest["source"]: None}
    for fname in sources:
        with open(os.path.join(model_dir, fname), "rb") as f:
            sources[fname] = f.read()
    check_one_model(model_dir, manifest, sources)
    sources.update(extra_sources or {})
    key = hashlib.sha256()
    for part in [kind, cc, compiler_version(cc)] + flags:
        key.update(part.encode() + b"\0")
    for fname in sorted(sources):
        key.update(fname.encode() + b"\0" + sources[fname] + b"\0")
    digest = key.hexdigest()[:32]
    out_dir = os.path.join(cache_dir(), digest)
    target = os.path.join(out_dir, manifest["name"] + (".so" if kind == "shared" else ".exe"))
    if os.path.exists(target):
        return target
    os.makedirs(out_dir, exist_ok=True)
    build = tempfile.mkdtemp(prefix=".build-", dir=out_dir)
    try:
        for fname, data in sources.items():
            with open(os.path.join(build, fname), "wb") as f:
                f.write(data)
        c_files = [os.path.join(build, f) for f in sorted(sources) if f.endswith(".c")]
        tmp_target = os.path.join(build, "out")
        cmd = [cc] + flags + ["-I", build, "-o", tmp_target] + c_files
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise CompileError(f"compiling {manifest['source']} failed:\n$ {' '.join(cmd)}\n"
                               f"{result.stderr.strip()}")
        os.replace(tmp_target, target)          # atomic: parallel builders cannot clash
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return target


def manifest_io(manifest):
    """(inputs, outputs) of a generated model, each a list of {"arg", "macro", "shape", "size",
    ...} in the model's order, as the C names them (generator.io_tensors). A manifest of one
    input and one output without those lists (the float C) gives its input_shape / output_shape."""
    ends = []
    for role in ("input", "output"):
        listed = manifest.get(role + "s")
        if listed is None:
            shape = [int(d) for d in manifest[role + "_shape"]]
            listed = [{"arg": role, "macro": role.upper(), "shape": shape,
                       "size": int(np.prod(shape, dtype=np.int64))}]
        ends.append([dict(t, shape=tuple(t["shape"])) for t in listed])
    return ends


def _as_batch(x, shape, what, dtype=np.int8):
    """(N, *shape) or (*shape) -> (contiguous (N, size) of dtype, single?); int8 (int16 for a
    16x8 model) is checked."""
    x = np.asarray(x)
    single = x.shape == tuple(shape)
    if single:
        x = x[None]
    if x.shape[1:] != tuple(shape):
        raise ValueError(f"{what}: input shape {x.shape} does not fit (N, {', '.join(map(str, shape))})")
    if dtype in (np.int8, np.int16) and x.dtype != dtype:
        info = np.iinfo(dtype)
        if not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"{what}: expected {info.dtype} input, got {x.dtype} (quantize it first)")
        if x.size and (x.min() < info.min or x.max() > info.max):
            raise ValueError(f"{what}: {info.dtype} input out of range [{x.min()}, {x.max()}]")
    return np.ascontiguousarray(x, dtype=dtype).reshape(len(x), -1), single


def _as_batches(x, inputs, name, dtype=np.int8):
    """The model's inputs `x` (one array, or a list in the model's order for several) ->
    ([contiguous (N, size)] per input, single sample?)."""
    if len(inputs) == 1:
        xs = [x]
    elif isinstance(x, (list, tuple)) and len(x) == len(inputs):
        xs = list(x)
    else:
        raise ValueError(f"{name}: the model has {len(inputs)} inputs "
                         f"({', '.join(t['arg'] for t in inputs)}): pass a list of {len(inputs)} arrays")
    batches = [_as_batch(a, t["shape"], f"{name} {t['arg']}" if len(inputs) > 1 else name, dtype)
               for a, t in zip(xs, inputs)]
    if len({len(b) for b, _ in batches}) > 1:
        raise ValueError(f"{name}: the inputs hold different numbers of samples: "
                         + ", ".join(f"{t['arg']} {len(b)}" for t, (b, _) in zip(inputs, batches)))
    return [b for b, _ in batches], all(single for _, single in batches)


def _results(outs, outputs, single):
    """The flat (N, size) outputs shaped (N, *shape), or one sample; a list for several."""
    shaped = [o.reshape((len(o),) + t["shape"]) for o, t in zip(outs, outputs)]
    shaped = [o[0] for o in shaped] if single else shaped
    return shaped if len(shaped) > 1 else shaped[0]


class CModel:
    """A generated model compiled for the host: call it on int8 inputs (a list for a model
    with several; a list of outputs back for a model with several, as QModel.predict_int8).
    A model with state (an LSTM's) runs each sample after NAME_reset(), as predict_int8, or
    with stream=True one after another, the state kept (QModel.stream_int8); `reset()`
    calls NAME_reset()."""

    def __init__(self, path, manifest):
        import cffi
        self.path, self.manifest = path, manifest
        self.name = manifest["name"]
        self.inputs, self.outputs = manifest_io(manifest)
        self.input_shape, self.output_shape = self.inputs[0]["shape"], self.outputs[0]["shape"]
        self.ffi = cffi.FFI()
        p = self.name
        self.dtype = np.dtype(manifest.get("dtype", "int8"))
        self.ctype = "float" if self.dtype == np.float32 else f"{self.dtype.name}_t"
        if self.dtype == np.float32:            # the float C of an unquantized model
            self.ffi.cdef(f"int {p}_invoke(const float *input, float *output);")
        else:                                   # int8_t, or int16_t for a 16x8 model
            c = self.ctype
            params = [f"const {c} *{t['arg']}" for t in self.inputs] + [f"{c} *{t['arg']}" for t in self.outputs]
            self.ffi.cdef(f"int {p}_invoke({', '.join(params)});\n"
                          + "".join(f"void {p}_quantize_{t['arg']}(const float *input, {c} *output);\n"
                                    for t in self.inputs)
                          + "".join(f"void {p}_dequantize_{t['arg']}(const {c} *input, float *output);\n"
                                    for t in self.outputs)
                          + (f"void {manifest['reset']}(void);\n" if "reset" in manifest else ""))
        self.lib = self.ffi.dlopen(path)
        self.invoke = getattr(self.lib, f"{p}_invoke")
        self.reset = getattr(self.lib, manifest["reset"]) if "reset" in manifest else (lambda: None)

    def __call__(self, x, stream=False):
        batches, single = _as_batches(x, self.inputs, self.name, self.dtype)
        n = len(batches[0])
        outs = [np.empty((n, t["size"]), dtype=self.dtype) for t in self.outputs]
        ctype = self.ctype
        pins = [self.ffi.cast(f"const {ctype} *", self.ffi.from_buffer(b)) for b in batches]
        pouts = [self.ffi.cast(f"{ctype} *", self.ffi.from_buffer(o)) for o in outs]
        in_sizes = [b.shape[1] for b in batches]
        out_sizes = [t["size"] for t in self.outputs]
        invoke = self.invoke
        for i in range(n):
            if not stream:
                self.reset()
            status = invoke(*[p + i * size for p, size in zip(pins, in_sizes)],
                            *[p + i * size for p, size in zip(pouts, out_sizes)])
            if status != 0:
                raise RuntimeError(f"{self.name}_invoke returned {status}")
        return _results(outs, self.outputs, single)

    def _convert(self, values, ends, fn, in_type, out_type, what):
        """Run the C helper NAME_<fn>_<arg> of each tensor over its samples."""
        values = [values] if len(ends) == 1 else list(values)
        if len(values) != len(ends):
            raise ValueError(f"{self.name}: {what} takes a list of {len(ends)} arrays")
        results = []
        for a, t in zip(values, ends):
            a = np.ascontiguousarray(a, dtype=in_type).reshape(-1, t["size"])
            out = np.empty(a.shape, dtype=out_type)
            c_fn = getattr(self.lib, f"{self.name}_{fn}_{t['arg']}")
            ctypes = ("float[]", f"{self.ctype}[]") if in_type == np.float32 else (f"{self.ctype}[]", "float[]")
            for i in range(len(a)):
                c_fn(self.ffi.from_buffer(ctypes[0], a[i]), self.ffi.from_buffer(ctypes[1], out[i]))
            results.append(out.reshape((-1,) + t["shape"]))
        return results if len(results) > 1 else results[0]

    def quantize_input(self, x):
        """C's NAME_quantize_input (each input's, for several) on float32 inputs (N, *shape)."""
        return self._convert(x, self.inputs, "quantize", np.float32, self.dtype, "quantize_input")

    def dequantize_output(self, q):
        """C's NAME_dequantize_output (each output's, for several) on int8 outputs (N, *shape)."""
        return self._convert(q, self.outputs, "dequantize", self.dtype, np.float32, "dequantize_output")

    def __repr__(self):
        shapes = lambda ends: ", ".join(str(t["shape"]) for t in ends)
        return f"CModel({self.name!r}, {shapes(self.inputs)} -> {shapes(self.outputs)})"


class SanitizedModel:
    """The same model built as an executable under AddressSanitizer + UBSan."""

    def __init__(self, path, manifest):
        self.path, self.manifest, self.name = path, manifest, manifest["name"]
        self.dtype = np.dtype(manifest.get("dtype", "int8"))       # int16 for a 16x8 model
        self.inputs, self.outputs = manifest_io(manifest)
        self.input_shape, self.output_shape = self.inputs[0]["shape"], self.outputs[0]["shape"]

    def __call__(self, x, stream=False):
        batches, single = _as_batches(x, self.inputs, self.name, self.dtype)
        n = len(batches[0])
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = os.path.join(tmp, "inputs.bin"), os.path.join(tmp, "outputs.bin")
            np.concatenate(batches, axis=1).tofile(src)        # per sample: input0, input1, ...
            env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0",
                       UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
            result = subprocess.run([self.path, src, dst] + (["stream"] if stream else []),
                                    capture_output=True, text=True, env=env)
            if result.returncode != 0 or "runtime error" in result.stderr:
                raise SanitizerError(f"{self.name}: the sanitized build failed (exit "
                                     f"{result.returncode}):\n{result.stderr.strip()}")
            out = np.fromfile(dst, dtype=self.dtype).reshape(n, -1)
        ends = np.cumsum([t["size"] for t in self.outputs])[:-1]
        return _results(np.split(out, ends, axis=1), self.outputs, single)


def load(model_dir, name=None, compiler=None, flags=(), sanitize=False):
    """Compile the model generated in `model_dir` (cached) and return a callable.

    name:     which model, if the directory holds several
    compiler: the C compiler (default: $CC, else gcc, else clang)
    flags:    extra compiler flags (e.g. ["-O3"]); they are part of the cache key
    sanitize: build an executable under -fsanitize=address,undefined and run it per call
    """
    model_dir = os.fspath(model_dir)
    manifest = read_manifest(model_dir, name)
    cc = compiler or default_compiler()
    if sanitize and manifest.get("dtype") == "float32":
        raise ValueError(f"{model_dir}: sanitize=True runs int8 models; this one is float32")
    if sanitize:
        inputs, outputs = manifest_io(manifest)
        main = environment().get_template("host_main.c.j2").render(
            prefix=manifest["name"], PREFIX=manifest["name"].upper(), header=manifest["header"],
            inputs=inputs, outputs=outputs, act_t=f"{manifest.get('dtype', 'int8')}_t",
            reset=manifest.get("reset"))
        path = build(model_dir, manifest, cc, STRICT_FLAGS + SANITIZE_FLAGS + list(flags), "exe",
                      {"host_main.c": main.encode()})
        return SanitizedModel(path, manifest)
    libs = ["-lm"] if manifest.get("libm") else []
    path = build(model_dir, manifest, cc, STRICT_FLAGS + SHARED_FLAGS + list(flags) + libs, "shared")
    return CModel(path, manifest)
