"""The OCI vocabulary, at the bottom of the package: everything above (image sources,
outputs, the builder, verify, run) names OCI things from here, and nothing here imports
any of them.

- :mod:`~reprolock.oci.media`: media types, the ref-name annotation, the layout file;
- :mod:`~reprolock.oci.canonical`: the one canonical JSON of documents named by digest;
- :mod:`~reprolock.oci.model`: ``LayerBlob``, ``Layer`` and the built ``Image``;
- :mod:`~reprolock.oci.blobstore`: the content-addressed blob store;
- :mod:`~reprolock.oci.compress` and :mod:`~reprolock.oci.tarball`: deterministic layers;
- :mod:`~reprolock.oci.contract`: what a reprolock image promises (labels, venv prefix,
  environment, the environment config and its digest).
"""
