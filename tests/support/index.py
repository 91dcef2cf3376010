"""A tiny PEP 503 / PEP 691 package index served from a local directory."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import shutil
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

__all__ = ["LocalIndex", "project_name_of"]

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "text/html; charset=utf-8"


@dataclass(frozen=True)
class DistFile:
    filename: str
    project: str
    version: str
    sha256: str
    size: int
    requires_python: str | None = None
    # what the pages say the sha256 is: the file's by default, "" for no hash (as some
    # PyTorch-style indexes serve), or another value (a file that changed under its hash)
    served: str | None = None

    @property
    def served_sha256(self) -> str:
        return self.sha256 if self.served is None else self.served


def project_name_of(filename: str) -> tuple[str, str]:
    """Return ``(canonical project name, version)`` for a dist file name."""
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename) as exc:
        raise ValueError(f"not a distribution file name: {filename}") from exc
    return canonicalize_name(name), str(version)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wants_json(accept: str | None) -> bool:
    """Content negotiation between PEP 691 JSON and HTML by q-value."""
    best_json, best_html = 0.0, 0.0
    for item in (accept or "").split(","):
        parts = [p.strip() for p in item.split(";")]
        media, q = parts[0].lower(), 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media == JSON_TYPE:
            best_json = max(best_json, q)
        elif media in ("application/vnd.pypi.simple.v1+html", "text/html", "*/*"):
            best_html = max(best_html, q)
    return best_json > 0 and best_json >= best_html


def _html_page(title: str, links: list[str]) -> str:
    body = "\n".join(f"    {link}<br/>" for link in links)
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="1.1">\n'
        f"    <title>{html.escape(title)}</title>\n  </head>\n  <body>\n"
        f"{body}\n  </body>\n</html>\n"
    )


def _file_href(dist: DistFile) -> str:
    return f"../../files/{dist.filename}"


def _html_link(dist: DistFile) -> str:
    fragment = f"#sha256={dist.served_sha256}" if dist.served_sha256 else ""
    attrs = f'href="{html.escape(_file_href(dist))}{fragment}"'
    if dist.requires_python:
        attrs += f' data-requires-python="{html.escape(dist.requires_python)}"'
    return f"<a {attrs}>{html.escape(dist.filename)}</a>"


def _json_file(dist: DistFile) -> dict[str, object]:
    entry: dict[str, object] = {
        "filename": dist.filename,
        "url": _file_href(dist),
        "hashes": {"sha256": dist.served_sha256} if dist.served_sha256 else {},
        "size": dist.size,
    }
    if dist.requires_python:
        entry["requires-python"] = dist.requires_python
    return entry


class LocalIndex:
    """Serve a directory of distributions as a simple index on 127.0.0.1."""

    def __init__(self, root: Path, *, auth: tuple[str, str] | None = None) -> None:
        self.root = Path(root)
        self.auth = auth
        self.files_dir = self.root / "files"
        self.simple_dir = self.root / "simple"
        self._dists: dict[str, DistFile] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self._write_pages()

    # -- content -------------------------------------------------------
    def add(self, path: Path, *, requires_python: str | None = None,
            served: str | None = None) -> Path:
        """Copy a dist file into the index and regenerate the pages; ``served``: the
        sha256 the pages give ("" for none), when it is not the file's."""
        path = Path(path)
        project, version = project_name_of(path.name)
        target = self.files_dir / path.name
        if path.resolve() != target.resolve():
            shutil.copyfile(path, target)
        size = target.stat().st_size
        dist = DistFile(path.name, project, version, _sha256(target), size, requires_python,
                        served)
        with self._lock:
            self._dists[path.name] = dist
            self._write_pages()
        return target

    def remove(self, filename: str) -> None:
        """Withdraw a file (as a yanked-and-deleted release would be) and rewrite pages."""
        with self._lock:
            self._dists.pop(filename, None)
            (self.files_dir / filename).unlink(missing_ok=True)
            self._write_pages()
            for page in self.simple_dir.iterdir():
                if page.is_dir() and page.name not in self.projects():
                    for item in page.iterdir():
                        item.unlink()
                    page.rmdir()

    def add_all(self, paths: list[Path] | tuple[Path, ...]) -> None:
        for path in paths:
            self.add(path)

    def projects(self) -> dict[str, list[DistFile]]:
        grouped: dict[str, list[DistFile]] = {}
        for dist in sorted(self._dists.values(), key=lambda d: d.filename):
            grouped.setdefault(dist.project, []).append(dist)
        return dict(sorted(grouped.items()))

    def _write_pages(self) -> None:
        self.simple_dir.mkdir(parents=True, exist_ok=True)
        projects = self.projects()
        links = [f'<a href="{name}/">{name}</a>' for name in projects]
        (self.simple_dir / "index.html").write_text(_html_page("Simple index", links))
        root_json = {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in projects]}
        (self.simple_dir / "index.json").write_text(json.dumps(root_json, indent=2))
        for name, dists in projects.items():
            self._write_project(name, dists)

    def _write_project(self, name: str, dists: list[DistFile]) -> None:
        page_dir = self.simple_dir / name
        page_dir.mkdir(parents=True, exist_ok=True)
        title = f"Links for {name}"
        (page_dir / "index.html").write_text(_html_page(title, [_html_link(d) for d in dists]))
        data = {
            "meta": {"api-version": "1.1"},
            "name": name,
            "versions": sorted({d.version for d in dists}),
            "files": [_json_file(d) for d in dists],
        }
        (page_dir / "index.json").write_text(json.dumps(data, indent=2))

    # -- server --------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("LocalIndex is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/simple"

    @property
    def files_url(self) -> str:
        return f"{self.base_url}/files"

    def start(self) -> LocalIndex:
        if self._server is not None:
            return self
        handler = type("BoundIndexHandler", (_IndexHandler,), {"index": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-index", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> LocalIndex:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def authorized(self, header: str | None) -> bool:
        if self.auth is None:
            return True
        user, password = self.auth
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return header is not None and header.strip() == f"Basic {token}"


class _IndexHandler(BaseHTTPRequestHandler):
    index: LocalIndex
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._handle(send_body=True)

    def do_HEAD(self) -> None:
        self._handle(send_body=False)

    def _handle(self, *, send_body: bool) -> None:
        if not self.index.authorized(self.headers.get("Authorization")):
            self._unauthorized(send_body)
            return
        path = unquote(urlsplit(self.path).path)
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["simple"] and len(parts) <= 2:
            self._simple(path, parts[1:], send_body)
        elif parts[:1] == ["files"] and len(parts) == 2:
            self._file(parts[1], send_body)
        else:
            self._not_found(send_body)

    def _simple(self, path: str, rest: list[str], send_body: bool) -> None:
        if rest and canonicalize_name(rest[0]) != rest[0]:
            self._redirect(f"/simple/{canonicalize_name(rest[0])}/", send_body)
            return
        if not path.endswith("/"):
            self._redirect(path + "/", send_body)
            return
        page_dir = self.index.simple_dir.joinpath(*rest)
        as_json = _wants_json(self.headers.get("Accept"))
        page = page_dir / ("index.json" if as_json else "index.html")
        if not page.is_file():
            self._not_found(send_body)
            return
        content_type = JSON_TYPE if as_json else HTML_TYPE
        self._send(HTTPStatus.OK, page.read_bytes(), content_type, send_body, {"Vary": "Accept"})

    def _file(self, name: str, send_body: bool) -> None:
        target = self.index.files_dir / name
        if "/" in name or name.startswith(".") or not target.is_file():
            self._not_found(send_body)
            return
        self._send(HTTPStatus.OK, target.read_bytes(), "application/octet-stream", send_body)

    def _redirect(self, location: str, send_body: bool) -> None:
        headers = {"Location": location}
        self._send(HTTPStatus.MOVED_PERMANENTLY, b"", "text/plain", send_body, headers)

    def _unauthorized(self, send_body: bool) -> None:
        challenge = {"WWW-Authenticate": 'Basic realm="reprolock-test-index"'}
        self._send(HTTPStatus.UNAUTHORIZED, b"unauthorized\n", "text/plain", send_body, challenge)

    def _not_found(self, send_body: bool) -> None:
        self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", send_body)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        send_body: bool,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)
