"""Long-name and pax records are read within a bound (an adversarial pass: a 3 MB gzip
layer whose long-name record claimed 3 GiB took 9.5 GB while the probe read it)."""

from __future__ import annotations

import io
import tarfile

import pytest

from reprolock._internal.tarsafe import MAX_EXTENDED, open_tar


def _record(kind: bytes, size: int) -> bytes:
    """A GNU long-name ("L") or pax ("x") header claiming ``size`` bytes, its data of
    digits, one empty file after it and the end marker."""
    info = tarfile.TarInfo("././@LongLink")
    info.type, info.size = kind, size
    data = b"1" * size + bytes(-size % 512)
    empty = tarfile.TarInfo("after")
    return (info.tobuf(format=tarfile.USTAR_FORMAT) + data
            + empty.tobuf(format=tarfile.USTAR_FORMAT) + bytes(1024))


@pytest.mark.parametrize("kind", [tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE])
@pytest.mark.parametrize("mode", ["r|", "r:", "r|*"])
def test_a_record_past_the_bound_is_a_read_error(kind: bytes, mode: str) -> None:
    data = io.BytesIO(_record(kind, MAX_EXTENDED + 1))
    with (pytest.raises(tarfile.ReadError, match=f"a {MAX_EXTENDED + 1}-byte long-name or pax"),
          open_tar(fileobj=data, mode=mode) as tar):
        list(tar)


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names_within_the_bound_are_read(fmt: int) -> None:
    out = io.BytesIO()
    name = "d/" * 3000 + "file.py"  # longer than PATH_MAX, well within the bound
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        info = tarfile.TarInfo(name)
        info.size = 2
        tar.addfile(info, io.BytesIO(b"ok"))
    with open_tar(fileobj=io.BytesIO(out.getvalue()), mode="r|") as tar:
        assert [m.name for m in tar] == [name]


def test_every_tar_reprolock_reads_goes_through_the_bound() -> None:
    """tarfile.open is called directly only to write (a tar reprolock makes)."""
    import re
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "reprolock"
    calls = [(path.name, m.group(0)) for path in package.rglob("*.py")
             if path.name != "tarsafe.py"
             for m in re.finditer(r"tarfile\.open\([^)]*\)", path.read_text())]
    assert calls, "the pattern finds the writers"
    assert all('mode="w' in call for _, call in calls), calls
