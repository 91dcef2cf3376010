"""Jupyter notebooks as the audit reads them: code cells as one Python file, shell lines
(``!pip install``, ``%pip install``, a ``%%bash`` cell) apart, and every line placed at
its line in the ``.ipynb`` file, so findings point into the file and an inline
``# reprolock: ignore[...]`` in a cell still applies (it is on that JSON line).

    >>> nb = read_notebook('{"cells": [{"cell_type": "code", "source": ["%pip install x\\\\n",'
    ...                    ' "import random\\\\n"]}]}')
    >>> nb.python, nb.shell
    ('pass\\nimport random\\n', ((1, 'pip install x'),))
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from reprolock._internal.jsonio import parse_json
from reprolock.errors import ReprolockError

_SHELL_MAGIC = re.compile(r"^(\s*)(?:!|%(?:pip|conda|mamba|sx|system)\b|%%(?:bash|sh|script))")
_CELL_SHELL = re.compile(r"^%%(bash|sh|script\s+(ba)?sh)\b")


@dataclass(frozen=True)
class Notebook:
    python: str  # code cells, one after another; magic lines as ``pass``
    lines: tuple[int, ...]  # line i + 1 of ``python`` is line lines[i] of the file (0: unknown)
    shell: tuple[tuple[int, str], ...]  # (file line, command) of shell lines

    def file_line(self, line: int) -> int:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else 0


def read_notebook(text: str) -> Notebook | None:
    """None when the file is not a notebook (not strict JSON -- the one reader of JSON,
    which refuses duplicate keys and deep nesting -- or no list of cells)."""
    try:
        data = parse_json(text, source="notebook", want_object=False)
    except ReprolockError:
        return None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        return None
    locator = _Locator(text.splitlines())
    python: list[str] = []
    lines: list[int] = []
    shell: list[tuple[int, str]] = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        _cell(source.splitlines(), locator, python, lines, shell)
    return Notebook("".join(f"{line}\n" for line in python), tuple(lines), tuple(shell))


def _cell(source: list[str], locator: _Locator, python: list[str], lines: list[int],
          shell: list[tuple[int, str]]) -> None:
    whole_cell = bool(source) and bool(_CELL_SHELL.match(source[0]))
    for number, line in enumerate(source):
        at = locator.find(line)
        magic = _SHELL_MAGIC.match(line)
        if whole_cell and number > 0:
            shell.append((at, line))
        elif magic and not line.lstrip().startswith("%%"):
            shell.append((at, _command(line.lstrip())))
        if whole_cell or magic or line.lstrip().startswith(("%", "!", "?")):
            # keep the block structure: the magic's indentation, and a statement
            indent = line[:len(line) - len(line.lstrip())]
            line = "" if whole_cell else f"{indent}pass"
        python.append(line)
        lines.append(at)
    python.append("")  # cells are separate statements
    lines.append(0)


def _command(magic: str) -> str:
    """``!pip install x`` and ``%pip install x`` → ``pip install x``; ``%sx cmd`` → cmd."""
    if magic.startswith("!"):
        return magic[1:].strip()
    word, _, rest = magic[1:].partition(" ")
    return rest.strip() if word in ("sx", "system") else magic[1:]


class _Locator:
    """Finds each source line in the JSON text, going forward (nbformat writes one
    source line per JSON line)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.next = 0

    def find(self, line: str) -> int:
        encoded = json.dumps(line)[1:-1]
        for index in range(self.next, len(self.lines)):
            if encoded in self.lines[index]:
                self.next = index + 1
                return index + 1
        return 0
