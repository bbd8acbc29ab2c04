"""Writing files so that a crash never leaves half of one.

Every file minitiny writes (models, generated C, reports, plots, data caches) goes through
here: write to a temporary name in the same folder, flush it to disk, then `os.replace` it
over the target. A reader sees the old file or the new one, never a torn one, because a
rename within one file system is atomic (POSIX rename(2); Windows MoveFileEx).

mkstemp and mkdtemp create 0600 files and 0700 folders; the results get the ordinary
0644 / 0755 modes, so a model or a cache written by one user is readable like any file.
"""
import os
import shutil
import tempfile

FILE_MODE, FOLDER_MODE = 0o644, 0o755


def atomic_write(path, data):
    """Write `data` to `path` atomically; `data` is bytes, str (UTF-8) or a function f(file)
    that writes to a binary file object (e.g. `lambda f: np.savez(f, **arrays)`)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
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


def atomic_folder(target, files):
    """Write {relative path: bytes | str | function(path)} as the folder `target`.

    A new folder is built beside `target` and renamed into place, so it appears whole; when
    `target` exists already (re-running over one's own output), each file is replaced
    atomically and other files in it are left alone.
    """
    target = os.path.abspath(os.fspath(target))
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(target) + ".", dir=parent)
    try:
        for rel, data in files.items():
            path = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if callable(data):
                data(path)
            else:
                with open(path, "wb") as f:
                    f.write(data.encode("utf-8") if isinstance(data, str) else data)
            os.chmod(path, FILE_MODE)
        for folder, _, _ in os.walk(tmp):
            os.chmod(folder, FOLDER_MODE)
        if not os.path.exists(target):
            try:
                os.rename(tmp, target)           # the whole folder appears at once
                return target
            except OSError:                      # lost a race: someone made it meanwhile
                os.makedirs(target, exist_ok=True)
        for rel in files:
            dst = os.path.join(target, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.replace(os.path.join(tmp, rel), dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
