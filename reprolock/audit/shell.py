"""Shell commands that change what an image or a run holds, read from their text.

The one reader of shell commands for the audit: a Dockerfile's ``RUN``, a ``*.sh``
script, a notebook's ``!``/``%pip`` lines and a command that Python code runs through
``os.system``/``subprocess``. Each gives :func:`scan` its text and places the hazards it
returns (the callers choose the rule where the context changes it: a ``pip install`` run by
Python code is RL417, not RL305).

    >>> [h.rule for h in scan("curl -fsSL https://x.sh | sh && git clone https://h/r")]
    ['RL307', 'RL306']
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from reprolock.audit.model import Severity

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_TAG = re.compile(r"^(tags/)?v?[0-9]+(\.[0-9]+)+[0-9A-Za-z.+-]*$")
_CHECKSUM = re.compile(r"\b(sha(1|224|256|384|512)sum|shasum|md5sum|b2sum|cksum)\b"
                       r"|\bgpg2?\b[^\n;&|]*--verify|\bcosign\s+verify|\bminisign\b")
# what a clone is moved to afterwards: git checkout REF, git reset --hard REF, git -C DIR
# switch --detach REF, git fetch origin COMMIT
_GIT_PIN = re.compile(r"\bgit(?:\s+-C\s+\S+)?\s+(?:checkout|reset|switch)\s+(?:-\S+\s+)*"
                      r"(?P<ref>[^\s;&|-][^\s;&|]*)"
                      r"|\bgit(?:\s+-C\s+\S+)?\s+fetch\b[^\n;&|]*?\s(?P<commit>[0-9a-f]{40})\b")
_SEPARATORS = re.compile(r"&&|\|\||;")
_SHELLS = re.compile(r"^(sh|bash|zsh|dash|ksh|ash|python[0-9.]*|perl|ruby|node)$")
_SH = re.compile(r"^(sh|bash|zsh|dash|ksh|ash)$")
_PREFIXES = frozenset({"sudo", "time", "exec", "nohup", "env", "command", "xargs"})
_FILE_TOOLS = frozenset({"tar", "bsdtar", "unzip", "gunzip", "gzip", "bunzip2", "xz",
                         "zstd", "dd", "tee", "cpio", "7z"})
_PIP_VALUE_OPTIONS = frozenset({
    "-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url",
    "--extra-index-url", "-f", "--find-links", "-t", "--target", "--prefix", "--root",
    "--platform", "--python-version", "--implementation", "--abi", "--src",
    "--upgrade-strategy", "--progress-bar", "--cache-dir", "--trusted-host",
    "--global-option", "--config-settings", "-C", "--only-binary", "--no-binary",
    "--python", "-p", "--log", "--timeout", "--retries", "--prerelease", "--index",
    "--default-index", "--index-strategy", "--resolution", "--extra", "--group"})
_CONDA_VALUE_OPTIONS = frozenset({"-c", "--channel", "-n", "--name", "-p", "--prefix",
                                  "--file", "--solver", "--repodata-fn", "-r"})
_GIT_CLONE_VALUE_OPTIONS = frozenset({
    "-b", "--branch", "-o", "--origin", "-c", "--config", "--depth", "--reference",
    "--filter", "-j", "--jobs", "--separate-git-dir", "--shallow-since",
    "--shallow-exclude", "--template", "-u", "--upload-pack", "--revision"})
_APT_VALUE_OPTIONS = frozenset({"-o", "--option", "-t", "--target-release", "-c"})

#: How a requirement file that ``pip install -r`` names stands: ``hashed`` (pip checks
#: hashes on its own), ``covered`` (a reprolock lock pins every line), ``reported`` (its
#: own unpinned lines are RL101 findings already), ``pinned`` (versions, no hashes),
#: ``lock`` (a lock input: ranges by design) or ``unknown`` (not in the project).
FileJudge = Callable[[str], str]


@dataclass(frozen=True)
class Hazard:
    rule: str
    severity: Severity
    message: str
    line: int = 0  # lines after the first line of the text


@dataclass(frozen=True)
class ScanOptions:
    apt_get: bool = True  # False where hadolint's DL3008 reports apt-get install already
    files: FileJudge = lambda _: "unknown"
    verified: bool = False  # the caller saw a checksum check around the command
    # installing anything at all is the hazard (a command that Python code runs): one
    # RL417 per install command, instead of the build-time pinning rules
    at_run_time: bool = False


def scan(text: str, options: ScanOptions | None = None) -> list[Hazard]:
    """Every hazard of ``text``: one or more shell command lines."""
    options = options or ScanOptions()
    context = _Context(options, verified=options.verified or bool(_CHECKSUM.search(text)),
                       pins=frozenset(m.group("ref") or m.group("commit")
                                      for m in _GIT_PIN.finditer(text)))
    found: list[Hazard] = []
    for offset, line in _logical_lines(text):
        for stages in _pipelines(line):
            found += [_at(h, offset) for h in context.pipeline(stages)]
    return found


def _pipelines(line: str) -> list[list[list[str]]]:
    """The pipelines of one line, each a list of commands (words), quotes respected."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError:  # an unterminated quote: split as the text stands
        return [[_strip(c.split()) for c in command.split("|")]
                for command in _SEPARATORS.split(line)]
    pipelines: list[list[list[str]]] = [[[]]]
    for token in tokens:
        if token in ("&&", "||", ";", "&", "(", ")", "$(", ";;"):
            pipelines.append([[]])
        elif token == "|":
            pipelines[-1].append([])
        else:
            pipelines[-1][-1].append(token)
    return [[_strip(words) for words in p] for p in pipelines if any(p)]


def words_from_exec_form(args: str) -> str | None:
    """``RUN ["pip", "install", "x"]`` as a shell line (None when it is not that form)."""
    if not args.startswith("["):
        return None
    try:
        parsed = json.loads(args)
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, list) or not all(isinstance(p, str) for p in parsed):
        return None
    return shlex.join(parsed)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Lines with their ``\\`` continuations joined, each with where it starts."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start, whole = i, lines[i]
        i += 1
        while whole.rstrip().endswith("\\") and i < len(lines):
            whole = whole.rstrip()[:-1] + " " + lines[i]
            i += 1
        if whole.strip() and not whole.lstrip().startswith("#"):
            yield start, whole


def _strip(words: list[str]) -> list[str]:
    """The command without what runs it: FOO=1 pip ..., sudo -E pip ..."""
    while words and (("=" in words[0] and not words[0].startswith("-"))
                     or words[0] in _PREFIXES or words[0].startswith("-")):
        words = words[1:]
    return [w for w in words if w != "$"]


def _at(hazard: Hazard, offset: int) -> Hazard:
    return Hazard(hazard.rule, hazard.severity, hazard.message, hazard.line + offset)


def _tool(word: str) -> str:
    return word.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class _Context:
    options: ScanOptions
    verified: bool
    pins: frozenset[str]

    def pipeline(self, stages: list[list[str]]) -> Iterator[Hazard]:
        tools = [_tool(s[0]) if s else "" for s in stages]
        for index, words in enumerate(stages):
            if not words:
                continue
            tool = tools[index]
            if tool in ("curl", "wget"):
                yield from self.download(words, tools[index + 1:])
            elif _SH.match(tool) and "-c" in words[1:2]:
                yield from scan(words[2] if len(words) > 2 else "", self.options)  # sh -c
            else:
                yield from self.command(words)

    def command(self, words: list[str]) -> Iterator[Hazard]:
        tool = _tool(words[0])
        if self.options.at_run_time and _installs(words) and "--require-hashes" not in words:
            yield Hazard("RL417", Severity.ERROR, f"'{_short(' '.join(words))}' installs "
                         "packages while the code runs: no lock pins them, so each run may "
                         "get others; put them in the requirements and lock them")
        elif tool == "git":
            yield from self.git(words)
        elif _pip_arguments(words) is not None:
            yield from _pip(_pip_arguments(words) or [], self.options.files)
        elif tool in ("conda", "mamba", "micromamba"):
            yield from _conda(words)
        elif tool in ("apt", "apt-get"):
            yield from _apt(words, check_install=tool == "apt" or self.options.apt_get)

    def download(self, words: list[str], after: list[str]) -> Iterator[Hazard]:
        tool = _tool(words[0])
        runs = next((t for t in after if _SHELLS.match(t)), None)
        url = next((w for w in words if "://" in w), "a URL")
        if runs is not None:
            yield Hazard("RL307", Severity.ERROR, f"{tool} {_short(url)} | {runs}: runs "
                         "whatever the server sends today, unverified; download it, check "
                         "its sha256 (sha256sum -c), then run it")
            return
        saves = _saves(tool, words) or any(t in _FILE_TOOLS for t in after)
        if saves and not self.verified:
            yield Hazard("RL308", Severity.WARNING, f"{tool} {_short(url)} is downloaded "
                         "without a checksum check (sha256sum -c): the file behind the URL "
                         "can change")

    def git(self, words: list[str]) -> Iterator[Hazard]:
        rest = _skip_options(words[1:], {"-C", "-c", "--git-dir", "--work-tree"})
        if not rest or rest[0] != "clone":
            return
        branch = _option_value(rest, ("-b", "--branch"))
        revision = _option_value(rest, ("--revision",))
        pins = {p for p in self.pins if _COMMIT.match(p) or p.startswith("$")}
        if pins or (revision and (_COMMIT.match(revision) or revision.startswith("$"))):
            return
        url = next(iter(_positional(rest[1:], _GIT_CLONE_VALUE_OPTIONS)), "")
        checked = [p for p in self.pins if _TAG.match(p)]
        tag = branch if branch and (_TAG.match(branch) or branch.startswith("$")) \
            else (checked[0] if checked else None)
        if tag is not None:
            what = "a branch or tag from a variable" if tag.startswith("$") else "a tag"
            yield Hazard("RL306", Severity.WARNING, f"git clone {_short(url)} at {tag}: "
                         f"{what} can be moved; check out its 40-hex commit")
            return
        yield Hazard("RL306", Severity.ERROR, f"git clone {_short(url)} "
                     f"{'at branch ' + branch if branch else 'of the default branch'}: "
                     "the code changes with every push; git checkout a 40-hex commit")


def _installs(words: list[str]) -> bool:
    tool = _tool(words[0])
    if _pip_arguments(words) is not None:
        return True
    rest = _skip_options(words[1:], _CONDA_VALUE_OPTIONS | _APT_VALUE_OPTIONS)
    action = rest[0] if rest else ""
    return (tool in ("conda", "mamba", "micromamba") and action in ("install", "update")) \
        or (tool in ("apt", "apt-get") and action == "install")


def _saves(tool: str, words: list[str]) -> bool:
    """The download is written to a file (not to stdout)."""
    if any(w.startswith(">") for w in words):
        return True
    if tool == "wget":
        stdout = any(w in ("-O-", "-qO-", "--output-document=-") for w in words) \
            or ("-O" in words and words[words.index("-O") + 1:][:1] == ["-"])
        return not stdout
    for word in words[1:]:
        if word in ("--output", "--remote-name", "--remote-name-all", "-o", "-O") \
                or word.startswith("--output="):
            return True
        if re.fullmatch(r"-[A-Za-z]*[oO][A-Za-z]*", word):
            return True
    return False


def _skip_options(words: list[str], valued: set[str] | frozenset[str]) -> list[str]:
    i = 0
    while i < len(words) and words[i].startswith("-"):
        i += 2 if words[i] in valued else 1
    return words[i:]


def _option_value(words: list[str], names: tuple[str, ...]) -> str | None:
    for i, word in enumerate(words):
        if word in names and i + 1 < len(words):
            return words[i + 1]
        for name in names:
            if name.startswith("--") and word.startswith(name + "="):
                return word.split("=", 1)[1]
    return None


def _pip_arguments(words: list[str]) -> list[str] | None:
    """What follows ``pip install`` (pip, pip3.11, python -m pip, uv pip), else None."""
    for i, word in enumerate(words[:3]):
        tool = _tool(word)
        if re.fullmatch(r"pip[0-9.]*", tool):
            rest = words[i + 1:]
        elif tool == "uv" and words[i + 1:i + 2] == ["pip"]:
            rest = words[i + 2:]
        elif re.fullmatch(r"python[0-9.]*", tool) and words[i + 1:i + 3] == ["-m", "pip"]:
            rest = words[i + 3:]
        else:
            continue
        rest = _skip_options(rest, {"--python", "--log", "--cache-dir"})
        return rest[1:] if rest[:1] == ["install"] else None
    return None


@dataclass
class _PipArgs:
    files: list[str]
    names: list[str]
    urls: list[str]
    local: list[str]
    require_hashes: bool = False
    no_deps: bool = False
    prerelease: str | None = None  # why: --pre, a nightly index
    constrained: bool = False


def _parse_pip(args: list[str]) -> _PipArgs:
    parsed = _PipArgs([], [], [], [])
    i = 0
    while i < len(args):
        word = args[i]
        name, _, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        value = inline or (args[i + 1] if i + 1 < len(args) else "")
        takes = name in _PIP_VALUE_OPTIONS
        i += 1 if (not takes or inline) else 2
        _pip_word(parsed, name if takes else word, value if takes else "")
    return parsed


def _pip_word(parsed: _PipArgs, word: str, value: str) -> None:
    if word in ("-r", "--requirement"):
        parsed.files.append(value)
    elif word in ("-c", "--constraint"):
        parsed.constrained = True
    elif word in ("-e", "--editable"):
        (parsed.urls if "://" in value else parsed.local).append(
            value if "://" in value else f"-e {value}")
    elif word in ("-i", "--index-url", "--extra-index-url", "--index", "--default-index") \
            and "nightly" in value:
        parsed.prerelease = f"{word} {_short(value)}"
    elif word == "--prerelease" and value not in ("disallow", "if-necessary"):
        parsed.prerelease = f"--prerelease {value}"
    elif word == "--pre":
        parsed.prerelease = parsed.prerelease or "--pre"
    elif word == "--require-hashes":
        parsed.require_hashes = True
    elif word == "--no-deps":
        parsed.no_deps = True
    elif not word.startswith("-") and "$" not in word.split("=")[0]:
        _pip_target(parsed, word)


def _pip_target(parsed: _PipArgs, word: str) -> None:
    if "://" in word or re.match(r"^(git|hg|svn|bzr)\+", word):
        parsed.urls.append(word)
    elif word.startswith((".", "/", "~")) or word.endswith((".whl", ".tar.gz", ".zip")):
        parsed.local.append(word)
    else:
        parsed.names.append(word)


def _pip(args: list[str], judge: FileJudge) -> Iterator[Hazard]:
    parsed = _parse_pip(args)
    if parsed.prerelease:
        yield Hazard("RL310", Severity.ERROR, f"pip install {parsed.prerelease}: pre-releases "
                     "and nightly builds are replaced every day; pin a release")
    for url in parsed.urls:
        yield from _pip_url(url)
    if parsed.local and not parsed.no_deps:
        yield Hazard("RL106", Severity.WARNING, f"pip install {_short(parsed.local[0])} "
                     "installs a local directory and resolves its dependencies at build "
                     "time, unpinned (--require-hashes cannot apply to a directory): install "
                     "them from a hash-pinned requirements file first, then this with "
                     "--no-deps")
    if not parsed.require_hashes:
        yield from _pip_pins(parsed, judge)


def _pip_url(url: str) -> Iterator[Hazard]:
    spec = url.split("#", 1)[0]
    if re.match(r"^(git|hg|svn|bzr)\+", spec) or "git+" in spec:
        ref = spec.rsplit("@", 1)[1] if spec.count("@") and "/" not in spec.rsplit("@", 1)[1] \
            else ""
        if not _COMMIT.match(ref):
            yield Hazard("RL105", Severity.ERROR, f"pip install {_short(url)} names "
                         f"{'no commit' if not ref else 'a branch or tag'}: pin "
                         "@<40-hex commit>")
    elif not re.search(r"#(sha256|sha384|sha512|md5)=", url):
        yield Hazard("RL105", Severity.ERROR, f"pip install {_short(url)} has no hash: add "
                     "#sha256=<digest>")


def _pip_pins(parsed: _PipArgs, judge: FileJudge) -> Iterator[Hazard]:
    """One RL305 per pip command: an error if anything it installs is unpinned, a
    warning if everything is pinned by version but not by hash."""
    pinned = [n for n in parsed.names if re.search(r"===?[^=*]+$", n) and "," not in n]
    unpinned = [n for n in parsed.names if n not in pinned]
    states = {f: judge(f) for f in parsed.files}
    errors = [f"{', '.join(unpinned[:3])} without a version" for _ in unpinned[:1]
              if not parsed.constrained]
    errors += [f"-r {f} ({_FILE_WORDS[s]})" for f, s in states.items()
               if s in ("unknown", "lock")]
    warnings = [f"-r {f}" for f, s in states.items() if s == "pinned"]
    warnings += pinned[:3] + unpinned[:3] * parsed.constrained
    if errors:
        yield Hazard("RL305", Severity.ERROR, f"pip install without --require-hashes: "
                     f"{'; '.join(errors)}: pip installs whatever the index serves at build "
                     "time; install a hash-pinned file ('reprolock export') with "
                     "--require-hashes")
    elif warnings:
        yield Hazard("RL305", Severity.WARNING, f"pip install {', '.join(warnings)}: pinned "
                     "by version but not by hash, so another file can be served for the same "
                     "version; add hashes ('reprolock export', pip-compile "
                     "--generate-hashes) and --require-hashes")


_FILE_WORDS = {"unknown": "not a file of the project, so its pins are unknown",
               "lock": "a lock input, which holds ranges; install 'reprolock export' instead"}


def _conda(words: list[str]) -> Iterator[Hazard]:
    rest = _skip_options(words[1:], _CONDA_VALUE_OPTIONS)
    if not rest or rest[0] not in ("install", "create", "update", "upgrade"):
        return
    args = rest[1:]
    channels = [args[i + 1] for i, w in enumerate(args[:-1]) if w in ("-c", "--channel")]
    if any("nightly" in c for c in channels):
        yield Hazard("RL310", Severity.ERROR, f"{_tool(words[0])} {rest[0]} from a nightly "
                     "channel: its builds are replaced every day; pin a release")
    if "--file" in args or "-f" in args:
        return  # the packages are in a file the audit does not read
    packages = [w for w in _positional(args, _CONDA_VALUE_OPTIONS) if "$" not in w]
    loose = [p for p in packages if not conda_pinned(p)]
    if "--all" in args or (rest[0] in ("update", "upgrade") and not packages):
        loose = ["every package"]
    if loose:
        yield Hazard("RL309", Severity.ERROR, f"{_tool(words[0])} {rest[0]} "
                     f"{', '.join(loose[:4])} without a version: the solver picks whatever "
                     "is newest at build time; pin name=version (or use a conda-lock file)")


_CONDA_SPEC = re.compile(r"^(?:[^\s:]+::)?[A-Za-z0-9_.-]+(?P<rest>.*)$", re.DOTALL)
_CONDA_BRACKET_VERSION = re.compile(r"\bversion\s*=\s*['\"]?(?P<version>[^'\",\]]*)")
_NOT_ONE_VERSION = re.compile(r"[*<>!~,|\s]")


def conda_pinned(spec: str) -> bool:
    """Whether a conda match spec names one version: ``name=1.2`` (with conda's
    documented ``name=version`` meaning, as RL309's fix says), ``name==1.2``,
    ``name=1.2=build``, ``name 1.2 [build]``, ``channel::name=1.2`` or
    ``name[version='1.2']``; not ``name``, ``name=2.*``, ``name>=1``, ``name 1.*``."""
    match = _CONDA_SPEC.match(spec.strip())
    if match is None:
        return False
    rest = match.group("rest").strip()
    if rest.startswith("["):
        inner = _CONDA_BRACKET_VERSION.search(rest)
        version = inner.group("version").lstrip("=") if inner else ""
    elif rest.startswith("="):
        version = rest.lstrip("=").split("=")[0]
    else:  # "name 1.2 build", or nothing
        version = rest.split()[0] if rest else ""
    return bool(version) and version[0].isalnum() and not _NOT_ONE_VERSION.search(version)


def _takes_value(option: str, valued: frozenset[str]) -> bool:
    """``-n NAME``, and a cluster of short flags ending in one (``-yn NAME``)."""
    if option in valued:
        return True
    return not option.startswith("--") and len(option) > 2 and f"-{option[-1]}" in valued


def _positional(args: list[str], valued: frozenset[str]) -> list[str]:
    found, i = [], 0
    while i < len(args):
        if args[i].startswith("-"):
            i += 2 if _takes_value(args[i], valued) else 1
            continue
        found.append(args[i])
        i += 1
    return found


def _apt(words: list[str], *, check_install: bool) -> Iterator[Hazard]:
    rest = _skip_options(words[1:], _APT_VALUE_OPTIONS)
    if not rest:
        return
    tool, action = _tool(words[0]), rest[0]
    if action in ("upgrade", "dist-upgrade", "full-upgrade"):
        yield Hazard("RL302", Severity.WARNING, f"{tool} {action} moves every installed "
                     "package to the archive's current version: the image changes with each "
                     "update; rely on a base image pinned by digest instead")
    elif action == "install" and check_install:
        packages = _positional(rest[1:], _APT_VALUE_OPTIONS)
        loose = [p for p in packages if "=" not in p and "$" not in p
                 and not p.startswith((".", "/"))]
        if loose:
            yield Hazard("RL302", Severity.WARNING, f"{tool} install {', '.join(loose[:4])} "
                         "without versions: the archive's current versions are installed; "
                         "pin name=version")


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."
