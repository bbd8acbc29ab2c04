"""allocator.heap_reuse keeps freed memory with the process, so a training step does not
fault its arrays in afresh. The oracle is the kernel's count of the process's resident
pages (/proc/self/statm) before and after NumPy frees a 64 MB array."""
import os

import numpy as np
import pytest

from minitiny import allocator

pytestmark = pytest.mark.skipif(allocator._libc is None or not os.path.exists("/proc/self/statm"),
                                reason="glibc on Linux only")

MB64 = 64 << 20          # above glibc's largest adaptive mmap threshold (32 MB)


def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def returned_on_free():
    """Bytes the process gives back to the OS when a written 64 MB array is freed."""
    a = np.ones(MB64, np.uint8)
    before = resident()
    del a
    return before - resident()


def test_outside_fit_a_freed_big_block_goes_back_to_the_os():
    assert returned_on_free() > MB64 * 0.9


def test_inside_heap_reuse_freed_memory_stays():
    with allocator.heap_reuse():
        assert returned_on_free() < MB64 * 0.1
    assert returned_on_free() > MB64 * 0.9      # restored on the way out


def test_leaving_heap_reuse_hands_the_kept_memory_back():
    with allocator.heap_reuse():
        a = np.ones(MB64, np.uint8)
        del a
        inside = resident()
    assert inside - resident() > MB64 * 0.9


def test_nested_and_failing_uses_restore_once():
    with pytest.raises(RuntimeError):
        with allocator.heap_reuse():
            with allocator.heap_reuse():
                pass
            assert returned_on_free() < MB64 * 0.1    # the outer one still holds
            raise RuntimeError("a step failed")
    assert allocator._users == 0
    assert returned_on_free() > MB64 * 0.9


def test_fit_runs_inside_heap_reuse():
    import minitiny as mt
    seen = []

    class Probe(mt.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(allocator._users)
    model = mt.Sequential([mt.layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((4, 2)), np.zeros(4), epochs=1, verbose=0, callbacks=[Probe()])
    assert seen and all(u == 1 for u in seen) and allocator._users == 0
