"""kernel_regularizer / bias_regularizer: the penalty's gradient against finite differences,
and a whole training run against torch with the same penalty written into its loss."""
import numpy as np
import pytest

import minitiny as mt
from gradcheck import numerical_grad
from minitiny import regularizers as R
from minitiny.tensor import Tensor

L = mt.layers


def test_penalty_value_and_gradient():
    a = np.random.default_rng(0).normal(size=(4, 3))
    for reg, value in ((R.L1(0.3), 0.3 * np.abs(a).sum()), (R.L2(0.2), 0.2 * (a * a).sum()),
                       (R.L1L2(0.3, 0.2), 0.3 * np.abs(a).sum() + 0.2 * (a * a).sum())):
        w = Tensor(a.copy(), requires_grad=True)
        out = reg(w)
        assert float(out.data) == pytest.approx(value)
        out.backward()
        want = numerical_grad(lambda arrays: float(reg(Tensor(arrays[0])).data), [a.copy()],
                              0, 1e-6)
        np.testing.assert_allclose(w.grad, want, rtol=1e-6, atol=1e-8)


def test_names_defaults_config_and_errors():
    assert R.get("l2").l2 == 0.01 and R.get("l1").l1 == 0.01 and R.get("l1l2").l1 == 0.0
    layer = L.Dense(3, kernel_regularizer=mt.keras.regularizers.l2(1e-3),
                    bias_regularizer="l1")
    cfg = layer.get_config()
    assert cfg["kernel_regularizer"] == {"class_name": "L2", "config": {"l2": 1e-3}}
    clone = L.Dense.from_config({**cfg, "name": "clone"})
    assert clone.regularizers["kernel"].l2 == 1e-3 and clone.regularizers["bias"].l1 == 0.01
    with pytest.raises(ValueError, match="layer 'bad' kernel_regularizer: unknown regularizer "
                                         "'l3'"):
        L.Dense(2, kernel_regularizer="l3", name="bad")
    with pytest.raises(ValueError, match="l2 must be a number >= 0"):
        R.L2(-1)
    with pytest.raises(TypeError, match="'kernel_regularizer'.*DepthwiseConv2D takes:.*"
                                        "depthwise_regularizer"):
        L.DepthwiseConv2D(3, kernel_regularizer="l2")       # Keras' name differs there


def test_loss_includes_the_penalty_in_fit_and_evaluate_and_frozen_layers_add_none():
    mt.random.seed(0)
    model = mt.Sequential([L.Conv2D(2, 3, kernel_regularizer=R.L2(0.5), input_shape=(5, 5, 1)),
                           L.Flatten(), L.Dense(1, bias_regularizer=R.L1(0.25))])
    model.compile("sgd", "mse")
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 5, 5, 1)), rng.normal(size=(6, 1))
    model.layers[2].set_weights([model.layers[2].get_weights()[0], np.array([-2.0])])
    plain = float(np.mean((model.predict(x) - y) ** 2))
    k = model.layers[0].get_weights()[0]
    penalty = 0.5 * (k * k).sum() + 0.25 * 2.0
    assert model.evaluate(x, y) == pytest.approx(plain + penalty, rel=1e-5)
    model.layers[0].trainable = False
    assert model.evaluate(x, y) == pytest.approx(plain + 0.25 * 2.0, rel=1e-5)


def test_training_with_penalties_matches_torch():
    torch = pytest.importorskip("torch")
    from test_torch_semantics import regression_data, torch_twin
    mt.random.seed(3)
    model = mt.Sequential([
        L.Dense(8, activation="tanh", input_shape=(3,), dtype="float64",
                kernel_regularizer=R.L1L2(0.01, 0.02), bias_regularizer=R.L2(0.1)),
        L.Dense(1, dtype="float64", kernel_regularizer=R.L1(0.05))])
    x, y = regression_data()
    forward, params = torch_twin(model)
    model.compile(mt.optimizers.SGD(0.05, momentum=0.9), "mse")
    record = []
    model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
              callbacks=[mt.callbacks.LambdaCallback(
                  on_train_batch_end=lambda b, logs: record.append(logs["loss"]))])
    leaves = [t for t in params.values() if t.requires_grad]
    opt = torch.optim.SGD(leaves, lr=0.05, momentum=0.9)
    names = [f"{layer.name}/{w}" for layer in model.layers for w in layer.weights]
    k0, b0, k1 = params[names[0]], params[names[1]], params[names[2]]
    theirs = []
    for _ in range(3):
        for s in range(0, len(x), 16):
            xb, yb = torch.tensor(x[s:s + 16]), torch.tensor(y[s:s + 16])
            loss = torch.nn.functional.mse_loss(forward(xb), yb) \
                + 0.01 * k0.abs().sum() + 0.02 * (k0 * k0).sum() + 0.1 * (b0 * b0).sum() \
                + 0.05 * k1.abs().sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            theirs.append(float(loss.detach()))
    np.testing.assert_allclose(record, theirs, rtol=1e-9)
