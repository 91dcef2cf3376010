"""Checks of a lock and what hangs on it, each reported as passed or failed.

    >>> from reprolock.verify import run_checks                        # doctest: +SKIP
    >>> report = run_checks(config, key=None, attestation=None)        # doctest: +SKIP
    >>> report.exit_code                                               # doctest: +SKIP
    0

``lockchecks``: the lock (valid, fresh, signed, rebuilt, SBOM, provenance) for CI;
``image``: a built image against the lock and code (``--image``); ``record``: a run
record (``--run``); the runtime check itself is :mod:`reprolock.runtime.check`.
A failed check is a finding (exit 1); a check that cannot run raises, so the command
never exits 0 when something could not be checked.
"""

from reprolock.verify.lockchecks import run_checks
from reprolock.verify.report import Check, Report

__all__ = ["Check", "Report", "run_checks"]
