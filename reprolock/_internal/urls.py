"""URL hygiene: credentials never leave memory."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def redact(url: str) -> str:
    """Drop user and password from a URL (``https://u:p@host/x`` → ``https://host/x``)."""
    parts = urlsplit(url)
    if not parts.netloc or "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def redact_text(text: str, secrets: list[str]) -> str:
    """Replace each full URL in ``secrets`` by its redacted form inside free text."""
    for url in secrets:
        if url != redact(url):
            text = text.replace(url, redact(url))
    return re.sub(r"(https?://)[^/\s:@]+:[^/\s@]+@", r"\1***@", text)


def expand_env(url: str) -> str:
    """Expand ``${VAR}`` so tokens can stay in the environment, not in the config."""
    return _ENV_REF.sub(lambda m: os.environ.get(m.group(1), ""), url)


def is_remote(location: str) -> bool:
    return urlsplit(location).scheme in ("http", "https")
