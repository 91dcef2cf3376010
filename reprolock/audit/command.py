"""The ``reprolock audit`` command (registered in reprolock.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reprolock.errors import ReprolockError


def audit(
    path: Annotated[Path, typer.Argument(help="Project directory to audit.")] = Path(),
) -> None:
    """Find what makes a training run unreproducible (work in progress)."""
    raise ReprolockError("reprolock audit is not built yet")
