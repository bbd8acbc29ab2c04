"""Example 1: one neuron learns y = 2x - 1 from six points.

The first lesson of many deep-learning courses: a Dense layer with one unit is y = w x + b,
and gradient descent on the squared error finds w ~ 2 and b ~ -1 from six examples. Then
the neuron goes to int8 C like any model -- and shows the first rule of quantization:
the representative data must cover the inputs the device will see.

    python examples/01_single_neuron.py [--quick] [--out build/01_single_neuron]
"""
import numpy as np

import minitiny as mt
from minitiny.layers import Dense

from common import arguments, deploy, print_table, result, step


def main(argv=None):
    args = arguments("01_single_neuron", __doc__.splitlines()[0], argv)

    # ---- 1. Goal ----------------------------------------------------------------------
    step(1, "Goal")
    print("Learn y = 2x - 1 from six examples and predict y at x = 10 (the answer is 19).")

    # ---- 2. Data: six points on the line, and the question x = 10 ------------------------
    step(2, "Data")
    (x_train, y_train), (x_test, y_test) = mt.datasets.load_linear()
    print(f"x = {x_train.ravel().tolist()}\ny = {y_train.ravel().tolist()}")

    # ---- 3. Model: one neuron, y = w x + b ------------------------------------------------
    step(3, "Model")
    model = mt.Sequential([Dense(units=1, input_shape=[1])])
    model.compile(optimizer="sgd", loss="mean_squared_error")
    model.summary()

    # ---- 4. Training: 500 passes of gradient descent over the six points ----------------------
    step(4, "Training")
    history = model.fit(x_train, y_train, epochs=500, verbose=0)
    w, b = (float(v.ravel()[0]) for v in model.get_weights())
    y_float = float(model.predict(x_test)[0, 0])
    print(f"loss {history.history['loss'][0]:.3f} -> {history.history['loss'][-1]:.6f} in 500 epochs")
    print(f"learned weight {w:.4f} (true 2), bias {b:.4f} (true -1)")
    print(f"predict(10) = {y_float:.4f} (true 19)")

    # ---- 5. Conversion: int8, and why the calibration range matters --------------------------
    step(5, "Conversion to int8")
    # Calibrated on the six training x only, the int8 input covers [-1, 4]: x = 10 clamps to
    # about 4, and the int8 neuron answers 2 * 4 - 1 = 7. Calibrate on the range you deploy on.
    naive = mt.quantize(model, x_train)
    y_naive = float(naive.predict(x_test)[0, 0])
    print(f"calibrated on x in [-1, 4]: int8 predict(10) = {y_naive:.3f}  (the input saturates)")
    x_representative = np.linspace(-1, 10, 111, dtype=np.float32).reshape(-1, 1)
    print("calibrated on x in [-1, 10] instead: the deployment range")

    # ---- 6. Inference: the generated C on the host and on the emulated Cortex-M4 ---------------
    step(6, "Inference in C")
    d = deploy(model, x_representative, x_test, "neuron", args)
    y_int8 = float(d.out[0, 0])
    print(f"int8 C: predict(10) = {y_int8:.4f}")

    # ---- 7. Evaluation ------------------------------------------------------------------------
    rows = [result("single neuron (y = 2x - 1)", "abs error at x=10", abs(y_float - 19), abs(y_int8 - 19),
                   d, len(x_test), notes=f"w = {w:.4f}, b = {b:.4f}; float predict(10) = {y_float:.4f}, "
                                         f"int8 C {y_int8:.4f}; int8 calibrated on [-1, 4] only: {y_naive:.3f}")]
    rows[0].extra.update(weight=w, bias=b, float_predict_10=y_float, int8_predict_10=y_int8,
                         naive_int8_predict_10=y_naive)
    return print_table(rows, args)


if __name__ == "__main__":
    main()
