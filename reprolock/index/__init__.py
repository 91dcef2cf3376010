"""Package indexes: the files of a release (PEP 503/691 simple API, find-links)."""
