"""How far ahead a store secret's expiry date is announced.

One window for the operator side (`store list`, `store check`, `provision` and
`verify` through workflows/usage.py) and the host side (`status`): the bundle
carries the date, so both can say "expires on D (in N days)" about the same value
on the same day. 30 days leaves time to ask whoever issued a token for a new one.
"""

from __future__ import annotations

EXPIRY_WARNING_DAYS = 30

__all__ = ["EXPIRY_WARNING_DAYS"]
