"""keras.callbacks: every Callback class of minitiny.callbacks (found there, not listed)."""
from minitiny import callbacks as _callbacks
from minitiny.keras._names import refuse

globals().update({name: cls for name, cls in vars(_callbacks).items()
                  if isinstance(cls, type) and issubclass(cls, _callbacks.Callback)})

NOT_IMPLEMENTED = {"TensorBoard": "fit's History and CSVLogger record the same numbers",
                   "BackupAndRestore": "use ModelCheckpoint", "ProgbarLogger": "fit's "
                   "verbose=1 prints Keras' progress line", "RemoteMonitor": "",
                   "SwapEMAWeights": ""}
__getattr__ = refuse(__name__, NOT_IMPLEMENTED, globals())
