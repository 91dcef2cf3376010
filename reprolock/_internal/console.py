"""How a command ends on the console: an error as the one paragraph a user reads, and
a closed stdout (``| head -1``) without a "Broken pipe" message. Used by the fast
pre-commit path and by the typer CLI alike."""

from __future__ import annotations

import os
import re
import signal
import sys

#: What a shell reports for a program killed by SIGPIPE (``yes | head -1``): the reader
#: went away. Not 0, so a finding cut short is never read as success; not 2, no error.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


#: what a hostile input may put in a message to move the cursor, clear the screen, set
#: the title (escape sequences), start a line of its own (\r, U+2028) or reorder text
#: (bidirectional overrides); shown escaped instead
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e"
                      "\u2066-\u2069]")  # a tab stays: a tool's output may hold one
#: a message longer than this is cut: a crafted index of 70,000 platforms made a 1 MB one
MAX_MESSAGE = 16_000


def one_paragraph(text: str) -> str:
    """Blank lines (from a value quoted in a message) would split the error in two;
    control characters are shown escaped; a message past MAX_MESSAGE is cut."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)
    if len(text) > MAX_MESSAGE:
        text = f"{text[:MAX_MESSAGE]}... ({len(text) - MAX_MESSAGE} more characters)"
    return "\n".join(line.rstrip() for line in text.split("\n") if line.strip())


def report_error(exc: Exception) -> int:
    """Print ``exc`` as the one paragraph a user reads; return the exit code."""
    from reprolock.errors import EXIT_ERROR, ReprolockError

    if isinstance(exc, ReprolockError):
        print(f"error: {one_paragraph(exc.diagnostics())}", file=sys.stderr)
        return exc.exit_code
    if isinstance(exc, MemoryError):  # a hostile input can ask for any amount of memory
        print("error: out of memory: an input is far larger or deeper than any file "
              "reprolock writes\n  fix: check the files this command reads", file=sys.stderr)
        return EXIT_ERROR
    if isinstance(exc, OSError):  # disk full, permissions: the user's to fix, not a bug
        print(f"error: {one_paragraph(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    detail = " ".join(str(exc).split())
    detail = detail if len(detail) <= 300 else detail[:297] + "..."
    print(f"error: internal error ({exc.__class__.__name__}: {detail}); this is a bug in "
          "reprolock: please report it with the output of --verbose", file=sys.stderr)
    return EXIT_ERROR


def quiet_broken_pipe() -> int:
    """The reader of stdout is gone (``reprolock audit --list-rules | head -1``): no
    "Broken pipe" message, and none at exit when Python flushes stdout again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # stdout is not a file (tests): fine
        pass
    finally:
        os.close(devnull)
    return EXIT_BROKEN_PIPE
