"""URL hygiene: credentials never leave memory, and go only to the origin they are for."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ONLY_ENV_REFS = re.compile(r"(?:\$\{[A-Za-z_][A-Za-z0-9_]*\})+")
# the user information of any URL in free text: "scheme://USER[:PASSWORD]@"
_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@\"'<>]+@")
# "scheme://" and the user information, up to the last "@" of the authority
_AUTHORITY_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)([^/?#]*)@")
_HTTP_USERINFO = re.compile(r"(?i:\bhttps?://)[^/\s@\"'<>]+@")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SHORTEST_SECRET = 4  # shorter user names or passwords are not searched for in free text


def redact(url: str) -> str:
    """Drop user and password from a URL (``https://u:p@host/x`` → ``https://host/x``)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "https://[": still no credentials in the message
        return _AUTHORITY_USERINFO.sub(r"\1", url)
    if not parts.netloc or "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def userinfo(url: str) -> tuple[str, str] | None:
    """The decoded (user, password) of a URL, or None when it has no user information."""
    netloc = urlsplit(url).netloc
    if "@" not in netloc:
        return None
    user, _, password = netloc.rsplit("@", 1)[0].partition(":")
    return unquote(user), unquote(password)


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """Remove credentials from free text (a tool's message): the user information of every
    URL, and each user name and password of the URLs in ``secrets``, however spelled."""
    text = _USERINFO.sub(r"\1", text)
    for url in secrets:
        found = userinfo(url)
        raw = urlsplit(url).netloc.rsplit("@", 1)[0] if found else ""
        for value in sorted({*(found or ()), *raw.split(":")}, key=len, reverse=True):
            if len(value) >= _SHORTEST_SECRET:
                text = text.replace(value, "***").replace(quote(value, safe=""), "***")
    return text


def has_credentials(text: str) -> bool:
    """Whether ``text`` holds an http(s) URL with user information."""
    return _HTTP_USERINFO.search(text) is not None


def expand_env(url: str) -> str:
    """Expand ``${VAR}`` so tokens can stay in the environment, not in the config.

    A value that lands in the user information is percent-encoded: a password holding
    ``@``, ``/``, ``#`` or ``:`` must not change where the URL (and the password) goes.
    ``%`` is kept, so a value that is already percent-encoded still works.
    """
    found = _AUTHORITY_USERINFO.match(url)
    if found is None:
        return _expand(url)
    scheme, info = found.groups()
    encoded = _ENV_REF.sub(lambda m: quote(os.environ.get(m.group(1), ""), safe="%"), info)
    return f"{scheme}{encoded}@{_expand(url[found.end():])}"


def _expand(text: str) -> str:
    return _ENV_REF.sub(lambda m: os.environ.get(m.group(1), ""), text)


def literal_credential(url: str) -> bool:
    """Whether ``url`` holds a credential written out rather than taken from ``${VAR}``.

    Allowed: no user information, ``${VAR}`` alone (a token as the user), or any user name
    followed by ``:${VAR}``; anything else is a secret in the file.
    """
    netloc = urlsplit(url).netloc
    if "@" not in netloc:
        return False
    user, colon, password = netloc.rsplit("@", 1)[0].partition(":")
    if colon:
        return _ONLY_ENV_REFS.fullmatch(password) is None
    return _ONLY_ENV_REFS.fullmatch(user) is None


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) as browsers, pip and uv compare them: case-insensitive scheme
    and host, the scheme's default port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def with_credentials(url: str, configured: Iterable[str]) -> str:
    """``url`` with the user information of the ``configured`` URL (already expanded) of
    exactly its origin, the one whose path starts ``url``'s the longest way if several do
    (pip's rule); unchanged when none has its origin.

    Only an exact origin matches: a string prefix would hand the password for
    ``https://pypi.corp.example`` to ``https://pypi.corp.example.evil.net`` or to another
    port of the same host.
    """
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return url
    mine = [urlsplit(c) for c in configured
            if "@" in urlsplit(c).netloc and origin(c) == origin(url)]
    if not mine:
        return url
    best = max(mine, key=lambda c: len(c.path) if parts.path.startswith(c.path) else -1)
    info = best.netloc.rsplit("@", 1)[0]
    return urlunsplit((parts.scheme, f"{info}@{parts.netloc}", parts.path, parts.query,
                       parts.fragment))


def is_remote(location: str) -> bool:
    return urlsplit(location).scheme in ("http", "https")
