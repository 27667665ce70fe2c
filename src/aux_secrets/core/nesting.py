"""JSON and TOML parsing with bounded nesting: a deep document is a parse error.

``json.loads`` and ``tomllib.loads`` recurse once per level: a document nested some
thousands of levels deep raised RecursionError (a traceback, not one error line), and a
few hundred levels could still exhaust the recursion of later code walking the result.
``loads_json`` and ``loads_toml`` raise the parsers' own error types instead, so every
caller's existing ``except json.JSONDecodeError`` / ``tomllib.TOMLDecodeError`` turns it
into its one line (or, for a cache such as ``.generation.json``, into "absent"). No
format of aux-secrets nests anywhere near MAX_DEPTH levels.

Pure: text in, a document out.
"""

from __future__ import annotations

import json

# typing and tomllib are not imported at run time: the agent's fast path (cli/fastpath.py)
# parses its frames with loads_json, and each import is a noticeable part of its time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_DEPTH = 64
TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"


def depth_exceeds(value: object, limit: int = MAX_DEPTH) -> bool:
    """Whether lists and dicts in ``value`` nest deeper than ``limit`` (iterative)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def loads_json(text: str | bytes, **kwargs: Any) -> Any:
    """``json.loads`` that raises JSONDecodeError for a document nested too deeply."""
    try:
        value = json.loads(text, **kwargs)
    except RecursionError:
        value = None
        deep = True
    else:
        deep = depth_exceeds(value)
    if deep:
        doc = text if isinstance(text, str) else ""
        raise json.JSONDecodeError(TOO_DEEP, doc, 0)
    return value


def loads_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads`` that raises TOMLDecodeError for a document nested too deeply."""
    import tomllib

    try:
        value = tomllib.loads(text)
    except RecursionError:
        raise tomllib.TOMLDecodeError(TOO_DEEP) from None
    if depth_exceeds(value):
        raise tomllib.TOMLDecodeError(TOO_DEEP)
    return value


__all__ = ["MAX_DEPTH", "TOO_DEEP", "depth_exceeds", "loads_json", "loads_toml"]
