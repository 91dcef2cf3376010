"""hidden_by answers as testing every whiteout did (the probe's and the build's test,
which a crafted layer of 60,000 whiteouts over 60,000 files made run for minutes)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reprolock.oci.whiteouts import hidden_by

_PARTS = st.lists(st.sampled_from(["usr", "bin", "lib", "python3", "a", "ab"]), max_size=4)
_PATHS = _PARTS.map("/".join)


def _every(hidden: list[str], path: str) -> bool:
    """The test as it was: the path against each whiteout in turn."""
    path = path.strip("/")
    marks = [h.strip("/") for h in hidden]
    return any(not h or path == h or path.startswith(h + "/") for h in marks)


@given(st.lists(_PATHS, max_size=6), _PATHS, st.booleans())
def test_hidden_by_is_the_test_of_every_whiteout(hidden: list[str], path: str,
                                                  absolute: bool) -> None:
    if absolute:
        hidden, path = ["/" + h for h in hidden], "/" + path
    assert hidden_by(hidden)(path) == _every(hidden, path)


def test_a_whiteout_hides_the_path_and_what_is_below_it_only() -> None:
    gone = hidden_by(["usr/lib/python3"])
    assert gone("usr/lib/python3") and gone("/usr/lib/python3/os.py")
    assert not gone("usr/lib/python3.11") and not gone("usr/lib")
    assert hidden_by(["/"])("anything/at/all")  # an opaque root


class _Counted(list[str]):
    """The whiteouts, counting how often they are gone through."""

    passes = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        type(self).passes += 1
        return super().__iter__()


def test_the_probe_goes_through_a_layer_s_whiteouts_once() -> None:
    """60,000 whiteouts over 60,000 interpreters hung lock: the probe went through every
    whiteout for each interpreter (a test per pair)."""
    from reprolock.image.probe import _merge, _Seen

    seen = _Seen(pythons={(3, minor): f"/usr/bin/python3.{minor}" for minor in range(50)})
    hidden = _Counted(f"usr/bin/python3.{minor}" for minor in range(0, 50, 2))
    _Counted.passes = 0
    _merge(seen, _Seen(pythons={}), hidden)
    assert _Counted.passes == 1
    assert sorted(seen.pythons) == [(3, minor) for minor in range(1, 50, 2)]


def test_the_build_goes_through_a_layer_s_whiteouts_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same, for the base's startup files the build records (60,000 by 60,000 hung
    build)."""
    import io
    import tarfile

    from reprolock.runtime import basefiles

    calls: list[int] = []
    real = basefiles.hidden_by

    def counting(hidden: list[str]) -> object:
        calls.append(len(hidden))
        return real(hidden)

    monkeypatch.setattr(basefiles, "hidden_by", counting)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for n in range(30):
            tar.addfile(tarfile.TarInfo(f"usr/lib/python3/dist-packages/.wh.mod{n}.pth"))
    files = {f"/usr/lib/python3/dist-packages/mod{n}.pth": {"sha256": "0", "size": 0}
             for n in range(60)}
    basefiles.scan_layer(io.BytesIO(out.getvalue()), files)
    assert calls == [30]
    assert sorted(files) == sorted(f"/usr/lib/python3/dist-packages/mod{n}.pth"
                                   for n in range(30, 60))
