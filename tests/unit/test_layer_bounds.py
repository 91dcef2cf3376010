"""A base layer inflates within a bound, and a zstd layer says so (an adversarial pass: a
2 MB layer of zstd run-length blocks, labelled gzip, inflated to 64 GiB and held lock)."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest
import zstandard

from reprolock.errors import ImageSourceError
from reprolock.image import blobs
from reprolock.image.blobs import check_stream
from reprolock.image.interface import Descriptor

GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def _tar(size: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = size
        tar.addfile(info, io.BytesIO(bytes(size)))
    return out.getvalue()


def _check(blob: bytes, media_type: str, tar: bytes) -> tuple[str, ...]:
    desc = Descriptor(media_type, "sha256:" + hashlib.sha256(blob).hexdigest(), len(blob))
    return check_stream(io.BytesIO(blob), desc, "sha256:" + hashlib.sha256(tar).hexdigest())


@pytest.mark.parametrize("compress", [gzip.compress, zstandard.compress])
def test_a_layer_that_inflates_past_the_ratio_is_refused(
        compress: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blobs, "MIN_INFLATED", 1 << 20)
    monkeypatch.setattr(blobs, "MAX_RATIO", 100)  # gzip's best is about 1032
    monkeypatch.setattr(blobs, "MAX_ZSTD_RATIO", 100)
    tar = _tar(8 << 20)  # zeros: gzip makes about 8 KiB of it, zstd less
    blob = compress(tar)  # type: ignore[operator]
    media = GZIP if compress is gzip.compress else ZSTD
    with pytest.raises(ImageSourceError, match=r"inflates to more than \d+ bytes, over 100 times"):
        _check(blob, media, tar)


def test_a_layer_within_the_ratio_is_read() -> None:
    tar = _tar(1 << 20)
    assert _check(gzip.compress(tar), GZIP, tar) == ()


def test_a_zstd_layer_labelled_gzip_is_refused() -> None:
    """The probe refuses zstd base layers by their media type: the bytes decided."""
    tar = _tar(1000)
    with pytest.raises(ImageSourceError, match="compressed with zstd, but its media type"):
        _check(zstandard.compress(tar), GZIP, tar)
    assert _check(zstandard.compress(tar), ZSTD, tar) == ()


def test_a_zstd_layer_of_zeros_reprolock_writes_is_read() -> None:
    """A review: a code layer holding 256 MiB of zeros, compressed by reprolock's own
    zstd (28,954 bytes), failed verify as "over 1100 times its size"."""
    tar = _tar(96 << 20)  # over MIN_INFLATED
    blob = zstandard.compress(tar, 19)
    assert len(blob) * 1100 < len(tar)  # past gzip's ratio
    assert _check(blob, ZSTD, tar) == ()
