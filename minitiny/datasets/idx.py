"""The IDX format of MNIST and Fashion-MNIST, read in a few lines.

LeCun's description of the MNIST files defines it:

    offset  size          field
    0       2 bytes       0x00 0x00
    2       1 byte        type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                                0x0D float32, 0x0E float64
    3       1 byte        number of dimensions D
    4       4*D bytes     each dimension's size, a big-endian uint32
    4+4D    ...           the values, row-major (last index fastest), big-endian

So `train-images-idx3-ubyte` starts 00 00 08 03, then 60000, 28, 28; its labels file
starts 00 00 08 01, then 60000. The magic number is the first four bytes read as one
big-endian int: 2051 for the images, 2049 for the labels.
"""
import numpy as np

from .errors import DatasetError

# type byte -> big-endian NumPy dtype
IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def parse_idx(data, where="<bytes>"):
    """IDX bytes -> a NumPy array in native byte order; `where` names the file in errors."""
    data = bytes(data)
    if len(data) < 4:
        raise DatasetError(f"{where}: too short for an IDX header ({len(data)} bytes, need 4)")
    if data[0] != 0 or data[1] != 0:
        raise DatasetError(f"{where}: bad IDX magic number 0x{data[:4].hex()} "
                           f"(an IDX file starts with two zero bytes)")
    type_code, ndim = data[2], data[3]
    if type_code not in IDX_TYPES:
        raise DatasetError(f"{where}: unknown IDX type byte 0x{type_code:02x} "
                           f"(known: {', '.join(f'0x{t:02x}' for t in IDX_TYPES)})")
    if ndim == 0:
        raise DatasetError(f"{where}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{where}: truncated IDX header ({len(data)} bytes, "
                           f"{ndim} dimensions need {header})")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_TYPES[type_code]
    expected = dtype.itemsize * int(np.prod(shape, dtype=object))   # Python ints: no overflow
    got = len(data) - header
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise DatasetError(f"{where}: IDX data {what}: shape {shape} of {dtype.name} needs "
                           f"{expected} bytes after the header, the file has {got}")
    if int(np.prod([d or 1 for d in shape], dtype=object)) * dtype.itemsize > np.iinfo(np.intp).max:
        # a zero dimension makes the data empty, but NumPy still refuses such a shape
        raise DatasetError(f"{where}: IDX dimensions {shape} are too large for any array")
    try:
        array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    except ValueError as e:     # more dimensions than a NumPy array has (32; 64 from NumPy 2)
        raise DatasetError(f"{where}: IDX header declares {ndim} dimensions, more than a NumPy "
                           f"array can have ({e})") from None
    return array.astype(dtype.newbyteorder("="))     # native byte order, and a writable copy
