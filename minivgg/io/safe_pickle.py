"""Reading pickles from user files without running their code.

A pickle is a small program: its ``GLOBAL``/``STACK_GLOBAL`` opcodes import any
callable (``os.system``, ``builtins.eval``...) and ``REDUCE`` calls it. A file
a user downloaded must never get that power, so minivgg never calls
``pickle.load`` on user data. Instead every global a pickle asks for is looked
up in an explicit allow-list; anything else raises :class:`UnsafePickleError`
*before* it can be called (find_class runs when the opcode is read, and the
call only happens later at ``REDUCE``).

Used by :mod:`minivgg.training.data` (CIFAR-10 python batches) and :mod:`minivgg.io.weights`
(PyTorch checkpoints), each with its own allow-list.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, Callable, Mapping


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global that is not on the allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """An :class:`pickle.Unpickler` that resolves only allow-listed globals.

    Parameters
    ----------
    file:
        Binary file object positioned at the start of a pickle.
    allowed:
        ``{(module, name): object}``. The object returned for a global is the
        value given here, not an import, so a stand-in (e.g. a function that
        records a storage request) can replace the real callable.
    persistent_load:
        Optional handler for persistent ids (PyTorch's storages).
    source:
        Text naming the file, used in error messages.
    """

    def __init__(
        self,
        file: io.BufferedIOBase,
        allowed: Mapping[tuple[str, str], Any],
        *,
        persistent_load: Callable[[Any], Any] | None = None,
        source: str = "<pickle>",
        encoding: str = "ASCII",
    ) -> None:
        super().__init__(file, encoding=encoding)
        self._allowed = dict(allowed)
        self._source = source
        if persistent_load is not None:
            self.persistent_load = persistent_load  # type: ignore[assignment]

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source}: refusing to load global '{module}.{name}'; "
                "only plain tensors/arrays and containers may appear in this file"
            ) from None


def restricted_loads(
    data: bytes,
    allowed: Mapping[tuple[str, str], Any],
    *,
    persistent_load: Callable[[Any], Any] | None = None,
    source: str = "<pickle>",
    encoding: str = "ASCII",
) -> Any:
    """Unpickle ``data`` resolving only the globals in ``allowed``.

    Raises
    ------
    UnsafePickleError
        If the pickle names any global not in ``allowed`` (nothing is called).
    pickle.UnpicklingError, EOFError
        If the bytes are not a complete pickle.
    """
    return RestrictedUnpickler(
        io.BytesIO(data), allowed, persistent_load=persistent_load, source=source, encoding=encoding
    ).load()
