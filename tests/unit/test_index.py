"""The index boundary in process: IndexClient reading the local index (PEP 691 JSON and
PEP 503 HTML), find-links directories and hostile pages; wheel_modules reading wheels."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from reprolock.errors import ArtifactError, IndexError_
from reprolock.index.simple import DistFile, IndexClient
from reprolock.index.wheels import modules_from_names, wheel_modules
from reprolock.resolver.interface import IndexSettings
from tests.support.index import LocalIndex
from tests.support.wheels import build_wheel

USER, PASSWORD = "bob", "pa55word"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def client(url: str | None, **kwargs: object) -> IndexClient:
    return IndexClient(IndexSettings(url, **kwargs))  # type: ignore[arg-type]


class HtmlOnly(requests.Session):
    """A session that asks for HTML pages only, as an index without PEP 691 answers."""

    def get(self, url: str | bytes, **kwargs: object) -> requests.Response:  # type: ignore[override]
        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        headers["Accept"] = "text/html"
        return super().get(url, headers=headers, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory: pytest.TempPathFactory,
                  wheelhouse: Path) -> Iterator[LocalIndex]:
    """An index whose pages for 'broken' and 'evil' were written by hand after the rest."""
    index = LocalIndex(tmp_path_factory.mktemp("hostile-index"))
    index.add(wheelhouse / "tinyconfig-1.0.0-py3-none-any.whl")
    broken = index.simple_dir / "broken"
    broken.mkdir()
    (broken / "index.json").write_text('{"meta": {"api-version": "1.1"}, "files": [')
    latin = index.simple_dir / "latin"
    latin.mkdir()
    (latin / "index.json").write_bytes(  # "é" in Latin-1: the one byte 0xE9
        b'{"meta": {"api-version": "1.1"}, "files": [{"filename": "latin-1.0.tar.gz", '
        b'"url": "latin-1.0.tar.gz", "hashes": {}, "requires-python": ">=3.8 \xe9"}]}')
    evil = index.simple_dir / "evil"
    evil.mkdir()
    (evil / "index.html").write_text(
        "<html><body>\n"
        '<a href="../../files/evil-1.0-py3-none-any.whl#sha256=' + "c" * 64 + '" '
        'data-yanked="" data-requires-python="&gt;=3.99">evil-1.0-py3-none-any.whl</a>\n'
        '<a href="https://elsewhere.example/evil-1.0-py3-none-any.whl#md5=00">x</a>\n'
        '<a href="../../files/evil-1.0.tar.gz">evil-1.0.tar.gz</a>\n'
        '<a href="../../files/not-a-dist.txt">junk</a>\n'
        '<a href="../../files/evil-2.0-py3-none-any.whl">2.0</a>\n'
        '<a>no href</a><a href="../../files/evil-1.0-!!.whl">bad name</a>\n'
        "<script>unclosed\n")
    with index:
        yield index


@pytest.fixture(scope="module")
def private_index(tmp_path_factory: pytest.TempPathFactory,
                  wheelhouse: Path) -> Iterator[LocalIndex]:
    index = LocalIndex(tmp_path_factory.mktemp("private-index"), auth=(USER, PASSWORD))
    index.add(wheelhouse / "tinyconfig-1.2.0-py3-none-any.whl")
    with index:
        yield index


# -- release_files / project_files / files_for -------------------------------------------

def test_release_files_from_json_pages(local_index: LocalIndex, wheelhouse: Path) -> None:
    files = client(local_index.url).release_files("TinyML", "1.1.0")
    wheel = wheelhouse / "tinyml-1.1.0-py3-none-any.whl"
    assert [f.filename for f in files] == [wheel.name]
    assert files[0].sha256 == sha(wheel) and files[0].size == wheel.stat().st_size
    assert files[0].url == f"{local_index.files_url}/{wheel.name}"
    assert requests.get(files[0].url, timeout=10).content == wheel.read_bytes()


def test_release_files_from_html_pages(local_index: LocalIndex, wheelhouse: Path) -> None:
    found = IndexClient(IndexSettings(local_index.url), session=HtmlOnly()).release_files(
        "nativepkg", "2.0.0")
    assert sorted(f.filename for f in found) == sorted(p.name for p in wheelhouse.glob(
        "nativepkg-*.whl"))
    assert {f.sha256 for f in found} == {sha(p) for p in wheelhouse.glob("nativepkg-*.whl")}
    assert all(f.size is None for f in found)  # HTML pages carry no size


def test_project_files_lists_every_release(local_index: LocalIndex) -> None:
    files = client(local_index.url).project_files("tinyconfig")
    assert sorted(f.filename for f in files) == ["tinyconfig-1.0.0-py3-none-any.whl",
                                                  "tinyconfig-1.2.0-py3-none-any.whl"]
    assert client(local_index.url).project_files("no-such-project") == []


def test_files_for_maps_each_pin(local_index: LocalIndex, wheelhouse: Path) -> None:
    found = client(local_index.url).files_for([("tinyml", "1.0.0", ()),
                                               ("sdistonly", "1.0.0", ()),
                                               ("toolz-lite", "9.9", ())])
    assert set(found) == {("tinyml", "1.0.0"), ("sdistonly", "1.0.0"), ("toolz-lite", "9.9")}
    assert [f.filename for f in found[("sdistonly", "1.0.0")]] == ["sdistonly-1.0.0.tar.gz"]
    assert found[("sdistonly", "1.0.0")][0].sha256 == sha(wheelhouse / "sdistonly-1.0.0.tar.gz")
    assert found[("toolz-lite", "9.9")] == []


def test_files_for_takes_the_releases_read_ahead(local_index: LocalIndex,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The previous lock's releases, read ahead, answer files_for for the same pins (any
    spelling of the name, hashes in any order); other pins are read then."""
    reader = client(local_index.url)
    reader.prefetch_releases([("TinyML", "1.0.0", ("b", "a")), ("tinyconfig", "1.0.0", ())])
    expected = client(local_index.url).files_for([("tinyml", "1.0.0", ("a", "b")),
                                                  ("tinyconfig", "1.2.0", ())])
    read: list[tuple[str, str]] = []
    real = IndexClient.release_files
    monkeypatch.setattr(IndexClient, "release_files", lambda self, name, version, hashes=():
                        read.append((name, version)) or real(self, name, version, hashes))
    found = reader.files_for([("tinyml", "1.0.0", ("a", "b")), ("tinyconfig", "1.2.0", ())])
    assert found == expected and found[("tinyml", "1.0.0")]
    assert read == [("tinyconfig", "1.2.0")]


def test_find_links_directory_is_read_and_hashed(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "wheels", "linked", "1.0")
    (tmp_path / "wheels" / "README.txt").write_text("not a dist")
    settings = IndexSettings(find_links=(str(tmp_path / "wheels"),), no_index=True)
    files = IndexClient(settings).release_files("linked", "1.0")
    assert [(f.filename, f.path, f.sha256) for f in files] == [(wheel.name, wheel, sha(wheel))]
    assert IndexClient(settings).project_files("linked")[0].sha256 is None  # listed only


def test_a_missing_find_links_directory_is_an_error(tmp_path: Path) -> None:
    settings = IndexSettings(find_links=(str(tmp_path / "nowhere"),), no_index=True)
    with pytest.raises(IndexError_, match="does not exist"):
        IndexClient(settings).release_files("linked", "1.0")


def test_the_cache_is_used_and_missed_on_a_new_hash(tmp_path: Path, wheelhouse: Path) -> None:
    index = LocalIndex(tmp_path / "index")
    index.add(wheelhouse / "tinyconfig-1.0.0-py3-none-any.whl")
    with index:
        first = IndexClient(IndexSettings(index.url), cache_dir=tmp_path / "cache")
        assert len(first.release_files("tinyconfig", "1.0.0")) == 1
        url = index.url
    assert list((tmp_path / "cache" / "index").iterdir())
    # the index is down: the cached entry answers, unless a pinned hash is not in it
    cached = IndexClient(IndexSettings(url), cache_dir=tmp_path / "cache")
    assert cached.release_files("tinyconfig", "1.0.0")[0].sha256 == sha(
        wheelhouse / "tinyconfig-1.0.0-py3-none-any.whl")
    with pytest.raises(IndexError_, match="unreachable"):
        cached.release_files("tinyconfig", "1.0.0", hashes=["sha256:" + "d" * 64])


# -- credentials ----------------------------------------------------------------------------

def test_files_of_a_private_index_carry_its_credentials(private_index: LocalIndex) -> None:
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{private_index.port}/simple"
    (found,) = client(url).release_files("tinyconfig", "1.2.0")
    assert found.url is not None and f"{USER}:{PASSWORD}@" in found.url
    assert requests.get(found.url, timeout=10).status_code == 200


def test_a_refused_login_is_an_error_without_the_password(private_index: LocalIndex) -> None:
    url = f"http://{USER}:wrong-one@127.0.0.1:{private_index.port}/simple"
    with pytest.raises(IndexError_, match="refused access") as caught:
        client(url).release_files("tinyconfig", "1.2.0")
    assert "wrong-one" not in caught.value.diagnostics()


# -- malformed and hostile pages ----------------------------------------------------------

def test_a_malformed_json_page_is_an_index_error(hostile_index: LocalIndex) -> None:
    with pytest.raises(IndexError_, match=r"PEP 691 page .*/simple/broken/ is not valid JSON"):
        client(hostile_index.url).project_files("broken")


def test_a_json_page_is_read_as_utf_8_and_never_guessed(hostile_index: LocalIndex) -> None:
    """PEP 691 pages are UTF-8 JSON; one that is not is refused (requests guessed an
    encoding for the page, with charset detection over every byte of it)."""
    with pytest.raises(IndexError_, match=r"PEP 691 page .*/simple/latin/ is not UTF-8"):
        client(hostile_index.url).project_files("latin")


def test_a_hostile_html_page_yields_only_the_wanted_files(hostile_index: LocalIndex) -> None:
    files = IndexClient(IndexSettings(hostile_index.url), session=HtmlOnly()).release_files(
        "evil", "1.0")
    by_url = {f.url: f for f in files}
    local = f"{hostile_index.files_url}/evil-1.0-py3-none-any.whl"
    assert set(by_url) == {local, "https://elsewhere.example/evil-1.0-py3-none-any.whl",
                           f"{hostile_index.files_url}/evil-1.0.tar.gz"}
    assert by_url[local].sha256 == "c" * 64 and by_url[local].yanked
    assert by_url[local].requires_python == ">=3.99"
    assert by_url["https://elsewhere.example/evil-1.0-py3-none-any.whl"].sha256 is None


def test_an_unreachable_index_is_an_error() -> None:
    with pytest.raises(IndexError_, match="unreachable") as caught:
        client("http://u:topsecret@127.0.0.1:9/simple").release_files("x", "1.0")
    assert "topsecret" not in caught.value.diagnostics()


# -- wheel_modules / modules_from_names ---------------------------------------------------

def test_modules_from_names() -> None:
    names = ["pkg/__init__.py", "pkg/sub/mod.py", "single.py", "_native.cpython-311.so",
             "helper.pth", "pkg-1.0.dist-info/RECORD", "pkg-1.0.data/scripts/x",
             "not-an-identifier/file.py", "README.md", "lib.pyd"]
    assert modules_from_names(names) == ("_native", "lib", "pkg", "single")


def test_wheel_modules_over_http_and_from_the_cache(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "w", "twomods", "1.0", modules={
        "alpha/__init__.py": "", "beta.py": "", "gamma/data.txt": "x"})
    index = LocalIndex(tmp_path / "index")
    index.add(wheel)
    sessions: list[requests.Session] = []

    def session() -> requests.Session:
        sessions.append(requests.Session())
        return sessions[-1]

    with index:
        (dist,) = client(index.url).release_files("twomods", "1.0")
        assert wheel_modules(dist, cache_dir=tmp_path / "cache", session=session) == (
            "alpha", "beta", "gamma")
    assert len(sessions) == 1
    # the index is gone: the cache (keyed by sha256) answers without a request
    assert wheel_modules(dist, cache_dir=tmp_path / "cache", session=session) == (
        "alpha", "beta", "gamma")
    assert len(sessions) == 1


def test_wheel_modules_of_a_local_file(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "localmod", "1.0")
    dist = DistFile(wheel.name, None, wheel, sha(wheel), wheel.stat().st_size)
    assert wheel_modules(dist, cache_dir=None, session=requests.Session) == ("localmod",)


def test_a_broken_wheel_is_an_artifact_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad-1.0-py3-none-any.whl"
    bad.write_bytes(b"PK not really a zip")
    dist = DistFile(bad.name, None, bad, None, None)
    with pytest.raises(ArtifactError, match="cannot read the file list"):
        wheel_modules(dist, cache_dir=None, session=requests.Session)


def test_a_corrupt_cache_entry_is_discarded(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "cachedmod", "1.0")
    dist = DistFile(wheel.name, None, wheel, sha(wheel), None)
    entry = tmp_path / "cache" / "modules" / f"{sha(wheel)}.json"
    entry.parent.mkdir(parents=True)
    entry.write_text("{not json")
    assert wheel_modules(dist, cache_dir=tmp_path / "cache", session=requests.Session) == (
        "cachedmod",)
    assert json.loads(entry.read_text()) == ["cachedmod"]


JOIN_BASES = ["https://pypi.org/simple/numpy/", "http://127.0.0.1:8080/simple/a/",
              "https://user:pw@example.com/simple/x/"]
JOIN_HREFS = [
    "https://files.pythonhosted.org/packages/ab/cd/numpy-2.0-cp311-cp311-linux_x86_64.whl",
    "http://files.example/packages/a-1.0.tar.gz", "https://h:8443/a/b-1.0.whl",
    "HTTPS://files.example/a-1.0.whl", "https://files.example/a/../b-1.0.whl",
    "https://files.example/./a-1.0.whl", "https://files.example/a-1.0.whl?x=1",
    "https://files.example/a-1.0.whl;p", "https://u@files.example/a-1.0.whl",
    "https://files.example//a-1.0.whl", "https://files.example", "https:files/a-1.0.whl",
    "https:///a-1.0.whl", "ftp://files.example/a-1.0.whl", "//files.example/a-1.0.whl",
    "../../packages/a-1.0.whl", "a-1.0.whl", "/packages/a-1.0.whl", "https://files.example/%2e%2e/a",
    "https://files.example/a b.whl", "https://[::1]/a-1.0.whl", "https://files.example/.a",
    "https://files.example/a/..", "https://files.example/a/.", "https://files.example:/a",
    "https://files.example/a-1.0.whl#sha256=0a1b", "https://files.example/a-1.0.whl#",
    "https://files.example/a-1.0.whl#x\ny", "https://files.example/a-1.0.whl#a#b",
    "https://files.example/a\t-1.0.whl", " https://files.example/a-1.0.whl",
    "https://files.example/a-1.0.whl\n", "https://files.example.",
    "https://files.example./a-1.0.whl", "https://-x-/a", "https://x:99999/a",
]


@pytest.mark.parametrize("href", JOIN_HREFS)
@pytest.mark.parametrize("base", JOIN_BASES)
def test_joined_is_urljoin(base: str, href: str) -> None:
    """The fast path for plain absolute URLs gives exactly what urljoin gives."""


    _check_joined(base, href)


def _check_joined(base: str, href: str) -> None:
    """_joined is urljoin once tabs and newlines are dropped (as the URL standard and uv
    drop them), and refuses a URL that still holds a control character."""
    from urllib.parse import urljoin

    from reprolock.index.simple import _joined

    try:
        expected = urljoin(base, re.sub("[\t\n\r]", "", href))
    except ValueError:  # "https://[": the page is refused, as the next test shows
        expected = None
    if expected is None or re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029]", expected):
        with pytest.raises(IndexError_):
            _joined(base, href)
    else:
        assert _joined(base, href) == expected


def test_joined_is_urljoin_for_generated_urls() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    parts = st.sampled_from(["https://", "http://", "h", ".", "/", "..", ":", "8", "#", "?",
                             ";", "@", "%2e", "a", "-", "=", "\n", " ", "\t", "~", "[", "]",
                             "\x00", "\x85"])

    @settings(max_examples=3000, deadline=None)
    @given(st.lists(parts, max_size=14).map("".join), st.sampled_from(JOIN_BASES))
    def check(href: str, base: str) -> None:
        _check_joined(base, href)

    check()


@pytest.mark.parametrize("as_json", [True, False])
def test_a_file_url_urllib_cannot_parse_is_an_index_error(as_json: bool) -> None:
    """A page that links a file as "https://[" is refused naming the page (urljoin raised
    a bare ValueError, which reached the user as an internal error)."""
    from reprolock.index.simple import _parse_html, _parse_json

    page = "https://index.example/simple/a/"
    with pytest.raises(IndexError_, match=r"index.example/simple/a/.*https://\["):
        if as_json:
            _parse_json(page, json.dumps({"files": [{"filename": "a-1.0.tar.gz",
                                                     "url": "https://[/a-1.0.tar.gz"}]}),
                        ("a", None))
        else:
            _parse_html(page, '<a href="https://[/a-1.0.tar.gz">a-1.0.tar.gz</a>', ("a", None))


@pytest.mark.parametrize(("url", "shown"), [
    ("https://bob:pa55word@[/simple", "https://[/simple"),
    ("https://bob:pa55word@index.example/simple", "https://index.example/simple"),
    ("https://[", "https://["),
])
def test_redact_takes_any_string(url: str, shown: str) -> None:
    """A URL urllib cannot parse still loses its user information (redact raised
    ValueError on "https://[", turning a refusal into an internal error)."""
    from reprolock._internal.urls import redact

    assert redact(url) == shown


_GOOD = "a" * 64
_PAGE = "https://index.example/simple/a/"


@pytest.mark.parametrize(("files", "named"), [
    (["a-1.0.tar.gz"], "file 1"),  # an entry that is not an object
    ([{"filename": 7, "url": "https://i.example/a-1.0.tar.gz"}], "filename"),
    ([{"filename": "a-1.0.tar.gz", "url": 7}], "url"),
    ([{"filename": "a-1.0.tar.gz"}], "url"),
    ([{"filename": "a-1.0.tar.gz", "url": "a-1.0.tar.gz", "hashes": ["sha256"]}], "hashes"),
    ([{"filename": "a-1.0.tar.gz", "url": "a-1.0.tar.gz", "hashes": {"sha256": "zz"}}],
     "sha256"),
    ([{"filename": "a-1.0.tar.gz", "url": "a-1.0.tar.gz", "hashes": {"sha256": 7}}],
     "sha256"),
    ([{"filename": "a-1.0.tar.gz", "url": "a-1.0.tar.gz", "hashes": 0}], "hashes"),
    ([{"filename": "a-1.0.tar.gz", "url": "a-1.0.tar.gz", "yanked": 1}], "yanked"),
])
def test_a_malformed_pep_691_file_entry_is_an_index_error(files: list[object],
                                                          named: str) -> None:
    """Crafted entries raised AttributeError or TypeError (an internal error), or put a
    hash that is no sha256 into the lock's inputs."""
    from reprolock.index.simple import _parse_json

    with pytest.raises(IndexError_, match=rf"index\.example/simple/a/.*{named}"):
        _parse_json(_PAGE, json.dumps({"files": files}), ("a", None))


def test_a_pep_691_page_with_a_key_twice_is_an_index_error() -> None:
    """json.loads kept the last "sha256"; another reader may keep the first."""
    from reprolock.index.simple import _parse_json

    text = ('{"files": [{"filename": "a-1.0.tar.gz", "url": "a-1.0.tar.gz", '
            f'"hashes": {{"sha256": "{_GOOD}", "sha256": "{"b" * 64}"}}}}]}}')
    with pytest.raises(IndexError_, match="twice"):
        _parse_json(_PAGE, text, ("a", None))


def test_a_served_sha256_is_kept_in_lower_case() -> None:
    from reprolock.index.simple import _parse_html, _parse_json

    upper = _GOOD.upper()
    from_json = _parse_json(_PAGE, json.dumps({"files": [
        {"filename": "a-1.0.tar.gz", "url": "a-1.0.tar.gz", "hashes": {"sha256": upper}}]}),
        ("a", None))
    from_html = _parse_html(_PAGE, f'<a href="a-1.0.tar.gz#sha256={upper}">a</a>', ("a", None))
    assert [f.sha256 for f in from_json + from_html] == [_GOOD, _GOOD]


def test_an_html_link_whose_sha256_is_not_hexadecimal_is_an_index_error() -> None:
    from reprolock.index.simple import _parse_html

    with pytest.raises(IndexError_, match=r"index\.example/simple/a/.*sha256"):
        _parse_html(_PAGE, '<a href="a-1.0.tar.gz#sha256=zz">a-1.0.tar.gz</a>', ("a", None))


@pytest.mark.parametrize(("yanked", "expected"), [
    (True, True), (False, False), ("broken build", True), ("", False), (None, False)])
def test_a_yanked_reason_means_yanked(yanked: object, expected: bool) -> None:
    """PEP 691: a truthy value means yanked, as pip reads it; null is accepted as not
    yanked, as pip and uv read it."""
    from reprolock.index.simple import _parse_json

    files = _parse_json(_PAGE, json.dumps({"files": [
        {"filename": "a-1.0.tar.gz", "url": "a-1.0.tar.gz", "yanked": yanked}]}), ("a", None))
    assert [f.yanked for f in files] == [expected]


def test_an_empty_served_sha256_is_no_hash() -> None:
    """uv takes "sha256": "" as no hash: reprolock then downloads the file and hashes it,
    instead of refusing a page uv accepted."""
    from reprolock.index.simple import _parse_json

    files = _parse_json(_PAGE, json.dumps({"files": [
        {"filename": "a-1.0.tar.gz", "url": "a-1.0.tar.gz", "hashes": {"sha256": ""}}]}),
        ("a", None))
    assert [f.sha256 for f in files] == [None]


def test_a_cached_entry_with_a_malformed_sha256_is_discarded(tmp_path: Path) -> None:
    from reprolock.index.simple import _read_cache

    cache = tmp_path / "entry.json"
    cache.write_text(json.dumps([{"filename": "a-1.0.tar.gz", "url": "https://i.example/a",
                                  "sha256": "zz", "size": 1}]))
    assert _read_cache(cache) is None
    assert not cache.exists()


def test_a_file_name_with_a_number_python_will_not_convert_is_skipped() -> None:
    """A page uv accepts listed "a-1.<5000 digits>-py3-none-any.whl": int() refused the
    number (ValueError, past the 4300-digit limit) and the lock ended as an internal
    error. Such a file is no release reprolock can take: it is skipped."""
    from packaging.specifiers import SpecifierSet

    from reprolock.index.releases import newest_final
    from reprolock.index.simple import _parse_json, release_of

    huge = "a-1." + "1" * 5000 + "-py3-none-any.whl"
    assert release_of(huge) is None
    files = _parse_json(_PAGE, json.dumps({"files": [
        {"filename": huge, "url": "x.whl"},
        {"filename": "a-1.0-py3-none-any.whl", "url": "a.whl"}]}), ("a", None))
    newest = newest_final(files, SpecifierSet())
    assert newest is not None and str(newest.version) == "1.0"


@pytest.mark.parametrize("entry", [
    {"filename": 5}, {"url": 5}, {"url": "https://i.example/a\u0085"}, {"size": "1"},
    {"size": -1}])
def test_a_cached_entry_of_the_wrong_type_is_discarded(tmp_path: Path,
                                                       entry: dict[str, object]) -> None:
    """A hand-edited cache entry with "filename": 5 came back as a DistFile holding 5."""
    from reprolock.index.simple import _read_cache

    cache = tmp_path / "entry.json"
    cache.write_text(json.dumps([{"filename": "a-1.0.tar.gz", "url": "https://i.example/a",
                                  "sha256": "a" * 64, "size": 1, **entry}]))
    assert _read_cache(cache) is None
    assert not cache.exists()


@pytest.mark.parametrize("as_json", [True, False])
@pytest.mark.parametrize("char", ["\u0085", "\u2028", "\x7f", "\x00"])
def test_a_file_url_with_a_control_character_is_an_index_error(as_json: bool,
                                                                char: str) -> None:
    """uv took "a-1.0.whl\\u0085"; the lock then failed its own schema, as "a bug in
    reprolock", instead of naming the page."""
    from reprolock.index.simple import _parse_html, _parse_json

    href = f"../../fi{char}les/a-1.0-py3-none-any.whl"  # tabs and newlines: dropped
    with pytest.raises(IndexError_, match=r"index.example/simple/a/ links a file at"):
        if as_json:
            _parse_json(_PAGE, json.dumps({"files": [
                {"filename": "a-1.0-py3-none-any.whl", "url": href}]}), ("a", None))
        else:
            _parse_html(_PAGE, f'<a href="{href}">a</a>', ("a", None))


def test_an_html_page_s_base_element_is_what_its_links_are_relative_to() -> None:
    """uv joins links to <base href>; reprolock joined them to the page's URL, so the lock
    could record another URL than the one uv fetched."""
    from reprolock.index.simple import _parse_html

    page = ('<html><head><base href="https://files.example/mirror/"><base href="/x/">'
            '</head><body><a href="a-1.0.tar.gz">a</a></body></html>')
    (found,) = _parse_html(_PAGE, page, ("a", None))
    assert found.url == "https://files.example/mirror/a-1.0.tar.gz"
