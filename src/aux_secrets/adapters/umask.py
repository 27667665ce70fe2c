"""The process umask: files aux-secrets creates are for their owner only.

Apart from ``adapters/fs.py`` so the CLI's entry can set it before importing anything
else (cli/main.py, and the fast path there).
"""

from __future__ import annotations

import os

PRIVATE_UMASK = 0o077


def set_private_umask() -> None:
    """Files we create are for the owner only, whatever the caller's umask."""
    os.umask(PRIVATE_UMASK)
