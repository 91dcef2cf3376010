"""Writing OCI images: deterministic layer tars and image layouts."""
