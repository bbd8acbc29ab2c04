"""Preprocessing and augmentation layers against independent oracles.

Resizing: PyTorch's interpolate (bilinear with align_corners=False, and 'nearest-exact', the
half-pixel nearest rule tf.image.resize uses). The affine sampler of the random transforms:
scipy.ndimage.affine_transform (order=1; modes grid-constant, nearest, reflect, grid-wrap),
np.rot90 and np.flip. Gradients: finite differences. Deployment: the int8 model against the
float Keras-style model and against TFLite Micro.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitiny as mt
from gradcheck import gradcheck
from minitiny.preprocessing import affine_sample, resize, rotation_matrices
from minitiny.quant import tflm
from minitiny.quant.lower import LoweringError, lower

L = mt.layers
torch = pytest.importorskip("torch")
ndimage = pytest.importorskip("scipy.ndimage")
SCIPY_MODE = {"constant": "grid-constant", "nearest": "nearest", "reflect": "reflect",
              "wrap": "grid-wrap"}


# ---- Resizing ----------------------------------------------------------------------------------
@given(h=st.integers(1, 40), w=st.integers(1, 40), ho=st.integers(1, 90), wo=st.integers(1, 90),
       interpolation=st.sampled_from(["bilinear", "nearest"]), seed=st.integers(0, 2**16))
def test_resize_matches_torch(h, w, ho, wo, interpolation, seed):
    x = np.random.default_rng(seed).uniform(0, 255, (2, h, w, 3)).astype(np.float32)
    mode = {"bilinear": dict(mode="bilinear", align_corners=False),
            "nearest": dict(mode="nearest-exact")}[interpolation]
    want = torch.nn.functional.interpolate(torch.tensor(x).permute(0, 3, 1, 2), size=(ho, wo),
                                           **mode).permute(0, 2, 3, 1).numpy()
    got = L.Resizing(ho, wo, interpolation=interpolation)(x)
    assert got.shape == (2, ho, wo, 3)
    np.testing.assert_allclose(got.data, want, rtol=1e-5, atol=1e-3)   # float32 sums


def test_resize_gradient():
    x = np.random.default_rng(0).normal(size=(2, 5, 4, 2))
    gradcheck(lambda t: resize(t, (7, 3)), x)
    gradcheck(lambda t: resize(t, (2, 9), "nearest"), x)


# ---- the affine sampler ------------------------------------------------------------------------
@given(h=st.integers(1, 12), w=st.integers(1, 12), mode=st.sampled_from(sorted(SCIPY_MODE)),
       seed=st.integers(0, 2**16), scale=st.sampled_from([0.5, 1.0, 3.0, 30.0]))
def test_affine_sample_matches_scipy(h, w, mode, seed, scale):
    """Any matrix and shift (large ones sample far outside the image) against scipy."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1, h, w, 1))
    a, shift = rng.normal(size=(2, 2)) * scale, rng.normal(size=2) * scale * max(h, w)
    got = affine_sample(x, a[None], shift[None], mode, fill_value=0.7)[0, :, :, 0]
    c = np.array([(h - 1) / 2, (w - 1) / 2])
    want = ndimage.affine_transform(x[0, :, :, 0], a, offset=c - a @ c - shift, order=1,
                                    mode=SCIPY_MODE[mode], cval=0.7)
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_quarter_turn_is_rot90_and_sampler_gradient():
    x = np.random.default_rng(1).normal(size=(3, 6, 6, 2))
    turned = affine_sample(x, rotation_matrices(np.full(3, np.pi / 2)), np.zeros((3, 2)),
                           "constant")
    np.testing.assert_allclose(turned, np.rot90(x, axes=(1, 2)), atol=1e-12)  # counter-clockwise
    a = np.random.default_rng(2).normal(size=(3, 2, 2))
    for mode in SCIPY_MODE:
        gradcheck(lambda t: affine_sample(t, a, np.ones((3, 2)), mode, 0.5), x)


# ---- the random layers: training only, seeds, their distributions -------------------------------
def _images(n=64, size=8, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype(np.float32)


@pytest.mark.parametrize("layer", [
    lambda: L.RandomFlip(seed=3), lambda: L.RandomRotation(0.2, seed=3),
    lambda: L.RandomZoom(0.3, seed=3), lambda: L.RandomTranslation(0.2, 0.3, seed=3),
    lambda: L.RandomContrast(0.4, seed=3)])
def test_random_layers_act_in_training_only_and_follow_their_seed(layer):
    x = _images()
    model = mt.Sequential([L.Input(x.shape[1:]), layer()])
    assert np.array_equal(model.predict(x), x)                     # inference: the identity
    a = model(x, training=True).data
    assert not np.allclose(a, x)
    b = mt.Sequential([L.Input(x.shape[1:]), layer()])(x, training=True).data
    assert np.array_equal(a, b)                                     # same seed, same draws
    config = model.layers[0].get_config()
    clone = type(model.layers[0])(**{**config, "name": config["name"] + "_clone"})
    assert clone.get_config() == {**config, "name": config["name"] + "_clone"}


def test_random_flip_modes():
    x = _images(200)
    for mode, options in [("horizontal", [x, x[:, :, ::-1]]), ("vertical", [x, x[:, ::-1]]),
                          ("horizontal_and_vertical",
                           [x, x[:, :, ::-1], x[:, ::-1], x[:, ::-1, ::-1]])]:
        out = L.RandomFlip(mode, seed=0)(x, training=True).data
        which = np.array([[np.array_equal(out[i], o[i]) for o in options] for i in range(len(x))])
        assert which.any(axis=1).all()                       # each image is one of the flips
        counts = which.argmax(axis=1)
        assert np.bincount(counts, minlength=len(options)).min() > 200 / len(options) / 2


def test_random_rotation_angles_within_factor():
    """A blob at a known radius: its rotated centre of mass gives the angle drawn."""
    yy, xx = np.mgrid[:25, :25]
    blob = np.exp(-((yy - 12) ** 2 + (xx - 20) ** 2) / 3.0)     # 8 pixels right of the centre
    x = np.repeat(blob[None, :, :, None], 300, axis=0).astype(np.float32)
    out = L.RandomRotation((-0.1, 0.05), seed=0, fill_mode="constant")(x, training=True).data
    mass = out[..., 0].sum(axis=(1, 2))
    cy = (out[..., 0] * yy).sum(axis=(1, 2)) / mass
    cx = (out[..., 0] * xx).sum(axis=(1, 2)) / mass
    angles = np.arctan2(-(cy - 12), cx - 12) / (2 * np.pi)     # counter-clockwise, in turns
    assert angles.min() >= -0.1 - 0.005 and angles.max() <= 0.05 + 0.005
    assert angles.min() < -0.09 and angles.max() > 0.04          # the whole range is used


def test_random_translation_shifts_whole_pixels_with_constant_fill():
    """A shift drawn as whole pixels moves the image exactly (np.roll, filled with k)."""
    x = _images(40, 10)
    layer = L.RandomTranslation((0.2, 0.2), (-0.3, -0.3), seed=0, fill_mode="constant",
                                fill_value=5.0)
    out = layer(x, training=True).data                        # down 2 rows, left 3 columns
    want = np.full_like(x, 5.0)
    want[:, 2:, :-3] = x[:, :-2, 3:]
    np.testing.assert_allclose(out, want, atol=1e-4)


def test_random_zoom_out_shrinks_the_content():
    x = np.zeros((50, 33, 33, 1), np.float32)
    x[:, 16, 26] = 1.0                                         # 10 pixels right of the centre
    out = L.RandomZoom((1.0, 1.0), seed=0, interpolation="nearest",
                       fill_mode="constant")(x, training=True).data[..., 0]
    assert np.all(out[:, 16, 21] == 1.0)                       # zoom factor 2: 5 pixels out
    none = L.RandomZoom(0.0, seed=0)(x, training=True).data
    np.testing.assert_allclose(none, x, atol=1e-12)


def test_random_contrast_formula():
    x = _images(100)
    out = L.RandomContrast((0.3, 0.6), seed=0, value_range=(-1e9, 1e9))(x, training=True).data
    mean = x.mean(axis=(1, 2), keepdims=True)
    k = np.median(((out - mean) / (x - mean)).reshape(100, -1), axis=1)[:, None, None, None]
    np.testing.assert_allclose(out, (x - mean) * k + mean, atol=1e-3)         # one k per image
    assert k.min() >= 0.7 - 1e-4 and k.max() <= 1.6 + 1e-4
    clipped = L.RandomContrast(0.9, seed=0)(x, training=True).data
    assert clipped.min() >= 0 and clipped.max() <= 255


@pytest.mark.parametrize("make, message", [
    (lambda: L.RandomFlip("diagonal"), "mode must be one of"),
    (lambda: L.RandomZoom(1.5), "height_factor must lie in"),
    (lambda: L.RandomContrast(-0.2), "factor must lie in"),
    (lambda: L.RandomRotation(0.1, fill_mode="mirror"), "fill_mode must be one of"),
    (lambda: L.RandomTranslation(0.1, (0.3, 0.1)), "lower <= upper"),
    (lambda: L.Resizing(8, 8, crop_to_aspect_ratio=True), "crop_to_aspect_ratio"),
    (lambda: L.Rescaling([1, 2, 3]), "per-channel scale"),
    (lambda: L.RandomFlip(seed=-1), "seed must be"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_image_layers_want_images():
    with pytest.raises(ValueError, match=r"expects input \(N, H, W, C\)"):
        mt.Sequential([L.Input((10,)), L.RandomFlip()])


# ---- deployment: augmentations vanish, Rescaling folds into the weights -------------------------
def _augmented_cnn(offset, padding):
    mt.random.seed(0)
    model = mt.Sequential([
        L.Input((9, 9, 3)), L.RandomFlip("horizontal", seed=1), L.RandomRotation(0.1, seed=2),
        L.Rescaling(1 / 127.5, offset=offset), L.MaxPooling2D(), L.Conv2D(4, 3, padding=padding),
        L.RandomContrast(0.2), L.BatchNormalization(), L.ReLU(), L.Flatten(), L.Dense(3, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    x = _images(48, 9)
    model.fit(x, np.arange(48) % 3, epochs=2, verbose=0)
    return model, x


@pytest.mark.parametrize("offset, padding", [(0.0, "same"), (-1.0, "valid")])
def test_rescaling_folds_and_augmentations_vanish(offset, padding):
    model, x = _augmented_cnn(offset, padding)
    graph = lower(model)
    kinds = [op.kind for op in graph.ops]
    assert kinds == ["max_pool_2d", "conv_2d", "reshape", "fully_connected", "softmax"]
    # the float op graph reads the raw pixels and computes what the model computes
    np.testing.assert_allclose(graph.run(x)[graph.output], model.predict(x), atol=1e-5)
    q = mt.quantize(model, x)
    assert q.input.shape == (9, 9, 3)
    assert abs(float(q.input.scale) - 1.0) < 0.01             # the int8 input is the pixel - 128
    np.testing.assert_allclose(q.predict(x), model.predict(x), atol=0.03)
    if tflm.available():
        xq = q.quantize_input(x)
        assert np.array_equal(tflm.run_tflm(q, xq), q.predict_int8(xq))


def test_rescaling_that_cannot_fold_is_refused_with_the_reason():
    x = _images(8, 8)
    cases = [
        ([L.Rescaling(1 / 127.5, offset=-1), L.Conv2D(2, 3, padding="same")], "zero padding"),
        ([L.Conv2D(2, 3), L.Rescaling(0.5), L.Flatten(), L.Dense(2)], "reads the model input"),
        ([L.Rescaling(-0.5), L.Flatten(), L.Dense(2)], "must be > 0"),
        ([L.Resizing(4, 4), L.Flatten(), L.Dense(2)], "resize the images before"),
        ([L.Rescaling(0.5), L.Activation("sigmoid"), L.Flatten(), L.Dense(2)], "does not commute"),
    ]
    for layers, message in cases:
        model = mt.Sequential([L.Input((8, 8, 3))] + layers)
        with pytest.raises(LoweringError, match=message):
            mt.quantize(model, x)


@settings(max_examples=5)
@given(scale=st.floats(1e-4, 10.0), offset=st.floats(-300.0, 300.0), seed=st.integers(0, 99))
def test_rescaling_fold_is_exact_in_float(scale, offset, seed):
    """The folded float graph equals the model, whatever the scale and offset (Dense and a
    'valid' conv read it, through a pool)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (6, 6, 6, 2))
    mt.random.seed(seed)
    inp = L.Input((6, 6, 2))
    r = L.Rescaling(scale, offset=offset)(inp)
    model = mt.Model(inp, L.Dense(3)(L.Flatten()(L.DepthwiseConv2D(3, depth_multiplier=2)(
        L.AveragePooling2D(1)(r)))))
    graph = lower(model)
    want = model.predict(x).astype(np.float64)
    np.testing.assert_allclose(graph.run(x)[graph.output], want,
                               atol=1e-4 * max(1.0, np.abs(want).max()))
