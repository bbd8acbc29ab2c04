"""A performance note, not autodiff: how training keeps its memory warm.

A training step allocates its activations, im2col matrices and gradients afresh (a few MB
for a small CNN, hundreds of MB for a 150x150 image CNN) and frees them when the next step
starts. glibc's malloc (mallopt(3)) serves every block above M_MMAP_THRESHOLD with mmap
and returns it to the OS on free, and trims freed heap memory above M_TRIM_THRESHOLD; the
next step then page-faults the same amount in again, zeroed by the kernel, before NumPy
writes a single value. That costs about as much as the arithmetic of a layer.

* At import, freeing one 16 MB block raises glibc's adaptive thresholds (they follow the
  largest block freed, up to 32 MB), so blocks below that size come from the heap.
* `heap_reuse()` goes further for the duration of `fit`: no mmap at all (M_MMAP_MAX = 0)
  and no trimming, so every step reuses the pages the previous step freed. On leaving it
  restores glibc's defaults and hands the freed memory back (malloc_trim).

Elsewhere than glibc (macOS, Windows, musl) both are no-ops.
"""
import contextlib
import ctypes
import sys
import threading

import numpy as np

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4           # <malloc.h>
_DEFAULT_TRIM_THRESHOLD, _DEFAULT_MMAP_MAX = 128 * 1024, 65536
_KEEP_ALL = 2 ** 31 - 1                           # mallopt takes an int


def _glibc():
    """glibc's mallopt and malloc_trim, or None on another C library."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes, libc.malloc_trim.argtypes = [ctypes.c_int, ctypes.c_int], \
            [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


_libc = _glibc()
_lock = threading.Lock()
_users = 0                # fits running now (threads): the last one out restores


@contextlib.contextmanager
def heap_reuse():
    """Inside: freed memory stays with the process and big blocks come from the heap."""
    global _users
    if _libc is None:
        yield
        return
    with _lock:
        if _users == 0:
            _libc.mallopt(_M_MMAP_MAX, 0)
            _libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_ALL)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                _libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
                _libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
                _libc.malloc_trim(0)


def warm_up():
    """Raise glibc's adaptive thresholds once (module docstring). Elsewhere a harmless
    16 MB allocation."""
    np.empty(16 << 20, np.uint8)
