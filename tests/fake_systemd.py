"""A systemctl stand-in that answers like systemd 252 about units it has and lacks.

``fake_systemctl(dir, known=..., failing=...)`` writes ``dir/systemctl``: it records every
call (one ``[arg]...`` line per call in ``dir/systemctl.calls``), ``try-restart`` and
``try-reload-or-restart`` ask for every unit they can, a unit it does not know gets
``Failed to VERB X: Unit X not found.`` on stderr and exit 5, a ``failing`` unit gets
``Job for X failed.`` and exit 1 (as the real systemctl on a booted Debian 12 does, see
tests/host/test_nspawn_units.py), and ``show --property=Id,LoadState -- UNIT...`` prints
one ``Id=``/``LoadState=`` block per unit. ``noise`` is an extra stderr line on every
failing call (a wrapper's own message); ``no_show`` makes ``show`` fail.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from pathlib import Path

SCRIPT = """#!/bin/sh
for a in "$@"; do printf '[%s]' "$a"; done >> {calls}
echo >> {calls}
known() {{ case " {known} " in *" $1 "*) return 0;; esac; return 1; }}
failing() {{ case " {failing} " in *" $1 "*) return 0;; esac; return 1; }}
full() {{ case "$1" in *.*) echo "$1";; *) echo "$1.service";; esac; }}
while case "$1" in --*) true;; *) false;; esac; do shift; done  # prefix options
verb=$1; shift
if [ "$verb" = show ]; then
  [ -n "{no_show}" ] && {{ echo 'Unknown command verb show.' >&2; exit 1; }}
  shift; [ "$1" = -- ] && shift
  first=1
  for u in "$@"; do
    id=$(full "$u")
    [ $first = 1 ] || echo
    first=0
    echo "Id=$id"
    if known "$id"; then echo LoadState=loaded; else echo LoadState=not-found; fi
  done
  exit 0
fi
rc=0
for u in "$@"; do
  id=$(full "$u")
  if ! known "$id"; then
    echo "Failed to $verb $id: Unit $id not found." >&2
    [ $rc = 0 ] && rc=5
  elif failing "$id"; then
    echo "Job for $id failed." >&2
    rc=1
  else
    echo "$verb $id" >> {done}
  fi
done
if [ $rc != 0 ] && [ -n {noise} ]; then echo {noise} >&2; fi
exit $rc
"""


def fake_systemctl(
    directory: Path,
    *,
    known: Iterable[str],
    failing: Iterable[str] = (),
    noise: str = "",
    no_show: bool = False,
) -> Path:
    script = directory / "systemctl"
    script.write_text(
        SCRIPT.format(
            calls=shlex.quote(str(directory / "systemctl.calls")),
            done=shlex.quote(str(directory / "systemctl.done")),
            known=" ".join(known),
            failing=" ".join(failing),
            noise=shlex.quote(noise),
            no_show="1" if no_show else "",
        )
    )
    script.chmod(0o755)
    return script


def calls(directory: Path) -> list[str]:
    """Every call, in order, as ``[arg][arg]...``."""
    path = directory / "systemctl.calls"
    return path.read_text().splitlines() if path.exists() else []


def done(directory: Path) -> list[str]:
    """What the fake did, one ``VERB UNIT`` line per unit it restarted or reloaded."""
    path = directory / "systemctl.done"
    return path.read_text().splitlines() if path.exists() else []
