"""Read the files of a release from simple indexes and find-links locations."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import email.message
import functools
import hashlib
import html.parser
import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag, urljoin

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from reprolock._internal.files import atomic_write_text, sha256_file
from reprolock._internal.http import read_body
from reprolock._internal.jsonio import parse_json
from reprolock._internal.urls import redact, userinfo, with_credentials
from reprolock.errors import IndexError_, ReprolockError
from reprolock.resolver.interface import IndexSettings

if TYPE_CHECKING:
    import requests

PYPI = "https://pypi.org/simple"
_JSON = "application/vnd.pypi.simple.v1+json"
_ACCEPT = f"{_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_TAB_NEWLINE = str.maketrans("", "", "\t\n\r")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # as the lock schema's URLs
#: a page is read whole and parsed in memory; PyPI's largest (ddtrace) is 21 MB
PAGE_LIMIT = 128 << 20
#: the whole page, not each socket read (requests' timeout): a page can trickle forever
PAGE_SECONDS = 300.0
_PAGE_HINT = "fix the index page, or remove this index from reprolock.toml"
# An http(s) URL with a host, a path of plain characters and no dot segment, query,
# parameters or user, and perhaps a plain fragment: urljoin gives it back as it is.
_PLAIN_ABSOLUTE = re.compile(
    r"https?://[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::[0-9]+)?(?:/[A-Za-z0-9_~%+!$&'()*,=:-]"
    r"[A-Za-z0-9._~%+!$&'()*,=:-]*)+(?:#[A-Za-z0-9._~%+=-]+)?")


@dataclass(frozen=True)
class DistFile:
    filename: str
    url: str | None  # where it is fetched from (may hold credentials; redact to record)
    path: Path | None  # a local find-links file
    sha256: str | None
    size: int | None
    yanked: bool = False  # PEP 592: a resolver takes it only when pinned to it exactly
    requires_python: str | None = None
    hash_computed: bool = False  # the index served no hash: reprolock downloaded and hashed it


#: (normalized project name, version); no version: every release of the project
Wanted = tuple[str, Version | None]


def release_of(filename: str) -> tuple[str, Version] | None:
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
            return name, version
        name, version = parse_sdist_filename(filename)
        return name, version
    # ValueError: a number past int()'s 4300 digits; InvalidVersion is one too
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None


def _is_wanted(filename: str, wanted: Wanted) -> bool:
    if wanted[1] is None:  # every release: the name alone, without parsing every version
        return _name_of(filename) == wanted[0]
    release = release_of(filename)
    if release is None or release[0] != wanted[0]:
        return False
    return wanted[1] is None or release[1] == wanted[1]


class IndexClient:
    """Fetches each project page at most once per run; safe to call from several threads.

    The files of a release rarely change, so they are cached by index, name and version;
    an entry is used only while it still holds every hash the resolver pinned (a file
    added to the release since makes a miss). Pages of indexes with credentials are never
    cached.
    """

    def __init__(self, settings: IndexSettings, *, cache_dir: Path | None = None,
                 session: requests.Session | None = None) -> None:
        self.settings = settings
        self.cache_dir = cache_dir
        self._session = session
        self._dir_cache: dict[Path, list[Path]] = {}
        self._prefetched: dict[str, concurrent.futures.Future[list[DistFile]]] = {}
        self._releases: dict[_Pin, concurrent.futures.Future[list[DistFile]]] = {}
        self._lock = threading.Lock()

    @property
    def session(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                import requests

                self._session = requests.Session()
                self._session.headers["User-Agent"] = "reprolock"
            return self._session

    def indexes(self, name: str | None = None) -> list[str]:
        """The indexes that may serve ``name`` (a normalized name): its named index alone
        if it is pinned to one, else the unnamed ones; all of them for None."""
        named = self.settings.named_for(name) if name is not None else None
        if named is not None:
            return [named.url]
        if self.settings.no_index:
            return []
        unnamed = [self.settings.url or PYPI, *self.settings.extra_urls]
        return unnamed + ([n.url for n in self.settings.named] if name is None else [])

    def _links(self, name: str) -> tuple[str, ...]:
        """find-links serve every package but those pinned to a named index."""
        return () if self.settings.named_for(name) else self.settings.find_links

    def release_files(self, name: str, version: str,
                      hashes: Iterable[str] = ()) -> list[DistFile]:
        wanted = (canonicalize_name(name), Version(version))
        found = self._remote_files(wanted, {h.removeprefix("sha256:") for h in hashes})
        for link in self._links(wanted[0]):
            found += self._find_links(link, wanted)
        return found

    def prefetch(self, names: Iterable[str]) -> None:
        """Start reading these projects' pages in the background (while the resolver
        runs): project_files then takes the answer, or the error, from here."""
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        for name in {canonicalize_name(n) for n in names}:
            self._prefetched[name] = pool.submit(self._project_files, name)
        pool.shutdown(wait=False)

    def prefetch_releases(self, pins: Iterable[tuple[str, str, tuple[str, ...]]]) -> None:
        """Start reading these releases' files in the background (the previous lock's
        pins, while the resolver runs): files_for takes the answers for the same pins."""
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)
        for pin in pins:
            self._releases[_pin_key(pin)] = pool.submit(self.release_files, *pin)
        pool.shutdown(wait=False)

    def prefetched(self, name: str) -> concurrent.futures.Future[list[DistFile]] | None:
        """The fetch :meth:`prefetch` started for ``name`` (None if it started none), to
        wait on; :meth:`project_files` still takes its answer."""
        return self._prefetched.get(canonicalize_name(name))

    def project_files(self, name: str) -> list[DistFile]:
        """Every file of every release of ``name`` (never cached across runs: a release
        may have been added since). A find-links file is listed, not hashed."""
        future = self._prefetched.pop(canonicalize_name(name), None)
        return future.result() if future is not None else self._project_files(name)

    def _project_files(self, name: str) -> list[DistFile]:
        wanted: Wanted = (canonicalize_name(name), None)
        found = [f for index in self.indexes(wanted[0])
                 for f in self._project_page(index, wanted)]
        for link in self._links(wanted[0]):
            found += self._find_links(link, wanted)
        return found

    def files_for(self, pins: Iterable[tuple[str, str, tuple[str, ...]]],
                  ) -> dict[tuple[str, str], list[DistFile]]:
        todo = list(pins)
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            futures = [self._releases.pop(_pin_key(r)) if _pin_key(r) in self._releases
                       else pool.submit(self.release_files, *r) for r in todo]
            return {(n, v): f.result() for (n, v, _), f in zip(todo, futures, strict=True)}

    def _remote_files(self, wanted: tuple[str, Version], hashes: set[str]) -> list[DistFile]:
        indexes = self.indexes(wanted[0])
        if not indexes:
            return []
        cache = self._cache_path(indexes, wanted)
        cached = _read_cache(cache)
        if cached is not None and hashes <= {f.sha256 for f in cached}:
            return cached
        found: list[DistFile] = []
        for index in indexes:
            found += self._project_page(index, wanted)
        if cache is not None and found:
            _write_cache(cache, found)
        return found

    def _cache_path(self, indexes: list[str], wanted: tuple[str, Version]) -> Path | None:
        if self.cache_dir is None or any(redact(u) != u for u in indexes):
            return None
        key = hashlib.sha256(json.dumps([indexes, wanted[0], str(wanted[1])]).encode())
        return self.cache_dir / "index" / f"{key.hexdigest()}.json"

    def _project_page(self, index: str, wanted: Wanted) -> list[DistFile]:
        page = self._get(f"{index.rstrip('/')}/{wanted[0]}/", accept=_ACCEPT)
        if page is None:
            return []
        if page.content_type.startswith(_JSON):
            # PEP 691 JSON is UTF-8, whatever the header says
            return self._authenticated(_parse_json(page.url, page.body, wanted))
        return self._authenticated(_parse_html(page.url, page.text(), wanted))

    def _find_links(self, link: str, wanted: Wanted) -> list[DistFile]:
        if link.startswith(("http://", "https://")):
            page = self._get(link, accept="text/html")
            if page is None:
                return []
            return self._authenticated(_parse_html(page.url, page.text(), wanted))
        path = Path(link)
        with self._lock:
            if path not in self._dir_cache:
                self._dir_cache[path] = _scan_dir(path)
            listing = self._dir_cache[path]
        # only the files of the wanted release are hashed: a wheel dir can be gigabytes
        return [DistFile(p.name, None, p, None if wanted[1] is None else sha256_file(p),
                         p.stat().st_size) for p in listing if _is_wanted(p.name, wanted)]

    def _authenticated(self, files: list[DistFile]) -> list[DistFile]:
        """A file on the origin of an index with credentials gets them, as uv and pip give
        them (an index may link its files by absolute URL); a file elsewhere never does."""
        private = [u for u in (*self.indexes(), *self.settings.find_links) if userinfo(u)]
        if not private:
            return files
        return [dataclasses.replace(f, url=with_credentials(f.url, private)) if f.url else f
                for f in files]

    def _get(self, url: str, *, accept: str) -> _Page | None:
        """The page at ``url``, read whole within :data:`PAGE_LIMIT` bytes and
        :data:`PAGE_SECONDS`; None for a 404."""
        import requests

        try:
            response = self.session.get(url, headers={"Accept": accept}, timeout=60,
                                        stream=True)
        except requests.RequestException as exc:
            raise IndexError_(
                f"package index {redact(url)} is unreachable ({exc.__class__.__name__})",
                hint="check index.url in reprolock.toml and your network",
            ) from exc
        status = response.status_code
        if status >= 400:
            response.close()
            _refuse_status(url, status)
            return None
        body = read_body(response, limit=PAGE_LIMIT, seconds=PAGE_SECONDS,
                         fail=lambda why: IndexError_(
                             f"package index page {redact(url)} was not read: {why}",
                             hint="the index is misbehaving; try again later, or remove "
                             "it from reprolock.toml"))
        return _Page(response.url, response.headers.get("Content-Type", ""), body)


@dataclass(frozen=True)
class _Page:
    url: str  # after redirects: relative file links are joined to it
    content_type: str
    body: bytes

    def text(self) -> str:
        """The page decoded as uv decodes it: the header's charset, else UTF-8, and a
        byte that does not decode becomes U+FFFD (requests would guess the charset from
        the bytes, which can read a page otherwise than uv did)."""
        charset = email.message.Message()
        charset["Content-Type"] = self.content_type
        name = charset.get_content_charset() or "utf-8"
        try:
            return self.body.decode(name, "replace")
        # an unknown or non-text codec ("base64"); one that refuses "replace" (idna) or
        # the bytes (punycode): ValueError
        except (LookupError, ValueError):
            return self.body.decode("utf-8", "replace")


def _refuse_status(url: str, status: int) -> None:
    if status in (401, 403):
        raise IndexError_(f"package index {redact(url)} refused access (HTTP {status})",
                          hint="put credentials in the index URL as ${VARIABLES} "
                          "and set them in the environment")
    if status != 404:
        raise IndexError_(f"package index {redact(url)} answered HTTP {status}",
                          hint="try again later or check index.url")


_Pin = tuple[str, str, frozenset[str]]


def _pin_key(pin: tuple[str, str, tuple[str, ...]]) -> _Pin:
    return canonicalize_name(pin[0]), pin[1], frozenset(pin[2])


def _joined(page_url: str, href: str) -> str:
    """``urljoin(page_url, href)``, without its cost for the usual absolute file URL: a
    large project's page lists thousands of files, and urljoin took 25 ms for numpy's."""
    if _PLAIN_ABSOLUTE.fullmatch(href):
        return href
    # tabs and newlines are dropped as the URL standard (and uv) drop them: urljoin keeps
    # them when the two schemes differ
    href = href.translate(_TAB_NEWLINE)
    try:
        joined = urljoin(page_url, href)
    except ValueError as exc:  # "https://[": urllib cannot parse it
        raise _bad_link(page_url, href) from exc
    if _CONTROL.search(joined):  # else the lock refuses it later, as "a bug in reprolock"
        raise _bad_link(page_url, href)
    return joined


def _bad_link(page_url: str, href: str) -> IndexError_:
    return IndexError_(f"{redact(page_url)} links a file at {redact(href)[:200]!r}, which is "
                       "not a valid URL", hint=_PAGE_HINT)


def _version_hint(version: Version | None) -> str:
    """A substring every spelling of ``version`` in a file name contains ("2.0.0" → "2")."""
    if version is None:
        return ""
    text = str(version).lower()
    while text.endswith(".0"):
        text = text[:-2]
    return text


def _name_of(filename: str) -> str | None:
    """The normalized project name of a wheel or sdist file name, unparsed otherwise."""
    if filename.endswith(".whl"):
        name = filename.split("-", 1)[0]
    elif filename.endswith((".tar.gz", ".zip")):
        name = filename.rpartition("-")[0]
    else:
        return None  # an egg or installer: never a file reprolock takes
    return _normalized(name) if name else None


@functools.lru_cache(maxsize=4096)
def _normalized(name: str) -> str:
    # a project's page spells its name a few ways over thousands of files
    return re.sub(r"[-_.]+", "-", name).lower()


def _maybe(filename: str, wanted: Wanted) -> bool:
    """A cheap test before the costly parse: a page lists every version's files."""
    return _version_hint(wanted[1]) in filename.lower()


def _parse_json(page_url: str, text: bytes | str, wanted: Wanted) -> list[DistFile]:
    doc = parse_json(text, source=f"the PEP 691 page {redact(page_url)}", error=IndexError_,
                     max_depth=None, hint=_PAGE_HINT)
    files = doc.get("files")
    if not isinstance(files, list):
        raise IndexError_(f"{redact(page_url)} is not a valid PEP 691 page: it has no "
                          "\"files\" list", hint=_PAGE_HINT)
    hint = _version_hint(wanted[1])
    result = []
    for number, item in enumerate(files, 1):
        filename = item.get("filename") if isinstance(item, dict) else None
        if not isinstance(filename, str):
            raise _bad_entry(page_url, f"file {number}",
                             "is not an object with a \"filename\" string")
        if hint in filename.lower() and _is_wanted(filename, wanted):
            result.append(_json_file(page_url, f"file {number}", item))
    return result


def _json_file(page_url: str, where: str, item: dict[str, Any]) -> DistFile:
    """One PEP 691 file entry, each field checked: the page may be crafted."""
    url, hashes, yanked = item.get("url"), item.get("hashes"), item.get("yanked", False)
    if not isinstance(url, str):
        raise _bad_entry(page_url, where, "has no \"url\" string")
    if not isinstance(hashes, dict | None):
        raise _bad_entry(page_url, where, "has \"hashes\" that is not an object")
    if not isinstance(yanked, bool | str | None):
        raise _bad_entry(page_url, where, "has \"yanked\" that is neither true, false nor "
                         "a reason")
    size, python = item.get("size"), item.get("requires-python")
    return DistFile(item["filename"], _joined(page_url, url), None,
                    _served_sha256(page_url, where, (hashes or {}).get("sha256")),
                    size if type(size) is int and size >= 0 else None,
                    yanked=bool(yanked),  # PEP 691: a truthy value, as pip reads it
                    requires_python=python if isinstance(python, str) else None)


def _served_sha256(page_url: str, where: str, value: object) -> str | None:
    if value is None or value == "":  # as uv reads "": no hash served
        return None  # reprolock downloads the file and hashes it
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise _bad_entry(page_url, where, f"has a sha256 {str(value)[:80]!r} that is not 64 "
                         "hexadecimal digits")
    return value.lower()


def _bad_entry(page_url: str, where: str, what: str) -> IndexError_:
    return IndexError_(f"{redact(page_url)} is not a valid index page: {where} {what}",
                       hint=_PAGE_HINT)


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []
        self.base: str | None = None  # the first <base href>: links are relative to it

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and found.get("href"):
            self.links.append(found)
        elif tag == "base" and self.base is None and found.get("href"):
            self.base = found["href"]


def _parse_html(page_url: str, text: str, wanted: Wanted) -> list[DistFile]:
    parser = _Links()
    parser.feed(text)
    if parser.base is not None:  # as uv reads it, so the lock records the URL uv used
        page_url = _joined(page_url, parser.base)
    result = []
    for link in parser.links:
        href = link["href"] or ""
        try:
            name = urldefrag(href)[0].rsplit("/", 1)[-1]
        except ValueError as exc:  # "https://[": urllib cannot parse it
            raise _bad_link(page_url, href) from exc
        if not _maybe(name, wanted) or not _is_wanted(name, wanted):
            continue
        url, fragment = urldefrag(_joined(page_url, href))
        filename = url.rsplit("/", 1)[-1]
        algo, _, value = fragment.partition("=")
        sha256 = _served_sha256(page_url, f"the link to {filename[:100]!r}", value) \
            if algo == "sha256" else None
        result.append(DistFile(filename, url, None, sha256, None,
                               yanked="data-yanked" in link,
                               requires_python=link.get("data-requires-python")))
    return result


def _read_cache(path: Path | None) -> list[DistFile] | None:
    if path is None or not path.is_file():
        return None
    try:
        return [DistFile(_cached(d, "filename"), _cached(d, "url"), None,
                         _cached_sha256(d["sha256"]), _cached_size(d["size"]),
                         yanked=d.get("yanked") is True,
                         requires_python=_text_or_none(d.get("requires_python")))
                for d in parse_json(path.read_bytes(), source=str(path), want_object=False)]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ReprolockError):
        path.unlink(missing_ok=True)  # a corrupt entry is discarded, never used
        return None


def _cached(entry: dict[str, object], key: str) -> str:
    value = entry[key]
    if not isinstance(value, str) or _CONTROL.search(value):
        raise ValueError(f"a cached {key} {value!r} is not a plain string")
    return value


def _cached_size(value: object) -> int | None:
    if value is not None and (type(value) is not int or value < 0):
        raise ValueError(f"a cached size {value!r} is not a byte count")
    return value


def _cached_sha256(value: object) -> str | None:
    """A cached hash as a page's would be read: a cache file can be edited by hand."""
    if value is not None and not (isinstance(value, str) and _SHA256.fullmatch(value)
                                  and value == value.lower()):
        raise ValueError(f"a cached sha256 {value!r} is not 64 lower-case hex digits")
    return value


def _write_cache(path: Path, files: list[DistFile]) -> None:
    doc = [{"filename": f.filename, "url": f.url, "sha256": f.sha256, "size": f.size,
            "yanked": f.yanked, "requires_python": f.requires_python} for f in files]
    with contextlib.suppress(OSError):  # a read-only cache only costs time
        atomic_write_text(path, json.dumps(doc, sort_keys=True))


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _scan_dir(path: Path) -> list[Path]:
    if not path.is_dir():
        raise IndexError_(f"find-links directory {path} does not exist",
                          hint="create it or fix index.find-links in reprolock.toml")
    return [p for p in sorted(path.iterdir()) if p.is_file() and release_of(p.name)]
