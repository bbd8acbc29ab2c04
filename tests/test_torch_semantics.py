"""Training semantics: gradients of whole models against finite differences, and the same
training run in minitiny and in PyTorch -- same initial weights, same data, same batches,
same optimizer -- giving the same loss at every step and the same weights at the end.

Both sides run in float64, so the losses agree to ~1e-10 and any real difference (a wrong
gradient, a different optimizer rule, another padding convention) shows far above that.
The translation is the only code written here, and it follows each library's documented
conventions:

    Dense kernel (in, out)                 -> nn.Linear weight (out, in) = kernel.T
    Conv2D kernel (kh, kw, in, out)        -> conv2d weight (out, in, kh, kw)
    DepthwiseConv2D (kh, kw, C, M)         -> conv2d groups=C, weight (C*M, 1, kh, kw);
                                              output channel c*M + m in both
    NHWC                                   -> NCHW (and back before Flatten)
    'same' padding, TF's rule (docs/DESIGN.md): pad (total // 2) before, the rest after
                                           -> F.pad explicitly, then a 'valid' conv / pool
    Keras SGD  v = m v - lr g; w += v      == torch SGD  b = m b + g; w -= lr b  (v = -lr b)
    Keras Adam eps added to sqrt(v)        == torch Adam with eps_t = eps / sqrt(1 - beta_2^t),
                                              set before every step (same formula, refolded)
    Keras AdamW  w -= w wd lr, then Adam   == torch AdamW (the same decay, then Adam), eps_t
    Keras RMSprop lr g / sqrt(v + eps)     == torch RMSprop lr g / (sqrt(v) + eps) at eps = 0;
                                              momentum and centered the same
    Keras Adagrad (accumulator from 0.1)   == torch Adagrad initial_accumulator_value=0.1,
                                              eps = 0 (inside vs outside the root again)
    BatchNormalization momentum 0.99       == torch momentum 0.01; the moving variance is
                                              the biased batch variance in Keras 3, the
                                              unbiased one in torch (checked as such)

Dropout draws its mask from each library's own generator, so it is left out.
"""
import numpy as np
import pytest

import minitiny as mt
from gradcheck import numerical_grad
from minitiny.tensor import Tensor, no_grad

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch)")
torch.set_num_threads(1)        # these models are tiny; spinning threads only slow a busy CI
F = torch.nn.functional
L = mt.layers


# =======================================================================================
# Gradients of whole models (every layer kind) against central differences
# =======================================================================================
def every_layer_model():
    """Every trainable layer kind and every activation in one functional float64 model."""
    mt.random.seed(1)
    kw = dict(dtype="float64")
    x = mt.Input((6, 5, 2), dtype="float64")
    a = L.Conv2D(3, (3, 2), strides=(2, 1), padding="same", activation="tanh", **kw)(x)
    b = L.DepthwiseConv2D(2, depth_multiplier=2, padding="same", activation="sigmoid", **kw)(a)
    c = L.Conv2D(6, 1, activation=None, **kw)(b)
    d = L.Add(**kw)([b, c])                                       # a residual join
    e = L.BatchNormalization(**kw)(d)
    f = L.ReLU(max_value=1.5, **kw)(e)
    g = L.AveragePooling2D((2, 2), strides=1, padding="same", **kw)(f)
    h = L.MaxPooling2D((2, 1), **kw)(g)
    i = L.Activation("relu6", **kw)(h)
    j = L.Flatten(**kw)(i)
    k = L.Dense(5, activation="relu", **kw)(j)
    m = L.Reshape((5, 1), **kw)(k)
    n = L.Dense(4, **kw)(L.Flatten(**kw)(m))
    o = L.Activation("softmax", **kw)(n)
    g2 = L.GlobalAveragePooling2D(**kw)(f)                        # a second head ...
    p = L.Add(**kw)([o, L.Dense(4, activation="linear", **kw)(g2)])   # ... joined again
    return mt.Model(x, p)


@pytest.mark.parametrize("training", [True, False])
def test_whole_model_gradients_match_finite_differences(training):
    """d loss / d (every weight and the input) of a model holding every layer kind; in
    training mode BatchNormalization uses the batch statistics (its gradient runs through
    them), in inference mode the moving ones. The moving averages are restored before each
    evaluation so the loss is a pure function of the weights."""
    model = every_layer_model()
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 6, 5, 2))
    weights = rng.normal(size=(3, 4))
    params = model.trainable_params()
    for p in params:                                  # away from the zero biases' kinks
        p.data[...] = rng.normal(scale=0.5, size=p.data.shape)
    moving = [t.data.copy() for layer in model.layers for t in layer.non_trainable_weights]

    def restore_moving():
        for t, v in zip([t for layer in model.layers for t in layer.non_trainable_weights], moving):
            t.data[...] = v

    def loss(arrays):
        restore_moving()
        for p, a in zip(params, arrays[1:]):
            p.data[...] = a
        with no_grad():
            return float((model.forward(Tensor(arrays[0]), training=training).data * weights).sum())

    xt = Tensor(x.copy(), requires_grad=True)
    restore_moving()
    out = model.forward(xt, training=training)
    for p in params:
        p.grad = None
    (out * weights).sum().backward()
    analytic = [xt.grad] + [p.grad.copy() for p in params]
    arrays = [x.copy()] + [p.data.copy() for p in params]
    names = ["input"] + [p.name for p in params]
    for k, name in enumerate(names):
        numeric = numerical_grad(loss, arrays, k, eps=1e-6)
        np.testing.assert_allclose(analytic[k], numeric, rtol=1e-5, atol=1e-7, err_msg=name)


# =======================================================================================
# The same training in PyTorch
# =======================================================================================
def tf_same_pads(size, k, stride):
    """TensorFlow's 'same' padding (docs/DESIGN.md): (before, after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def nchw(a):
    return a.permute(0, 3, 1, 2)


def nhwc(a):
    return a.permute(0, 2, 3, 1)


def pad_same(t, k, stride, value=0.0):
    """NCHW tensor padded as TF's 'same' would, for a window k with stride."""
    top, bottom = tf_same_pads(t.shape[2], k[0], stride[0])
    left, right = tf_same_pads(t.shape[3], k[1], stride[1])
    return F.pad(t, (left, right, top, bottom), value=value)


def torch_layer(layer, params):
    """A function NCHW/flat torch tensor -> tensor doing what `layer` does, reading its
    weights from `params` (name -> torch leaf, filled from the minitiny layer)."""
    w = {k: torch.tensor(v.data.copy(), requires_grad=k in {n for n in layer._trainable_names}
                         and layer.trainable)
         for k, v in layer.weights.items()}
    params.update({f"{layer.name}/{k}": t for k, t in w.items()})
    act = {"linear": lambda t: t, "relu": F.relu, "relu6": lambda t: t.clamp(0, 6),
           "sigmoid": torch.sigmoid, "tanh": torch.tanh,
           "softmax": lambda t: F.softmax(t, dim=1 if t.dim() == 4 else -1)}
    kind = type(layer).__name__
    if kind == "Dense":
        return lambda t: act[layer.activation](F.linear(t, w["kernel"].T, w.get("bias")))
    if kind == "Conv2D":
        def conv(t):
            if layer.padding == "same":
                t = pad_same(t, layer.kernel_size, layer.strides)
            return act[layer.activation](F.conv2d(t, w["kernel"].permute(3, 2, 0, 1), w.get("bias"),
                                                  stride=layer.strides))
        return conv
    if kind == "DepthwiseConv2D":
        def depthwise(t):
            kh, kw_, c, m = w["depthwise_kernel"].shape
            if layer.padding == "same":
                t = pad_same(t, layer.kernel_size, layer.strides)
            weight = w["depthwise_kernel"].permute(2, 3, 0, 1).reshape(c * m, 1, kh, kw_)
            return act[layer.activation](F.conv2d(t, weight, w.get("bias"), stride=layer.strides,
                                                  groups=c))
        return depthwise
    if kind == "MaxPooling2D":
        def maxpool(t):
            if layer.padding == "same":
                t = pad_same(t, layer.pool_size, layer.strides, value=-np.inf)
            return F.max_pool2d(t, layer.pool_size, layer.strides)
        return maxpool
    if kind == "AveragePooling2D":
        assert layer.padding == "valid"      # TF's 'same' divides by in-bounds counts
        return lambda t: F.avg_pool2d(t, layer.pool_size, layer.strides)
    if kind == "BatchNormalization":
        stats = {"mean": torch.zeros(len(w["gamma"]), dtype=torch.float64),
                 "var": torch.ones(len(w["gamma"]), dtype=torch.float64)}
        params[f"{layer.name}/running"] = stats

        def bn(t):
            return F.batch_norm(t, stats["mean"], stats["var"], w["gamma"], w["beta"], training=True,
                                momentum=1 - layer.momentum, eps=layer.epsilon)
        return bn
    if kind == "Flatten":
        return lambda t: (nhwc(t) if t.dim() == 4 else t).reshape(len(t), -1)
    if kind == "GlobalAveragePooling2D":
        return lambda t: t.mean(dim=(2, 3))
    if kind == "Activation":
        return act[layer.activation]
    if kind == "ReLU":
        return lambda t: t.clamp(0, layer.max_value) if layer.max_value else F.relu(t)
    raise NotImplementedError(kind)


def torch_twin(model):
    """The Sequential `model` as a torch function of NHWC input, plus its leaves."""
    params = {}
    fns = [torch_layer(layer, params) for layer in model.layers]

    def forward(x, logits=False):
        t = nchw(x) if x.dim() == 4 else x
        for i, f in enumerate(fns):
            last = i == len(fns) - 1
            layer = model.layers[i]
            if last and logits and getattr(layer, "activation", "linear") in ("softmax", "sigmoid"):
                t = torch_layer_linear(layer, params)(t)       # the logits, as minitiny uses
            else:
                t = f(t)
        return t
    return forward, params


def torch_layer_linear(layer, params):
    """The last Dense without its activation (the losses read the logits, as minitiny does)."""
    return lambda t: F.linear(t, params[f"{layer.name}/kernel"].T, params.get(f"{layer.name}/bias"))


class BatchLosses(mt.callbacks.Callback):
    def __init__(self):
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(logs["loss"])


def torch_optimizer(kind, cfg, leaves):
    """The torch optimizer running Keras' rule `kind` with the settings `cfg` (the table in
    the module docstring). RMSprop and Adagrad put epsilon inside the square root in Keras
    and outside in torch, so those cases run with epsilon=0 (test_optimizers.py checks
    Keras' epsilon against hand-written steps)."""
    lr = cfg["learning_rate"]
    if kind == "sgd":
        return torch.optim.SGD(leaves, lr=lr, momentum=cfg.get("momentum", 0.0),
                               nesterov=cfg.get("nesterov", False))
    if kind == "adam":
        return torch.optim.Adam(leaves, lr=lr, betas=(0.9, 0.999), eps=1e-7)
    if kind == "adamw":
        return torch.optim.AdamW(leaves, lr=lr, betas=(0.9, 0.999), eps=1e-7,
                                 weight_decay=cfg.get("weight_decay", 0.004))
    assert cfg["epsilon"] == 0.0
    if kind == "rmsprop":
        return torch.optim.RMSprop(leaves, lr=lr, alpha=cfg.get("rho", 0.9), eps=0.0,
                                   momentum=cfg.get("momentum", 0.0),
                                   centered=cfg.get("centered", False))
    return torch.optim.Adagrad(leaves, lr=lr, eps=0.0, initial_accumulator_value=cfg.get(
        "initial_accumulator_value", 0.1))


def train_both(model, loss, x, y, optimizer, epochs, batch_size):
    """Train `model` with minitiny's fit and its torch twin with a plain loop; return both
    per-step losses and the torch leaves."""
    forward, params = torch_twin(model)
    leaves = [t for k, t in params.items() if isinstance(t, torch.Tensor) and t.requires_grad]
    kind, cfg = optimizer
    opt = torch_optimizer(kind, cfg, leaves)
    model.compile(mt.optimizers.OPTIMIZERS[kind](**cfg), loss)
    record = BatchLosses()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0, callbacks=[record])

    xt, torch_losses = torch.tensor(x), []
    for _ in range(epochs):
        for start in range(0, len(x), batch_size):
            xb, yb = xt[start:start + batch_size], y[start:start + batch_size]
            if loss == "mse":
                value = F.mse_loss(forward(xb), torch.tensor(yb).reshape(len(yb), -1))
            elif loss == "binary_crossentropy":
                value = F.binary_cross_entropy_with_logits(forward(xb, logits=True),
                                                           torch.tensor(yb).reshape(len(yb), -1))
            elif loss == "sparse_categorical_crossentropy":
                value = F.cross_entropy(forward(xb, logits=True), torch.tensor(yb))
            else:                                                    # categorical, one-hot
                value = F.cross_entropy(forward(xb, logits=True), torch.tensor(yb))
            opt.zero_grad()
            value.backward()
            if kind in ("adam", "adamw"):                            # Keras' epsilon, refolded
                t = len(torch_losses) + 1
                opt.param_groups[0]["eps"] = 1e-7 / np.sqrt(1 - 0.999 ** t)
            opt.step()
            torch_losses.append(float(value.detach()))
    return np.array(record.losses), np.array(torch_losses), params


def assert_same_weights(model, params):
    for layer in model.layers:
        for k, t in layer.weights.items():
            if k in layer._trainable_names:          # the moving statistics: see the BN test
                np.testing.assert_allclose(t.data, params[f"{layer.name}/{k}"].detach().numpy(),
                                           rtol=1e-8, atol=1e-10, err_msg=f"{layer.name}/{k}")


def regression_data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    return x, np.sin(x @ np.array([1.0, -2.0, 0.5]))[:, None]


# Keras' rule and settings per case; RMSprop and Adagrad at epsilon 0 (see torch_optimizer)
OPTIMIZER_CASES = {
    "sgd": ("sgd", {"learning_rate": 0.05}),
    "sgd-momentum": ("sgd", {"learning_rate": 0.05, "momentum": 0.9}),
    "sgd-nesterov": ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    "rmsprop": ("rmsprop", {"learning_rate": 0.01, "epsilon": 0.0}),
    "rmsprop-momentum-centered": ("rmsprop", {"learning_rate": 0.005, "rho": 0.8,
                                              "momentum": 0.5, "centered": True,
                                              "epsilon": 0.0}),
    "adagrad": ("adagrad", {"learning_rate": 0.1, "epsilon": 0.0}),
    "adagrad-from-zero": ("adagrad", {"learning_rate": 0.1, "epsilon": 0.0,
                                      "initial_accumulator_value": 0.0}),
    "adamw": ("adamw", {"learning_rate": 0.02}),
    "adamw-strong-decay": ("adamw", {"learning_rate": 0.02, "weight_decay": 0.5}),
}


@pytest.mark.parametrize("case", list(OPTIMIZER_CASES))
def test_mlp_regression_with_each_optimizer(case):
    mt.random.seed(3)
    model = mt.Sequential([L.Dense(16, activation="relu", input_shape=(3,), dtype="float64"),
                           L.Dense(8, activation="tanh", dtype="float64"),
                           L.Dense(1, dtype="float64")])
    x, y = regression_data()                  # 50 samples, batches of 16: a partial last batch
    ours, theirs, params = train_both(model, "mse", x, y, OPTIMIZER_CASES[case], 3, 16)
    assert len(ours) == len(theirs) == 12
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    assert ours[-1] < ours[0]
    assert_same_weights(model, params)


def test_binary_classifier_with_adam():
    mt.random.seed(4)
    model = mt.Sequential([L.Dense(8, activation="sigmoid", input_shape=(3,), dtype="float64"),
                           L.Dense(1, activation="sigmoid", dtype="float64")])
    x, _ = regression_data(64, 1)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.float64)
    ours, theirs, params = train_both(model, "binary_crossentropy", x, y,
                                      ("adam", {"learning_rate": 0.02}), 4, 16)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    assert_same_weights(model, params)


def cnn():
    mt.random.seed(5)
    kw = dict(dtype="float64")
    return mt.Sequential([
        L.Conv2D(4, 3, strides=2, padding="same", activation="relu6", input_shape=(9, 8, 2), **kw),
        L.DepthwiseConv2D((2, 3), depth_multiplier=2, padding="same", activation="relu", **kw),
        L.MaxPooling2D(2, padding="same", **kw),
        L.AveragePooling2D((2, 1), strides=1, **kw),
        L.BatchNormalization(**kw),
        L.Conv2D(5, 1, activation="tanh", **kw),
        L.Flatten(**kw),
        L.Dense(3, activation="softmax", **kw)])


def test_cnn_with_adam_and_batch_norm():
    model = cnn()
    rng = np.random.default_rng(6)
    x = rng.normal(size=(48, 9, 8, 2))
    y = rng.integers(0, 3, size=48)
    ours, theirs, params = train_both(model, "sparse_categorical_crossentropy", x, y,
                                      ("adam", {"learning_rate": 0.01}), 3, 12)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    assert ours[-1] < ours[0]
    assert_same_weights(model, params)
    # the moving statistics: the same mean; the variance biased here, unbiased in torch --
    # both start at 1 and move by 1% per step, so (torch - 0.99^T) = m/(m-1) (ours - 0.99^T)
    bn = model.layers[4]
    stats = params[f"{bn.name}/running"]
    np.testing.assert_allclose(bn.moving_mean.data, stats["mean"].numpy(), rtol=1e-9, atol=1e-12)
    steps = len(ours)
    m = 12 * bn.input_shape[0] * bn.input_shape[1]    # values per channel in a batch of 12
    decay = 0.99 ** steps
    np.testing.assert_allclose(stats["var"].numpy() - decay,
                               m / (m - 1) * (bn.moving_variance.data - decay), rtol=1e-9)


def test_residual_functional_model_with_one_hot_labels():
    """A functional model (Add, GlobalAveragePooling2D) against the same graph in torch."""
    mt.random.seed(7)
    kw = dict(dtype="float64")
    x_in = mt.Input((5, 5, 3), dtype="float64")
    conv = L.Conv2D(3, 3, padding="same", activation="relu", **kw)
    dense = L.Dense(4, activation="softmax", **kw)
    out = dense(L.GlobalAveragePooling2D(**kw)(L.Add(**kw)([x_in, conv(x_in)])))
    model = mt.Model(x_in, out)
    rng = np.random.default_rng(8)
    x = rng.normal(size=(20, 5, 5, 3))
    y = np.eye(4)[rng.integers(0, 4, 20)]
    model.compile(mt.optimizers.SGD(0.1, momentum=0.5), "categorical_crossentropy")
    record = BatchLosses()
    model_w = [t.data.copy() for t in (conv.kernel, conv.bias, dense.kernel, dense.bias)]
    model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=[record])

    ck, cb, dk, db = [torch.tensor(a, requires_grad=True) for a in model_w]
    opt = torch.optim.SGD([ck, cb, dk, db], lr=0.1, momentum=0.5)
    losses = []
    for _ in range(3):
        for s in range(0, 20, 8):
            t = nchw(torch.tensor(x[s:s + 8]))
            r = t + F.relu(F.conv2d(pad_same(t, (3, 3), (1, 1)), ck.permute(3, 2, 0, 1), cb))
            logits = F.linear(r.mean(dim=(2, 3)), dk.T, db)
            value = F.cross_entropy(logits, torch.tensor(y[s:s + 8]))
            opt.zero_grad()
            value.backward()
            opt.step()
            losses.append(float(value.detach()))
    np.testing.assert_allclose(record.losses, losses, rtol=1e-9)
    np.testing.assert_allclose(dense.kernel.data, dk.detach().numpy(), rtol=1e-8, atol=1e-10)


def test_inference_after_training_matches_with_the_same_moving_statistics():
    """predict (inference mode: BatchNormalization uses the moving statistics) against torch's
    eval mode given the same statistics."""
    model = cnn()
    rng = np.random.default_rng(9)
    x = rng.normal(size=(24, 9, 8, 2))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, rng.integers(0, 3, 24), epochs=2, batch_size=8, verbose=0)
    forward, params = torch_twin(model)
    bn = model.layers[4]
    with torch.no_grad():
        t = nchw(torch.tensor(x))
        for layer in model.layers:
            if layer is bn:
                t = F.batch_norm(t, torch.tensor(bn.moving_mean.data), torch.tensor(bn.moving_variance.data),
                                 params[f"{bn.name}/gamma"], params[f"{bn.name}/beta"], training=False,
                                 eps=bn.epsilon)
            else:
                t = torch_layer(layer, {})(t)
    np.testing.assert_allclose(model.predict(x), t.numpy(), rtol=1e-10, atol=1e-12)
