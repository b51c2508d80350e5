"""Field docstrings of msgspec structs, carried into the OpenAPI document.

Litestar reads a field's description only from ``msgspec.Meta(description=...)``; our structs document
fields with attribute docstrings (the Litestar-source style), which Python does not keep at run time. This
reads them from the source once, so every field a mobile developer sees is described without repeating it.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import textwrap
from functools import cache

import msgspec

__all__ = ["field_docstrings", "struct_classes"]


@cache
def field_docstrings(cls: type) -> dict[str, str]:
    """``{field name: docstring}`` for the attribute docstrings written in ``cls``'s body (and its bases)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass in (object, msgspec.Struct) or not isinstance(klass, type):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        tree = ast.parse(source)
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, following in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(following.value.value)
    return docs


def struct_classes() -> dict[str, type]:
    """Every msgspec Struct defined in the ``app`` package, by class name."""
    found: dict[str, type] = {}
    pending: list[type] = [msgspec.Struct]
    while pending:
        cls = pending.pop()
        subclasses: list[type] = cls.__subclasses__()
        for sub in subclasses:
            pending.append(sub)
            if sub.__module__.startswith("app."):
                found.setdefault(sub.__name__, sub)
    return found
