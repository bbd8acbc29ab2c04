"""What the firmware reads from a generated model directory: the contract with codegen.

For a model named NAME, `minitiny.codegen.generate(qmodel, dir)` writes:

    NAME_model.h        include guard, <stdint.h>, the macros NAME_INPUT_SIZE,
                        NAME_OUTPUT_SIZE (int8 element counts), NAME_ARENA_SIZE,
                        NAME_INPUT_SCALE, NAME_INPUT_ZERO_POINT, NAME_OUTPUT_SCALE,
                        NAME_OUTPUT_ZERO_POINT, and
                        int NAME_invoke(const int8_t *input, int8_t *output);
                        (0 on success, nonzero for a NULL pointer). A model with several
                        inputs or outputs numbers them: NAME_INPUT0_SIZE, NAME_INPUT1_SIZE,
                        ..., NAME_OUTPUT0_SIZE, ... and NAME_invoke(input0, input1, ...,
                        output0, ...), one pointer each, inputs first
    NAME_model.c        the model; it calls MINITINY_LAYER_HOOK(i) before layer i and
                        MINITINY_LAYER_HOOK(n) after the last one (empty by default)
    NAME_manifest.json  {"name", "input_shape", "output_shape", "arena_bytes",
                         "layers": [{"index", "name", "kind", "macs", "weight_bytes"}, ...]}
    NAME.qmodel.npz     the int8 model, whose NumPy reference checks the outputs

Only the header and the source are required; without the manifest there are no per-layer
figures, without the .npz no reference check. When there is a manifest, the .c, the .h, the
manifest and the .npz must name one model hash (codegen.loader.check_one_model): a folder
mixing two models is refused before anything is built.

A program of several C files (the audio front end, then the model: PCM in, a class out)
lists them all in its manifest, paths relative to the directory, NAME_model.c first:

    "sources": ["kws_pcm_model.c", "kws_frontend.c", "kws_net/kws_net_model.c"],
    "headers": ["kws_pcm_model.h", "kws_frontend.h", "kws_net/kws_net_model.h"]

They are compiled side by side in one folder (so each #include "x.h" finds its header by
name) and linked into one firmware.
"""
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minitiny.codegen.generator import model_hash
from minitiny.codegen.loader import check_one_model
from minitiny.codegen.names import c_identifier
from minitiny.files import recover


class ModelDirError(ValueError):
    """A model directory that does not follow the contract: names the file and the problem."""


@dataclass
class ModelFiles:
    name: str                 # NAME as in NAME_invoke
    dir: Path
    header: Path
    source: Path
    input_size: int
    output_size: int
    input_scale: float = None
    input_zero_point: int = None
    output_scale: float = None
    output_zero_point: int = None
    manifest: dict = None
    qmodel_path: Path = None
    # every input and output in the model's order: {"arg", "macro", "size", "shape", "scale",
    # "zero_point"}; input_size / output_size are their totals (the harness keeps a sample's
    # inputs back to back, and its outputs)
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    layers: list = field(default_factory=list)
    extra_sources: list = field(default_factory=list)   # further C files of the program
    extra_headers: list = field(default_factory=list)

    @property
    def macro(self):
        return self.name.upper()

    @property
    def input_shape(self):
        """The input's shape; (total size,) for several inputs (the harness's flat row)."""
        return self.inputs[0]["shape"] if len(self.inputs) == 1 else (self.input_size,)

    @property
    def output_shape(self):
        return self.outputs[0]["shape"] if len(self.outputs) == 1 else (self.output_size,)

    @property
    def dtype(self):
        """The type of the model's input and output values: int8, or int16 for a 16x8 model
        (its manifest says "dtype": "int16")."""
        return np.dtype((self.manifest or {}).get("dtype", "int8"))


_DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)\s+(.+?)\s*(?:/[/*].*)?$", re.M)


def _number(text, kind, where):
    """A macro's value: '32', '(28 * 28 * 1)', '0.0039215689f', '(-128)' -> int or float."""
    t = text.strip()
    while t.startswith("(") and t.endswith(")"):
        t = t[1:-1].strip()
    t = re.sub(r"(?<=[0-9.])[fFuUlL]+\b", "", t)
    try:
        if kind is float:
            return float(t)
        factors = [f.strip().strip("()") for f in t.split("*")]   # a product of sizes
        return math.prod(int(f) for f in factors)
    except ValueError:
        raise ModelDirError(f"{where}: cannot read the value {text.strip()!r}") from None


def load(model_dir):
    """Find NAME_model.{h,c} (and the optional manifest and .qmodel.npz) in model_dir."""
    d = Path(model_dir)
    if not d.is_dir():
        recover(d)                      # a folder a killed generate left moved aside: put back
    if not d.is_dir():
        raise ModelDirError(f"{d}: not a directory (expected the output of minitiny.codegen.generate)")
    headers = sorted(d.glob("*_model.h"))
    if not headers:
        raise ModelDirError(f"{d}: no NAME_model.h found (expected the output of "
                            f"minitiny.codegen.generate)")
    if len(headers) > 1:
        raise ModelDirError(f"{d}: several models ({', '.join(h.name for h in headers)}); "
                            f"give a directory with one")
    header = headers[0]
    name = header.name[:-len("_model.h")]
    source = d / f"{name}_model.c"
    if not source.is_file():
        raise ModelDirError(f"{d}: {header.name} has no matching {source.name}")
    manifest = None
    manifest_path = d / f"{name}_manifest.json"
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ModelDirError(f"{manifest_path}: not valid JSON ({e})") from None

    texts = {header.name: header.read_bytes(), source.name: source.read_bytes()}
    if manifest is not None:
        check_one_model(d, dict(manifest, name=name), texts)
    macros = dict(_DEFINE.findall(texts[header.name].decode("utf-8", errors="replace")))
    up = name.upper()

    def macro(suffix, kind, required=True):
        key = f"{up}_{suffix}"
        if key not in macros:
            if required:
                raise ModelDirError(f"{header}: missing the macro {key}")
            return None
        return _number(macros[key], kind, f"{header}: {key}")

    listed = {role: (manifest or {}).get(role + "s") or [] for role in ("input", "output")}
    ends = {}
    for role in ("input", "output"):
        stem = role.upper()
        # one input (output): NAME_INPUT_SIZE; several: NAME_INPUT0_SIZE, NAME_INPUT1_SIZE, ...
        stems = [stem] if f"{up}_{stem}_SIZE" in macros or f"{up}_{stem}0_SIZE" not in macros else \
            [f"{stem}{i}" for i in range(len(macros)) if f"{up}_{stem}{i}_SIZE" in macros]
        ends[role] = []
        for i, m in enumerate(stems):
            size = macro(f"{m}_SIZE", int)
            if size <= 0:
                raise ModelDirError(f"{header}: {up}_{m}_SIZE must be > 0, got {size}")
            shape = (tuple(listed[role][i]["shape"]) if i < len(listed[role]) else
                     tuple((manifest or {}).get(f"{role}_shape") or ()) if len(stems) == 1 else ())
            shape = shape or (size,)
            if math.prod(shape) != size:
                where = f"{role}_shape" if len(stems) == 1 else f"{role}s[{i}] shape"
                raise ModelDirError(f"{manifest_path.name}: {where} {list(shape)} holds "
                                    f"{math.prod(shape)} values but {header.name} says "
                                    f"{up}_{m}_SIZE {size}")
            ends[role].append({"arg": m.lower(), "macro": m, "size": size, "shape": shape,
                               "scale": macro(f"{m}_SCALE", float, False),
                               "zero_point": macro(f"{m}_ZERO_POINT", int, False)})
    single = len(ends["input"]) == 1 and len(ends["output"]) == 1
    files = ModelFiles(
        name=name, dir=d, header=header, source=source,
        input_size=sum(t["size"] for t in ends["input"]),
        output_size=sum(t["size"] for t in ends["output"]),
        input_scale=ends["input"][0]["scale"] if single else None,
        input_zero_point=ends["input"][0]["zero_point"] if single else None,
        output_scale=ends["output"][0]["scale"] if single else None,
        output_zero_point=ends["output"][0]["zero_point"] if single else None,
        manifest=manifest,
        qmodel_path=(d / f"{name}.qmodel.npz") if (d / f"{name}.qmodel.npz").is_file() else None,
        layers=list((manifest or {}).get("layers", [])),
        inputs=ends["input"], outputs=ends["output"],
    )
    for i, layer in enumerate(files.layers):
        if not isinstance(layer, dict) or "name" not in layer:
            raise ModelDirError(f"{manifest_path.name}: layer {i} needs at least a 'name'")
    files.extra_sources = _listed(d, manifest_path, manifest, "sources", source)
    files.extra_headers = _listed(d, manifest_path, manifest, "headers", header)
    names = [p.name for p in [source, header] + files.extra_sources + files.extra_headers]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ModelDirError(f"{manifest_path}: the program's files are compiled side by side in "
                            f"one folder, but several are called {', '.join(twice)}")
    return files


def _listed(d, manifest_path, manifest, key, main):
    """The files the manifest lists under `key` ('sources' or 'headers'), except `main`."""
    listed = (manifest or {}).get(key) or []
    if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
        raise ModelDirError(f"{manifest_path}: '{key}' must be a list of file names, got {listed!r}")
    paths = []
    root = d.resolve()
    for rel in listed:
        path = d / rel
        # a path in a model file is never followed outside the model's folder
        if os.path.isabs(rel) or root not in path.resolve().parents:
            raise ModelDirError(f"{manifest_path}: '{key}' lists {rel!r}, which is outside {d}")
        if not path.is_file():
            raise ModelDirError(f"{manifest_path}: '{key}' lists {rel!r}, which is not in {d}")
        if path.resolve() != main.resolve():
            paths.append(path)
    return paths


def load_reference(files):
    """The QModel saved beside the C (NAME.qmodel.npz), or None when absent or unreadable."""
    if files.qmodel_path is None:
        return None
    try:
        from minitiny.quant.graph import QModel
    except ImportError:
        return None
    loader = getattr(QModel, "load", None)
    if loader is None:
        return None
    try:
        qmodel = loader(files.qmodel_path)
    except (OSError, ValueError, KeyError) as e:
        raise ModelDirError(f"{files.qmodel_path}: cannot load the int8 model ({e})") from None
    if files.manifest is not None:
        check_one_model(files.dir, dict(files.manifest, name=files.name),
                        {f.name: f.read_bytes() for f in (files.header, files.source)}, model_hash(qmodel))
    return qmodel


def layer_c_name(layer):
    """A manifest layer's name as the generated C spells it: its 'c_name', else the name
    sanitised as codegen/names.py does. Symbols 'NAME_weight', ... belong to it."""
    if layer.get("c_name"):
        return layer["c_name"]
    name = layer.get("name")
    return None if name is None else c_identifier(name)
