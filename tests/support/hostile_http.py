"""A small HTTP server whose answers each test writes by hand (a hostile index, wheel
server or registry), on 127.0.0.1."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

Route = Callable[[BaseHTTPRequestHandler], None]


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, Route]] = {}
    seen: ClassVar[list[tuple[str, str | None]]] = []  # (path, Authorization) of each

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.seen.append((self.path, self.headers.get("Authorization")))
        route = self.routes.get(path)
        if route is None:
            self.send_error(404)
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            route(self)  # the client may give up, as it should

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def hostile_server() -> Iterator[tuple[str, dict[str, Route], list[tuple[str, str | None]]]]:
    """(base URL, routes by path, requests seen) of a server running until the end."""
    routes: dict[str, Route] = {}
    seen: list[tuple[str, str | None]] = []
    handler = type("Handler", (_Handler,), {"routes": routes, "seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", routes, seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def send(handler: BaseHTTPRequestHandler, body: bytes, *, status: int = 200,
         headers: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
