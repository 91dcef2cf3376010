"""The newest release of each requirement is found while the resolver works (issue 13:
warm lock time), from the one page the lock reads, and an index error is left for later."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Any, cast

import pytest
from packaging.specifiers import SpecifierSet

from reprolock.errors import IndexError_
from reprolock.index.simple import DistFile
from reprolock.resolver.honesty import Honesty
from reprolock.resolver.interface import Pin
from reprolock.resolver.requested import Requested


class Client:
    def __init__(self, *, broken: bool = False, pages: dict[str, Future[None]] | None = None,
                 ) -> None:
        self.calls: list[str] = []
        self.broken = broken
        self.pages = pages  # the prefetch: each page's future; None: every page is read

    def prefetched(self, name: str) -> Future[Any] | None:
        if self.pages is None:
            done: Future[None] = Future()
            done.set_result(None)
            return done
        return self.pages.get(name)

    def project_files(self, name: str) -> list[DistFile]:
        self.calls.append(name)
        if self.broken:
            raise IndexError_(f"the index page of {name} is malformed")
        return [DistFile(f"{name}-{v}-py3-none-any.whl", f"https://i.test/{name}-{v}.whl",
                         None, "0" * 64, 1) for v in ("1.0", "2.0")]


def _honesty(client: Client) -> Honesty:
    requested = (Requested("alpha", SpecifierSet(), "requirements.in:1"),
                 Requested("beta", SpecifierSet("<9"), "requirements.in:2"))
    return Honesty(cast(Any, None), cast(Any, None), cast(Any, client), requested, {})


PINS = (Pin("alpha", "2.0", (), ("-r requirements.in",)),
        Pin("beta", "2.0", (), ("-r requirements.in",)))


def test_the_pages_read_ahead_are_not_read_again() -> None:
    client = Client()
    honesty = _honesty(client)
    honesty.read_ahead(Future())
    assert client.calls == ["alpha", "beta"]
    assert honesty.skipped_releases(PINS) == []  # both are at their newest release
    assert client.calls == ["alpha", "beta"]


def test_without_read_ahead_the_pages_are_read_when_needed() -> None:
    client = Client()
    assert _honesty(client).skipped_releases(PINS) == []
    assert sorted(client.calls) == ["alpha", "beta"]


def test_an_index_error_is_left_for_the_step_that_needs_the_page() -> None:
    client = Client(broken=True)
    honesty = _honesty(client)
    honesty.read_ahead(Future())  # the resolver's own error, if any, comes first
    with pytest.raises(IndexError_, match="malformed"):
        honesty.skipped_releases(PINS)


def test_what_held_a_release_back_reads_as_one_sentence() -> None:
    """nanoGPT's lock said "... cause: Because ... cannot be used., so the resolver chose
    an older release": the resolver's label and full stop came along."""
    text = ("uv pip compile failed with exit code 1\ncause: Because only kernels<=0.17.2 is "
            "available and transformers>=5.25.0 depends on kernels>=0.19.1, we can conclude "
            "that transformers>=5.25.0 cannot be used.")
    said = _honesty(Client())._blocking(text, "transformers")
    assert said == ("the resolver cannot use it: only kernels<=0.17.2 is available and "
                    "transformers>=5.25.0 depends on kernels>=0.19.1, we can conclude that "
                    "transformers>=5.25.0 cannot be used")


def test_the_read_ahead_ends_when_the_resolver_does() -> None:
    """A page still on its way does not hold back the resolver's answer (or its error:
    an index that does not answer would have kept it for the whole timeout)."""
    slow: Future[None] = Future()  # never answers
    ready: Future[None] = Future()
    ready.set_result(None)
    client = Client(pages={"alpha": slow, "beta": ready})
    resolving: Future[None] = Future()
    threading.Timer(0.2, resolving.set_result, (None,)).start()
    start = time.monotonic()
    _honesty(client).read_ahead(resolving)
    assert time.monotonic() - start < 30
    assert client.calls == ["beta"]


def test_nothing_is_read_ahead_once_the_resolver_is_done() -> None:
    client = Client()
    resolving: Future[None] = Future()
    resolving.set_result(None)
    _honesty(client).read_ahead(resolving)
    assert client.calls == []
