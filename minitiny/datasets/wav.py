"""RIFF/WAVE files with PCM samples: the container every microphone demo starts from.

A WAV file is a RIFF file: a 12-byte header, then chunks, all little-endian.

    "RIFF" <u32 size of the rest> "WAVE"
    then chunks: <4-byte id> <u32 size> <size bytes> (+1 pad byte if size is odd)

Two chunks matter (others, such as LIST metadata, are skipped):

    "fmt "  u16 format    1 = PCM; 0xFFFE = WAVE_FORMAT_EXTENSIBLE, whose real format
                          code is the first 2 bytes of a GUID at offset 24 of the chunk
            u16 channels, u32 sample_rate, u32 byte_rate, u16 block_align (bytes per frame),
            u16 bits_per_sample
    "data"  the frames: each frame holds one sample per channel, interleaved (L R L R ...)

PCM 8-bit samples are unsigned (silence is 128); 16-bit samples are signed (silence is 0).
`read_wav` returns what `scipy.io.wavfile.read` returns for those: `(rate, samples)`,
samples `uint8` or `int16`, shape `(n,)` for mono and `(n, channels)` otherwise.
"""
import struct

import numpy as np

from .errors import DatasetError

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
FORMAT_NAMES = {0x0001: "PCM", 0x0002: "Microsoft ADPCM", 0x0003: "IEEE float",
                0x0006: "A-law", 0x0007: "mu-law", 0x0011: "IMA ADPCM", 0x0055: "MPEG Layer 3",
                0xFFFE: "extensible"}


def _chunks(data, where):
    """Yield (chunk_id, body) for each chunk after the 12-byte RIFF header."""
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8: pos + 8 + size]
        if len(body) < size:
            raise DatasetError(f"{where}: truncated WAV: chunk {cid!r} at byte {pos} declares "
                               f"{size} bytes, only {len(body)} remain")
        yield cid, body
        pos += 8 + size + (size & 1)               # chunks are padded to an even length


def _parse_fmt(body, where):
    if len(body) < 16:
        raise DatasetError(f"{where}: WAV 'fmt ' chunk is {len(body)} bytes, needs at least 16")
    fmt, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if fmt == WAVE_FORMAT_EXTENSIBLE:
        if len(body) < 26:
            raise DatasetError(f"{where}: WAV extensible 'fmt ' chunk is {len(body)} bytes, needs 26")
        fmt = struct.unpack_from("<H", body, 24)[0]  # first 2 bytes of the SubFormat GUID
    if fmt != WAVE_FORMAT_PCM:
        raise DatasetError(f"{where}: WAV format code 0x{fmt:04x} "
                           f"({FORMAT_NAMES.get(fmt, 'unknown')}) is not supported; "
                           f"only uncompressed PCM (0x0001) is")
    if bits not in (8, 16):
        raise DatasetError(f"{where}: {bits}-bit PCM is not supported; only 8 and 16 bits are")
    if channels == 0 or rate == 0:
        raise DatasetError(f"{where}: WAV header declares {channels} channels at {rate} Hz")
    if block_align != channels * bits // 8:
        raise DatasetError(f"{where}: WAV block_align {block_align} is not "
                           f"channels * bits / 8 = {channels * bits // 8}")
    return channels, rate, bits


def parse_wav(data, where="<bytes>"):
    """WAV bytes -> (sample_rate, samples); `where` names the file in errors."""
    data = bytes(data)
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise DatasetError(f"{where}: not a RIFF/WAVE file (starts {data[:12]!r}, "
                           f"expected b'RIFF', a size, b'WAVE')")
    fmt = frames = None
    for cid, body in _chunks(data, where):
        if cid == b"fmt " and fmt is None:
            fmt = _parse_fmt(body, where)
        elif cid == b"data" and frames is None:
            frames = body
    if fmt is None:
        raise DatasetError(f"{where}: WAV has no 'fmt ' chunk")
    if frames is None:
        raise DatasetError(f"{where}: WAV has no 'data' chunk")
    channels, rate, bits = fmt
    frame_bytes = channels * bits // 8
    if len(frames) % frame_bytes:
        raise DatasetError(f"{where}: WAV data is {len(frames)} bytes, not a whole number of "
                           f"{frame_bytes}-byte frames")
    samples = np.frombuffer(frames, dtype="u1" if bits == 8 else "<i2").astype(
        np.uint8 if bits == 8 else np.int16)       # native order, writable copy
    if channels > 1:
        samples = samples.reshape(-1, channels)    # (n, channels): one row per frame
    return rate, samples


def read_wav(path):
    """Read a PCM WAV file -> (sample_rate, samples) as `scipy.io.wavfile.read` does."""
    with open(path, "rb") as f:
        return parse_wav(f.read(), where=path)
