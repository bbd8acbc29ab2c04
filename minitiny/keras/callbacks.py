"""keras.callbacks: the callbacks of minitiny.callbacks."""
from minitiny.callbacks import Callback, EarlyStopping, History, ModelCheckpoint  # noqa: F401
from minitiny.keras._names import refuse

NOT_IMPLEMENTED = {"TensorBoard": "fit's History and CSVLogger record the same numbers",
                   "BackupAndRestore": "use ModelCheckpoint", "ProgbarLogger": "fit's "
                   "verbose=1 prints Keras' progress line", "RemoteMonitor": "",
                   "SwapEMAWeights": ""}
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
