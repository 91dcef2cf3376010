"""Index credentials: they reach only the origin they were written for, never a child's
argv, the lock, the outputs, the errors or the image; and a literal one in the config is
refused. Real uv and pip-tools run against index servers on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reprolock.config import load_config
from reprolock.errors import EXIT_ERROR, ConfigError
from tests.support.cli import run_cli

RESOLVERS = ["uv", "pip-tools"]
USER, TOKEN = "alice", "t0kenS3cretValue"
DEPS = '[dependencies]\nrequirements = ["requirements.in"]\n'


# --- literal credentials in the config ----------------------------------------------


def _project(root: Path, config: str, *, name: str = "reprolock.toml") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "requirements.in").write_text("tinyml\n")
    (root / name).write_text(config)
    return root


LITERAL = {
    "index.url": f'[index]\nurl = "https://{USER}:{TOKEN}@pypi.corp.example/simple"\n',
    "index.extra-urls[1]": '[index]\nextra-urls = ["https://pypi.org/simple", '
                           f'"https://{USER}:{TOKEN}@pypi.corp.example/simple"]\n',
    "index.find-links[0]": f'[index]\nfind-links = ["https://{USER}:{TOKEN}@h.example/w/"]\n',
    # a token is often the user part alone
    "index.url ": f'[index]\nurl = "https://{TOKEN}@pypi.corp.example/simple"\n',
    "index.url  ": f'[index]\nurl = "https://{USER}:${{X}}{TOKEN}@pypi.corp.example/simple"\n',
}


@pytest.mark.parametrize("key", sorted(LITERAL))
@pytest.mark.parametrize("name", ["reprolock.toml", "pyproject.toml"])
def test_literal_credential_in_config_is_refused(tmp_path: Path, key: str, name: str) -> None:
    body = 'base = "python:3.11-slim"\n' + DEPS + LITERAL[key]
    if name == "pyproject.toml":
        body = body.replace("[dependencies]", "[tool.reprolock.dependencies]").replace(
            "[index]", "[tool.reprolock.index]")
        body = "[tool.reprolock]\n" + body
    root = _project(tmp_path, body, name=name)
    with pytest.raises(ConfigError) as info:
        load_config(root)
    text = info.value.diagnostics()
    assert info.value.exit_code == EXIT_ERROR
    assert name in text and key.strip() in text
    assert "${" in (info.value.hint or "")
    assert TOKEN not in text
    done = run_cli("lock", "--check", "-C", root)
    assert done.returncode == EXIT_ERROR and TOKEN not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr and key.strip() in done.stderr


@pytest.mark.parametrize("url", [
    "https://user:${INDEX_TOKEN}@pypi.corp.example/simple",
    "https://${INDEX_USER}:${INDEX_TOKEN}@pypi.corp.example/simple",
    "https://${INDEX_TOKEN}@pypi.corp.example/simple",
    "https://pypi.corp.example/simple",
    "${INDEX_URL}",
])
def test_credentials_from_the_environment_are_accepted(tmp_path: Path, url: str) -> None:
    root = _project(tmp_path, 'base = "python:3.11-slim"\n' + DEPS + f'[index]\nurl = "{url}"\n')
    assert load_config(root).index.url == url


def test_audit_reports_a_password_in_a_url_without_showing_it(tmp_path: Path) -> None:
    """Any file of the code set (here pip.conf and a script) with a URL password is
    reported; the value is never printed."""
    (tmp_path / "pip.conf").write_text(
        f"[global]\nindex-url = https://{USER}:{TOKEN}@pypi.corp.example/simple\n")
    (tmp_path / "fetch.py").write_text(
        f'URL = "https://bob:{TOKEN}x@data.example/set.tar"\n'
        'OK = "https://bob:${PASSWORD}@data.example/x"\n'
        'ALSO_OK = f"https://bob:{password}@data.example/x"\n')
    done = run_cli("audit", tmp_path, "--format", "json", "--no-hadolint")
    assert TOKEN not in done.stdout + done.stderr
    report = json.loads(done.stdout)
    found = {(f["path"], f["line"]) for f in report["findings"] if f["rule"] == "RL504"}
    assert found == {("pip.conf", 2), ("fetch.py", 1)}, report["findings"]
    assert done.returncode == 1


def test_audit_refuses_a_literal_credential_in_reprolock_toml(tmp_path: Path) -> None:
    root = _project(tmp_path, 'base = "python:3.11-slim"\n' + DEPS + LITERAL["index.url"])
    done = run_cli("audit", root, "--no-hadolint")
    assert done.returncode == EXIT_ERROR
    assert "index.url" in done.stderr and TOKEN not in done.stdout + done.stderr


# --- malformed TOML ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["a = " + "[" * 100_000 + "]" * 100_000 + "\n",
                                  "a = " + "{b = " * 50_000 + "1" + "}" * 50_000 + "\n",
                                  'base = "x"\n' + DEPS + "[image]\nenv = {A = "
                                  + "[" * 200 + "]" * 200 + "}\n"])
def test_deeply_nested_toml_is_a_config_error(tmp_path: Path, text: str) -> None:
    root = _project(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(root)
    assert "reprolock.toml" in info.value.message
    for command in (("lock", "--check"), ("inspect",)):
        done = run_cli(*command, "-C", root)
        assert done.returncode == EXIT_ERROR, done.stderr
        assert "Traceback" not in done.stderr and "reprolock.toml" in done.stderr


# --- index servers on 127.0.0.1 -------------------------------------------------------


@dataclass
class Server:
    """A simple index of ``wheels``: it may require Basic auth, link its files on another
    server (``files_at``) or redirect its project pages there (``redirect_to``). It
    records the Authorization header of every request."""

    wheels: Path
    auth: tuple[str, str] | None = None
    files_at: str = ""
    redirect_to: str = ""
    port: int = 0
    seen: list[tuple[str, str | None]] = field(default_factory=list)
    _http: ThreadingHTTPServer | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.origin}/simple"

    def start(self) -> Server:
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._http = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._http.daemon_threads = True
        self.port = int(self._http.server_address[1])
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()

    def authorizations(self) -> list[str]:
        return [header for _, header in self.seen if header]


class _Handler(BaseHTTPRequestHandler):
    server_state: Server
    protocol_version = "HTTP/1.1"

    head = False

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self.head = True  # this handler serves every request of one kept-alive connection
        try:
            self.do_GET()
        finally:
            self.head = False

    def do_GET(self) -> None:
        state = self.server_state
        header = self.headers.get("Authorization")
        state.seen.append((self.path, header))
        if state.auth is not None and header != _basic(*state.auth):
            self._send(401, b"unauthorized\n", {"WWW-Authenticate": 'Basic realm="test"'})
            return
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if parts[:1] == ["simple"] and state.redirect_to:
            self._send(302, b"", {"Location": state.redirect_to + self.path})
        elif parts[:1] == ["simple"] and len(parts) == 2:
            self._send(200, self._page(parts[1]).encode(), {"Content-Type": "text/html"})
        elif parts == ["files"]:  # a flat find-links listing
            self._send(200, self._page(None).encode(), {"Content-Type": "text/html"})
        elif parts[:1] == ["files"] and len(parts) == 2 and (state.wheels / parts[1]).is_file():
            self._send(200, (state.wheels / parts[1]).read_bytes(),
                       {"Content-Type": "application/octet-stream"})
        else:
            self._send(404, b"not found\n", {})

    def _page(self, project: str | None) -> str:
        from tests.support.index import project_name_of

        links = []
        for path in sorted(self.server_state.wheels.iterdir()):
            if path.suffix == ".whl" and project in (None, project_name_of(path.name)[0]):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                href = f"{self.server_state.files_at}/files/{path.name}#sha256={digest}"
                links.append(f'<a href="{html.escape(href)}">{path.name}</a><br/>')
        return "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n"

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not self.head:
            self.wfile.write(body)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def servers(wheelhouse: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(**kwargs: object) -> Server:
        server = Server(wheelhouse, **kwargs).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# Run reprolock's real CLI in a process that logs the argv of every program it starts.
_SPY = """
import json, subprocess, sys
log = sys.argv.pop(1)
start = subprocess.Popen.__init__
def spy(self, args, *rest, **kwargs):
    argv = [args] if isinstance(args, (str, bytes)) else list(args)
    with open(log, "a", encoding="utf-8") as out:
        out.write(json.dumps([str(a) for a in argv]) + "\\n")
    start(self, args, *rest, **kwargs)
subprocess.Popen.__init__ = spy
sys.argv[0] = "reprolock"
from reprolock._entry import main
main()
"""


@dataclass(frozen=True)
class Spied:
    proc: subprocess.CompletedProcess[str]
    argvs: list[list[str]]


def spied_cli(tmp: Path, *args: str | Path, env: dict[str, str]) -> Spied:
    log = tmp / f"argv-{len(list(tmp.glob('argv-*')))}.jsonl"
    log.touch()
    proc = subprocess.run([sys.executable, "-c", _SPY, str(log), *map(str, args)],
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                          check=False)
    argvs = [json.loads(line) for line in log.read_text().splitlines()]
    return Spied(proc, argvs)


def _token_env(token: str = TOKEN) -> dict[str, str]:
    return {**os.environ, "INDEX_TOKEN": token}


def _private_url(server: Server) -> str:
    return server.url.replace("http://", f"http://{USER}:${{INDEX_TOKEN}}@")


def _everything(root: Path, spied: Spied) -> str:
    """All that a lock leaves behind and shows: outputs, argv, and every project file."""
    files = [p.read_text(errors="replace") for p in root.rglob("*")
             if p.is_file() and ".reprolock" not in p.parts]
    return "\n".join([spied.proc.stdout, spied.proc.stderr, json.dumps(spied.argvs), *files])


# --- the resolvers get credentials through their environment, never argv -------------


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_lock_with_credentials_keeps_them_out_of_argv_and_outputs(
        make_project: Callable[..., Path], servers: Callable[..., Server], tmp_path: Path,
        resolver: str) -> None:
    private = servers(auth=(USER, TOKEN))
    root = make_project(resolver=resolver, index_url=_private_url(private))
    spied = spied_cli(tmp_path, "lock", "-C", root, "--no-sbom", "--json", env=_token_env())
    assert spied.proc.returncode == 0, spied.proc.stderr
    resolvers = [a for a in spied.argvs if "compile" in a]
    assert resolvers, spied.argvs  # the resolver ran as a child, and was seen
    assert any(p.startswith("/files/") for p, _ in private.seen)  # reprolock read the wheels
    assert TOKEN not in _everything(root, spied)
    assert json.loads((root / "reprolock.lock.json").read_text())["indexes"] == [
        {"kind": "index", "url": private.url}]
    for command in (("inspect", "--json"), ("export", "--format", "requirements"),
                    ("export", "--format", "pylock"), ("lock", "--check", "--json")):
        done = spied_cli(tmp_path, *command, "-C", root, env=_token_env())
        assert done.proc.returncode == 0, done.proc.stderr
        assert TOKEN not in _everything(root, done) and USER not in done.proc.stdout


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_find_links_with_credentials_stay_out_of_argv(
        make_project: Callable[..., Path], servers: Callable[..., Server], tmp_path: Path,
        resolver: str) -> None:
    private = servers(auth=(USER, TOKEN))
    root = make_project(resolver=resolver)
    links = private.origin.replace("http://", f"http://{USER}:${{INDEX_TOKEN}}@") + "/files/"
    with (root / "reprolock.toml").open("a") as config:
        config.write(f'no-index = true\nfind-links = ["{links}"]\n')
    spied = spied_cli(tmp_path, "lock", "-C", root, "--no-sbom", "--no-build", env=_token_env())
    assert ("/files/", _basic(USER, TOKEN)) in private.seen  # the resolver logged in
    assert TOKEN not in _everything(root, spied)
    if resolver == "uv":  # uv 0.13 pins without hashes from this remote flat listing,
        # credentials or not (checked by hand with --find-links in argv): no lock here
        assert "gave no hashes" in spied.proc.stderr
        return
    assert spied.proc.returncode == 0, spied.proc.stderr
    assert json.loads((root / "reprolock.lock.json").read_text())["indexes"] == [
        {"kind": "find-links", "url": f"{private.origin}/files/"}]


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_a_password_with_url_delimiters_goes_where_it_should(
        make_project: Callable[..., Path], servers: Callable[..., Server], tmp_path: Path,
        resolver: str) -> None:
    """Expanded as is, "p@ss/w..." would end the user information at its "@": the URL
    would point at host "ss" and send it part of the password."""
    password = "p@ss/w:rd#1?"
    private = servers(auth=(USER, password))
    root = make_project(resolver=resolver, index_url=_private_url(private))
    spied = spied_cli(tmp_path, "lock", "-C", root, "--no-sbom", "--no-build",
                      env=_token_env(password))
    assert spied.proc.returncode == 0, spied.proc.stderr
    assert password not in _everything(root, spied)


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_wrong_password_error_shows_no_credential(
        make_project: Callable[..., Path], servers: Callable[..., Server], tmp_path: Path,
        resolver: str) -> None:
    private = servers(auth=(USER, TOKEN))
    root = make_project(resolver=resolver, index_url=_private_url(private))
    wrong = "wr0ngPassw0rdValue"
    spied = spied_cli(tmp_path, "lock", "-C", root, "--no-sbom", env=_token_env(wrong))
    assert spied.proc.returncode == EXIT_ERROR
    assert "Traceback" not in spied.proc.stderr
    assert str(private.port) in spied.proc.stderr  # the index is named, without credentials
    assert wrong not in _everything(root, spied) and TOKEN not in _everything(root, spied)


# --- credentials go only to the origin they were written for -------------------------


@pytest.mark.parametrize("resolver", RESOLVERS)
@pytest.mark.parametrize("how", ["links", "redirects", "extra-index"])
def test_credentials_never_reach_another_origin(
        make_project: Callable[..., Path], servers: Callable[..., Server], resolver: str,
        how: str) -> None:
    """The private index's pages link to (or redirect to) a server on another port of
    the same host, or that server is an extra index: it must never see the password."""
    other = servers()
    private = servers(auth=(USER, TOKEN), files_at=other.origin if how == "links" else "",
                      redirect_to=other.origin if how == "redirects" else "")
    root = make_project(resolver=resolver, index_url=_private_url(private))
    if how == "extra-index":
        with (root / "reprolock.toml").open("a") as config:
            config.write(f'extra-urls = ["{other.url}"]\n')
    done = run_cli("lock", "-C", root, "--no-sbom", env=_token_env())
    assert done.returncode == 0, done.stderr
    assert other.seen, "the other server was not asked: the test proves nothing"
    assert other.authorizations() == []
    assert TOKEN not in done.stdout + done.stderr


def test_wheel_read_error_shows_no_credential(servers: Callable[..., Server]) -> None:
    """requests names the URL it fetched, user information included, in its errors."""
    from reprolock.errors import ArtifactError
    from reprolock.index.simple import DistFile
    from reprolock.index.wheels import wheel_modules

    private = servers(auth=(USER, TOKEN))
    url = f"http://{USER}:{TOKEN}@127.0.0.1:{private.port}/files/missing-1.0-py3-none-any.whl"
    import requests

    with pytest.raises(ArtifactError) as info:
        wheel_modules(DistFile("missing-1.0-py3-none-any.whl", url, None, None, None),
                      cache_dir=None, session=requests.Session)
    assert "404" in info.value.diagnostics() and TOKEN not in info.value.diagnostics()
    import traceback  # what --verbose prints, chained errors included

    assert TOKEN not in "".join(traceback.format_exception(info.value))
    assert private.seen and private.authorizations() == [_basic(USER, TOKEN)]


def _prefix_ports(servers: Callable[..., Server]) -> tuple[Server, Server]:
    """An unauthenticated server on port NNNNN and a private index on port NNNN, so that
    the private origin string is a prefix of the other's ("...:3812" of "...:38123")."""
    for _ in range(20):
        other = servers()
        try:
            private = servers(auth=(USER, TOKEN), files_at=other.origin,
                              port=other.port // 10)
        except OSError:
            continue  # that port is taken: try another
        if other.port // 10 >= 1024:
            return private, other
    pytest.fail("no pair of free ports found")


def test_wheel_download_sends_credentials_only_to_their_exact_origin(
        make_project: Callable[..., Path], servers: Callable[..., Server],
        tmp_path: Path) -> None:
    """The environment image is built from wheels fetched by the lock's URLs; the private
    index's credentials must not go to a server whose URL merely starts the same."""
    private, other = _prefix_ports(servers)
    root = make_project(index_url=_private_url(private))
    # a fresh cache, or the wheels of an earlier test are not downloaded at all
    env = {**_token_env(), "REPROLOCK_CACHE_DIR": str(tmp_path / "cache")}
    done = run_cli("lock", "-C", root, "--no-sbom", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads((root / "reprolock.lock.json").read_text())["image"]
    assert other.seen and other.authorizations() == []


@pytest.mark.parametrize(("url", "configured", "expected"), [
    ("https://pypi.corp.example/files/a.whl", "https://u:p@pypi.corp.example/simple",
     "https://u:p@pypi.corp.example/files/a.whl"),
    ("https://PyPI.Corp.Example:443/a.whl", "https://u:p@pypi.corp.example/simple",
     "https://u:p@PyPI.Corp.Example:443/a.whl"),
    ("http://h.example:80/a.whl", "http://u:p@h.example/simple", "http://u:p@h.example:80/a.whl"),
    ("https://pypi.corp.example.evil.net/a.whl", "https://u:p@pypi.corp.example/simple", None),
    ("https://pypi.corp.example:8443/a.whl", "https://u:p@pypi.corp.example/simple", None),
    ("http://pypi.corp.example/a.whl", "https://u:p@pypi.corp.example/simple", None),
    ("https://127.0.0.1:38123/a.whl", "https://u:p@127.0.0.1:3812/simple", None),
    ("https://evil.example/?u=https://pypi.corp.example", "https://u:p@pypi.corp.example", None),
])
def test_credentials_match_the_exact_origin(url: str, configured: str,
                                            expected: str | None) -> None:
    from reprolock._internal.urls import with_credentials

    assert with_credentials(url, [configured]) == (expected or url)


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_index_linking_its_files_by_absolute_url_authenticates(
        make_project: Callable[..., Path], servers: Callable[..., Server], resolver: str,
        tmp_path: Path) -> None:
    """Artifactory and devpi link files by absolute URL on their own origin: uv and pip
    send the index's credentials there, and so must reprolock when it reads the wheels."""
    private = servers(auth=(USER, TOKEN))
    private.files_at = private.origin
    root = make_project(resolver=resolver, index_url=_private_url(private))
    env = {**_token_env(), "REPROLOCK_CACHE_DIR": str(tmp_path / "cache")}
    done = run_cli("lock", "-C", root, "--no-sbom", "--no-build", env=env)
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stdout + done.stderr + (root / "reprolock.lock.json").read_text()
    assert all(header == _basic(USER, TOKEN) for _, header in private.seen[1:])


# --- how the resolvers are given indexes ---------------------------------------------


def test_lists_with_credentials_go_through_the_environment() -> None:
    from reprolock.resolver.interface import IndexSettings
    from reprolock.resolver.piptools import _PIP_INDEX
    from reprolock.resolver.uv import _UV_INDEX

    private = f"https://{USER}:{TOKEN}@pypi.corp.example/simple"
    settings = IndexSettings(url="https://pypi.org/simple",
                             extra_urls=("https://public.example/simple", private),
                             find_links=("/wheels",))
    argv, env = settings.options(_UV_INDEX)
    assert argv == ["--index-url", "https://pypi.org/simple", "--find-links", "/wheels"]
    assert env == {"UV_EXTRA_INDEX_URL": f"https://public.example/simple {private}"}
    argv, env = IndexSettings(url=private, find_links=(private,)).options(_PIP_INDEX)
    assert argv == [] and env == {"PIP_INDEX_URL": private, "PIP_FIND_LINKS": private}
    # the user's own index variables do not mix in
    assert _UV_INDEX.environment({"UV_INDEX": "x", "UV_EXTRA_INDEX_URL": "y", "HOME": "/h"},
                                 env) == {"HOME": "/h", **env}


def test_a_separator_in_an_entry_passed_through_the_environment_is_refused() -> None:
    from reprolock.errors import ResolverError
    from reprolock.resolver.interface import IndexSettings
    from reprolock.resolver.uv import _UV_INDEX

    settings = IndexSettings(find_links=(f"https://{USER}:{TOKEN}@h.example/w/", "/a,b"))
    with pytest.raises(ResolverError) as info:
        settings.options(_UV_INDEX)
    assert "/a,b" in info.value.message and TOKEN not in info.value.diagnostics()


def test_no_program_is_started_with_credentials_in_its_argv() -> None:
    from reprolock._internal.proc import run
    from reprolock.errors import ToolError

    with pytest.raises(ToolError) as info:
        run(["true", f"--index-url=https://{USER}:{TOKEN}@h.example/simple"], what="true")
    assert TOKEN not in info.value.diagnostics()
    assert run(["true", "ssh://git@github.com/x", "https://h.example/simple"],
               what="true").returncode == 0
