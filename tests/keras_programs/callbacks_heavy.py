# A small MNIST CNN trained the way Keras users tune a run: RMSprop, an L2 penalty,
# precision and AUC, and a stack of callbacks (stop early, lower the rate on a plateau,
# a schedule, a CSV log, a per-batch hook, a custom stopping rule).
import numpy as np
import tensorflow as tf
from tensorflow import keras

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train = x_train[:3000].reshape(-1, 28, 28, 1).astype("float32") / 255
x_test = x_test[:1000].reshape(-1, 28, 28, 1).astype("float32") / 255
y_train = keras.utils.to_categorical(y_train[:3000], 10)
y_test = keras.utils.to_categorical(y_test[:1000], 10)

tf.random.set_seed(42)
model = keras.Sequential([
    keras.Input(shape=(28, 28, 1)),
    keras.layers.Conv2D(8, (3, 3), activation="relu",
                        kernel_regularizer=keras.regularizers.l2(1e-4)),
    keras.layers.MaxPooling2D((2, 2)),
    keras.layers.Flatten(),
    keras.layers.Dropout(0.2),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-3),
              loss="categorical_crossentropy",
              metrics=["accuracy", keras.metrics.Precision(), keras.metrics.AUC()])


class StopAtAccuracy(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs={}):
        if logs.get("val_accuracy") > 0.99:
            print("\nReached 99% validation accuracy so cancelling training!")
            self.model.stop_training = True


batch_losses = []
callbacks = [
    keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True),
    keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1),
    keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr if epoch < 2 else lr * 0.9),
    keras.callbacks.CSVLogger("training_log.csv"),
    keras.callbacks.LambdaCallback(on_batch_end=lambda batch, logs: batch_losses.append(logs["loss"])),
    keras.callbacks.TerminateOnNaN(),
    StopAtAccuracy(),
]
history = model.fit(x_train, y_train, batch_size=64, epochs=6, validation_data=(x_test, y_test),
                    callbacks=callbacks, verbose=2)
loss, accuracy, precision, auc = model.evaluate(x_test, y_test, verbose=0)
print(f"test accuracy {accuracy:.3f}, precision {precision:.3f}, AUC {auc:.3f}")
