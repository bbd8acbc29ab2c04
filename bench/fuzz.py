"""Fuzz every parser of outside data for a bounded time; report inputs tried and crashes.

    python bench/fuzz.py                          # every target, 60 s each
    python bench/fuzz.py --seconds 600 --target tflite --save-crashes crashes/
    python bench/fuzz.py --seconds 3 --json figures.json       # what CI runs (tests/)

A target is one function that reads bytes from outside minitiny:

    keras_npz   minitiny.load_model              a float model (.npz: arrays + JSON config)
    qmodel_npz  QModel.load                      an int8 model (.npz: arrays + JSON config)
    tflite      minitiny.from_tflite             a .tflite flatbuffer
    idx         datasets.parse_idx               MNIST's IDX files
    ts          datasets.parse_ts                the time-series archive's .ts text
    wav         datasets.parse_wav               RIFF/WAVE PCM
    npy_data    cli.load_data('x.npy,y.npy')     the command line's --data arrays
    cli         cli.main(argv)                   the command line's arguments

Each target starts from a few valid inputs (its seed corpus) and mutates them: bit flips,
interesting bytes and integers (0, -1, 2^31 - 1, the file's length, ...) written over
lengths and offsets, deleted, duplicated and spliced ranges, truncation; for the .npz
formats also their structure (the JSON config's values replaced, keys dropped, arrays
reshaped, retyped, filled with NaN). An input that ends in an outcome not seen before (a
new exception type and message shape) joins the corpus: a cheap stand-in for coverage
feedback. Inputs are drawn from a seeded generator, so a run can be repeated exactly.

A crash is any exception other than the target's documented error (DatasetError,
ModelFileError, GraphError, TFLiteFormatError, ...; for the command line: an exit status
other than 0, 1 or 2, a traceback without --debug, or an internal error type such as
TypeError in the message), an input that takes longer than --timeout seconds, or memory
beyond --memory-mb (the fuzzer runs under that address-space limit, so a file that asks
for gigabytes shows as a MemoryError instead of taking the machine down). Crashes are
grouped by exception type and the innermost minitiny frame; --save-crashes writes one
reproducing input per group.
"""
import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import re
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))       # int8_oracle: QModel builders

INTERESTING_BYTES = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x20, 0x2C, 0x3A, 0x0A]
INTERESTING_INTS = [0, 1, 2, 3, 4, 7, 8, 16, 255, 256, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
                    0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x40000000, 1000000, 60000]


class Timeout(BaseException):
    """An input ran past --timeout (a BaseException so no handler under test swallows it)."""


# =======================================================================================
# Mutators
# =======================================================================================
def mutate_bytes(rng, data, corpus=()):
    """1 to 4 random byte-level edits of `data`."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        n = len(data)
        if op == 0 and n:                                      # flip a bit
            i = rng.randrange(n)
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:                                    # an interesting byte
            data[rng.randrange(n)] = rng.choice(INTERESTING_BYTES)
        elif op == 2 and n >= 4:                               # an interesting 32-bit int
            i = rng.randrange(n - 3)
            v = rng.choice(INTERESTING_INTS + [n, n - i, rng.randrange(1 << 32)])
            v = (v + rng.choice([0, 0, 1, -1])) & 0xFFFFFFFF
            data[i:i + 4] = v.to_bytes(4, rng.choice(["little", "big"]))
        elif op == 3 and n >= 2:                               # an interesting 16-bit int
            i = rng.randrange(n - 1)
            v = rng.choice([0, 1, 2, 8, 16, 0xFFFF, 0x8000, 0xFFFE, 3, 6])
            data[i:i + 2] = v.to_bytes(2, rng.choice(["little", "big"]))
        elif op == 4 and n:                                    # delete a range
            i = rng.randrange(n)
            del data[i:i + rng.randint(1, max(1, min(64, n - i)))]
        elif op == 5 and n:                                    # duplicate a range
            i = rng.randrange(n)
            chunk = data[i:i + rng.randint(1, 64)]
            j = rng.randrange(n + 1)
            data[j:j] = chunk
        elif op == 6:                                          # insert random bytes
            j = rng.randrange(n + 1)
            data[j:j] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 7 and n:                                    # truncate
            del data[rng.randrange(n):]
        elif op == 8 and corpus:                               # splice with another input
            other = rng.choice(corpus)
            if other:
                i, j = rng.randrange(n + 1), rng.randrange(len(other))
                data = data[:i] + bytearray(other[j:])
    return bytes(data)


TEXT_TOKENS = ["", "?", "nan", "inf", "-inf", "-1", "0", "1", "1e999", "-0", "true", "false",
               "True", "@data", "@classLabel", "@dimensions", "@seriesLength", "@univariate",
               "@equalLength", "@timeStamps", "@missing", ":", ",", "(1,2)", "\x00", "#",
               "9" * 400, "1,2,3", "a:b", "\u00e9", "\ufeff", "\r", " ", "::", ",,"]


def mutate_text(rng, data, corpus=()):
    """Line and token edits of a text file (then, sometimes, byte edits on top)."""
    lines = data.decode("utf-8", errors="replace").split("\n")
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(5)
        i = rng.randrange(len(lines))
        if op == 0:
            del lines[i]
            lines = lines or [""]
        elif op == 1:
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
        elif op == 2:                                          # replace a token
            tokens = re.split(r"([ ,:])", lines[i])
            j = rng.randrange(len(tokens))
            tokens[j] = rng.choice(TEXT_TOKENS)
            lines[i] = "".join(tokens)
        elif op == 3:                                          # insert a token
            pos = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:pos] + rng.choice(TEXT_TOKENS) + lines[i][pos:]
        else:
            lines.insert(i, rng.choice(TEXT_TOKENS) + " " + rng.choice(TEXT_TOKENS))
    out = "\n".join(lines).encode("utf-8", errors="surrogatepass")
    return mutate_bytes(rng, out) if rng.random() < 0.2 else out


def _json_paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _json_paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _json_paths(v, path + (i,))


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def _json_value(rng, node, old):
    """A replacement for `old`: another type, an edge number, another name from the file."""
    pool = [None, True, False, 0, 1, -1, 2, 3, 2 ** 31, -2 ** 31, 2 ** 63, 10 ** 9, 1e308,
            -1e-308, 0.5, float("nan"), float("inf"), "", "x", "../../etc/passwd", "a" * 300,
            "*/ int x; /*", "relu", "same", "valid", "softmax", "Dense", "conv_2d", [], {},
            [1], [0, 0], [2 ** 40, 2 ** 40], [[[[[]]]]], {"a": 1}, [-1, 3], [1, 1, 1, 1]]
    names = list(_strings(node))
    if names and rng.random() < 0.3:
        return rng.choice(names)
    if isinstance(old, bool):
        return not old
    if isinstance(old, int) and rng.random() < 0.5:
        return old + rng.choice([-1, 1, -old, old, 2 ** 20, -2 ** 31])
    if isinstance(old, list) and old and rng.random() < 0.5:
        return old[:-1] if rng.random() < 0.5 else old + [rng.choice(old)]
    return rng.choice(pool)


def mutate_json(rng, node):
    """Edit one to three places of a JSON tree (in place on a copy): replace a value,
    drop a key or an element, swap two list elements."""
    node = json.loads(json.dumps(node))
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _json_paths(node) if p]
        if not paths:
            return _json_value(rng, node, node)
        path = rng.choice(paths)
        parent = node
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        op = rng.randrange(6)
        if op == 0 and isinstance(parent, dict):
            del parent[key]
        elif op == 0 and isinstance(parent, list):
            del parent[key]
        elif op == 1 and isinstance(parent, list) and len(parent) > 1:
            j = rng.randrange(len(parent))
            parent[key], parent[j] = parent[j], parent[key]
        else:
            parent[key] = _json_value(rng, node, parent[key])
    return node


def _npz_bytes(arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _npz_arrays(data):
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def mutate_npz(rng, data, corpus=()):
    """A minitiny .npz (arrays + a uint8 JSON 'config'): edit the JSON or the arrays, or
    (one time in five, or when the input is no .npz any more) the zip's bytes."""
    if rng.random() >= 0.2:
        try:
            return _mutate_npz_structure(rng, data)
        except Exception:                   # noqa: BLE001  not (any more) an npz with JSON
            pass
    return mutate_bytes(rng, data, corpus)


def _mutate_npz_structure(rng, data):
    arrays = _npz_arrays(data)
    if "config" in arrays and rng.random() < 0.6:
        config = json.loads(bytes(arrays["config"]).decode("utf-8"))
        text = json.dumps(mutate_json(rng, config))
        arrays["config"] = np.frombuffer(text.encode(), dtype=np.uint8)
        return _npz_bytes(arrays)
    keys = [k for k in arrays if k != "config"] or list(arrays)
    key = rng.choice(keys)
    a = arrays[key]
    op = rng.randrange(8)
    if op == 0:
        del arrays[key]
    elif op == 1 and a.size:
        arrays[key] = a.reshape(-1)[: rng.randrange(a.size)]
    elif op == 2:
        arrays[key] = a.astype(rng.choice([np.float64, np.int64, np.uint8, np.bool_, np.float16,
                                           np.complex64, "U3", "S2"]))
    elif op == 3 and a.dtype.kind == "f":
        b = a.copy().reshape(-1)
        if b.size:
            b[rng.randrange(b.size)] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e38, -1.0])
        arrays[key] = b.reshape(a.shape)
    elif op == 4:
        arrays[key] = np.zeros(rng.choice([(), (0,), (1,), (2, 2), (1, 1, 1, 1, 1)]), a.dtype)
    elif op == 5 and a.size:
        b = a.copy().reshape(-1)
        info = np.iinfo(b.dtype) if b.dtype.kind in "iu" else None
        b[rng.randrange(b.size)] = rng.choice([info.min, info.max]) if info else -1
        arrays[key] = b.reshape(a.shape)
    elif op == 6:
        arrays[key + "_extra" if rng.random() < 0.5 else "config"] = a
    else:
        arrays[key] = a.T if a.ndim > 1 else a[None]
    return _npz_bytes(arrays)


# =======================================================================================
# Targets: seeds, a mutator, the call, the documented errors
# =======================================================================================
class Target:
    name = ""
    what = ""
    timeout = None          # seconds one input may take, if the target needs more than --timeout
    mutate = staticmethod(mutate_bytes)

    def seeds(self):
        raise NotImplementedError

    def allowed(self):
        """The exception types that count as a clean refusal."""
        raise NotImplementedError

    def run(self, data, work):
        raise NotImplementedError

    def judge(self, data, work):
        """-> (finding, outcome). finding: None when the input was read or cleanly refused,
        else (kind, message, where). outcome: a coarse label of what happened (the error
        type and its message with numbers and quoted parts blanked), for corpus feedback."""
        try:
            self.run(data, work)
        except self.allowed() as e:
            if not str(e).strip():
                return ("EmptyMessage", f"{type(e).__name__} with no message", _where(e)), ""
            return None, _label(e)
        except (Timeout, KeyboardInterrupt):
            raise
        except BaseException as e:          # noqa: BLE001 -- everything else is a finding
            first = str(e).splitlines()[0][:300] if str(e) else ""
            return (type(e).__name__, first, _where(e)), ""
        return None, "ok"


def _where(e):
    """The innermost frame inside minitiny (or the innermost frame) of an exception."""
    frames = traceback.extract_tb(e.__traceback__)
    ours = [f for f in frames if any(p in f.filename for p in (os.sep + "minitiny" + os.sep,
                                                                 os.sep + "codegen" + os.sep,
                                                                 os.sep + "firmware" + os.sep))]
    f = (ours or frames or [None])[-1]
    if f is None:
        return "?"
    parts = f.filename.split(os.sep)
    return f"{'/'.join(parts[-2:])}:{f.lineno} ({f.name})"


def _label(e):
    text = re.sub(r"'[^']*'|\"[^\"]*\"|\d+", "#", str(e))[:80]
    return f"{type(e).__name__}:{text}"


# ---- data set parsers --------------------------------------------------------------------
class IdxTarget(Target):
    name, what = "idx", "datasets.parse_idx (MNIST's IDX)"

    def seeds(self):
        out = []
        for code, dtype in ((0x08, ">u1"), (0x09, ">i1"), (0x0B, ">i2"), (0x0C, ">i4"),
                            (0x0D, ">f4"), (0x0E, ">f8")):
            for shape in ((3,), (2, 3), (2, 2, 2)):
                body = np.arange(int(np.prod(shape)), dtype=dtype).tobytes()
                out.append(bytes([0, 0, code, len(shape)])
                           + b"".join(d.to_bytes(4, "big") for d in shape) + body)
        return out

    def allowed(self):
        from minitiny.datasets import DatasetError
        return DatasetError

    def run(self, data, work):
        from minitiny.datasets import parse_idx
        parse_idx(data, where="fuzz.idx")


TS_SEEDS = [
    """# a comment
@problemName Tiny
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength true
@seriesLength 3
@classLabel true up down
@data
1.0,2.0,3.0:0.5,0.25,0:up
-1,-2,-3:4,5,6:down
""",
    """@problemName Uni
@univariate true
@equalLength false
@missing true
@classLabel false
@data
1,2,3,4
5,?,7
8
""",
    """@problemname lower
@timestamps false
@dimension 1
@classlabel true 0 1 2
@data
0.1,0.2:2
0.3,0.4:0
""",
]


class TsTarget(Target):
    name, what = "ts", "datasets.parse_ts (the time-series archive's .ts)"
    mutate = staticmethod(mutate_text)

    def seeds(self):
        return [s.encode() for s in TS_SEEDS]

    def allowed(self):
        from minitiny.datasets import DatasetError
        return DatasetError

    def run(self, data, work):
        from minitiny.datasets import parse_ts
        ts = parse_ts(data, where="fuzz.ts")
        if len({s.shape[1] for s in ts.series}) == 1 and len({s.shape[0] for s in ts.series}) == 1:
            ts.to_array("fuzz.ts")


def wav_bytes(samples, rate=8000, bits=16, channels=1, extensible=False, extra=b""):
    """A RIFF/WAVE PCM file (written here by hand from the format's definition)."""
    block = channels * bits // 8
    if extensible:
        fmt = (np.array([0xFFFE, channels], "<u2").tobytes() + np.array([rate, rate * block], "<u4").tobytes()
               + np.array([block, bits, 22, bits], "<u2").tobytes() + np.array([0], "<u4").tobytes()
               + np.array([1], "<u2").tobytes() + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71")
    else:
        fmt = (np.array([1, channels], "<u2").tobytes() + np.array([rate, rate * block], "<u4").tobytes()
               + np.array([block, bits], "<u2").tobytes())
    data = np.asarray(samples, "<i2" if bits == 16 else "u1").tobytes()
    chunks = b"fmt " + len(fmt).to_bytes(4, "little") + fmt + extra
    chunks += b"data" + len(data).to_bytes(4, "little") + data + (b"\x00" if len(data) % 2 else b"")
    return b"RIFF" + (4 + len(chunks)).to_bytes(4, "little") + b"WAVE" + chunks


class WavTarget(Target):
    name, what = "wav", "datasets.parse_wav (RIFF/WAVE PCM)"

    def seeds(self):
        return [wav_bytes([0, 1000, -1000, 32767, -32768]),
                wav_bytes([128, 0, 255], bits=8),
                wav_bytes([1, 2, 3, 4, 5, 6], channels=2),
                wav_bytes([7, 8, 9], bits=8, extra=b"LIST\x05\x00\x00\x00abcde\x00"),
                wav_bytes([1, -1, 2, -2], channels=2, extensible=True)]

    def allowed(self):
        from minitiny.datasets import DatasetError
        return DatasetError

    def run(self, data, work):
        from minitiny.datasets import parse_wav
        parse_wav(data, where="fuzz.wav")


# ---- model files -----------------------------------------------------------------------------
def _file(work, data, name):
    path = os.path.join(work, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


class KerasNpzTarget(Target):
    name, what = "keras_npz", "minitiny.load_model (float model .npz)"
    mutate = staticmethod(mutate_npz)

    def seeds(self):
        import minitiny as mt
        L = mt.layers
        mt.random.seed(0)
        models = [
            mt.Sequential([L.Dense(3, activation="relu", input_shape=(4,)), L.Dropout(0.2),
                           L.Dense(2, activation="softmax")]),
            mt.Sequential([L.Conv2D(2, 3, padding="same", activation="relu6", input_shape=(6, 5, 1)),
                           L.BatchNormalization(), L.DepthwiseConv2D(2, depth_multiplier=2),
                           L.MaxPooling2D(2), L.AveragePooling2D(1), L.Reshape((-1,)),
                           L.Activation("tanh"), L.ReLU(6.0), L.Dense(1)]),
        ]
        x = mt.Input((4, 4, 2))
        y = L.Conv2D(2, 1)(x)
        z = L.Add()([x, y])
        models.append(mt.Model(x, L.Dense(3)(L.Flatten()(z))))
        models[0].compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        models[1].compile(mt.optimizers.SGD(0.1, momentum=0.9), "mse")
        out = []
        with tempfile.TemporaryDirectory() as d:
            for i, m in enumerate(models):
                path = os.path.join(d, f"m{i}.npz")
                m.save(path)
                with open(path, "rb") as f:
                    out.append(f.read())
        return out

    def allowed(self):
        from minitiny.saving import ModelFileError
        return ModelFileError

    def run(self, data, work):
        import minitiny as mt
        mt.load_model(_file(work, data, "model.npz"))


def seed_qmodels():
    """A few int8 models covering every op kind (int8_oracle.Builder), and where users go:
    a dense layer of 1,000 units, a flatten of 10,000 values, scales of 1e-30 and 1e30."""
    import int8_oracle as O
    b = O.Builder(1, (6, 5, 2), "seed_cnn")
    b.conv(3, (3, 3), (2, 1), "same", "relu").depthwise(2, (2, 2), (1, 1), "valid", "relu6")
    b.pool("max_pool_2d", (2, 2), (1, 1), "same").pool("average_pool_2d", (2, 1), (1, 1), "valid")
    saved = b.cur
    b.relu6().add(saved).mean(keep_dims=True).flatten().dense(4, per_channel=True).softmax()
    cnn = b.model()
    b = O.Builder(2, (8,), "seed_mlp")
    b.dense(8, "relu", bias=False)
    saved = b.cur
    b.logistic().tanh().relu().add(saved).reshape((2, 4)).dense(3)
    mlp = b.model()
    b = O.Builder(3, (8,), "seed_wide", in_scale=1e-30, weight_scales=(1e5, 1e7))
    b.dense(1000, "relu", per_channel=True).dense(3)
    wide = b.model()
    b = O.Builder(4, (100, 100, 1), "seed_flat", in_scale=1e30, weight_scales=(1e-35, 1e-33))
    b.flatten().dense(2)
    return [cnn, mlp, wide, b.model()]


class QModelNpzTarget(Target):
    name, what = "qmodel_npz", "QModel.load (int8 model .npz)"
    mutate = staticmethod(mutate_npz)

    def seeds(self):
        out = []
        with tempfile.TemporaryDirectory() as d:
            for q in seed_qmodels():
                path = os.path.join(d, "q.npz")
                q.save(path)
                with open(path, "rb") as f:
                    out.append(f.read())
        return out

    def allowed(self):
        from minitiny.quant.graph import GraphError
        return GraphError

    def run(self, data, work):
        from minitiny.quant.graph import QModel
        QModel.load(_file(work, data, "model.qmodel.npz"))


class TfliteTarget(Target):
    name, what = "tflite", "minitiny.from_tflite (.tflite flatbuffer)"

    def seeds(self):
        from minitiny.quant.tflite_io import to_tflite
        return [to_tflite(q) for q in seed_qmodels()]

    def allowed(self):
        from minitiny.quant import tflite_read
        from minitiny.quant.graph import GraphError
        return (tflite_read.TFLiteFormatError, tflite_read.UnsupportedTFLiteError, GraphError)

    def run(self, data, work):
        from minitiny.quant import tflite_read
        tflite_read.from_tflite(data)


# ---- the command line ---------------------------------------------------------------------
class NpyDataTarget(Target):
    name, what = "npy_data", "cli.load_data('x.npy,y.npy') (--data arrays)"

    def seeds(self):
        out = []
        for arrays in ([np.zeros((4, 3), np.float32), np.arange(4)],
                       [np.arange(24, dtype=np.uint8).reshape(2, 3, 4), np.array([0, 1])]):
            pair = []
            for a in arrays:
                buf = io.BytesIO()
                np.save(buf, a)
                pair.append(buf.getvalue())
            out.append(len(pair[0]).to_bytes(4, "little") + pair[0] + pair[1])
        return out

    @staticmethod
    def mutate(rng, data, corpus=()):
        n = int.from_bytes(data[:4], "little") if len(data) >= 4 else 0
        x, y = data[4:4 + n], data[4 + n:]
        if rng.random() < 0.5:
            x = mutate_bytes(rng, x, corpus)
        else:
            y = mutate_bytes(rng, y, corpus)
        return len(x).to_bytes(4, "little") + x + y

    def allowed(self):
        from minitiny.cli import UsageError
        return UsageError

    def run(self, data, work):
        from minitiny import cli
        n = int.from_bytes(data[:4], "little") if len(data) >= 4 else 0
        x = _file(work, data[4:4 + n], "x.npy")
        y = _file(work, data[4 + n:], "y.npy")
        cli.load_data(f"{x},{y}")


class CliTarget(Target):
    """argv drawn from the parser itself: every subcommand and option, with values that are
    well formed, edge numbers, garbage, missing files, directories and damaged files."""
    name, what = "cli", "cli.main(argv) (the minitiny command's arguments)"
    SKIP = {"demo", "fetch"}            # long runs, and downloads
    timeout = 60.0                      # a command may build and run firmware (cold: seconds)

    def __init__(self):
        self._grammar = None

    def grammar(self):
        if self._grammar is None:
            from minitiny import cli
            parser = cli.build_parser()
            self._grammar = {}

            def walk(p, prefix):
                subs = [a for a in p._actions if a.__class__.__name__ == "_SubParsersAction"]
                if not subs:
                    self._grammar[tuple(prefix)] = [a for a in p._actions if a.dest != "help"]
                for s in subs:
                    for name, sp in s.choices.items():
                        if name not in self.SKIP:
                            walk(sp, prefix + [name])
            walk(parser, [])
        return self._grammar

    def seeds(self):
        return [json.dumps(list(k)).encode() for k in self.grammar()]

    def _value(self, rng, action):
        files = ["missing.npz", "dir", "empty.npz", "garbage.npz", "model.qmodel.npz", "x.npy",
                 "bad.tflite", "gen", "", "-", "model.py", "a,b,c", "x.npy,y.npy,z.npy",
                 "model.tflite", "float.npz", "good", "x.npy,y.npy", "xq.npy", "train.py"]
        numbers = ["0", "-1", "1", "3", "1e9", "nan", "inf", "-0", "99999999999999999999", "0x10",
                   "1.5", "", "abc", "1/s", "10/min", "0.5Hz", "-3/s", "0/s"]
        if action.choices:
            return rng.choice(list(action.choices) + ["nope", ""])
        if action.type in (int, float):
            return rng.choice(numbers)
        if rng.random() < 0.4:                 # well-formed, so the command gets further
            return rng.choice(["model.tflite", "float.npz", "good", "x.npy,y.npy", "xq.npy",
                               "model.qmodel.npz", "train.py", "out_dir", "out.npz"])
        return rng.choice(files + numbers + ["cortex-m4", "nano33ble", "mnist", "sine", "cr2032",
                                             "\u00e9\u00e8", "a" * 300, "--", "--help"])

    def argv(self, rng, command):
        actions = self.grammar()[command]
        argv = list(command)
        for a in actions:
            if not a.option_strings:                           # positional
                argv.append(self._value(rng, a))
            elif a.required or rng.random() < 0.35:
                flag = rng.choice(a.option_strings)
                if a.nargs == 0:
                    argv.append(flag)
                else:
                    argv += [flag, self._value(rng, a)]
        if rng.random() < 0.1:
            argv.insert(rng.randrange(len(argv) + 1), rng.choice(["--bogus", "-x", "--help", "--quiet"]))
        if rng.random() < 0.1 and len(argv) > 1:
            del argv[rng.randrange(len(argv))]
        return argv

    def mutate(self, rng, data, corpus=()):
        command = tuple(json.loads(data))[:2]
        while command not in self.grammar():
            command = command[:-1] if len(command) > 1 else rng.choice(list(self.grammar()))
        return json.dumps(self.argv(rng, command)).encode()

    def prepare(self, work):
        """Files the arguments may name, inside the working directory."""
        os.makedirs(os.path.join(work, "dir"), exist_ok=True)
        open(os.path.join(work, "empty.npz"), "wb").close()
        with open(os.path.join(work, "garbage.npz"), "wb") as f:
            f.write(b"PK\x03\x04 not really a zip")
        with open(os.path.join(work, "bad.tflite"), "wb") as f:
            f.write(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 40)
        with open(os.path.join(work, "model.py"), "w") as f:
            f.write("raise ValueError('a model file that fails')\n")
        np.save(os.path.join(work, "x.npy"), np.zeros((2, 3), np.float32))
        np.save(os.path.join(work, "y.npy"), np.arange(2))
        np.save(os.path.join(work, "xq.npy"), np.zeros((2, 8), np.int8))
        mlp = seed_qmodels()[1]
        mlp.save(os.path.join(work, "model.qmodel.npz"))
        # valid inputs too, so commands get past loading: a .tflite, a generated directory,
        # a float model and a model file that builds
        from minitiny.quant.tflite_io import save_tflite
        save_tflite(mlp, os.path.join(work, "model.tflite"))
        from minitiny import codegen
        codegen.generate(mlp, os.path.join(work, "good"), name="good")
        import minitiny as mt
        mt.random.seed(0)
        float_model = mt.Sequential([mt.layers.Dense(2, activation="softmax", input_shape=(3,))])
        float_model.compile("sgd", "sparse_categorical_crossentropy")
        float_model.save(os.path.join(work, "float.npz"))
        with open(os.path.join(work, "train.py"), "w") as f:
            f.write("import minitiny as mt\nEPOCHS = 1\n"
                    "def build():\n"
                    "    m = mt.Sequential([mt.layers.Dense(2, activation='softmax', input_shape=(3,))])\n"
                    "    m.compile('sgd', 'sparse_categorical_crossentropy')\n"
                    "    return m\n")

    def allowed(self):
        return ()

    INTERNAL = re.compile(r"error: (TypeError|AttributeError|IndexError|KeyError|NameError|"
                          r"UnboundLocalError|AssertionError|ZeroDivisionError|RecursionError|"
                          r"OverflowError|MemoryError|NotImplementedError|StopIteration|"
                          r"UnicodeError|UnicodeDecodeError|UnicodeEncodeError)\b")

    def judge(self, data, work):
        from minitiny import cli
        argv = json.loads(data)
        out, err = io.StringIO(), io.StringIO()
        cwd = os.getcwd()
        try:
            os.chdir(work)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                status = cli.main(argv)
        except (Timeout, KeyboardInterrupt):
            raise
        except BaseException as e:               # noqa: BLE001  main must not raise
            return (type(e).__name__, f"minitiny {' '.join(argv)}: {str(e)[:200]}", _where(e)), ""
        finally:
            os.chdir(cwd)
        text = err.getvalue()
        cmd = f"minitiny {' '.join(argv)}"
        if status not in (0, 1, 2):
            return ("ExitStatus", f"{cmd}: exit status {status!r}", "cli.main"), ""
        if "Traceback (most recent call last)" in text and "--debug" not in argv:
            return ("Traceback", f"{cmd}: {text.strip().splitlines()[-1][:200]}", "cli.main"), ""
        m = self.INTERNAL.search(text)
        if m:
            line = next(ln for ln in text.splitlines() if m.group(0) in ln)
            return (m.group(1), f"{cmd}: {line.strip()[:200]}", f"cli {' '.join(argv[:1])}"), ""
        return None, f"{argv[:1]}:{status}:" + re.sub(r"\d+", "#", text.strip()[:60])


TARGETS = {t.name: t for t in (KerasNpzTarget(), QModelNpzTarget(), TfliteTarget(), IdxTarget(),
                              TsTarget(), WavTarget(), NpyDataTarget(), CliTarget())}


# =======================================================================================
# The loop
# =======================================================================================
def _alarm(signum, frame):
    raise Timeout()


def fuzz(target, seconds, seed=0, timeout=5.0, save_dir=None, max_corpus=200, inputs=None):
    """Fuzz one target for `seconds` (or until `inputs` inputs were tried, if sooner: a
    run that is the same on every machine); returns {'inputs', 'crashes': [...], 'corpus'}."""
    rng = random.Random(f"{target.name}:{seed}")
    timeout = max(timeout, target.timeout or 0)
    work = tempfile.mkdtemp(prefix=f"fuzz-{target.name}-")
    if hasattr(target, "prepare"):
        target.prepare(work)
    corpus = list(target.seeds())
    seen_outcomes = set()
    crashes = {}
    tried = 0
    signal.signal(signal.SIGALRM, _alarm)
    deadline = time.monotonic() + seconds

    def one(data):
        signal.setitimer(signal.ITIMER_REAL, timeout)
        t0 = time.monotonic()
        try:
            finding, label = target.judge(data, work)
            if finding is None and label not in seen_outcomes and len(corpus) < max_corpus:
                seen_outcomes.add(label)
                corpus.append(data)
        except Timeout:
            finding = ("Timeout", f"took longer than {timeout} s", "?")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        return finding, time.monotonic() - t0

    try:
        for data in list(corpus):                      # the seeds must all pass
            finding, _ = one(data)
            tried += 1
            if finding:
                _record(crashes, finding, data, target, save_dir)
        while time.monotonic() < deadline and (inputs is None or tried < inputs):
            data = target.mutate(rng, rng.choice(corpus), corpus)
            finding, _ = one(data)
            tried += 1
            if finding:
                _record(crashes, finding, data, target, save_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"target": target.name, "what": target.what, "inputs": tried,
            "seconds": round(seconds - max(0.0, deadline - time.monotonic()), 2),
            "corpus": len(corpus), "crashes": sorted(crashes.values(), key=lambda c: -c["count"])}


def _record(crashes, finding, data, target, save_dir):
    kind, message, where = finding
    key = (kind, where)
    if key not in crashes:
        crashes[key] = {"type": kind, "where": where, "message": message, "count": 0,
                        "input_sha256": hashlib.sha256(data).hexdigest()[:16],
                        "input_head": data[:120].hex() if target.name != "cli" else data.decode()}
        if save_dir:
            os.makedirs(save_dir, exist_ok=True)
            with open(os.path.join(save_dir, f"{target.name}-{kind}-{crashes[key]['input_sha256']}"),
                      "wb") as f:
                f.write(data)
    crashes[key]["count"] += 1


def table(results):
    lines = [f"{'target':11s} {'inputs':>8s} {'crashes':>8s}  what"]
    for r in results:
        lines.append(f"{r['target']:11s} {r['inputs']:8d} {len(r['crashes']):8d}  {r['what']}")
        for c in r["crashes"]:
            lines.append(f"    {c['type']} x{c['count']} at {c['where']}: {c['message']}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="per target (default 60)")
    p.add_argument("--target", action="append", choices=sorted(TARGETS),
                   help="fuzz only these (repeatable; default: all)")
    p.add_argument("--inputs", action="append", metavar="[TARGET=]N", default=[],
                   help="stop after N inputs, for every target or the one named (repeatable): "
                        "the same inputs on every machine")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=5.0, help="seconds one input may take")
    p.add_argument("--memory-mb", type=int, default=3072, help="address-space limit")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--save-crashes", metavar="DIR", help="one reproducing input per crash")
    args = p.parse_args(argv)
    limit = args.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    import warnings
    warnings.simplefilter("ignore")
    budgets = {}
    for spec in args.inputs:
        name, _, n = spec.rpartition("=")
        budgets[name or None] = int(n)
    results = []
    for name in args.target or list(TARGETS):
        try:
            results.append(fuzz(TARGETS[name], args.seconds, args.seed, args.timeout, args.save_crashes,
                                inputs=budgets.get(name, budgets.get(None))))
        except ImportError as e:                  # e.g. the .tflite importer not installed
            results.append({"target": name, "what": TARGETS[name].what, "inputs": 0,
                            "seconds": 0, "corpus": 0, "skipped": str(e), "crashes": []})
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 1 if any(r["crashes"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
