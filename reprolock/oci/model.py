"""The image model: layer blobs and built images whose blobs are in a blob store.

Above the media types, below every reader and writer: the builder makes an
:class:`Image`, the outputs write one, the blob store holds its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayerBlob:
    digest: str  # sha256 of the compressed bytes
    diff_id: str  # sha256 of the tar
    size: int
    media_type: str


@dataclass(frozen=True)
class Layer:
    blob: LayerBlob
    holds: str  # what is in it, for people and for history


@dataclass(frozen=True)
class Image:
    """An image whose config, manifest and layer blobs are all in the blob store."""

    config_digest: str
    manifest_digest: str
    manifest_size: int
    layers: tuple[Layer, ...]
    base_layers: int

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(layer.blob.diff_id for layer in self.layers)

