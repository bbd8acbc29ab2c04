"""Example 2: "hello world" -- a small network learns sin(x) from noisy samples.

TensorFlow Lite Micro's first example: Dense(16) -> Dense(16) -> Dense(1) fitted to
y = sin(x) + noise on [0, 2 pi). A regression, so the error is the mean squared error;
the plot shows the float and the int8 predictions over the test x (the int8 curve is a
staircase: the output's int8 grid).

    python examples/02_hello_sine.py [--quick] [--out build/02_hello_sine]
"""
import os

import numpy as np

import minitiny as mt
from minitiny.layers import Dense

from common import arguments, deploy, have_plots, print_table, result, step


def main(argv=None):
    args = arguments("02_hello_sine", __doc__.splitlines()[0], argv)
    epochs = 150 if args.quick else 1000

    # ---- 1. Goal ----------------------------------------------------------------------
    step(1, "Goal")
    print("Predict y = sin(x) for x in [0, 2 pi) from noisy samples; run the model in int8 C.")

    # ---- 2. Data: 1,000 noisy samples; 800 to train (a quarter of them validate), 200 to test --
    step(2, "Data")
    (x_train, y_train), (x_test, y_test) = mt.datasets.load_sine(n=1000, noise=0.1, seed=args.seed)
    print(f"train {len(x_train)} (of which 25% validation), test {len(x_test)}; noise std 0.1, "
          f"so no model can beat a test MSE of about {0.1 ** 2:.3f}")

    # ---- 3. Model -------------------------------------------------------------------------
    step(3, "Model")
    model = mt.Sequential([Dense(16, activation="relu", input_shape=[1]),
                           Dense(16, activation="relu"),
                           Dense(1)])
    model.compile(optimizer="adam", loss="mean_squared_error", metrics=["mae"])
    model.summary()

    # ---- 4. Training ------------------------------------------------------------------------
    step(4, "Training")
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=64, validation_split=0.25,
                        verbose=0)
    h = history.history
    print(f"{epochs} epochs: loss {h['loss'][-1]:.4f}, validation loss {h['val_loss'][-1]:.4f}")

    # ---- 5-6. Conversion to int8 and inference in C --------------------------------------------
    step(5, "Conversion to int8")
    step(6, "Inference in C")
    d = deploy(model, x_train, x_test, "sine", args)

    # ---- 7. Evaluation: mean squared error on the test set, and the picture ----------------------
    y_float = model.predict(x_test)
    mse_float = float(np.mean((y_float - y_test) ** 2))
    mse_int8 = float(np.mean((d.out - y_test) ** 2))
    notes = ""
    if have_plots():
        from minitiny.reporting import plots
        path = plots.plot_predictions(x_test, y_test, os.path.join(args.out, "sine.png"),
                                      {"float": y_float, "int8 (generated C)": d.out},
                                      title="sin(x): float vs int8")
        plots.plot_history(history, os.path.join(args.out, "sine_history.png"), title="sine")
        notes = f"plot: {os.path.basename(path)} in the output folder"
    rows = [result("hello world: sin(x), 16-16-1", "MSE", mse_float, mse_int8, d, len(x_test), notes)]
    return print_table(rows, args)


if __name__ == "__main__":
    main()
