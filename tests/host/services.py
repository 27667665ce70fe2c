"""Real services for the booted host: each records what it read and when it started.

``rec NAME FILE EVENT`` appends one line to /var/lib/rec/NAME.log:
``EVENT BOOT_ID UPTIME PID VALUE`` where VALUE is the file's bytes in base64, ``MISSING``
when the file was not there, ``EMPTY`` when it was empty. A service's ExecStart runs it
and then stays up; ExecReload runs it with ``reload``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from tests.host.operator import Host

REC = """#!/bin/sh
# rec NAME FILE EVENT: what a service read, and when
mkdir -p /var/lib/rec
if [ -e "$2" ]; then v=$(base64 -w0 < "$2"); [ -n "$v" ] || v=EMPTY; else v=MISSING; fi
boot=$(cat /proc/sys/kernel/random/boot_id)
echo "$3 $boot $(cut -d' ' -f1 /proc/uptime) $PPID $v" >> "/var/lib/rec/$1.log"
"""


def service_unit(name: str, secret_file: str, *, extra: str = "") -> str:
    return (
        f"[Unit]\nDescription=aux-secrets test service {name}\n{extra}\n"
        "[Service]\n"
        f"ExecStart=/bin/sh -c "
        f"'/usr/local/bin/rec {name} {secret_file} start; exec sleep infinity'\n"
        f"ExecReload=/usr/local/bin/rec {name} {secret_file} reload\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


@dataclass(frozen=True)
class Record:
    event: str
    boot_id: str
    uptime: float
    pid: str
    value: bytes | None  # None: the file was missing

    @classmethod
    def parse(cls, line: str) -> Record:
        event, boot, uptime, pid, value = line.split()
        data = None if value == "MISSING" else b"" if value == "EMPTY" else base64.b64decode(value)
        return cls(event, boot, float(uptime), pid, data)


def install_services(host: Host, services: dict[str, str], *, start: bool = True) -> None:
    """The recorder and ``name -> secret file`` services, delivered over ssh and enabled."""
    host.put("/usr/local/bin/rec", REC, "0755")
    for name, path in services.items():
        host.put(f"/etc/systemd/system/{name}.service", service_unit(name, path))
    names = " ".join(f"{n}.service" for n in services)
    host.ssh_ok(f"systemctl daemon-reload && systemctl enable {'--now ' if start else ''}{names}")


def records(host: Host, name: str) -> list[Record]:
    data = host.file(f"/var/lib/rec/{name}.log")
    if data is None:
        return []
    return [Record.parse(line) for line in data.decode().splitlines() if line.strip()]
