"""Read the files of a release from simple indexes and find-links locations."""

from __future__ import annotations

import concurrent.futures
import html.parser
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import requests
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from reprolock._internal.files import sha256_file
from reprolock._internal.urls import redact
from reprolock.errors import IndexError_
from reprolock.resolver.interface import IndexSettings

PYPI = "https://pypi.org/simple"
_JSON = "application/vnd.pypi.simple.v1+json"
_ACCEPT = f"{_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"


@dataclass(frozen=True)
class DistFile:
    filename: str
    url: str | None  # where it is fetched from (may hold credentials; redact to record)
    path: Path | None  # a local find-links file
    sha256: str | None
    size: int | None


def release_of(filename: str) -> tuple[str, Version] | None:
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
            return name, version
        name, version = parse_sdist_filename(filename)
        return name, version
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


class IndexClient:
    """Fetches each project page once per run; safe to call from several threads."""

    def __init__(self, settings: IndexSettings, *, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "reprolock"
        self._dir_cache: dict[Path, list[DistFile]] = {}
        self._lock = threading.Lock()

    def indexes(self) -> list[str]:
        if self.settings.no_index:
            return []
        return [self.settings.url or PYPI, *self.settings.extra_urls]

    def release_files(self, name: str, version: str) -> list[DistFile]:
        wanted = (canonicalize_name(name), Version(version))
        found: list[DistFile] = []
        for index in self.indexes():
            found += self._project_page(index, wanted[0])
        for link in self.settings.find_links:
            found += self._find_links(link)
        return [f for f in found if release_of(f.filename) == wanted]

    def files_for(
        self, releases: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], list[DistFile]]:
        todo = list(releases)
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            results = pool.map(lambda r: self.release_files(*r), todo)
            return dict(zip(todo, results, strict=True))

    def _project_page(self, index: str, project: str) -> list[DistFile]:
        url = f"{index.rstrip('/')}/{project}/"
        response = self._get(url, accept=_ACCEPT)
        if response.status_code == 404:
            return []
        if response.headers.get("Content-Type", "").startswith(_JSON):
            return _parse_json(response.url, response.text)
        return _parse_html(response.url, response.text)

    def _find_links(self, link: str) -> list[DistFile]:
        if link.startswith(("http://", "https://")):
            response = self._get(link, accept="text/html")
            return [] if response.status_code == 404 else _parse_html(response.url, response.text)
        path = Path(link)
        with self._lock:
            if path not in self._dir_cache:
                self._dir_cache[path] = _scan_dir(path)
            return self._dir_cache[path]

    def _get(self, url: str, *, accept: str) -> requests.Response:
        try:
            response = self.session.get(url, headers={"Accept": accept}, timeout=60)
        except requests.RequestException as exc:
            raise IndexError_(
                f"package index {redact(url)} is unreachable ({exc.__class__.__name__})",
                hint="check index.url in reprolock.toml and your network",
            ) from exc
        if response.status_code in (401, 403):
            raise IndexError_(f"package index {redact(url)} refused access "
                              f"(HTTP {response.status_code})",
                              hint="put credentials in the index URL as ${VARIABLES} "
                              "and set them in the environment")
        if response.status_code >= 400 and response.status_code != 404:
            raise IndexError_(f"package index {redact(url)} answered HTTP {response.status_code}",
                              hint="try again later or check index.url")
        return response


def _parse_json(page_url: str, text: str) -> list[DistFile]:
    try:
        doc = json.loads(text)
        files = doc["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexError_(f"{redact(page_url)} is not a valid PEP 691 page") from exc
    result = []
    for item in files:
        url = urljoin(page_url, item["url"])
        size = item.get("size")
        result.append(DistFile(item["filename"], url, None, (item.get("hashes") or {}).get(
            "sha256"), int(size) if isinstance(size, int) else None))
    return result


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def _parse_html(page_url: str, text: str) -> list[DistFile]:
    parser = _Links()
    parser.feed(text)
    result = []
    for href in parser.hrefs:
        url, fragment = urldefrag(urljoin(page_url, href))
        filename = url.rsplit("/", 1)[-1]
        algo, _, value = fragment.partition("=")
        result.append(DistFile(filename, url, None, value if algo == "sha256" else None, None))
    return result


def _scan_dir(path: Path) -> list[DistFile]:
    if not path.is_dir():
        raise IndexError_(f"find-links directory {path} does not exist",
                          hint="create it or fix index.find-links in reprolock.toml")
    return [DistFile(p.name, None, p, sha256_file(p), p.stat().st_size)
            for p in sorted(path.iterdir()) if p.is_file() and release_of(p.name)]
