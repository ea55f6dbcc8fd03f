"""Files: minivgg's own ``.npz``, torchvision ``.pth``, Keras ``.h5``, images -- read safely, written atomically.

* :mod:`~minivgg.io.files` -- the one place user paths are checked (inputs, outputs, sizes a file
  claims), ``atomic_write`` (temp file + rename) and ``CheckpointError``;
* :mod:`~minivgg.io.safe_pickle` -- the allow-list unpickler every pickle goes through;
* :mod:`~minivgg.io.npz` -- the one minivgg file layout (weights and training checkpoints);
* :mod:`~minivgg.io.torch_format`, :mod:`~minivgg.io.torchvision` -- PyTorch files without PyTorch;
* :mod:`~minivgg.io.keras` -- Keras HDF5 weights;
* :mod:`~minivgg.io.architecture` -- which VGG a file's shapes describe;
* :mod:`~minivgg.io.weights` -- any of them into a model, and ``convert``;
* :mod:`~minivgg.io.images` -- image files to model input, and top-k predictions.
"""

from .files import CheckpointError, atomic_write
from .npz import MinivggFile, read_minivgg, write_minivgg
from .weights import convert, load_into, load_model, read_weights, save_weights

__all__ = ["CheckpointError", "MinivggFile", "atomic_write", "convert", "load_into", "load_model",
           "read_minivgg", "read_weights", "save_weights", "write_minivgg"]
