"""Helpers with no public API: files, hashing, subprocesses, URLs."""
