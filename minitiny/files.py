"""Writing files so that a crash never leaves half of one, nor a folder of two versions.

Every file minitiny writes (models, generated C, reports, plots, data caches) goes through
here.

A file is written to a temporary name in the same folder, flushed to disk, then renamed
over the target with `os.replace`. A reader sees the old file or the new one, never a torn
one, because a rename within one file system is atomic (POSIX rename(2); Windows MoveFileEx).

A folder (generated C: the .h, the .c and the manifest must be of one model) is built
whole beside the target, the files of the old folder that it does not replace carried over
as hard links, then swapped in by two renames while holding a lock on the parent folder:

    1. target                  -> .target.PID-XXXX.old    the old folder, kept aside
    2. .target.PID-XXXX.tmp    -> target                  the new one: the write happens here
    3. .target.PID-XXXX.old    removed

A kill -9 can leave nothing torn: before step 2 `target` is the old folder, or (between
steps 1 and 2) missing with the old folder beside it; from step 2 on it is the new folder.
The next write to the same place, or `recover` (which reading a generated folder calls when
it is missing), puts a folder kept aside back when the target is missing (a write that did
not reach step 2 did not happen) and removes what the interrupted write left.

Temporary names carry the writer's process id (`.NAME.PID-XXXX.tmp`). One whose writer
process is gone is stale (a kill -9 leaves it behind, up to the size of the file it was
writing); the next write to the same place removes it and says so on stderr. Temporary
files of the older naming (`.NAME.XXXXXXXX.tmp`, no process id) count as stale once they
are an hour old.

mkstemp and mkdtemp create 0600 files and 0700 folders; the results get the ordinary
0644 / 0755 modes, so a model or a cache written by one user is readable like any file.
"""
import contextlib
import os
import re
import shutil
import sys
import tempfile
import time

try:
    import fcntl                        # POSIX: the swap of a folder holds a lock
except ImportError:                     # Windows: no lock (nor stale detection by process id)
    fcntl = None

FILE_MODE, FOLDER_MODE = 0o644, 0o755
LEGACY_STALE_SECONDS = 3600            # temporary names without a process id: stale after this


# -- temporary names, and which of them an interrupted write left ----------------------------
def _temp_prefix(target):
    """'.NAME.PID-': the start of every temporary name of this process for `target`."""
    return f".{os.path.basename(target)}.{os.getpid()}-"


def _writer_gone(pid):
    """True when no process `pid` exists (its temporary files are stale)."""
    if os.name != "posix":
        return False                    # os.kill(pid, 0) would terminate it on Windows
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)                 # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:                     # exists, owned by someone else
        return False
    return False


def _leftovers(target):
    """[(path, 'tmp' | 'old')] beside `target` that an interrupted write left: our names
    whose writer process is gone, and temporary files of the older naming over an hour old."""
    folder, base = os.path.split(target)
    ours = re.compile(re.escape(f".{base}.") + r"(\d+)-[a-z0-9_]+\.(tmp|old)")
    legacy = re.compile(re.escape(f".{base}.") + r"[a-z0-9_]{8}\.tmp")    # mkstemp's names
    found = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return found
    for entry in entries:
        m = ours.fullmatch(entry.name)
        if m and _writer_gone(int(m.group(1))):
            found.append((entry.path, m.group(2)))
        elif not m and legacy.fullmatch(entry.name):
            try:
                if time.time() - entry.stat(follow_symlinks=False).st_mtime > LEGACY_STALE_SECONDS:
                    found.append((entry.path, "tmp"))
            except FileNotFoundError:
                pass
    return found


def _size(path):
    if not os.path.isdir(path) or os.path.islink(path):
        return os.lstat(path).st_size
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(path) for f in fs)


def _remove(path):
    """Remove a file or folder that may already be gone; -> bytes freed."""
    try:
        size = _size(path)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
        return size
    except FileNotFoundError:
        return 0


def _say(message):
    print(f"minitiny: {message}", file=sys.stderr, flush=True)


def recover(target):
    """Undo what interrupted writes to `target` left beside it: a folder kept aside while the
    target is missing is put back, stale temporary files and folders are removed, and each
    is said on stderr. Returns the paths removed. Called before every write to `target`."""
    target = os.path.abspath(os.fspath(target))
    with _locked(os.path.dirname(target)):
        leftovers = _leftovers(target)
        kept_aside = [p for p, kind in leftovers if kind == "old"]
        if kept_aside and not os.path.lexists(target):
            newest = max(kept_aside, key=os.path.getmtime)
            os.rename(newest, target)
            leftovers.remove((newest, "old"))
            _say(f"{target}: restored the previous version, which an interrupted write had "
                 f"moved aside to {os.path.basename(newest)}")
        removed, freed = [], 0
        for path, _ in leftovers:
            freed += _remove(path)
            removed.append(path)
        if removed:
            _say(f"{target}: removed {len(removed)} stale temporary "
                 f"{'file' if len(removed) == 1 else 'files'} ({freed:,} bytes) that interrupted "
                 f"writes left: {', '.join(os.path.basename(p) for p in removed[:3])}"
                 f"{', ...' if len(removed) > 3 else ''}")
        return removed


@contextlib.contextmanager
def _locked(folder):
    """An exclusive lock on `folder` (flock on the folder itself: no lock file to leave)."""
    fd = None
    if fcntl is not None:
        try:
            fd = os.open(folder, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:                 # a file system without flock: go on unlocked
            if fd is not None:
                os.close(fd)
            fd = None
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)                # closing releases the lock


def _fsync_folder(folder):
    """Make renames in `folder` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())


# -- one file --------------------------------------------------------------------------------
def atomic_write(path, data):
    """Write `data` to `path` atomically; `data` is bytes, str (UTF-8) or a function f(file)
    that writes to a binary file object (e.g. `lambda f: np.savez(f, **arrays)`)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    recover(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=_temp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


# -- one folder ------------------------------------------------------------------------------
def atomic_folder(target, files):
    """Write {relative path: bytes | str | function(path)} as the folder `target`, all or
    nothing: the new folder holds these files plus those of the old folder it does not
    replace, and appears at `target` in one rename (see the top of this file)."""
    target = os.path.realpath(os.fspath(target))     # a link to a folder: replace the folder
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    if os.path.lexists(target) and not os.path.isdir(target):
        raise NotADirectoryError(f"{target}: exists and is not a folder")
    recover(target)
    tmp = tempfile.mkdtemp(prefix=_temp_prefix(target), suffix=".tmp", dir=parent)
    try:
        for rel, data in files.items():
            path = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if callable(data):
                data(path)
            else:
                _write_bytes(path, data)
            os.chmod(path, FILE_MODE)
        for folder, _, _ in os.walk(tmp):
            os.chmod(folder, FOLDER_MODE)
        _swap_in(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)       # gone already unless the write failed
    return target


def _swap_in(new, target):
    """Steps 1-3 of the top of this file, under the parent folder's lock."""
    parent = os.path.dirname(target)
    old = new[:-len(".tmp")] + ".old"
    with _locked(parent):
        try:
            if os.path.isdir(target):
                _carry_over(target, new)
                os.rename(target, old)                    # 1. the old folder aside
            os.rename(new, target)                        # 2. the new one in place
            _fsync_folder(parent)
        finally:
            if os.path.isdir(old) and not os.path.lexists(target):
                os.rename(old, target)                    # interrupted between 1 and 2
            _remove(old)                                  # 3.


def _carry_over(old, new):
    """Hard-link (or copy) into `new` every file of `old` that `new` does not have."""
    for folder, dirs, names in os.walk(old):
        rel_folder = os.path.relpath(folder, old)
        for name in dirs + names:
            src = os.path.join(folder, name)
            dst = os.path.normpath(os.path.join(new, rel_folder, name))
            if os.path.islink(src):
                if not os.path.lexists(dst):
                    os.symlink(os.readlink(src), dst)
            elif name in dirs:
                os.makedirs(dst, exist_ok=True)
            elif not os.path.lexists(dst):
                try:
                    os.link(src, dst)
                except OSError:                           # no hard links here: copy
                    shutil.copy2(src, dst)
