"""A real HTTP server on 127.0.0.1 for the pull tests: Python's http.server in a subprocess.

It serves one directory (Last-Modified and If-Modified-Since as http.server does, which
is what a static server or object store offers). A file named in ``DIR/.cut`` (one
name a line) is answered with its full Content-Length but only half its bytes before
the connection closes: a transfer cut short. With ``DIR/.auth`` (``user:password``)
every request needs that Basic authentication. Requests are logged to ``DIR/.log``.

Run as ``python -m tests.httpd DIR PORT``; tests use :func:`serve`.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.sshd import free_port


class Handler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        with open(Path(self.directory) / ".log", "a") as log:
            log.write(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")

    def do_GET(self) -> None:
        auth = Path(self.directory) / ".auth"  # "user:password": Basic authentication
        if auth.exists():
            wanted = "Basic " + base64.b64encode(auth.read_bytes().strip()).decode()
            if self.headers.get("Authorization") != wanted:
                self.send_error(401)
                return
        cut = Path(self.directory) / ".cut"
        name = self.path.lstrip("/")
        if cut.exists() and name in cut.read_text().split():
            data = (Path(self.directory) / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.log_message("%s %s", "GET", "cut")
            return
        super().do_GET()


@dataclass(frozen=True)
class Server:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def requests(self) -> list[str]:
        log = self.directory / ".log"
        return log.read_text().splitlines() if log.exists() else []


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[Server]:
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.httpd", str(directory), str(port)],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the test HTTP server did not start") from None
                time.sleep(0.05)
        yield Server(directory, port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    directory, port = sys.argv[1], int(sys.argv[2])
    handler = partial(Handler, directory=directory)
    ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()


if __name__ == "__main__":
    main()
