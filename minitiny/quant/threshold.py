"""A detector's float decision threshold as an int8 constant: the int8 output from which it fires.

The generated C compares the int8 output with this constant (codegen's NAME_THRESHOLD_Q),
and minitiny.reporting.evaluation chooses the threshold; both call `threshold_to_int8`.
"""
import math

import numpy as np

from .graph import QTensor


class ThresholdError(ValueError):
    """A threshold no int8 output can express: says the threshold, scale and zero point."""


def threshold_to_int8(threshold, scale, zero_point):
    """The int8 constant t_q with  q >= t_q  <=>  dequantize(q) >= threshold  for every int8 q.

    dequantize(q) = scale * (q - zero_point) grows with q, so the detector fires on the top
    of the int8 range. In exact arithmetic t_q = ceil(zero_point + threshold / scale): round
    UP, because q must reach the threshold (rounding to nearest would fire half a step early).
    We do not trust that formula near a grid point: we dequantize all 256 values exactly as
    QModel.predict does (QTensor.dequantize, float32), compare each with the threshold in
    float64, and return the first that fires. Raises if no int8 output reaches the threshold.
    """
    threshold = float(threshold)
    if not math.isfinite(threshold):
        raise ThresholdError(f"threshold must be finite, got {threshold}")
    zp = int(np.asarray(zero_point).reshape(-1)[0]) if np.size(zero_point) == 1 else None
    if zp is None or np.size(scale) != 1:
        raise ThresholdError("threshold_to_int8 needs a per-tensor scale and zero point")
    if not -128 <= zp <= 127:
        raise ThresholdError(f"zero_point {zp} is outside int8 [-128, 127]")
    out = QTensor("output", (256,), "int8", np.float32(np.asarray(scale).reshape(())), np.int32(zp))
    q = np.arange(-128, 128)
    fires = out.dequantize(q).astype(np.float64) >= threshold
    if not fires.any():
        raise ThresholdError(f"threshold {threshold:.6g} is above the largest int8 output "
                             f"{float(out.dequantize(127)):.6g} (scale {float(out.scale):.6g}, zero point {zp}): "
                             "the detector could never fire")
    return int(q[np.argmax(fires)])
