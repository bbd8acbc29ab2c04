"""An unquantized minitiny model -> float32 C, to read beside the int8 C.

    minitiny.codegen.generate(float_model, "build/sine_float", name="sine_float")
    fn = minitiny.codegen.load("build/sine_float")       # float32 in, float32 out

The float C has the same shape as the int8 C: one static function per layer with the same
loop names, weights in TFLite's layouts (Dense (units, in), Conv2D (out, kh, kw, in),
DepthwiseConv2D (kh, kw, in * m)), the same arena planner, the same header macros. What is
missing is the point of the comparison: no zero points, no multipliers, no requantization,
no clamps; just `acc += weight * input` in float and the activation. Sigmoid, tanh and
softmax call expf / tanhf, so this file needs libm (link with -lm).

It matches model.predict (NumPy, float32) to about 1e-5 relative: the sums run in another
order (tests/test_codegen_models.py states and checks the tolerance).
"""
import json

import numpy as np

from minitiny.geometry import out_size, pad_before

from . import planner
from .output import GENERATOR, CodegenError, Generated, write_atomically
from .templating import c_float, environment, identifiers
from .windows import window_edges
from .names import Namer, c_comment, c_identifier, c_macro_prefix

# layer class -> (template, planner kind: how the arena may share its buffer)
FLOAT_LAYERS = {
    "Dense": ("float_dense.c.j2", "fully_connected"),
    "Conv2D": ("float_conv_2d.c.j2", "conv_2d"),
    "DepthwiseConv2D": ("float_depthwise_conv_2d.c.j2", "depthwise_conv_2d"),
    "MaxPooling2D": ("float_pool_2d.c.j2", "max_pool_2d"),
    "AveragePooling2D": ("float_pool_2d.c.j2", "average_pool_2d"),
    "GlobalAveragePooling2D": ("float_mean.c.j2", "mean"),
    "BatchNormalization": ("float_elementwise.c.j2", "relu"),     # per element: in place is safe
    "Activation": ("float_elementwise.c.j2", "relu"),
    "ReLU": ("float_elementwise.c.j2", "relu"),
    "Add": ("float_add.c.j2", "add"),
    "Flatten": (None, "reshape"),                                 # no code: the same bytes
    "Reshape": (None, "reshape"),
    "Dropout": (None, "reshape"),                                 # identity at inference
}
FLOAT_SUFFIXES = ("", "_weight", "_bias", "_scale", "_shift")


def _f32(a):
    return np.asarray(a, dtype=np.float32)


def _geometry(in_shape, k, strides, padding):
    """Output size and padding before, per axis (minitiny/geometry.py: TensorFlow's rules)."""
    (out_h, pad_h), (out_w, pad_w) = ((out_size(padding, n, kk, s), pad_before(padding, n, kk, s))
                                      for n, kk, s in zip(in_shape[:2], k, strides))
    return dict(out_h=out_h, out_w=out_w, pad_h=pad_h, pad_w=pad_w)


# the activations float_macros.j2 writes in C (a layer's own `activation`)
FLOAT_ACTIVATIONS = ("linear", "relu", "relu6", "sigmoid", "tanh", "softmax")


def _layer_params(layer, kind):
    """The constants and sizes one layer's template needs (all float math done here)."""
    in_shape = layer.input_shape if kind != "Add" else layer.input_shape[0]
    out_shape = layer.output_shape
    p = {"activation": getattr(layer, "activation", "linear"), "size": int(np.prod(out_shape))}
    if p["activation"] not in FLOAT_ACTIVATIONS:
        raise CodegenError(f"layer {layer.name!r}: activation {p['activation']!r} has no float "
                           f"C form; supported: {', '.join(FLOAT_ACTIVATIONS)}")
    consts = {}
    if kind == "Dense":
        kernel = _f32(layer.weights["kernel"].data)                    # (in, units), Keras
        consts["weight"] = kernel.T                                      # (units, in), TFLite
        p.update(in_features=kernel.shape[0], out_features=kernel.shape[1])
        if p["in_features"] != int(np.prod(in_shape)):
            raise CodegenError(f"layer {layer.name!r}: Dense on an input of shape {in_shape} "
                               "(flatten it first)")
    elif kind in ("Conv2D", "DepthwiseConv2D"):
        h, w, c = in_shape
        if kind == "Conv2D":
            kernel = _f32(layer.weights["kernel"].data)                # (kh, kw, in, out)
            consts["weight"] = kernel.transpose(3, 0, 1, 2)             # (out, kh, kw, in)
            m = 1
        else:
            kernel = _f32(layer.weights["depthwise_kernel"].data)      # (kh, kw, in, m)
            m = kernel.shape[3]
            consts["weight"] = kernel.reshape(kernel.shape[0], kernel.shape[1], c * m)
        p.update(in_h=h, in_w=w, in_c=c, out_c=out_shape[2], kernel_h=kernel.shape[0],
                 kernel_w=kernel.shape[1], stride_h=layer.strides[0], stride_w=layer.strides[1],
                 depth_multiplier=m,
                 **_geometry(in_shape, kernel.shape[:2], layer.strides, layer.padding))
    elif kind in ("MaxPooling2D", "AveragePooling2D"):
        h, w, c = in_shape
        p.update(in_h=h, in_w=w, channels=c, pool_h=layer.pool_size[0], pool_w=layer.pool_size[1],
                 stride_h=layer.strides[0], stride_w=layer.strides[1],
                 average=kind == "AveragePooling2D",
                 **_geometry(in_shape, layer.pool_size, layer.strides, layer.padding))
    elif kind == "GlobalAveragePooling2D":
        h, w, c = in_shape
        p.update(in_h=h, in_w=w, channels=c)
    elif kind == "BatchNormalization":
        # y = x * scale + shift per channel, as BatchNormalization.call computes it
        gamma, beta = _f32(layer.weights["gamma"].data), _f32(layer.weights["beta"].data)
        mean, var = _f32(layer.weights["moving_mean"].data), _f32(layer.weights["moving_variance"].data)
        scale = gamma * (np.float32(1.0) / np.sqrt(var + np.float32(layer.epsilon)))
        consts["scale"], consts["shift"] = _f32(scale), _f32(beta - mean * scale)
        p.update(activation="batch_normalization", channels=int(in_shape[-1]))
    elif kind == "ReLU":
        p["activation"] = "relu" if layer.max_value is None else "clip"
        p["max_value"] = layer.max_value
    elif kind == "Add":
        p["n_inputs"] = len(layer.input_shape)
    if "bias" in layer.weights and layer.weights["bias"] is not None:
        consts["bias"] = _f32(layer.weights["bias"].data)
    p["depth"] = int(out_shape[-1]) if out_shape else 1         # softmax runs over the last axis
    p["rows"] = p["size"] // p["depth"]
    return p, consts


def _view(name, shape, offset):
    return {"label": c_comment(name), "shape": tuple(shape), "size": int(np.prod(shape)),
            "offset": offset}


def generate_float(model, out_dir, name=None):
    """Write NAME_model.h / NAME_model.c (float32 C), NAME_manifest.json and NAME.model.npz."""
    from minitiny import __version__
    try:
        graph = model.graph
    except (AttributeError, ValueError) as e:
        raise CodegenError(f"generate: {type(model).__name__} is not a built minitiny model ({e})") from None
    model_name = getattr(model, "name", "model")
    prefix = c_identifier(name if name is not None else model_name, "model", whole_name=False).lower()
    input_name, input_shape = model.input_name, tuple(model.input_shape)

    # -- the arena: the same planner, sizes in floats -----------------------------------
    shapes = {input_name: input_shape}
    steps = []
    for node in graph:
        kind = type(node.layer).__name__
        if kind not in FLOAT_LAYERS:
            raise CodegenError(f"model {model_name!r}, layer {node.layer.name!r}: layer class "
                               f"{kind!r} has no float C template; supported: "
                               f"{', '.join(sorted(FLOAT_LAYERS))}")
        planner_kind = FLOAT_LAYERS[kind][1]
        if kind == "Activation" and node.layer.activation == "linear":
            planner_kind = "reshape"
        shapes[node.layer.name] = tuple(node.layer.output_shape)
        steps.append((node.layer.name, planner_kind, list(node.inputs), node.layer.name))
    sizes = {t: int(np.prod(s)) for t, s in shapes.items()}
    output_name = graph[-1].layer.name
    arena = planner.plan(steps, sizes, [input_name], [output_name], align=1)

    # -- one context per layer ------------------------------------------------------------
    namer = Namer({"arena", prefix + "_invoke"} | identifiers())
    layers, uses = [], set()
    for i, node in enumerate(graph):
        layer, kind = node.layer, type(node.layer).__name__
        template, planner_kind = FLOAT_LAYERS[kind]
        p, consts = _layer_params(layer, kind)
        if steps[i][1] == "reshape":
            template = None
        uses.add(p["activation"])
        layers.append({
            "index": i, "name": namer.claim(layer.name, FLOAT_SUFFIXES, fallback="layer"),
            "label": c_comment(layer.name), "kind": kind, "template": template, "p": p,
            "consts": consts, "window": window_edges(p) if kind in ("MaxPooling2D", "AveragePooling2D") else None,
            "inputs": [_view(n, shapes[n], arena.offsets[n]) for n in node.inputs],
            "output": _view(layer.name, shapes[layer.name], arena.offsets[layer.name]),
            "weight_bytes": 4 * sum(int(a.size) for a in consts.values()),
            "macs": int(layer.macs(layer.input_shape)) if hasattr(layer, "macs") else 0,
            "shared": arena.shared.get(layer.name)})
    context = {
        "generator": f"{GENERATOR} {__version__}", "model_name": c_comment(model_name),
        "prefix": prefix, "PREFIX": c_macro_prefix(prefix), "layers": layers, "uses": uses,
        "needs_libm": bool(uses & {"sigmoid", "tanh", "softmax"}),
        "input": _view(input_name, input_shape, arena.offsets[input_name]),
        "output": _view(output_name, shapes[output_name], arena.offsets[output_name]),
        "arena": arena, "arena_size": max(arena.size, 1),
        "plan": [dict(row, labels=[c_comment(t) for t in row["tensors"]]) for row in arena.rows()],
        "weight_bytes": sum(layer["weight_bytes"] for layer in layers),
    }
    env = environment()
    files = {f"{prefix}_model.h": env.get_template("float_model.h.j2").render(context).encode(),
             f"{prefix}_model.c": env.get_template("float_model.c.j2").render(context).encode()}
    info = {
        "name": prefix, "model_name": model_name, "generator": context["generator"],
        "dtype": "float32", "libm": context["needs_libm"],
        "header": f"{prefix}_model.h", "source": f"{prefix}_model.c", "invoke": f"{prefix}_invoke",
        "input_shape": list(input_shape), "output_shape": list(shapes[output_name]),
        "arena_bytes": 4 * context["arena_size"], "arena_lower_bound": 4 * arena.lower_bound,
        "weight_bytes": context["weight_bytes"],
        "layers": [{"index": l["index"], "name": graph[l["index"]].layer.name, "c_name": l["name"],
                    "kind": l["kind"], "input_shapes": [list(t["shape"]) for t in l["inputs"]],
                    "output_shape": list(l["output"]["shape"]), "macs": l["macs"],
                    "weight_bytes": l["weight_bytes"], "activation": l["p"]["activation"]}
                   for l in layers],
        "plan": arena.rows(),
    }
    files[f"{prefix}_manifest.json"] = (json.dumps(info, indent=1) + "\n").encode()
    if hasattr(model, "save"):
        files[f"{prefix}.model.npz"] = model.save      # minitiny.load_model reads it back
    out_dir = write_atomically(out_dir, files)
    return Generated(out_dir, sorted(files), info)


__all__ = ["generate_float", "FLOAT_LAYERS", "c_float"]
