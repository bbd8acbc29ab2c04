"""Every layer's output, from each engine: where do the integers first diverge?

The generated C calls MINITINY_LAYER_HOOK(i) before layer i and after the last one, and
keeps every activation in one arena at the offset the manifest's plan gives it. A probe
build defines the hook as a copy of the whole arena (one snapshot per step); the output of
layer i is then read from snapshot i + 1 at its planned offset (nothing overwrites a
tensor before the next layer starts). The model's C itself is not changed.

    c = ProbedC("build/digits")
    out, per_tensor = c(x)              # the outputs, and {tensor name: (N, *shape) int8 (int16)}

NumPy gives every tensor through QModel.predict_int8(x, return_all=True). TFLite Micro's
interpreter exposes no intermediate tensors, so `tflm_layer` runs one layer alone, as a
one-op model, on the layer's own inputs.
"""
import os

import numpy as np

from minitiny.codegen import loader
from minitiny.quant import tflm
from minitiny.quant.graph import QModel, QOp

PROBE_H = """#ifndef MINITINY_PROBE_H
#define MINITINY_PROBE_H
#include <stdint.h>
void minitiny_probe_hook(int step, const void *arena);
void minitiny_probe_read(int step, uint8_t *out);
#endif
"""

PROBE_C = """/* a copy of the arena's bytes at every MINITINY_LAYER_HOOK(step) (int8_t or, in a 16x8
 * model, int16_t values) */
#include "minitiny_probe.h"

static uint8_t snapshots[{steps}][{arena}];

void minitiny_probe_hook(int step, const void *arena)
{{
    const uint8_t *bytes = arena;
    for (int i = 0; i < {arena}; ++i) {{
        snapshots[step][i] = bytes[i];
    }}
}}

void minitiny_probe_read(int step, uint8_t *out)
{{
    for (int i = 0; i < {arena}; ++i) {{
        out[i] = snapshots[step][i];
    }}
}}
"""


class ProbedC:
    """The generated C in `c_dir`, built with a layer hook that snapshots the arena.

    flags: extra compiler flags (e.g. the host shim of a DSP build)."""

    def __init__(self, c_dir, flags=(), compiler=None):
        self.manifest = manifest = loader.read_manifest(c_dir)
        self.steps = len(manifest["layers"]) + 1
        self.arena = int(manifest["arena_bytes"])
        self.offsets = {t: row["offset"] for row in manifest["plan"] for t in row["tensors"]}
        sources = {"minitiny_probe.h": PROBE_H.encode(),
                   "minitiny_probe.c": PROBE_C.format(steps=self.steps, arena=self.arena).encode()}
        hook = ["-include", "minitiny_probe.h",
                "-DMINITINY_LAYER_HOOK(step)=minitiny_probe_hook(step, arena)"]
        cc = compiler or loader.default_compiler()
        libs = ["-lm"] if manifest.get("libm") else []
        path = loader.build(os.fspath(c_dir), manifest, cc,
                            loader.STRICT_FLAGS + loader.SHARED_FLAGS + hook + list(flags) + libs,
                            "shared", sources)
        self.model = loader.CModel(path, manifest)
        self.model.ffi.cdef("void minitiny_probe_read(int step, uint8_t *out);")
        self._read = self.model.ffi.dlopen(path).minitiny_probe_read

    def __call__(self, x, qmodel):
        """x (N, *input shape), or a list of them for several inputs -> (outputs,
        {activation tensor name: (N, *shape)}) as the C computed them; `qmodel` names the
        tensors (the one the C was generated from)."""
        dtype = self.model.dtype                    # int8, or int16 in a 16x8 model
        xs = [np.asarray(a, dtype) for a in x] if isinstance(x, (list, tuple)) else [np.asarray(x, dtype)]
        n_samples = len(xs[0])
        snaps = np.empty((n_samples, self.steps, self.arena), np.uint8)
        outs = []
        ffi = self.model.ffi
        for n in range(n_samples):
            y = self.model([a[n:n + 1] for a in xs] if len(xs) > 1 else xs[0][n:n + 1])
            outs.append(y if isinstance(y, list) else [y])
            for step in range(self.steps):
                self._read(step, ffi.from_buffer("uint8_t[]", snaps[n, step]))
        values = dict(zip(qmodel.inputs, xs))
        for i, op in enumerate(qmodel.ops):
            t = qmodel.tensors[op.outputs[0]]
            off = self.offsets[t.name]
            values[t.name] = np.ascontiguousarray(snaps[:, i + 1, off:off + t.nbytes]).view(t.dtype).reshape(
                (n_samples,) + tuple(t.shape))
        outs = [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))] if outs else []
        return (outs if len(outs) > 1 else outs[0] if outs else None), values


def one_op_model(qmodel, op):
    """`op` alone as a QModel: its activation inputs are the model's inputs."""
    inputs = list(dict.fromkeys(t.name for t in qmodel.activations(op)))
    names = set(op.inputs) | set(op.outputs)
    tensors = {n: t for n, t in qmodel.tensors.items() if n in names}
    return QModel(f"{qmodel.name}_{op.name}", tensors, [QOp(op.kind, op.name, op.inputs, op.outputs, op.options)],
                  inputs, list(op.outputs), single_rounding=qmodel.single_rounding)


def tflm_layer(qmodel, op, values):
    """TFLite Micro's output of `op` alone, on its inputs from `values` {name: array}."""
    single = one_op_model(qmodel, op)
    xs = [np.asarray(values[n], single.tensors[n].dtype) for n in single.inputs]
    return tflm.run_tflm(single, xs if len(xs) > 1 else xs[0])
