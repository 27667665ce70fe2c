"""Which directory is the vault: ``--vault``, ``$AUX_SECRETS_VAULT``, or the nearest one up.

Used by ``Vault.discover`` and by the fast path (cli/fastpath.py), which must find the
vault before anything heavy is imported: so plain ``os.path``, no pathlib.
"""

from __future__ import annotations

import os

VAULT_FILE = "vault.toml"
ENV_VAULT = "AUX_SECRETS_VAULT"


def locate_vault(explicit: str | None = None) -> str | None:
    """The vault directory a command means, or None when nothing names one and no
    directory from here upward holds a vault.toml.

    ``explicit`` (``--vault``) may name the directory or its vault.toml. Neither it nor
    ``$AUX_SECRETS_VAULT`` is checked here: loading the vault says what is wrong.
    """
    if explicit is not None:
        if os.path.basename(explicit) == VAULT_FILE and os.path.isfile(explicit):
            return os.path.dirname(explicit) or "."
        return explicit
    env = os.environ.get(ENV_VAULT)
    if env:
        return env
    directory = os.getcwd()
    while True:
        if os.path.isfile(os.path.join(directory, VAULT_FILE)):
            return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent
