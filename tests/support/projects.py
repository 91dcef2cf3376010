"""Small projects written file by file, for the audit's tests."""

from __future__ import annotations

from pathlib import Path


def write_project(tmp_path: Path, files: dict[str, str], name: str = "project") -> Path:
    """``tmp_path/name`` holding ``files`` (relative path -> text)."""
    root = tmp_path / name
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root
