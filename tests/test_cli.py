"""The command line's contract: --version, --help everywhere, documented exit codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reprolock import __version__
from tests.support.cli import run_cli

COMMANDS = ["init", "lock", "build", "export", "inspect", "keygen", "sign", "verify"]
README = Path(__file__).resolve().parent.parent / "README.md"


def test_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"reprolock {__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    proc = run_cli(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert f"reprolock {command}" in proc.stdout or "Usage:" in proc.stdout
    assert "--project" in proc.stdout or command in ("init", "keygen")


def test_top_level_help_lists_commands_and_exit_codes() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in COMMANDS:
        assert command in proc.stdout
    assert "2 usage" in " ".join(proc.stdout.split())


def test_readme_documents_every_command_and_option() -> None:
    """The README's usage block stays true: every option it shows exists."""
    text = README.read_text()
    block = text.split("## Usage", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    for line in block.strip().splitlines():
        command = line.split()[1]
        help_text = run_cli(command, "--help").stdout
        for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", line):
            assert option in help_text, f"README shows {option} for {command}"


def test_usage_error_exits_2() -> None:
    assert run_cli("no-such-command").returncode == 2
    assert run_cli("lock", "--no-such-option").returncode == 2


def test_error_has_no_traceback_unless_verbose(tmp_path: Path) -> None:
    quiet = run_cli("lock", "-C", tmp_path)
    assert quiet.returncode == 2
    assert "Traceback" not in quiet.stderr
    assert "reprolock init" in quiet.stderr
    loud = run_cli("-v", "lock", "-C", tmp_path)
    assert loud.returncode != 0
    assert "Traceback" in loud.stderr


def test_a_command_runs_alone_as_it_runs_in_the_whole_app() -> None:
    """main() builds only the command it runs (typer builds every command's options
    first): the help, usage errors and exit codes are the whole app's."""
    from typer.testing import CliRunner

    from reprolock.cli import _app_for, _command_name, app

    names = [_command_name(c) for c in app.registered_commands]
    assert {"lock", "build", "verify", "run", "audit"} <= set(names)
    runner = CliRunner()
    for name in names:
        for args in ([name, "--help"], [name, "--no-such-option"]):
            alone, whole = runner.invoke(_app_for(args), args), runner.invoke(app, args)
            assert (alone.exit_code, alone.output) == (whole.exit_code, whole.output), args
        assert _app_for([name]) is not app
    assert _app_for(["--help"]) is app and _app_for(["nosuch"]) is app and _app_for([]) is app
