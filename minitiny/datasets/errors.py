"""The two ways loading data can fail, kept apart so a caller can tell them apart.

* `DatasetError` (a `ValueError`): a file is there but wrong -- truncated, a bad magic
  number, a field out of range, a SHA-256 that does not match the pinned one. The message
  names the file and what is wrong.
* `DataMissingError` (a `FileNotFoundError`): the file is not in the cache. The message
  names the exact command that fetches it.
"""


class DatasetError(ValueError):
    """A data file is present but cannot be used (corrupt, truncated, wrong version)."""


class DataMissingError(FileNotFoundError):
    """A data set is not in the local cache; the message says how to fetch it."""
