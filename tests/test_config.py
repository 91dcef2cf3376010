"""Loading reprolock.toml / [tool.reprolock], and the errors a user sees when it is wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reprolock.config import DEFAULT_LOCKFILE, find_config, load_config
from reprolock.errors import EXIT_ERROR, ConfigError

DEPS = '[dependencies]\nrequirements = ["requirements.in"]\n'


def project(root: Path, config: str, *, name: str = "reprolock.toml",
            requirements: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if requirements:
        (root / "requirements.in").write_text("tinyml\n")
    (root / name).write_text(config)
    return root


def config_error(root: Path, **kwargs: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(root, **kwargs)
    assert info.value.exit_code == EXIT_ERROR
    return info.value


# --- loading -------------------------------------------------------------------------


def test_minimal_config_takes_the_defaults(tmp_path: Path) -> None:
    root = project(tmp_path, 'base = "python:3.11-slim"\n' + DEPS)
    config = load_config(root)
    assert config.root == tmp_path.resolve()
    assert config.source == tmp_path.resolve() / "reprolock.toml"
    assert config.base == "python:3.11-slim"
    assert config.platform == "linux/amd64"
    assert config.resolver == "uv"
    assert config.lockfile == DEFAULT_LOCKFILE
    assert config.lock_path == tmp_path.resolve() / DEFAULT_LOCKFILE
    assert config.requirements == ("requirements.in",)
    assert config.pyproject_dependencies is False
    assert config.index.url is None
    assert config.index.extra_urls == ()
    assert config.index.no_index is False
    assert config.code_include == () and config.code_exclude == ()
    assert config.image.workdir == "/app"
    assert config.image.entrypoint == () and config.image.cmd == ()
    assert dict(config.image.env) == {}
    assert config.source_name == "reprolock.toml"


def test_every_setting_is_read(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1"\n')
    root = project(tmp_path, """\
base = "oci-layout:base:tiny"
platform = "linux/arm64/v8"
resolver = "pip-tools"
lockfile = "locks/train.lock.json"

[dependencies]
requirements = ["requirements.in"]
pyproject = true
extras = ["Dev_Tools", "train"]

[index]
url = "https://example.invalid/simple"
extra-urls = ["https://extra.invalid/simple"]
find-links = ["wheels"]
no-index = true

[code]
include = ["**/*.py"]
exclude = ["outputs/"]

[image]
workdir = "/work"
entrypoint = ["python", "train.py"]
cmd = ["--epochs", "3"]
env = { PYTHONHASHSEED = "0" }
""")
    config = load_config(root)
    assert config.platform == "linux/arm64/v8"
    assert config.resolver == "pip-tools"
    assert config.lock_path == tmp_path.resolve() / "locks/train.lock.json"
    assert config.pyproject_dependencies is True
    assert config.pyproject_extras == ("dev-tools", "train")  # PEP 685 names
    assert config.index.url == "https://example.invalid/simple"
    assert config.index.extra_urls == ("https://extra.invalid/simple",)
    assert config.index.find_links == ("wheels",)
    assert config.index.no_index is True
    assert config.code_include == ("**/*.py",)
    assert config.code_exclude == ("outputs/",)
    assert config.image.workdir == "/work"
    assert config.image.entrypoint == ("python", "train.py")
    assert config.image.cmd == ("--epochs", "3")
    assert dict(config.image.env) == {"PYTHONHASHSEED": "0"}
    assert config.data["index"]["no-index"] is True  # the table as written


def test_tool_reprolock_in_pyproject(tmp_path: Path) -> None:
    root = project(tmp_path, '[project]\nname = "x"\n\n[tool.reprolock]\nbase = "img:1"\n'
                   'resolver = "pip-tools"\n[tool.reprolock.dependencies]\n'
                   'requirements = ["requirements.in"]\n', name="pyproject.toml")
    config = load_config(root)
    assert config.source.name == "pyproject.toml"
    assert config.base == "img:1"
    assert config.resolver == "pip-tools"
    assert "project" not in config.data  # only the [tool.reprolock] table


def test_reprolock_toml_wins_over_pyproject(tmp_path: Path) -> None:
    root = project(tmp_path, '[tool.reprolock]\nbase = "from-pyproject"\n',
                   name="pyproject.toml")
    project(root, 'base = "from-own-file"\n' + DEPS)
    assert find_config(root).name == "reprolock.toml"
    assert load_config(root).base == "from-own-file"


def test_relative_project_directory_is_resolved(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    project(tmp_path / "proj", 'base = "img:1"\n' + DEPS)
    monkeypatch.chdir(tmp_path)
    assert load_config(Path("proj")).root == (tmp_path / "proj").resolve()


# --- no configuration ----------------------------------------------------------------


def test_no_config_hints_at_init(tmp_path: Path) -> None:
    err = config_error(tmp_path)
    assert "reprolock.toml" in err.message
    assert err.hint is not None and "reprolock init" in err.hint
    assert "reprolock init" in err.diagnostics()


def test_pyproject_without_tool_table_is_no_config(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.black]\nx = 1\n')
    assert "reprolock init" in (config_error(tmp_path).hint or "")


def test_pyproject_whose_tool_is_not_a_table_is_no_config(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('tool = "reprolock"\n')
    assert "reprolock init" in (config_error(tmp_path).hint or "")


def test_missing_project_directory(tmp_path: Path) -> None:
    err = config_error(tmp_path / "nowhere")
    assert "nowhere" in err.message and "does not exist" in err.message


# --- malformed TOML ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["reprolock.toml", "pyproject.toml"])
def test_malformed_toml_names_file_and_line(tmp_path: Path, name: str) -> None:
    table = "[tool.reprolock]\n" if name == "pyproject.toml" else ""
    project(tmp_path, f'{table}base = "img:1"\nresolver = \n', name=name)
    err = config_error(tmp_path)
    assert name in err.message
    assert "not valid TOML" in err.message
    line = 3 if table else 2
    assert f"line {line}" in err.message


def test_non_utf8_toml_is_a_config_error(tmp_path: Path) -> None:
    tmp_path.joinpath("reprolock.toml").write_bytes(b'# ok\nbase = "caf\xe9"\n')
    err = config_error(tmp_path)
    assert "reprolock.toml" in err.message and "line 2" in err.message
    assert "UTF-8" in err.diagnostics()


# --- schema errors -------------------------------------------------------------------


@pytest.mark.parametrize(("text", "key", "suggestion"), [
    ('base = "x"\nresolvr = "uv"\n' + DEPS, "'resolvr'", "'resolver'"),
    ('base = "x"\n' + DEPS + '[index]\nextra-url = ["https://x.invalid"]\n',
     "'index.extra-url'", "'extra-urls'"),
    ('base = "x"\n' + DEPS + '[image]\nenviron = {A = "1"}\n', "'image.environ'", "'env'"),
    ('base = "x"\n[dependencies]\nrequirement = ["requirements.in"]\n',
     "'dependencies.requirement'", "'requirements'"),
])
def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path, text: str, key: str,
                                                suggestion: str) -> None:
    err = config_error(project(tmp_path, text))
    assert f"unknown key {key}" in err.message
    assert f"did you mean {suggestion}?" in err.message
    assert err.message.startswith("reprolock.toml is not valid")


def test_unknown_key_far_from_any_gets_no_suggestion(tmp_path: Path) -> None:
    err = config_error(project(tmp_path, 'base = "x"\nzzzzzz = 1\n' + DEPS))
    assert "unknown key 'zzzzzz'" in err.message
    assert "did you mean" not in err.message
    assert "known keys here:" in err.message and "resolver" in err.message


def test_unknown_key_in_pyproject_names_the_table(tmp_path: Path) -> None:
    root = project(tmp_path, '[tool.reprolock]\nbase = "x"\nresolvr = "uv"\n',
                   name="pyproject.toml")
    err = config_error(root)
    assert "pyproject.toml [tool.reprolock]" in err.message
    assert "did you mean 'resolver'?" in err.message


@pytest.mark.parametrize(("text", "where", "expected"), [
    ('base = "x"\nplatform = 3\n' + DEPS, "platform:", "expected a string, got number 3"),
    ('base = "x"\n' + DEPS + "[image]\nenv = {A = 1}\n", "image.env.A:",
     "expected a string, got number 1"),
    ('base = "x"\n[dependencies]\nrequirements = "requirements.in"\n',
     "dependencies.requirements:", "expected a list, got string"),
    ('base = "x"\n' + DEPS + '[index]\nno-index = "yes"\n', "index.no-index:",
     "expected true or false"),
    ('base = "x"\ndependencies = 3\n', "dependencies:", "expected a table"),
    ('base = "x"\n' + DEPS + '[image]\nentrypoint = "python train.py"\n',
     "image.entrypoint:", "expected a list"),
    ('base = "x"\n' + DEPS + "[code]\nexclude = [1]\n", "code.exclude[0]:",
     "expected a string"),
    ("base = 1979-05-27\n" + DEPS, "base:", "expected a string, got date"),
])
def test_wrong_type_names_key_path_and_expected_type(tmp_path: Path, text: str, where: str,
                                                     expected: str) -> None:
    err = config_error(project(tmp_path, text))
    assert f"{where} {expected}" in err.message
    assert err.hint is not None and "config.schema.json" in err.hint


def test_bad_resolver_lists_the_choices(tmp_path: Path) -> None:
    err = config_error(project(tmp_path, 'base = "x"\nresolver = "poetry"\n' + DEPS))
    assert 'resolver: "poetry" is not one of "uv", "pip-tools"' in err.message


@pytest.mark.parametrize(("text", "fragment"), [
    ('base = "x"\nplatform = "windows/amd64"\n' + DEPS, 'platform: "windows/amd64"'),
    ('base = "x"\n' + DEPS + '[image]\nworkdir = "app"\n', "Absolute working directory"),
    ('base = "x"\n' + DEPS + '[image]\nenv = {"1A" = "x"}\n', "Variable names are"),
])
def test_pattern_errors_say_what_is_expected(tmp_path: Path, text: str,
                                             fragment: str) -> None:
    assert fragment in config_error(project(tmp_path, text)).message


def test_missing_base_is_reported(tmp_path: Path) -> None:
    err = config_error(project(tmp_path, DEPS))
    assert "'base' is a required property" in err.message


def test_every_error_is_listed_not_only_the_first(tmp_path: Path) -> None:
    err = config_error(project(tmp_path, 'base = "x"\nplatform = 3\nresolver = "poetry"\n'
                               + DEPS))
    assert "platform:" in err.message and "resolver:" in err.message


# --- checks beyond the schema --------------------------------------------------------


def test_missing_requirement_file_is_named(tmp_path: Path) -> None:
    root = project(tmp_path, 'base = "x"\n[dependencies]\n'
                   'requirements = ["requirements.in", "dev.in"]\n')
    err = config_error(root)
    assert "dependencies.requirements[1]" in err.message
    assert "'dev.in'" in err.message
    assert "does not exist" in err.message


def test_no_dependency_inputs(tmp_path: Path) -> None:
    err = config_error(project(tmp_path, 'base = "x"\n'))
    assert "no dependency inputs" in err.message
    assert err.hint is not None and "dependencies.requirements" in err.hint


def test_pyproject_dependencies_need_a_pyproject(tmp_path: Path) -> None:
    err = config_error(project(tmp_path, 'base = "x"\n[dependencies]\npyproject = true\n'))
    assert "dependencies.pyproject" in err.message and "pyproject.toml" in err.message


def test_extras_need_pyproject_dependencies(tmp_path: Path) -> None:
    err = config_error(project(tmp_path, 'base = "x"\n[dependencies]\nrequirements = '
                               '["requirements.in"]\nextras = ["train"]\n'))
    assert "dependencies.extras" in err.message and "dependencies.pyproject" in err.message


def test_no_index_needs_find_links(tmp_path: Path) -> None:
    err = config_error(project(tmp_path, 'base = "x"\n' + DEPS + "[index]\nno-index = true\n"))
    assert "index.no-index" in err.message and "find-links" in err.message


# --- the validation cache ------------------------------------------------------------


def test_cached_validation_still_sees_a_changed_file(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    root = project(tmp_path / "p", 'base = "x"\n' + DEPS)
    load_config(root, cache_dir=cache)
    assert list((cache / "valid").iterdir())  # the pass was stamped
    load_config(root, cache_dir=cache)  # and a stamped document still loads
    (root / "reprolock.toml").write_text('base = "x"\nresolver = "poetry"\n' + DEPS)
    assert "poetry" in config_error(root, cache_dir=cache).message


def test_cached_validation_tells_a_date_from_a_string(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    root = project(tmp_path / "p", 'base = "1979-05-27"\n' + DEPS)
    assert load_config(root, cache_dir=cache).base == "1979-05-27"
    (root / "reprolock.toml").write_text("base = 1979-05-27\n" + DEPS)
    assert "base: expected a string" in config_error(root, cache_dir=cache).message


# --- through the real command line ---------------------------------------------------


def reprolock(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reprolock", *map(str, args)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=120, check=False)


CLI_CASES = {
    "no-config": (None, "reprolock init"),
    "malformed": ('base = "x"\nresolver = \n', "line 2"),
    "unknown-key": ('base = "x"\nresolvr = "uv"\n' + DEPS, "did you mean 'resolver'?"),
    "index-key": ('base = "x"\n' + DEPS + '[index]\nextra-url = ["u"]\n', "'index.extra-url'"),
    "wrong-type": ('base = "x"\nplatform = 3\n' + DEPS, "platform: expected a string"),
    "env-type": ('base = "x"\n' + DEPS + "[image]\nenv = {A = 1}\n", "image.env.A:"),
    "enum": ('base = "x"\nresolver = "poetry"\n' + DEPS, '"poetry" is not one of'),
    "missing-requirements": ('base = "x"\n[dependencies]\nrequirements = ["gone.in"]\n',
                             "'gone.in'"),
    "not-utf8": (b'base = "caf\xe9"\n', "UTF-8"),
}


@pytest.mark.parametrize("command", [("lock", "--check"), ("inspect",)],
                         ids=["lock-check", "inspect"])
@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_reports_config_errors_without_traceback(tmp_path: Path, command: tuple[str, ...],
                                                     case: str) -> None:
    text, fragment = CLI_CASES[case]
    root = tmp_path / "proj"
    root.mkdir()
    (root / "requirements.in").write_text("tinyml\n")
    if isinstance(text, bytes):
        (root / "reprolock.toml").write_bytes(text)
    elif text is not None:
        (root / "reprolock.toml").write_text(text)
    done = reprolock(*command, "-C", root)
    assert done.returncode == EXIT_ERROR, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ")
    assert fragment in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("command", [("lock", "--check"), ("inspect",)],
                         ids=["lock-check", "inspect"])
def test_cli_pyproject_with_odd_tool_key_is_not_a_crash(tmp_path: Path,
                                                         command: tuple[str, ...]) -> None:
    (tmp_path / "pyproject.toml").write_text('tool = "reprolock"\n')
    done = reprolock(*command, "-C", tmp_path)
    assert done.returncode == EXIT_ERROR
    assert "Traceback" not in done.stderr
    assert "reprolock init" in done.stderr
