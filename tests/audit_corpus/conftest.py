"""The corpus holds excerpts of public repositories (some with their own tests): they are
audited by bench/audit_corpus.py, never collected or run by pytest."""

collect_ignore_glob = ["*"]
