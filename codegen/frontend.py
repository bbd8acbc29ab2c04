"""The audio front end as C99, bit-exact with minitiny/audio.py; and PCM -> class in one call.

    from minitiny import audio, codegen
    from minitiny.codegen import frontend
    frontend.generate_frontend(audio.FrontendConfig(), "build/kws", name="kws")
        # -> kws_frontend.h, kws_frontend.c
    fe = frontend.load_frontend("build/kws", "kws")       # compiled on the host (cffi)
    fe(pcm_int16)                                        # == audio.features(pcm), bit for bit

    frontend.generate_pipeline(cfg, qmodel, "build/kws", name="kws")
        # -> build/kws/kws_frontend.{h,c}, kws_pcm_model.{h,c}, kws_pcm_manifest.json
        #    build/kws/kws_net/: the model, as minitiny.codegen.generate writes it
    run = frontend.load_pipeline("build/kws", "kws")
    run(pcm_int16)                                       # == qmodel.predict_int8(audio.features(pcm))

How. `audio.tables(cfg)` computes every constant (window, twiddles, bit reversal, mel
weights, the log table); this file only formats them into templates/audio_frontend.c.j2.
The pipeline file `NAME_pcm_model.c` follows the model contract (NAME_pcm_invoke takes int8
and gives int8: the clip's bytes, little-endian as in a WAV file), so the firmware harness
can run it; it needs three C files linked together (pipeline, front end, model), listed in
NAME_pcm_manifest.json under "sources".
"""
import json
import os

import numpy as np

from . import loader
from .generator import generate
from .output import GENERATOR, write_atomically
from .templating import environment as template_environment
from .names import c_identifier, c_macro_prefix

TEMPLATE = "audio_frontend.c.j2"


class FrontendCodegenError(ValueError):
    """The front end or the pipeline cannot be generated: says what does not fit."""


def _config_text(cfg):
    return ", ".join(f"{k}={getattr(cfg, k)}" for k in cfg.__dataclass_fields__)


def _context(cfg, prefix):
    from minitiny import __version__, audio
    t = audio.tables(cfg)
    edges = audio.mel_to_hz(np.linspace(audio.hz_to_mel(cfg.fmin), audio.hz_to_mel(cfg.fmax),
                                        cfg.n_mels + 2))
    table_bytes = (2 * (cfg.frame_length + cfg.frame_length)                 # window, twiddles
                   + (1 if cfg.frame_length <= 256 else 2) * cfg.frame_length  # bit reversal
                   + 2 * 3 * cfg.n_mels + 2 * len(t.mel_weights_q15) + 4 * len(t.log2_q16))
    return {"generator": f"{GENERATOR} {__version__}", "cfg": cfg, "t": t,
            "config_text": _config_text(cfg), "prefix": prefix, "PREFIX": c_macro_prefix(prefix),
            "feature_scale": cfg.feature_scale, "table_bytes": table_bytes,
            "index_type": "uint8_t" if cfg.frame_length <= 256 else "uint16_t",
            "log2_bits": audio.LOG2_TABLE_BITS, "fraction_bits": audio.FEATURE_FRACTION_BITS,
            "band_hz": [(edges[m], edges[m + 2]) for m in range(cfg.n_mels)]}


def _render(context, part):
    return template_environment().get_template(TEMPLATE).render(context, part=part)


def _prefix(name):
    return c_identifier(name, "kws", whole_name=False).lower()


def frontend_files(cfg, name="kws"):
    """{file name: C text} of the front end (nothing written)."""
    ctx = _context(cfg, _prefix(name))
    p = ctx["prefix"]
    return {f"{p}_frontend.h": _render(ctx, "frontend_h"), f"{p}_frontend.c": _render(ctx, "frontend_c")}


def generate_frontend(cfg, out_dir, name="kws"):
    """Write NAME_frontend.h and NAME_frontend.c into out_dir (atomically); return the paths."""
    files = frontend_files(cfg, name)
    out = write_atomically(out_dir, {k: v.encode() for k, v in files.items()})
    return [os.path.join(out, f) for f in sorted(files)]


def generate_pipeline(cfg, qmodel, out_dir, name="kws", variant="reference"):
    """Front end + model + the chaining file; returns the pipeline's manifest (a dict).
    `variant` is the model's kernel variant, as `generate` takes it.

    The model must take the front end's features: input shape (frames, mels) or
    (frames, mels, 1), quantized with scale 1/8 and zero point 0 (train it on
    audio.features(...) * cfg.feature_scale and put audio.CALIBRATION_EXTREMES into the
    representative data), so the int8 features go in unchanged.
    """
    p = _prefix(name)
    net = f"{p}_net"
    want = (cfg.n_frames, cfg.n_mels)
    x = qmodel.input
    if tuple(x.shape) not in (want, want + (1,)):
        raise FrontendCodegenError(f"model {qmodel.name!r} takes input {tuple(x.shape)}, but the "
                                   f"front end gives {want} (frames, mels)")
    if float(x.scale) != cfg.feature_scale or int(x.zero_point) != 0:
        raise FrontendCodegenError(
            f"model {qmodel.name!r} quantizes its input with scale {float(x.scale):.9g} and zero "
            f"point {int(x.zero_point)}; the front end's int8 features need scale "
            f"{cfg.feature_scale} and zero point 0: add audio.CALIBRATION_EXTREMES "
            f"({audio_extremes()}) to the representative data")
    g = generate(qmodel, os.path.join(out_dir, net), name=net, variant=variant)
    y = qmodel.output
    ctx = _context(cfg, p)
    ctx.update(pipeline=f"{p}_pcm", PIPELINE=c_macro_prefix(f"{p}_pcm"), net=g.name,
               NET=c_macro_prefix(g.name), output_size=int(np.prod(y.shape)),
               output_scale=float(y.scale), output_zero_point=int(y.zero_point))
    files = {f"{p}_frontend.h": _render(ctx, "frontend_h"), f"{p}_frontend.c": _render(ctx, "frontend_c"),
             f"{p}_pcm_model.h": _render(ctx, "pipeline_h"), f"{p}_pcm_model.c": _render(ctx, "pipeline_c")}
    manifest = {
        "name": f"{p}_pcm", "header": f"{p}_pcm_model.h", "source": f"{p}_pcm_model.c",
        "invoke": f"{p}_pcm_invoke", "input_shape": [2 * cfg.clip_samples],
        "output_shape": list(y.shape), "input": "int16 little-endian PCM bytes",
        "sample_rate": cfg.sample_rate, "frontend": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        # every C file the program needs, relative to this directory
        "sources": [f"{p}_pcm_model.c", f"{p}_frontend.c", f"{net}/{g.manifest['source']}"],
        "headers": [f"{p}_pcm_model.h", f"{p}_frontend.h", f"{net}/{g.manifest['header']}"],
        "model_dir": net,
    }
    files[f"{p}_pcm_manifest.json"] = json.dumps(manifest, indent=1) + "\n"
    write_atomically(out_dir, {k: v.encode() for k, v in files.items()})
    return manifest


def audio_extremes():
    from minitiny.audio import CALIBRATION_EXTREMES
    return CALIBRATION_EXTREMES


# ---- running the C on the host (cffi), for the bit-exact checks --------------------------
def _compile(out_dir, main_name, sources, headers, cdef):
    """Compile the listed files (paths relative to out_dir) into one shared library."""
    import cffi
    extra = {}
    for rel in list(sources) + list(headers):
        with open(os.path.join(out_dir, rel), "rb") as f:
            extra[os.path.basename(rel)] = f.read()
    main = {"name": main_name, "header": os.path.basename(headers[0]),
            "source": os.path.basename(sources[0])}
    cc = loader.default_compiler()
    path = loader.build(os.path.join(out_dir, os.path.dirname(sources[0])), main, cc,
                        loader.STRICT_FLAGS + loader.SHARED_FLAGS, "shared",
                        {k: v for k, v in extra.items() if k not in (main["header"], main["source"])})
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    return ffi, ffi.dlopen(path)


def _clips(pcm, n_samples):
    """(N, n_samples) or (n_samples,) int16 -> (contiguous (N, n_samples) int16, single?)."""
    pcm = np.ascontiguousarray(pcm, dtype=np.int16)
    single = pcm.ndim == 1
    pcm = pcm[None] if single else pcm
    if pcm.ndim != 2 or pcm.shape[1] != n_samples:
        raise ValueError(f"clips must have {n_samples} samples, got shape {pcm.shape}")
    return pcm, single


class CFrontend:
    """The generated front end compiled for the host: int16 clips -> int8 features."""

    def __init__(self, out_dir, name, cfg):
        self.cfg, p = cfg, _prefix(name)
        self.ffi, self.lib = _compile(out_dir, f"{p}_frontend", [f"{p}_frontend.c"], [f"{p}_frontend.h"],
                                      f"void {p}_frontend(const int16_t *pcm, int8_t *features);")
        self.run = getattr(self.lib, f"{p}_frontend")

    def __call__(self, pcm):
        pcm, single = _clips(pcm, self.cfg.clip_samples)
        out = np.empty((len(pcm),) + self.cfg.feature_shape, dtype=np.int8)
        for i in range(len(pcm)):
            self.run(self.ffi.from_buffer("int16_t[]", pcm[i]), self.ffi.from_buffer("int8_t[]", out[i]))
        return out[0] if single else out


def load_frontend(out_dir, name, cfg):
    return CFrontend(out_dir, name, cfg)


class CPipeline:
    """The generated pipeline compiled for the host: int16 clips -> int8 scores."""

    def __init__(self, out_dir, name):
        p = _prefix(name)
        with open(os.path.join(out_dir, f"{p}_pcm_manifest.json"), encoding="utf-8") as f:
            self.manifest = m = json.load(f)
        self.n_samples = m["input_shape"][0] // 2
        self.output_shape = tuple(m["output_shape"])
        self.ffi, self.lib = _compile(
            out_dir, m["name"], m["sources"], m["headers"],
            f"int {p}_pcm_invoke(const int8_t *input, int8_t *output);\n"
            f"int {p}_pcm_invoke_pcm(const int16_t *pcm, int8_t *output);")
        self.invoke = getattr(self.lib, f"{p}_pcm_invoke")
        self.invoke_pcm = getattr(self.lib, f"{p}_pcm_invoke_pcm")

    def __call__(self, pcm, as_bytes=False):
        """(N, clip) or (clip,) int16 -> int8 scores; as_bytes: through NAME_pcm_invoke,
        the little-endian byte entry point the firmware uses."""
        pcm, single = _clips(pcm, self.n_samples)
        out = np.empty((len(pcm), int(np.prod(self.output_shape))), dtype=np.int8)
        for i in range(len(pcm)):
            o = self.ffi.from_buffer("int8_t[]", out[i])
            if as_bytes:
                raw = np.ascontiguousarray(pcm[i].astype("<i2").view(np.int8))
                status = self.invoke(self.ffi.from_buffer("int8_t[]", raw), o)
            else:
                status = self.invoke_pcm(self.ffi.from_buffer("int16_t[]", pcm[i]), o)
            if status != 0:
                raise RuntimeError(f"{self.manifest['invoke']} returned {status}")
        out = out.reshape((len(pcm),) + self.output_shape)
        return out[0] if single else out


def load_pipeline(out_dir, name):
    return CPipeline(out_dir, name)
