"""`run --data`: what a data directory's listing refuses, in process (the real runs are in
tests/test_model_chain.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprolock.errors import UsageError
from reprolock.verify.record import DATA_FILE_LIMIT, data_tree, tree_digest


def test_a_tree_over_the_limit_is_refused_naming_it(tmp_path: Path) -> None:
    for i in range(4):
        (tmp_path / f"shard-{i}").write_bytes(b"x" * i)
    assert len(data_tree(tmp_path, limit=4)) == 4
    with pytest.raises(UsageError, match="more than 3 files") as caught:
        data_tree(tmp_path, limit=3)
    assert caught.value.hint and "fewer files" in caught.value.hint
    assert DATA_FILE_LIMIT == 100_000


def test_the_tree_digest_changes_with_one_byte(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"1")
    before = tree_digest(data_tree(tmp_path))
    (tmp_path / "a").write_bytes(b"2")
    assert tree_digest(data_tree(tmp_path)) != before
