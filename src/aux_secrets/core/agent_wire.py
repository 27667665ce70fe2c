"""The agent's wire format (docs/spec/agent.md): length-prefixed JSON frames.

A frame is a 4-byte big-endian length followed by that many bytes of one UTF-8 JSON
object. Binary fields (passwords, key-stream bytes) are base64. Pure: bytes in, values
out; the socket work is in ``adapters/agent.py`` and ``adapters/agent_server.py``.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct

from aux_secrets.core.nesting import loads_json
from aux_secrets.errors import InputError

TYPE_CHECKING = False  # typing is not imported at run time (cli/fastpath.py)
if TYPE_CHECKING:
    from typing import Any

PROTOCOL_VERSION = 1
HEADER_LEN = 4
MAX_FRAME = 4 * 1024 * 1024
MAX_READ = 1024 * 1024  # key-stream bytes one ``read`` may ask for
MAX_OFFSET = 1 << 32
OPS = frozenset({"hello", "status", "hold", "unlock", "read", "lock", "answer"})


def encode_frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), sort_keys=True).encode()
    if len(body) > MAX_FRAME:
        raise InputError(f"agent frame of {len(body)} bytes is over {MAX_FRAME}")
    return struct.pack(">I", len(body)) + body


def frame_length(header: bytes) -> int:
    """The body length a 4-byte header announces; an oversized one is refused."""
    if len(header) != HEADER_LEN:
        raise InputError("agent frame: truncated header")
    (length,) = struct.unpack(">I", header)
    if length > MAX_FRAME:
        raise InputError(f"agent frame: {length} bytes is over {MAX_FRAME}")
    return int(length)


def decode_body(body: bytes) -> dict[str, Any]:
    try:
        value = loads_json(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError("agent frame: not a UTF-8 JSON document") from None
    if not isinstance(value, dict):
        raise InputError("agent frame: not a JSON object")
    return value


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(message: dict[str, Any], key: str) -> bytes:
    value = field(message, key, str)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"agent frame: field '{key}' is not base64") from None


def field(message: dict[str, Any], key: str, kind: type) -> Any:
    """``message[key]`` of type ``kind``, else InputError naming the field."""
    if key not in message:
        raise InputError(f"agent frame: missing field '{key}'")
    value = message[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise InputError(f"agent frame: field '{key}' must be an integer")
    if not isinstance(value, kind):
        raise InputError(f"agent frame: field '{key}' must be a {kind.__name__}")
    return value


def read_request(message: dict[str, Any]) -> tuple[str, str, str, int, int]:
    """(vault id, realm, purpose, offset, n) of a ``read`` request, bounds checked."""
    vault = field(message, "vault", str)
    realm = field(message, "realm", str)
    purpose = field(message, "purpose", str)
    offset = field(message, "offset", int)
    n = field(message, "n", int)
    if not 0 <= offset <= MAX_OFFSET:
        raise InputError("agent frame: field 'offset' is out of range")
    if not 0 <= n <= MAX_READ:
        raise InputError(f"agent frame: field 'n' must be 0..{MAX_READ}")
    return vault, realm, purpose, offset, n


def optional_field(message: dict[str, Any], key: str, kind: type) -> Any:
    """``message[key]`` of type ``kind``, or None when it is absent or null."""
    if message.get(key) is None:
        return None
    return field(message, key, kind)
