"""Real VGG weights in: any supported file -> a minivgg model, and conversion to minivgg's ``.npz``.

People who study VGG already have the ImageNet weights on disk: torchvision's
``vgg16-397923af.pth`` or Keras' ``vgg16_weights_tf_dim_ordering_tf_kernels.h5``.
minivgg reads them with NumPy alone and renames them to the lecture's
parameter names (``conv1_1.w`` ... ``fc8.b``, see :mod:`minivgg.vgg`):

* ``.pth`` / ``.pt`` -- torchvision layout, zip or legacy stream
  (:mod:`minivgg.io.torch_format` reads the file, :mod:`minivgg.io.torchvision`
  maps the keys);
* ``.h5`` / ``.hdf5`` -- Keras layout (:mod:`minivgg.io.keras`, needs ``h5py``);
* ``.safetensors`` -- timm or torchvision layout (:mod:`minivgg.io.safetensors`, NumPy only);
* ``.onnx`` -- a VGG-shaped graph (:mod:`minivgg.io.onnx_import`, needs ``onnx``);
* ``.npz`` -- minivgg's own file, weights or a training checkpoint
  (:mod:`minivgg.io.npz`).

Cost: reading is one pass over the file; peak memory is about the file size
plus the largest storage (tensors that own their whole storage are not copied;
dense weights are returned as transposed views, not copies).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..configs import VGGConfig
from .architecture import ArchOverride, apply_arch, check_fit, fit_problems
from .files import CheckpointError, check_input_file, check_output_path
from .keras import from_keras, read_keras_h5
from .npz import read_minivgg, write_minivgg
from .safetensors import read_safetensors_vgg
from .torch_format import Progress, read_torch_checkpoint
from .torch_write import write_torch_state_dict
from .torchvision import from_torchvision, to_torchvision

TORCH_EXTENSIONS = (".pth", ".pt")
KERAS_EXTENSIONS = (".h5", ".hdf5")
NPZ_EXTENSIONS = (".npz",)
SAFETENSORS_EXTENSIONS = (".safetensors",)
ONNX_EXTENSIONS = (".onnx",)


class NonFiniteParameters(CheckpointError):
    """A weights file or checkpoint holds NaN or infinite parameters (a diverged or corrupted model).

    A :class:`CheckpointError` (the file cannot be used), so code that handles
    unusable files handles this one; ``minivgg`` commands tell it apart and exit
    with status 3 (see :mod:`minivgg.cli`).
    """

    def __init__(self, message: str, source: str, name: str) -> None:
        super().__init__(message)
        self.source, self.name = source, name


def check_finite_params(params: Mapping[str, np.ndarray], source: str) -> None:
    """Raise :class:`NonFiniteParameters` naming ``source`` and the first parameter holding NaN/inf.

    The one check every model loader runs (:func:`read_weights` here, and
    :func:`minivgg.training.checkpoint.read_checkpoint`), so a model whose
    numbers went non-finite is refused with the same message by every command.
    Cost: one pass over the parameters.
    """
    for name, value in params.items():
        arr = np.asarray(value)
        if arr.dtype.kind != "f":
            continue  # integers are always finite; other dtypes are refused by the loaders
        bad = ~np.isfinite(arr)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            kinds = [k for k, present in (("NaN", np.isnan(arr).any()), ("inf", np.isinf(arr).any())) if present]
            raise NonFiniteParameters(
                f"{source}: parameter {name} holds {' and '.join(kinds)} ({int(bad.sum()):,} of {arr.size:,} values, "
                f"first at index {first}); the model's numbers went non-finite (a diverged run?) and it cannot be used",
                source, name)


def _kind_of(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in TORCH_EXTENSIONS:
        return "torch"
    if ext in KERAS_EXTENSIONS:
        return "keras"
    if ext in NPZ_EXTENSIONS:
        return "npz"
    if ext in SAFETENSORS_EXTENSIONS:
        return "safetensors"
    if ext in ONNX_EXTENSIONS:
        return "onnx"
    raise ValueError(f"{path}: unknown weights file extension {ext!r}; expected one of "
                     f"{TORCH_EXTENSIONS + KERAS_EXTENSIONS + NPZ_EXTENSIONS + SAFETENSORS_EXTENSIONS + ONNX_EXTENSIONS}")


def read_weights(path: str | os.PathLike, arch: ArchOverride = None, *,
                 progress: Progress | None = None) -> tuple[dict[str, np.ndarray], VGGConfig]:
    """Any supported weights file -> ``(minivgg params, config)``, chosen by extension.

    ``arch`` (a name such as ``"vgg16"``, a Table-1 list, a dict of
    :class:`~minivgg.configs.VGGConfig` fields or a whole config) overrides
    what the file says or its shapes imply; every shape is then checked again.
    A training checkpoint (``checkpoint.npz``) is read like plain weights.
    ``progress(bytes_read, bytes_total)`` hears of a PyTorch file's storages as they are read.

    Raises
    ------
    FileNotFoundError, CheckpointError (a ValueError), UnsafePickleError, ImportError (h5py missing),
    NonFiniteParameters (a CheckpointError: a parameter holds NaN/inf).
    """
    path = Path(path)
    kind = _kind_of(path)
    check_input_file(path, "weights file")  # missing: FileNotFoundError; a directory etc.: CheckpointError
    if kind == "torch":
        params, config = from_torchvision(read_torch_checkpoint(path, progress), arch, str(path))
    elif kind == "keras":
        params, config = from_keras(read_keras_h5(path), arch, str(path))
    elif kind == "safetensors":
        params, config = from_torchvision(read_safetensors_vgg(path), arch, str(path))
    elif kind == "onnx":
        from .onnx_import import read_onnx_vgg  # needs the optional onnx package

        params, config = from_torchvision(read_onnx_vgg(path), arch, str(path))
    else:
        f = read_minivgg(path)
        params, config = f.params, apply_arch(f.config, arch)
        if arch is not None:
            check_fit(params, config, str(path))
    check_finite_params(params, str(path))
    return params, config


def load_into(model: Any, path: str | os.PathLike) -> VGGConfig:
    """Load a weights file into an existing ``minivgg.vgg.VGG``, all or nothing.

    Every name and shape is compared with the model first; on any mismatch a
    ValueError lists each offending key with the model's and the file's
    shapes, and the model keeps its old weights. Values are converted to the
    model's dtype. Returns the file's architecture.
    """
    params, config = read_weights(path)
    problems = fit_problems({k: v.shape for k, v in model.params.items()}, params,
                            wrong="model {want}, file {got}", missing="missing from the file", extra="not in the model")
    if problems:
        raise ValueError(f"{path}: weights for {config.describe()} do not fit {model!r}: {problems}")
    model.load_params(params)  # validates again (finite values), then assigns
    return config


def load_model(path: str | os.PathLike, arch: ArchOverride = None, *, dtype=np.float32,
               progress: Progress | None = None, **kwargs: Any) -> Any:
    """Build the ``minivgg.vgg.VGG`` a weights file describes and load it.

    ``kwargs`` go to ``VGG`` (e.g. ``algo``); the architecture comes from the
    file (or ``arch``).
    """
    from ..vgg import VGG  # floor 4; imported here so reading files never builds a model

    params, config = read_weights(path, arch, progress=progress)
    kwargs.setdefault("init", "none")  # every weight is about to be overwritten: skip sampling 138M normals
    model = VGG(config, dtype=dtype, **kwargs)
    model.load_params(params)
    return model


def save_weights(path: str | os.PathLike, params: dict, config: VGGConfig | str | list) -> Path:
    """Write plain weights as a minivgg ``.npz`` (see :mod:`minivgg.io.npz`), atomically."""
    return write_minivgg(path, VGGConfig.from_arch(config), params)


def convert(in_path: str | os.PathLike, out_path: str | os.PathLike, arch: ArchOverride = None, *,
            progress: Progress | None = None) -> VGGConfig:
    """Convert a weights file (``.pth``/``.pt``, ``.h5``, ``.npz``, ``.safetensors``, ``.onnx``) to
    minivgg ``.npz`` or to a torchvision-layout ``.pth``/``.pt`` (float32, :mod:`minivgg.io.torch_write`,
    no torch needed). Returns the
    architecture. The output is written atomically; a training checkpoint
    becomes plain weights (its optimiser and run state are left behind).
    """
    # the one output rule (suffix, directory writable), checked before reading a 500 MB input
    out = check_output_path(out_path, "output", NPZ_EXTENSIONS + TORCH_EXTENSIONS)
    params, config = read_weights(in_path, arch, progress=progress)
    if out.suffix.lower() in TORCH_EXTENSIONS:
        # torchvision's layout in torch's zip format, written without torch
        write_torch_state_dict(out, to_torchvision({k: np.asarray(v, np.float32) for k, v in params.items()}, config))
    else:
        write_minivgg(out, config, params)
    return config


__all__ = ["CheckpointError", "NonFiniteParameters", "check_finite_params", "TORCH_EXTENSIONS", "KERAS_EXTENSIONS", "NPZ_EXTENSIONS", "read_weights",
           "load_into", "load_model", "save_weights", "convert"]
