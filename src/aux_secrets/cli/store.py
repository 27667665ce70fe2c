"""`aux-secrets store ...`: fixed secrets (imported tokens), one encrypted file each.

This module registers the group; the commands live in store_read.py (get, list),
store_write.py (add, set, rm, rename), store_edit.py (edit), store_lifecycle.py (revoke,
check) and store_keys.py (verify, rekey); what they share is in store_common.py and
store_value.py, re-exported here.
"""

from __future__ import annotations

import typer

from aux_secrets.cli import store_edit
from aux_secrets.cli.store_common import ExpiresOpt as ExpiresOpt
from aux_secrets.cli.store_common import FromCommandOpt as FromCommandOpt
from aux_secrets.cli.store_common import FromFileOpt as FromFileOpt
from aux_secrets.cli.store_common import JsonOpt as JsonOpt
from aux_secrets.cli.store_common import NameArg as NameArg
from aux_secrets.cli.store_common import NoCommitOpt as NoCommitOpt
from aux_secrets.cli.store_common import NoteOpt as NoteOpt
from aux_secrets.cli.store_common import StripOpt as StripOpt
from aux_secrets.cli.store_common import _expiry_state as _expiry_state
from aux_secrets.cli.store_common import _open_store as _open_store
from aux_secrets.cli.store_common import _parse_expires as _parse_expires
from aux_secrets.cli.store_common import _today as _today
from aux_secrets.cli.store_keys import REKEY_HELP as REKEY_HELP
from aux_secrets.cli.store_keys import VERIFY_HELP as VERIFY_HELP
from aux_secrets.cli.store_keys import rekey as rekey
from aux_secrets.cli.store_keys import verify as verify
from aux_secrets.cli.store_read import GET_HELP as GET_HELP
from aux_secrets.cli.store_read import LIST_HELP as LIST_HELP
from aux_secrets.cli.store_read import get as get
from aux_secrets.cli.store_read import list_ as list_
from aux_secrets.cli.store_value import _prompt_value as _prompt_value
from aux_secrets.cli.store_value import _read_value as _read_value
from aux_secrets.cli.store_value import _run_value_command as _run_value_command
from aux_secrets.cli.store_write import ADD_HELP as ADD_HELP
from aux_secrets.cli.store_write import RENAME_HELP as RENAME_HELP
from aux_secrets.cli.store_write import RM_HELP as RM_HELP
from aux_secrets.cli.store_write import SET_HELP as SET_HELP
from aux_secrets.cli.store_write import add as add
from aux_secrets.cli.store_write import rename as rename
from aux_secrets.cli.store_write import rm as rm
from aux_secrets.cli.store_write import set_ as set_


def register(app: typer.Typer) -> None:
    store_app = typer.Typer(
        help="Fixed secrets that cannot be derived (imported tokens): add, get, list, set, "
        "edit, revoke, check, rm, rename, verify, rekey.\n\n"
        "Example: aux-secrets store add github/deploy-token < token.txt",
        no_args_is_help=True,
        rich_markup_mode=None,
    )
    store_app.command("add", help=ADD_HELP)(add)
    store_app.command("get", help=GET_HELP)(get)
    store_app.command("list", help=LIST_HELP)(list_)
    store_app.command("set", help=SET_HELP)(set_)
    store_app.command("edit", help=store_edit.EDIT_HELP)(store_edit.edit)
    store_app.command("rm", help=RM_HELP)(rm)
    store_app.command("rename", help=RENAME_HELP)(rename)
    store_app.command("verify", help=VERIFY_HELP)(verify)
    store_app.command("rekey", help=REKEY_HELP)(rekey)
    from aux_secrets.cli.store_lifecycle import CHECK_HELP, REVOKE_HELP, check, revoke

    store_app.command("revoke", help=REVOKE_HELP)(revoke)
    store_app.command("check", help=CHECK_HELP)(check)
    app.add_typer(store_app, name="store")
