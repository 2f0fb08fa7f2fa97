"""Old names kept working for a while: a module ``__getattr__`` that warns and hands out the new object.

As pydicom does for its moved modules (src/pydicom/pixel_data_handlers/__init__.py): an import of the old name
works, warns with the replacement and the version that removes it, and tools that list a module's names do not
see it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["REMOVED_IN", "renamed"]

#: The release that drops the names deprecated so far.
REMOVED_IN = "0.3"


def renamed(module: str, names: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for *names* (``old -> new``) renamed inside *module*.

    Examples
    --------
    >>> __getattr__ = renamed(__name__, {"ingest_folder": "run_ingest"}, globals())  # doctest: +SKIP
    """

    def __getattr__(name: str) -> Any:
        if name in names:
            new = names[name]
            warnings.warn(f"{module}.{name} is deprecated and will be removed in cxrlab {REMOVED_IN}: use "
                          f"{module}.{new}", DeprecationWarning, stacklevel=2)
            return namespace[new]
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
