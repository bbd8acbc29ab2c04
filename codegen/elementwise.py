"""The element-wise layers' C context: which loop runs them, how their operands line up with
the output, and the constant operand written into flash.

TFLM runs a two-input element-wise op (add.cc, sub.cc, mul.cc, squared_difference.cc,
maximum_minimum.cc) one of two ways, and so does the generated C (templates/reference/
elementwise.c.j2):

    ElementWise                      both operands hold the output's values in its order:
                                     one flat loop, output[i] = f(input1[i], input2[i])
    BroadcastBinaryFunction4DSlow    the shapes differ: four nested loops over the output's
                                     (b, y, x, c), each operand read at its own strides

TFLM's NdArrayDescsForElementwiseBroadcast (kernels/internal/common.h) gives each operand,
extended to rank 4 with leading 1s, the row-major stride of every dimension, set to 0
where the operand has size 1 and the output does not: that index then reads the same value
again, which is the broadcast. PRELU (reference/prelu.h BroadcastPrelu4DSlow) always takes
the four loops. Broadcasting ops of rank above 4 are refused when the model is prepared
(minitiny/quant/kernels/common.py binary_operands); equal shapes of any rank run flat.

A constant operand (Keras' Rescaling multiplies and adds constants; PRELU's alpha) becomes a
`static const int8_t` array in flash with its own shape in the C type.
"""
import numpy as np

from .names import c_comment

# op kind -> the roles of its inputs, in order (the C names the constant NAME_<role>)
ROLES = {"add": ("input1", "input2"), "sub": ("input1", "input2"), "mul": ("input1", "input2"),
         "maximum": ("input1", "input2"), "minimum": ("input1", "input2"),
         "squared_difference": ("input1", "input2"), "prelu": ("input", "alpha")}
# the per-element function of each binary kind, passed to the shared loop
FUNCTIONS = {"add": "AddFunc", "sub": "SubFunc", "mul": "MulFunc", "maximum": "MaximumFunc",
             "minimum": "MinimumFunc", "squared_difference": "SquaredDifferenceFunc"}
RANK = 4


def strides(shape, output_shape):
    """The operand's stride along each of the output's 4 dimensions (NdArrayDesc), 0 where
    it is stretched: shape and output_shape are TFLite's (batch included), rank <= 4."""
    dims = (1,) * (RANK - len(shape)) + tuple(shape)
    out = (1,) * (RANK - len(output_shape)) + tuple(output_shape)
    row_major = [int(np.prod(dims[d + 1:], dtype=np.int64)) for d in range(RANK)]
    return [0 if dims[d] == 1 and out[d] != 1 else row_major[d] for d in range(RANK)]


def loops(shape):
    """The broadcast as few nested loops as it takes, for the tuned kernels
    (templates/scalar/elementwise.c.j2): [(extent, stride1, stride2), ...], outermost first,
    each operand read at index sum(i_k * stride_k). Dimensions of size 1 are dropped, and a
    dimension is merged into the one inside it when both operands step through the two as
    through one (each contiguous across them, or stretched along both): the loops then visit
    the same values in the same order. Operands of the output's shape give one flat loop."""
    merged = []
    for extent, s1, s2 in zip(shape["output_dims"], shape["input1_strides"], shape["input2_strides"]):
        if extent == 1:
            continue
        if merged:
            outer_extent, o1, o2 = merged[-1]
            if o1 == s1 * extent and o2 == s2 * extent:       # contiguous (or 0 = 0 * extent)
                merged[-1] = (outer_extent * extent, s1, s2)
                continue
        merged.append((extent, s1, s2))
    return merged or [(1, 0, 0)]


def layer_context(kind, p, qmodel, op):
    """{"loop", "function", "shape", "constant"} for the templates: the loop that runs the
    layer, the per-element function, the broadcast (None when the loop is flat) and the
    constant operand (None when both are activations)."""
    size = int(p["size"])
    shapes = (p["input1_shape"], p["input2_shape"])
    flat = kind != "prelu" and all(int(np.prod(s, dtype=np.int64)) == size for s in shapes)
    shape = None
    if not flat:
        output = (1,) * (RANK - len(p["output_shape"])) + tuple(p["output_shape"])
        shape = {"output_dims": list(output), "input1_strides": strides(shapes[0], p["output_shape"]),
                 "input2_strides": strides(shapes[1], p["output_shape"])}
    constant = None
    for role, name, is_constant in zip(ROLES[kind], op.inputs, (p["input1_constant"], p["input2_constant"])):
        if is_constant:
            t = qmodel.tensors[name]
            dims = t.shape or (1,)                     # a scalar constant is an array of one
            data = np.asarray(t.data).reshape(dims)
            # its own type: the activations' (int8, or int16 in 16x8), but a 16x8 PRELU's alpha int8
            constant = {"role": role, "label": c_comment(t.name), "dims": dims, "data": data,
                        "c_type": f"{t.dtype}_t", "nbytes": t.nbytes, "scale": float(t.scale),
                        "zero_point": int(t.zero_point)}
    loop = None if kind == "prelu" else "ElementWise" if flat else "BroadcastBinaryFunction4DSlow"
    nest = loops(shape) if shape else [(size, 1, 1)]
    return {"loop": loop, "function": FUNCTIONS.get(kind), "shape": shape, "constant": constant,
            "loops": nest}
