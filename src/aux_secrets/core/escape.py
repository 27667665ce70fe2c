"""Text that came from outside, made safe to print on one terminal line.

Messages name things from files and from the network (bundle fields before their
signature is checked, manifest names, paths, units, a host's stderr). ``printable``
escapes what a terminal or a log would act on or render misleadingly: control
characters (newline, carriage return, escape sequences, C1), format characters (bidi
overrides and isolates, zero-width characters, the BOM), line and paragraph separators,
and lone surrogates. Each becomes ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN``, so one
message stays one line and reads as what it contains. Pure.
"""

from __future__ import annotations

import unicodedata

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def is_unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def printable(text: str) -> str:
    """``text`` with every unsafe character escaped (unchanged when there is none)."""
    if text.isprintable():  # fast path: no control, format or separator characters
        return text
    return "".join(_escaped(ch) if is_unsafe(ch) else ch for ch in text)


__all__ = ["is_unsafe", "printable"]
