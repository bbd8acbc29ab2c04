"""The `.ts` text format of the UEA/UCR time-series archive (as used by aeon and sktime).

A header of `@keyword value` lines, then `@data`, then one case per line:

    # comments start with '#'
    @problemName BasicMotions
    @timeStamps false            (true: values are '(time,value)' pairs; not supported here)
    @missing false               ('?' marks a missing value; read as NaN)
    @univariate false
    @dimensions 6                (also spelled @dimension)
    @equalLength true
    @seriesLength 100            (only when equalLength is true)
    @classLabel true Standing Running Walking Badminton
    @data
    0.07,0.07,-0.9,...:0.39,0.39,...:...:Standing

On a data line the dimensions (channels) are separated by ':' and the values by ','; when
`@classLabel true`, the last ':'-field is the label, one of those the header lists.
Keywords are matched case-insensitively (the archive has both @timeStamps and @timestamps).
"""
from dataclasses import dataclass, field

import numpy as np

from .errors import DatasetError


@dataclass
class TsData:
    problem_name: str
    series: list                    # one (n_dims, length_i) float64 array per case
    labels: list                    # one str per case (empty if the file has no labels)
    class_labels: tuple             # the labels the header declares, in its order
    header: dict = field(default_factory=dict)   # every @keyword, lower-cased -> its value text

    def to_array(self, where="<ts>"):
        """Equal-length series stacked channels-last: (n_cases, length, n_dims) float32."""
        lengths = {s.shape[1] for s in self.series}
        if len(lengths) != 1:
            raise DatasetError(f"{where}: series lengths differ ({min(lengths)}..{max(lengths)}); "
                               f"pad them or keep them as a list")
        return np.stack(self.series).transpose(0, 2, 1).astype(np.float32)


def _bool(value, keyword, where, line_no):
    v = value.strip().lower()
    if v not in ("true", "false"):
        raise DatasetError(f"{where}:{line_no}: @{keyword} must be true or false, got {value!r}")
    return v == "true"


def _int(value, keyword, where, line_no):
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 1:
        raise DatasetError(f"{where}:{line_no}: @{keyword} must be a positive integer, got {value!r}")
    return n


def _parse_header(lines, where):
    """Read '@keyword value' lines up to @data -> (header dict, index of the first data line)."""
    header = {}
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise DatasetError(f"{where}:{i + 1}: data before @data: {line[:40]!r}")
        keyword, _, value = line[1:].partition(" ")
        keyword = keyword.lower()
        if keyword == "data":
            return header, i + 1
        header[keyword] = (value.strip(), i + 1)
    raise DatasetError(f"{where}: no @data line: not a .ts file, or truncated in its header")


def parse_ts(data, where="<bytes>"):
    """`.ts` text (bytes or str) -> TsData; `where` names the file in errors."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, (bytes, bytearray)) else data
    lines = text.splitlines()
    header, first = _parse_header(lines, where)

    def flag(keyword, default):
        if keyword not in header:
            return default
        return _bool(header[keyword][0], keyword, where, header[keyword][1])

    if flag("timestamps", False):
        raise DatasetError(f"{where}: @timeStamps true (time,value) series are not supported")
    has_labels, class_labels = False, ()
    if "classlabel" in header:
        value, line_no = header["classlabel"]
        first_word, *rest = value.split() or [""]
        has_labels = _bool(first_word, "classLabel", where, line_no)
        class_labels = tuple(rest)
        if has_labels and not class_labels:
            raise DatasetError(f"{where}:{line_no}: @classLabel true lists no labels")
    n_dims = None
    for keyword in ("dimensions", "dimension"):
        if keyword in header:
            n_dims = _int(header[keyword][0], keyword, where, header[keyword][1])
    if flag("univariate", False):
        if n_dims not in (None, 1):
            raise DatasetError(f"{where}: @univariate true but @dimensions {n_dims}")
        n_dims = 1
    length = None
    if flag("equallength", False) and "serieslength" in header:
        length = _int(header["serieslength"][0], "seriesLength", where, header["serieslength"][1])

    series, labels = [], []
    for i in range(first, len(lines)):
        line, line_no = lines[i].strip(), i + 1
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if has_labels:
            label = fields.pop().strip()
            if label not in class_labels:
                raise DatasetError(f"{where}:{line_no}: class label {label[:40]!r} is not one of "
                                   f"the declared {class_labels}")
            labels.append(label)
        if not fields:
            raise DatasetError(f"{where}:{line_no}: a case with a label but no values")
        if n_dims is not None and len(fields) != n_dims:
            raise DatasetError(f"{where}:{line_no}: {len(fields)} dimensions, the header "
                               f"declares {n_dims}")
        try:
            dims = [[float(v) for v in f.replace("?", "nan").split(",")] for f in fields]
        except ValueError as e:
            raise DatasetError(f"{where}:{line_no}: not a number: {e}") from None
        n = len(dims[0])
        if any(len(d) != n for d in dims):
            raise DatasetError(f"{where}:{line_no}: dimensions of one case have different "
                               f"lengths {sorted({len(d) for d in dims})}")
        if length is not None and n != length:
            raise DatasetError(f"{where}:{line_no}: series of length {n}, the header "
                               f"declares @seriesLength {length}")
        if n_dims is None:
            n_dims = len(fields)                   # the first case fixes it for the rest
        series.append(np.array(dims, dtype=np.float64))   # (n_dims, length)
    if not series:
        raise DatasetError(f"{where}: no cases after @data")
    name = header.get("problemname", ("", 0))[0]
    return TsData(name, series, labels, class_labels, {k: v for k, (v, _) in header.items()})
