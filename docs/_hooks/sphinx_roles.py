"""Griffe extension: show the Sphinx roles of cxrlab's docstrings (``:func:`~cxrlab.x.f```) as code (`` `f` ``).

The numpydoc docstrings name other objects the Sphinx way; mkdocstrings renders Markdown, where a bare role
would print as ``:func:`` followed by code. Loaded by mkdocstrings (``extensions:`` in ``mkdocs.yml``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|data|meth|mod|attr|exc|obj|const):`(~?)([^`]+)`")


def _code(match: re.Match[str]) -> str:
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` to `` `target` `` (``~`` keeps the last dotted part, as in Sphinx)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ":" in obj.docstring.value:
            obj.docstring.value = _ROLE.sub(_code, obj.docstring.value)
