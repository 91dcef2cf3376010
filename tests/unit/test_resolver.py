"""The resolver boundary in process: uv and pip-tools against the local index the tests
serve, the index options they are given, and the readers of their inputs and outputs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import reprolock.resolver.piptools as piptools_module
import reprolock.resolver.uv as uv_module
from reprolock.errors import ConfigError, ResolverError
from reprolock.resolver import resolver_for
from reprolock.resolver.compiled import parse_compiled
from reprolock.resolver.interface import IndexSettings, IndexVariables, ResolveRequest
from reprolock.resolver.piptools import PipToolsResolver
from reprolock.resolver.requested import logical_lines, read_requested
from reprolock.resolver.uv import UvResolver
from reprolock.target import Platform, Target
from tests.support.index import LocalIndex

TARGET = Target(Platform.parse("linux/amd64"), "3.11.2", "glibc", "2.36")
VARIABLES = IndexVariables(index_url="X_INDEX", extra_index_urls="X_EXTRA",
                           find_links="X_LINKS", find_links_separator=",", cleared=())
USER, PASSWORD = "alice", "s3cret-word"


def sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def request(root: Path, requirements: str, index: IndexSettings, **kwargs: Any) -> ResolveRequest:
    root.mkdir(parents=True, exist_ok=True)
    (root / "requirements.in").write_text(requirements)
    return ResolveRequest(root=root, inputs=(root / "requirements.in",), target=TARGET,
                          index=index, **kwargs)


@pytest.fixture(scope="module")
def private_index(tmp_path_factory: pytest.TempPathFactory,
                  wheelhouse: Path) -> Iterator[LocalIndex]:
    """The wheelhouse behind HTTP basic auth."""
    index = LocalIndex(tmp_path_factory.mktemp("private-index"), auth=(USER, PASSWORD))
    for dist in sorted(wheelhouse.glob("tiny*.whl")):
        index.add(dist)
    with index:
        yield index


# -- resolver_for ------------------------------------------------------------------------

def test_resolver_for_builds_each_named_resolver() -> None:
    assert isinstance(resolver_for("uv"), UvResolver)
    assert isinstance(resolver_for("pip-tools"), PipToolsResolver)
    assert resolver_for("uv").name == "uv" and resolver_for("pip-tools").name == "pip-tools"


def test_resolver_for_refuses_an_unknown_name() -> None:
    with pytest.raises(ConfigError, match="unknown resolver 'poetry'") as caught:
        resolver_for("poetry")
    assert caught.value.hint is not None and "'uv'" in caught.value.hint


# -- resolving against the local index ---------------------------------------------------

@pytest.mark.parametrize("name", ["uv", "pip-tools"])
def test_resolve_pins_the_newest_with_the_files_hashes(
        name: str, tmp_path: Path, local_index: LocalIndex, wheelhouse: Path) -> None:
    resolver = resolver_for(name)
    resolution = resolver.resolve(request(tmp_path, "tinyml\n", IndexSettings(local_index.url)))
    pins = {p.name: p for p in resolution.pins}
    assert set(pins) == {"tinyml", "tinyconfig"}
    assert (pins["tinyml"].version, pins["tinyconfig"].version) == ("1.1.0", "1.2.0")
    assert pins["tinyml"].hashes == (sha(wheelhouse / "tinyml-1.1.0-py3-none-any.whl"),)
    assert pins["tinyconfig"].hashes == (sha(wheelhouse / "tinyconfig-1.2.0-py3-none-any.whl"),)
    assert pins["tinyml"].via == ("-r requirements.in",)
    assert pins["tinyconfig"].via == ("tinyml",)
    assert resolution.resolver == name and resolution.resolver_version[:1].isdigit()


def test_resolve_keeps_preferred_pins_unless_upgraded(tmp_path: Path,
                                                      local_index: LocalIndex) -> None:
    index = IndexSettings(local_index.url)
    kept = UvResolver().resolve(request(tmp_path / "a", "tinyml\n", index,
                                        preferred="tinyml==1.0.0\ntinyconfig==1.0.0\n"))
    assert {p.name: p.version for p in kept.pins} == {"tinyml": "1.0.0", "tinyconfig": "1.0.0"}
    moved = UvResolver().resolve(request(tmp_path / "b", "tinyml\n", index,
                                         preferred="tinyml==1.0.0\ntinyconfig==1.0.0\n",
                                         upgrade_packages=("tinyconfig",)))
    assert {p.name: p.version for p in moved.pins} == {"tinyml": "1.0.0", "tinyconfig": "1.2.0"}


def test_a_conflict_is_a_resolver_error_with_a_hint(tmp_path: Path,
                                                    local_index: LocalIndex) -> None:
    with pytest.raises(ResolverError, match="no set of versions") as caught:
        UvResolver().resolve(request(tmp_path, "conflict-a\ntinyconfig>=1.0\n",
                                     IndexSettings(local_index.url)))
    assert caught.value.hint is not None and "relax" in caught.value.hint


def test_pip_tools_refuses_a_target_it_cannot_resolve_for() -> None:
    arm = Target(Platform.parse("linux/arm64"), "3.11.2", "glibc", "2.36")
    with pytest.raises(ResolverError, match="architecture"):
        PipToolsResolver().check_target(arm)
    PipToolsResolver().check_target(TARGET)  # this machine: no error


@pytest.mark.parametrize(("name", "module", "variable"), [
    pytest.param("uv", uv_module, "UV_INDEX_URL", id="uv"),
    pytest.param("pip-tools", piptools_module, "PIP_INDEX_URL", id="pip-tools")])
def test_credentials_go_through_the_environment_not_argv(
        name: str, module: Any, variable: str, tmp_path: Path, private_index: LocalIndex,
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[str], dict[str, str]]] = []
    real_run = module.run

    def spy(argv: list[str], **kwargs: Any) -> Any:
        calls.append((list(argv), dict(kwargs.get("env") or {})))
        return real_run(argv, **kwargs)

    monkeypatch.setattr(module, "run", spy)
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{private_index.port}/simple"
    resolution = resolver_for(name).resolve(request(tmp_path, "tinyml\n", IndexSettings(url)))
    assert {p.name for p in resolution.pins} == {"tinyml", "tinyconfig"}  # the login worked
    compile_calls = [(argv, env) for argv, env in calls if "compile" in argv]
    assert compile_calls
    for argv, env in compile_calls:
        assert not any(PASSWORD in arg for arg in argv)
        assert "--index-url" not in argv
        assert env[variable] == url


def test_a_refused_login_names_the_index_without_the_password(
        tmp_path: Path, private_index: LocalIndex) -> None:
    url = f"http://{USER}:wrong@127.0.0.1:{private_index.port}/simple"
    with pytest.raises(ResolverError) as caught:
        UvResolver().resolve(request(tmp_path, "tinyml\n", IndexSettings(url)))
    assert "wrong" not in caught.value.diagnostics()


# -- IndexSettings.options ---------------------------------------------------------------

def test_options_without_credentials_are_arguments() -> None:
    settings = IndexSettings("https://a.example/simple", ("https://b.example/simple",),
                             ("/wheels",))
    argv, env = settings.options(VARIABLES)
    assert argv == ["--index-url", "https://a.example/simple",
                    "--extra-index-url", "https://b.example/simple", "--find-links", "/wheels"]
    assert env == {}


def test_options_with_credentials_are_variables() -> None:
    secret = "https://u:p@a.example/simple"
    settings = IndexSettings(secret, ("https://u:p@b.example/simple", "https://c.example/s"),
                             ("/wheels",))
    argv, env = settings.options(VARIABLES)
    assert argv == ["--find-links", "/wheels"]
    assert env == {"X_INDEX": secret,
                   "X_EXTRA": "https://u:p@b.example/simple https://c.example/s"}
    assert settings.secrets()[0] == secret


def test_options_with_no_index_drop_the_indexes() -> None:
    argv, env = IndexSettings("https://a.example/simple", ("https://b.example/",),
                              no_index=True).options(VARIABLES)
    assert argv == ["--no-index"] and env == {}


def test_a_separator_in_a_credentialed_list_is_refused() -> None:
    settings = IndexSettings(find_links=("https://u:p@a.example/x,y",))
    with pytest.raises(ResolverError, match="separates the entries of X_LINKS") as caught:
        settings.options(VARIABLES)
    assert "p@" not in caught.value.message  # the password is redacted


def test_index_variables_replace_the_users_own() -> None:
    env = VARIABLES.environment({"X_INDEX": "mine", "X_EXTRA": "mine", "HOME": "/h"},
                                {"X_INDEX": "given"})
    assert env == {"HOME": "/h", "X_INDEX": "given"}


# -- parse_compiled ----------------------------------------------------------------------

A, B = "a" * 64, "b" * 64

UV_OUTPUT = f"""\
tinyconfig==1.2.0 \\
    --hash=sha256:{B} \\
    --hash=sha256:{A}
    # via tinyml
tinyml==1.1.0 \\
    --hash=sha256:{A}
    # via -r requirements.in
"""

PIP_COMPILE_OUTPUT = f"""\
--index-url https://example/simple

Tiny_Config==1.2.0 \\
    --hash=sha256:{A}
    # via
    #   -r requirements.in
    #   tinyml
    #   Other.Pkg (>=1)
"""


def test_parse_compiled_reads_uv_layout() -> None:
    pins = parse_compiled(UV_OUTPUT, tool="uv")
    assert [p.name for p in pins] == ["tinyconfig", "tinyml"]
    assert pins[0].version == "1.2.0"
    assert pins[0].hashes == (f"sha256:{A}", f"sha256:{B}")  # sorted
    assert pins[0].via == ("tinyml",) and pins[1].via == ("-r requirements.in",)


def test_parse_compiled_reads_pip_compile_layout() -> None:
    (pin,) = parse_compiled(PIP_COMPILE_OUTPUT, tool="pip-compile")
    assert (pin.name, pin.version, pin.hashes) == ("tiny-config", "1.2.0", (f"sha256:{A}",))
    assert pin.via == ("-r requirements.in", "other-pkg", "tinyml")


@pytest.mark.parametrize("line", ["tinyml>=1.0", "tinyml @ https://example/t.whl",
                                  "not a requirement!"])
def test_parse_compiled_refuses_what_is_not_one_pin(line: str) -> None:
    with pytest.raises(ResolverError, match="uv"):
        parse_compiled(line + "\n", tool="uv")


# -- logical_lines and read_requested ----------------------------------------------------

def test_logical_lines_join_continuations_and_drop_comments() -> None:
    text = "# head\n\nfoo \\\n  >=1  # why\nbar==2 --hash=sha256:x\nbaz \\\n"
    assert list(logical_lines(text)) == [(3, "foo    >=1"), (5, "bar==2 --hash=sha256:x"),
                                         (6, "baz")]


def test_read_requested_follows_includes_and_reads_hashes(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "requirements.in").write_text(
        f"-r sub/more.in\nTiny_ML>=1.0\n--prefer-binary\n./local.whl\n"
        f"tinyconfig==1.2.0 \\\n  --hash=sha256:{A.upper()}\n")
    (tmp_path / "sub" / "more.in").write_text("prepkg>=2.0rc1\n-r ../requirements.in\n")
    found = read_requested([(tmp_path / "requirements.in", "requirements.in")])
    by_name = {r.name: r for r in found}
    assert list(by_name) == ["prepkg", "tiny-ml", "tinyconfig"]  # the cycle read once
    assert by_name["prepkg"].where == "sub/more.in:1" and by_name["prepkg"].names_prerelease
    assert by_name["tiny-ml"].where == "requirements.in:2"
    assert not by_name["tiny-ml"].names_prerelease and not by_name["tiny-ml"].hashes
    assert by_name["tinyconfig"].hashes == frozenset({f"sha256:{A}"})
    assert by_name["tinyconfig"].where == "requirements.in:5"


def test_read_requested_refuses_a_hash_it_cannot_check(tmp_path: Path) -> None:
    (tmp_path / "r.in").write_text("\nfoo --hash=md5:abc\n")
    with pytest.raises(ConfigError, match=r"r\.in:2"):
        read_requested([(tmp_path / "r.in", "r.in")])


def test_the_users_named_index_credentials_never_reach_uv(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """uv reads UV_INDEX_<NAME>_PASSWORD for an index of that name: a user's own would
    go to reprolock's named index of the same name. Only the configured one reaches uv."""
    from reprolock.resolver.uv import _env

    monkeypatch.setenv("UV_INDEX_PYTORCH_PASSWORD", "the-users-own")
    monkeypatch.setenv("UV_INDEX_OTHER_USERNAME", "someone")
    given = _env({"UV_INDEX_PYTORCH_PASSWORD": "from-reprolock-toml"})
    assert given["UV_INDEX_PYTORCH_PASSWORD"] == "from-reprolock-toml"
    assert "UV_INDEX_OTHER_USERNAME" not in given
    assert "UV_INDEX_PYTORCH_PASSWORD" not in _env({})


@pytest.mark.parametrize("algorithm", ["sha512", "md5"])
def test_a_pin_with_no_sha256_names_the_hash_and_the_fix(algorithm: str) -> None:
    """An index serving sha512 or md5 only: uv's "--hash=sha512:..." line was "a line
    reprolock cannot read", with the parser's caret diagram and no fix."""
    with pytest.raises(ResolverError, match=f"advpkg==1.0 by its {algorithm} hashes only"
                       ) as caught:
        parse_compiled(f"advpkg==1.0 --hash={algorithm}:0123abcd\n    # via -r r.in\n",
                       tool="uv")
    assert caught.value.hint and "sha256" in caught.value.hint


def test_a_sha256_beside_other_hashes_is_kept_in_lower_case() -> None:
    (pin,) = parse_compiled(f"advpkg==1.0 --hash=sha512:00 --hash=sha256:{'AB' * 32}\n",
                            tool="uv")
    assert pin.hashes == ("sha256:" + "ab" * 32,)
