"""RL501-RL504: files of the code set that would bake secrets into the image.

Only files that go into the image are checked, and no message ever holds the secret:
a finding names the kind of secret, the file and the line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from reprolock.audit.context import AuditContext
from reprolock.audit.model import Finding, Severity
from reprolock.audit.sources import SourceFile

_ENV_TEMPLATES = (".example", ".sample", ".template", ".dist", ".defaults", ".tmpl")
_PRIVATE_KEY = re.compile(r"-----BEGIN ((RSA|DSA|EC|OPENSSH|ENCRYPTED|PGP) )?PRIVATE KEY"
                          r"( BLOCK)?-----")
_KEY_STORES = (".p12", ".pfx", ".jks", ".keystore")
# (kind, literal markers, pattern): a pattern runs only on text that holds one of its
# markers (a plain substring search), which keeps the scan of every file cheap
_TOKENS = (
    ("an AWS access key id", ("AKIA", "ASIA"), r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("a GitHub token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
     r"\bgh[pousr]_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{82}\b"),
    ("a GitLab token", ("glpat-",), r"\bglpat-[A-Za-z0-9_-]{20}\b"),
    ("a Slack token", ("xox",), r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
    ("a Google API key", ("AIza",), r"\bAIza[0-9A-Za-z_-]{35}\b"),
    ("a Hugging Face token", ("hf_",), r"\bhf_[A-Za-z]{34}\b"),
    ("an Anthropic API key", ("sk-ant-",), r"\bsk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_-]{80,}"),
    ("an OpenAI API key", ("sk-proj-", "sk-svcacct-", "sk-admin-", "T3BlbkFJ"),
     r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}|\bsk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}\b"),
    ("a Stripe live key", ("k_live_",), r"\b[rs]k_live_[0-9A-Za-z]{24,}\b"),
    ("a PyPI upload token", ("pypi-AgEIcHlwaS5vcmc",), r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"),
    ("an npm token", ("npm_",), r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("an AWS secret access key", ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
     r"(?i:aws_secret_access_key)\s*[=:]\s*[\"']?[A-Za-z0-9/+]{40}\b"),
)
_COMPILED = tuple((kind, markers, re.compile(pattern)) for kind, markers, pattern in _TOKENS)
# documented placeholders (AWS's own examples) are not secrets
_PLACEHOLDER = re.compile(r"EXAMPLE|XXXXXXXX|xxxxxxxx|0{16}")
# "scheme://user:password@": an index URL in pip.conf, a requirement file, a script
_URL_PASSWORD = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/@:\"'`<>]*:([^\s/@\"'`<>]+)@")
# what stands for a password without being one: an environment or template reference
# (${VAR}, $VAR, %(var)s, {var}, <var>), or a masked or named placeholder
_NOT_A_PASSWORD = re.compile(
    r"(?:\$\{?\w+\}?|%\(?\w*\)?s|\{[^{}]*\}|<[^<>]*>)+|\*+|x+|X+|\.\.\.|"
    r"(?i:pass(?:word)?|secret|token|api[_-]?key|changeme)")


def check(ctx: AuditContext) -> Iterator[Finding]:
    for source in ctx.files:
        if source.path not in ctx.in_image:
            continue
        yield from _env_file(source)
        yield from _key_store(source)
        text = source.text()
        if text is None:
            continue
        yield from _private_keys(source.path, text)
        yield from _credential_file(source.path, text)
        yield from _tokens(source.path, text)
        yield from _url_passwords(source.path, text)


def _env_file(source: SourceFile) -> Iterator[Finding]:
    name = source.name.lower()
    is_env = name == ".env" or name.startswith(".env.") or name.endswith(".env")
    if not is_env or name.endswith(_ENV_TEMPLATES):
        return
    text = source.text() or ""
    first = next((n for n, line in enumerate(text.splitlines(), 1)
                  if "=" in line and not line.lstrip().startswith("#")), 0)
    yield Finding("RL501", Severity.ERROR, source.path, first,
                  f"{source.name} would be baked into the image; env files hold credentials "
                  "by convention (keep it out of the code set, pass secrets at run time)")


def _key_store(source: SourceFile) -> Iterator[Finding]:
    if source.name.lower().endswith(_KEY_STORES):
        yield Finding("RL502", Severity.ERROR, source.path, 0,
                      "a key store would be baked into the image")


def _private_keys(path: str, text: str) -> Iterator[Finding]:
    if "PRIVATE KEY" not in text:
        return
    for match in _PRIVATE_KEY.finditer(text):
        yield Finding("RL502", Severity.ERROR, path, _line(text, match.start()),
                      "a private key would be baked into the image")


def _credential_file(path: str, text: str) -> Iterator[Finding]:
    what = _credential_kind(PurePosixPath(path), text)
    if what:
        yield Finding("RL503", Severity.ERROR, path, 0,
                      f"{what} would be baked into the image")


def _credential_kind(path: PurePosixPath, text: str) -> str | None:
    name, parent = path.name.lower(), path.parent.name.lower()
    if (name == "credentials" and parent == ".aws") or (
            name in ("credentials", "config") and "aws_secret_access_key" in text.lower()):
        return "an AWS credentials file"
    if name.endswith(".json") and '"service_account"' in text and '"private_key"' in text:
        return "a Google Cloud service-account key"
    if name == "application_default_credentials.json":
        return "Google Cloud application-default credentials"
    if name in (".netrc", "_netrc") and "password" in text:
        return "a .netrc with passwords"
    if name == ".pypirc" and "password" in text:
        return "a .pypirc with a password"
    if name == ".git-credentials":
        return "a git credential store"
    if name == ".npmrc" and "_authToken" in text:
        return "an .npmrc with an auth token"
    if name == "config.json" and parent == ".docker" and '"auth"' in text:
        return "a Docker registry auth file"
    if (name in ("kubeconfig", "config") and "client-key-data" in text) or (
            parent == ".kube" and "token:" in text):
        return "a kubeconfig with credentials"
    return None


def _tokens(path: str, text: str) -> Iterator[Finding]:
    for kind, markers, pattern in _COMPILED:
        if not any(marker in text for marker in markers):
            continue
        for match in pattern.finditer(text):
            if _PLACEHOLDER.search(match.group(0)):
                continue
            yield Finding("RL504", Severity.ERROR, path, _line(text, match.start()),
                          f"{kind} would be baked into the image (value not shown)",
                          column=match.start() - text.rfind("\n", 0, match.start()))


def _url_passwords(path: str, text: str) -> Iterator[Finding]:
    if "://" not in text or "@" not in text:
        return
    for match in _URL_PASSWORD.finditer(text):
        if _NOT_A_PASSWORD.fullmatch(match.group(1)):
            continue
        yield Finding("RL504", Severity.ERROR, path, _line(text, match.start()),
                      "a URL with a password would be baked into the image (value not "
                      "shown); take the password from the environment, e.g. "
                      "https://user:${INDEX_TOKEN}@host/simple",
                      column=match.start() - text.rfind("\n", 0, match.start()))


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1
