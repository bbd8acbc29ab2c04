"""DEPTH_TO_SPACE and SPACE_TO_DEPTH: blocks of pixels moved between the plane and the channels.

With block size b, DEPTH_TO_SPACE turns (H, W, C) into (H b, W b, C / b^2): output pixel
(out_y, out_x) takes its channels from input pixel (out_y / b, out_x / b), at the channel
group of its place in the block:
    in_channel = out_channel + ((out_y % b) * b + out_x % b) * C_out
SPACE_TO_DEPTH is the inverse, (H, W, C) -> (H / b, W / b, C b^2):
    out_channel = in_channel + ((in_y % b) * b + in_x % b) * C_in
Bytes move, values do not change; the output keeps the input's quantization.
TFLM: micro/kernels/depth_to_space.cc, space_to_depth.cc (Prepare: rank 4, the sizes
divisible), reference depth_to_space.h and space_to_depth.h (Eval).
"""
from .common import fail, input_and_output, same_quantization, size

KINDS = ("depth_to_space", "space_to_depth")
INPUTS = (1, 1)


def prepare(op, tensors, single_rounding):
    x, out = input_and_output(op, tensors)
    same_quantization(op, x, out)
    b = op.options.get("block_size")
    if not isinstance(b, int) or b < 1:
        fail(op, f"block_size must be an integer >= 1, got {b!r}")
    if len(x.shape) != 3:
        fail(op, f"input {x.name!r} must be (H, W, C), got shape {x.shape}")
    h, w, c = x.shape
    if op.kind == "depth_to_space":
        if c % (b * b):
            fail(op, f"input depth {c} is not divisible by block_size^2 = {b * b}")
        want = (h * b, w * b, c // (b * b))
    else:
        if h % b or w % b:
            fail(op, f"input height {h} and width {w} must be divisible by block_size {b}")
        want = (h // b, w // b, c * b * b)
    if out.shape != want:
        fail(op, f"output {out.name!r} has shape {out.shape}, block_size {b} makes {x.shape} {want}")
    return dict(block_size=b, in_h=h, in_w=w, in_c=c, out_h=want[0], out_w=want[1], out_c=want[2],
                size=size(out), macs=0)


def run(op, p, x):
    n, b = x.shape[0], p["block_size"]
    h, w, c = p["in_h"], p["in_w"], p["in_c"]
    if op.kind == "depth_to_space":               # channel = (dy, dx, out_channel)
        blocks = x.reshape(n, h, w, b, b, c // (b * b))
        return blocks.transpose(0, 1, 3, 2, 4, 5).reshape(n, h * b, w * b, c // (b * b))
    blocks = x.reshape(n, h // b, b, w // b, b, c)  # (y, dy, x, dx, channel)
    return blocks.transpose(0, 1, 3, 2, 4, 5).reshape(n, h // b, w // b, c * b * b)
