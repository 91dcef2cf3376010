"""The command line: parse, build the objects, call one workflow (reprolock.workflows),
print. No domain logic lives here."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import typer.core

from reprolock import __version__
from reprolock._internal.console import one_paragraph, quiet_broken_pipe, report_error
from reprolock.errors import EXIT_ERROR, EXIT_OK, ReprolockError, UsageError
from reprolock.output import FORMS as OUTPUT_FORMS
from reprolock.resolver import resolver_names
from reprolock.sbom import sbom_format_names

_SETTINGS: dict[str, Any] = {
    "name": "reprolock",
    "help": "Lock, build and verify reproducible images for ML training code.\n\n"
    "Exit codes: 0 success, 1 a finding (stale lock, drift, failed check), "
    "2 usage, configuration or tool error.",
    "no_args_is_help": True,
    "add_completion": False,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,
}
app = typer.Typer(**_SETTINGS)
_state = {"verbose": False}
F = TypeVar("F", bound=Callable[..., Any])

SignKeyOpt = Annotated[Path | None, typer.Option(
    "--sign-key", help="Sign with this private key (from 'reprolock keygen'); the passphrase "
    "comes from REPROLOCK_KEY_PASSWORD or a prompt.", dir_okay=False)]
KeylessOpt = Annotated[bool, typer.Option(
    "--keyless", help="Sign keylessly through Sigstore (Fulcio certificate, Rekor entry) as "
    "the OIDC identity of --identity-token-file, REPROLOCK_OIDC_TOKEN or the CI's ambient "
    "credentials; needs network. Not with --sign-key.")]
TokenFileOpt = Annotated[Path | None, typer.Option(
    "--identity-token-file", help="With --keyless: a file holding the OIDC identity token.",
    dir_okay=False)]
CertIdentityOpt = Annotated[str | None, typer.Option(
    "--certificate-identity", help="Check keyless Sigstore bundles (the lock's, and with "
    "--attestation or --run the build provenance's or the run record's): the identity "
    "their certificate must name (an email, a CI workflow URI); needs "
    "--certificate-oidc-issuer and network (TUF).")]
CertIssuerOpt = Annotated[str | None, typer.Option(
    "--certificate-oidc-issuer", help="With --certificate-identity: the OIDC issuer that "
    "vouched for it, e.g. https://token.actions.githubusercontent.com.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")]
CompressionOpt = Annotated[str, typer.Option(
    "--compression", help="Layer compression: gzip, zstd or none, optionally NAME:LEVEL.")]
JobsOpt = Annotated[int | None, typer.Option(
    "--jobs", "-j", min=1, help="Threads that write and compress layers (default: one per "
    "core). The image's bytes are the same for any number.")]
ProjectOpt = Annotated[Path, typer.Option("--project", "-C", help="Project directory.",
                                          file_okay=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _version(value: bool) -> None:
    if value:
        print(f"reprolock {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                          help="Show tracebacks of errors.")] = False,
) -> None:
    _state["verbose"] = verbose


def handles_errors(func: F) -> F:
    """Turn any error into one paragraph and an exit code, with no traceback (``--verbose``
    shows it). A ReprolockError carries its own fix; anything else is reported as a bug."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, KeyboardInterrupt):
            raise
        except BrokenPipeError:  # the reader of stdout went away: nothing to report
            raise typer.Exit(quiet_broken_pipe()) from None
        except Exception as exc:
            if _state["verbose"]:
                raise
            raise typer.Exit(report_error(exc)) from None

    return wrapper  # type: ignore[return-value]


def _progress(enabled: bool) -> Callable[[str], None]:
    def say(message: str) -> None:
        if enabled:
            print(f"· {message}", file=sys.stderr, flush=True)

    return say


def _emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


@app.command()
@handles_errors
def init(
    directory: Annotated[Path, typer.Argument(help="Project directory.", file_okay=False)] = Path(),
    base: Annotated[str | None, typer.Option(help="Base image reference.")] = None,
    entrypoint: Annotated[str | None, typer.Option(
        help="Entrypoint command, e.g. 'python train.py'.")] = None,
    resolver: Annotated[str, typer.Option(help=" or ".join(resolver_names()) + ".")
                        ] = resolver_names()[0],
    requirements: Annotated[list[str] | None, typer.Option(
        "--requirements", "-r", help="Requirement input file (repeatable); default: found.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite reprolock.toml.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Inspect a project and write a starter reprolock.toml (and, where there is no
    requirement file, a requirements.in proposed from the code's imports)."""
    from reprolock.workflows.init import InitOptions, init_project

    outcome = init_project(directory, InitOptions(
        base=base, entrypoint=entrypoint, resolver=resolver,
        requirements=tuple(requirements or ()), force=force))
    if as_json:
        _emit_json(outcome.to_json())
        return
    print(f"wrote {outcome.path}")
    if outcome.proposed is not None:
        print(f"wrote {outcome.proposed}: proposed from the code's imports, unpinned; review "
              "it before 'reprolock lock'")
    if outcome.gitignore:
        print(f"added .reprolock/ to {directory / '.gitignore'} (built images and run "
              "records stay out of git)")
    if outcome.note:
        print(f"note: {outcome.note}", file=sys.stderr)


@app.command()
@handles_errors
def lock(
    project: ProjectOpt = Path(),
    check: Annotated[bool, typer.Option(
        "--check", help="Offline: exit 1 if the lock is stale, write nothing.")] = False,
    upgrade: Annotated[bool, typer.Option("--upgrade", "-U",
                                          help="Ignore earlier pins.")] = False,
    upgrade_package: Annotated[list[str] | None, typer.Option(
        "--upgrade-package", "-P", help="Upgrade this package only (repeatable).")] = None,
    no_build: Annotated[bool, typer.Option(
        "--no-build", help="Resolve only; do not build the environment image.")] = False,
    compression: CompressionOpt = "gzip",
    jobs: JobsOpt = None,
    no_sbom: Annotated[bool, typer.Option(
        "--no-sbom", help="Do not write the SBOM of the environment image.")] = False,
    sbom_format: Annotated[str, typer.Option(
        "--sbom-format", help=" or ".join(sbom_format_names()) + " (SPDX 2.3 or CycloneDX "
        "JSON).")] = sbom_format_names()[0],
    sign_key: SignKeyOpt = None,
    keyless: KeylessOpt = False,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Resolve the dependencies, build the environment image and write reprolock.lock.json
    (or, with --check, check offline that the lock is fresh)."""
    from reprolock.config import load_config
    from reprolock.workflows.lock import Locker

    config = load_config(project)
    if check:
        _check(config, as_json)
        return
    from reprolock.resolver import resolver_for
    from reprolock.sbom import check_sbom_format

    check_sbom_format(sbom_format)
    options = None if no_build else _build_options(compression, jobs)
    signer = _signing(sign_key, keyless, token_file)  # the passphrase or token before work
    locker = Locker(config, resolver_for(config.resolver), progress=_progress(not quiet))
    outcome = locker.lock(upgrade=upgrade, upgrade_packages=tuple(upgrade_package or ()),
                          build=options, sbom_format=None if no_sbom else sbom_format,
                          signer=signer)
    if as_json:
        _emit_json(outcome.to_json())
        return
    for warning in outcome.warnings:
        print(f"warning: {one_paragraph(warning)}", file=sys.stderr)
    for line in outcome.changes:
        print(f"  {line}")
    state = "updated" if outcome.changed else "unchanged"
    print(f"{outcome.path.name} {state}: {len(outcome.lock.packages)} packages for "
          f"{outcome.lock.target.platform}, CPython {outcome.lock.target.python_version}, "
          f"base {outcome.lock.base.digest[:19]}…")
    print(f"commit {_and(list(outcome.commit))}")


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _passphrase(*, confirm: bool = False) -> bytes:
    import os

    from reprolock.signing.keys import PASSWORD_ENV

    value = os.environ.get(PASSWORD_ENV)
    if value is not None:
        return value.encode()
    if not sys.stdin.isatty():
        raise UsageError(f"no passphrase: {PASSWORD_ENV} is not set and there is no "
                             "terminal to ask on", hint=f"set {PASSWORD_ENV}")
    text: str = typer.prompt("Key passphrase", hide_input=True,
                             confirmation_prompt=confirm)
    return text.encode()


def _signer(path: Path, passphrase: bytes | None = None) -> Any:
    from reprolock.signing.keys import load_signer

    return load_signer(path, passphrase=passphrase if passphrase is not None
                       else _passphrase())


def _signing(sign_key: Path | None, keyless: bool, token_file: Path | None) -> Any:
    """The signer a command's --sign-key or --keyless asks for, or None."""
    if keyless and sign_key is not None:
        raise UsageError("--keyless and --sign-key both given: sign with a key or keylessly",
                         hint="drop one of them")
    if token_file is not None and not keyless:
        raise UsageError("--identity-token-file is for --keyless", hint="add --keyless")
    if keyless:
        from reprolock.signing.keyless import keyless_signer

        return keyless_signer(token_file)
    return _signer(sign_key) if sign_key else None


def _build_options(compression: str | None, jobs: int | None) -> Any:
    import dataclasses

    from reprolock.imagebuild.builder import BuildOptions
    from reprolock.oci.compress import Compressor

    options = BuildOptions(compressor=None if compression is None
                           else Compressor.parse(compression))
    return options if jobs is None else dataclasses.replace(options, jobs=jobs)


@app.command()
@handles_errors
def build(
    project: ProjectOpt = Path(),
    output: Annotated[list[str] | None, typer.Option(
        "--output", "-o", help=f"{OUTPUT_FORMS} (repeatable). Default: oci:.reprolock/image")
    ] = None,
    tag: Annotated[str | None, typer.Option(help="Tag for outputs that do not name one.")] = None,
    env_only: Annotated[bool, typer.Option(
        "--env-only", help="Write the environment image (no code layer): the one the lock "
        "records.")] = False,
    compression: Annotated[str | None, typer.Option(
        "--compression", help="Layer compression: gzip, zstd or none, optionally NAME:LEVEL. "
        "Default: what the lock records (so the digests match it), else gzip.")] = None,
    jobs: JobsOpt = None,
    sign_key: SignKeyOpt = None,
    keyless: KeylessOpt = False,
    token_file: TokenFileOpt = None,
    attestation: Annotated[Path | None, typer.Option(
        help="Where the signed provenance goes. Default: .reprolock/build.dsse.json")] = None,
    attach: Annotated[bool, typer.Option(
        "--attach/--no-attach", help="Attach the SBOM and provenance to OCI outputs as OCI 1.1 "
        "artifacts (tools that want one manifest per layout, like syft's oci-dir:, need "
        "--no-attach).")] = True,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Build the image (environment + code) from the lock, bit for bit reproducibly."""
    from reprolock.output import parse_output
    from reprolock.workflows.build import build_image

    config = _load(project)
    outputs = [parse_output(o) for o in (output or [f"oci:{config.root / '.reprolock/image'}"])]
    say = _progress(not quiet)
    signer = _signing(sign_key, keyless, token_file)
    result = build_image(config, _build_options(compression, jobs), outputs=outputs, tag=tag,
                         progress=say, env_only=env_only, signer=signer, attestation=attestation,
                         attach=attach)
    if as_json:
        _emit_json(result.to_json())
        return
    for warning in result.warnings:
        print(f"warning: {one_paragraph(warning)}", file=sys.stderr)
    print(f"image {result.manifest_digest}")
    print(f"  config (image ID) {result.config_digest}")
    print(f"  environment {result.env_manifest_digest} "
          f"({'matches' if result.env_matches_lock else 'DIFFERS FROM'} the lock)")
    for written in result.written:
        print(f"  → {written.where}")


def _load(project: Path) -> Any:
    from reprolock.config import load_config

    return load_config(project)


def _check(config: Any, as_json: bool) -> None:
    from reprolock._internal.cache import default_cache_dir
    from reprolock.lock.check import check_lock, render_check

    out, err, code = render_check(check_lock(config, cache_dir=default_cache_dir()),
                                  as_json=as_json)
    sys.stdout.write(out)
    sys.stderr.write(err)
    raise typer.Exit(code)


@app.command()
@handles_errors
def export(
    project: ProjectOpt = Path(),
    fmt: Annotated[str, typer.Option("--format", "-f",
                                     help="requirements or pylock.")] = "requirements",
    output: Annotated[Path | None, typer.Option("--output", "-o",
                                                help="Write here instead of stdout.")] = None,
) -> None:
    """Export the lock as hash-pinned requirements or a PEP 751 pylock.toml."""
    from reprolock._internal.files import atomic_write_text
    from reprolock.workflows.lock import export_lock

    text = export_lock(_load(project), fmt,
                       dest_dir=(output.parent if output else Path()).resolve())
    if output is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(output, text)
        print(f"wrote {output}", file=sys.stderr)


@app.command()
@handles_errors
def keygen(
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Prefix: writes PREFIX.key (0600) and PREFIX.pub.")
    ] = Path("reprolock"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Make an ECDSA P-256 key pair (encrypted PKCS#8 private key, SPKI public key)."""
    from reprolock.signing.keys import generate_keypair, load_trusted

    private, public = generate_keypair(output, passphrase=_passphrase(confirm=True), force=force)
    ident = load_trusted(public)[0].key_id
    if as_json:
        _emit_json({"private": str(private), "public": str(public), "keyId": ident})
        return
    print(f"wrote {private} (private, mode 0600) and {public} (public)")
    print(f"key id {ident}")


@app.command()
@handles_errors
def sign(
    key: Annotated[Path | None, typer.Argument(help="Private key from 'reprolock keygen' "
                                               "(or --keyless).", dir_okay=False)] = None,
    project: ProjectOpt = Path(),
    keyless: KeylessOpt = False,
    token_file: TokenFileOpt = None,
) -> None:
    """Sign the lock: writes reprolock.lock.json.sig (cosign verify-blob format) and
    reprolock.lock.json.sigstore.json (a Sigstore bundle v0.3)."""
    from reprolock.signing.bundle import file_bundle_path
    from reprolock.workflows.lock import sign_lock

    if key is None and not keyless:
        raise UsageError("sign needs a private key or --keyless",
                         hint="reprolock sign KEY, or reprolock sign --keyless")
    config = _load(project)
    if not config.lock_path.is_file():  # before asking for the passphrase
        raise ReprolockError(f"no lock at {config.lock_path}", hint="run 'reprolock lock' first")
    signer = _signing(key, keyless, token_file)
    written = sign_lock(config, signer)
    print(f"wrote {written} and {file_bundle_path(config.lock_path)}")


@app.command()
@handles_errors
def verify(
    project: ProjectOpt = Path(),
    key: Annotated[Path | None, typer.Option(
        "--key", help="Trusted public key, or a directory of them: the lock (or the build's "
        "provenance, or the run record) must be signed by one.")] = None,
    attestation: Annotated[Path | None, typer.Option(
        help="A build's signed provenance (DSSE) to check against the lock (needs --key).")
    ] = None,
    rebuild: Annotated[bool, typer.Option(
        "--rebuild/--no-rebuild", help="Rebuild the environment image from the lock and "
        "compare its digests with the lock's.")] = True,
    image: Annotated[str | None, typer.Option(
        "--image", help="Check a built image against the lock and code: NAME:TAG or an "
        "image ID (in the Docker Engine, as for 'run'), oci:DIR[:TAG], oci-archive:FILE or "
        "registry:HOST/REPO:TAG.")] = None,
    allow_code_drift: Annotated[bool, typer.Option(
        "--allow-code-drift", help="With --image or --run: accept a code layer (a run) "
        "from another code tree.")] = False,
    runtime: Annotated[bool, typer.Option(
        "--runtime", help="Check the environment this runs in (inside the container) "
        "against the lock and code the image records.")] = False,
    fast: Annotated[bool, typer.Option(
        "--fast", help="With --runtime: metadata only (sizes, versions), no hashing.")] = False,
    runtime_dir: Annotated[Path, typer.Option(
        "--dir", help="With --runtime: where the image keeps check.py, lock.json, code.json "
        "and runtime.json.", file_okay=False)] = Path("/.reprolock"),
    run_record: Annotated[Path | None, typer.Option(
        "--run", help="Check a run record written by 'reprolock run'.", dir_okay=False)] = None,
    outputs: Annotated[Path | None, typer.Option(
        "--outputs", help="With --run: where the run's outputs are now (a cluster job's "
        "volume, copied off).", file_okay=False)] = None,
    model: Annotated[Path | None, typer.Option(
        "--model", help="Check a signed model directory (a run's outputs) link by link: "
        "files, model signature, run statement, image, lock, lock signature (needs --key; "
        "--run RECORD names the run, else .reprolock/runs/ is searched).",
        file_okay=False)] = None,
    cert_identity: CertIdentityOpt = None, cert_issuer: CertIssuerOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Check the lock (valid, fresh, signed, rebuilds to its digests, SBOM), or an image
    (--image), the running environment (--runtime), a run record (--run), or a signed
    model's chain (--model)."""
    if runtime:  # the image's checker, under the image's interpreter (not this one)
        from reprolock.verify.runtime import run_checker

        sys.stdout.flush()
        raise typer.Exit(run_checker(runtime_dir, fast=fast, as_json=as_json))
    from reprolock.workflows.verify import VerifyOptions, verify_project

    options = VerifyOptions(key=key, attestation=attestation, rebuild=rebuild, image=image,
                            run_record=run_record, allow_code_drift=allow_code_drift,
                            outputs=outputs, model=model)
    options = _keyless_identity(cert_identity, cert_issuer, options)
    report = verify_project(_load(project), options, progress=_progress(not quiet and not as_json))
    _emit_json(report.to_json()) if as_json else sys.stdout.write(report.render())
    raise typer.Exit(report.exit_code)


def _keyless_identity(identity: str | None, issuer: str | None, options: Any) -> Any:
    """``options`` with the keyless identity cosign's pair of flags name: both or neither;
    for the lock, its build provenance (--attestation) and run records (--run)."""
    import dataclasses

    if identity is None and issuer is None:
        return options
    if not identity or not issuer:
        raise UsageError("--certificate-identity and --certificate-oidc-issuer go together: "
                         "a keyless signature is only as good as both",
                         hint="pass both, e.g. --certificate-oidc-issuer "
                         "https://token.actions.githubusercontent.com")
    given = [flag for flag, value in (("--key", options.key), ("--image", options.image),
                                      ("--model", options.model)) if value]
    if given:
        raise UsageError(f"--certificate-identity checks keyless bundles, not with {given[0]}",
                         hint=f"run the {given[0]} check separately (keyless verification "
                         "covers the lock, --attestation and --run)")
    from reprolock.verify.keyless import KeylessIdentity

    return dataclasses.replace(options, identity=KeylessIdentity(identity, issuer))


class _RunCommand(typer.core.TyperCommand):
    """Notes how many arguments follow a literal ``--``: click drops the ``--`` itself,
    and only what follows it may start with a dash (the rest is a mistyped option)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["reprolock.after_dashdash"] = (len(args) - args.index("--") - 1
                                               if "--" in args else 0)
        return list(super().parse_args(ctx, args))


def _command_args(ctx: typer.Context) -> tuple[str, ...]:
    """The container command; an unknown option before ``--`` is a usage error (exit 2)."""
    args = list(ctx.args)
    protected = min(int(ctx.meta.get("reprolock.after_dashdash", 0)), len(args))
    unknown = [a for a in args[: len(args) - protected] if a.startswith("-")]
    if unknown:
        raise UsageError(f"no such option: {unknown[0]}",
                             hint="see 'reprolock run --help'; a command for the container "
                             "goes after '--': reprolock run [OPTIONS] -- CMD ...")
    return tuple(args)


@app.command(cls=_RunCommand,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@handles_errors
def run(
    ctx: typer.Context,
    project: ProjectOpt = Path(),
    image: Annotated[str | None, typer.Option(
        "--image", help="Image in the Docker Engine (NAME:TAG or ID, as for 'verify "
        "--image'). Default: the one 'reprolock build --output docker' made from this lock "
        "and code.")] = None,
    outputs: Annotated[Path | None, typer.Option(
        "--outputs", help="Host directory mounted at /outputs (REPROLOCK_OUTPUTS); default: "
        "[run] outputs, else outputs/.", file_okay=False)] = None,
    network: Annotated[str, typer.Option(
        "--network", help="Container network: none (default), bridge or host.")] = "none",
    gpus: Annotated[str | None, typer.Option(
        "--gpus", help="Pass GPUs through: all or a count. Default: [run] gpus, else none.")
    ] = None,
    warn_only: Annotated[bool, typer.Option(
        "--warn-only", help="Run even when the runtime check finds drift (the record says "
        "so).")] = False,
    fast: Annotated[bool, typer.Option(
        "--fast", help="Runtime check on metadata only, no hashing.")] = False,
    record: Annotated[Path | None, typer.Option(
        "--record", help="Where the run record goes. Default: .reprolock/runs/TIME.json",
        dir_okay=False)] = None,
    data: Annotated[list[str] | None, typer.Option(
        "--data", help="DIR[:/MOUNT]: mounted read-only (default /data, or /data/NAME for "
        "several; repeatable); the record lists its files' sha256 and tree digest.")] = None,
    attach: Annotated[str | None, typer.Option(
        "--attach", help="registry:HOST/NAME:TAG: push the signed run statement as a "
        "referrer of that image (the one that ran).")] = None,
    sign_key: SignKeyOpt = None,
    keyless: KeylessOpt = False, token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run the locked image (after the runtime check) and write a run record:
    reprolock run [OPTIONS] [-- CMD ...]. A CMD replaces the image's entrypoint and CMD.
    Exits with the command's exit code; 1 when drift refused the run."""
    from reprolock.workflows.run import NETWORKS, RunOptions, check_gpus, parse_data

    command = _command_args(ctx)
    if network not in NETWORKS:
        raise UsageError.not_known("--network", network, NETWORKS)
    gpus = check_gpus(gpus)
    config = _load(project)
    if gpus is None:
        gpus = check_gpus(config.run_gpus, source=f"[run] gpus in {config.source_name}")
    signer, model_key = _run_keys(sign_key, keyless, token_file)
    options = RunOptions(command=command, image=image, outputs=outputs,
                         network=network, gpus=gpus, warn_only=warn_only,
                         fast=fast, record=record, data=parse_data(data or []),
                         attach=attach)
    outcome = _run_signed(config, options, signer, model_key, quiet=quiet, as_json=as_json)
    if as_json:
        _emit_json({"record": str(outcome.path), "envelope": str(outcome.envelope or ""),
                    **outcome.record})
    else:
        print(f"run record {outcome.path}" + (f" (signed: {outcome.envelope})"
                                             if outcome.envelope else ""), file=sys.stderr)
    raise typer.Exit(outcome.exit_code)


def _run_signed(config: Any, options: Any, signer: Any, model_key: Any, *, quiet: bool,
                as_json: bool) -> Any:
    """The run, signed with ``signer`` (a key, or keyless)."""
    from reprolock._internal.cache import default_cache_dir
    from reprolock.workflows.run import run as run_image

    # with --json, stdout is for the JSON: the command's output goes to stderr
    outcome = run_image(config, options, cache_dir=default_cache_dir(),
                        progress=_progress(not quiet), signer=signer, model_key=model_key,
                        stream=sys.stderr.buffer if as_json else None)
    return outcome


def _run_keys(sign_key: Path | None, keyless: bool = False,
              token_file: Path | None = None) -> tuple[Any, Any]:
    """The run statement's signer and the model signature's key: one passphrase asked
    once for both. Keyless signs the run statement only (no model signature)."""
    from reprolock.signing.model import ModelKey

    if sign_key is None or keyless:
        return _signing(sign_key, keyless, token_file), None
    passphrase = _passphrase()
    return _signer(sign_key, passphrase), ModelKey(sign_key, passphrase)


def _opt(flag: str, text: str, *more: str) -> Any:
    return typer.Option(flag, *more, help=text)


EngineOpt = Annotated[str, typer.Option("--engine", help="slurm or kubernetes.")]
JobImageOpt = Annotated[str, typer.Option(
    "--image", help="The built image: oci-layout:DIR:TAG (Slurm) or registry:HOST/NAME:TAG "
    "(Kubernetes); verified against the lock first, then named by digest.")]
NodesOpt = Annotated[int, typer.Option("--nodes", help="Nodes (one container per node).")]
ProcsOpt = Annotated[int, typer.Option("--procs-per-node",
                                       help="Processes per node (torchrun starts them).")]
GpusPerNodeOpt = Annotated[int, typer.Option("--gpus-per-node", help="GPUs per node.")]


@app.command(cls=_RunCommand,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@handles_errors
def job(
    ctx: typer.Context,
    engine: EngineOpt,
    image: JobImageOpt,
    project: ProjectOpt = Path(),
    nodes: NodesOpt = 1,
    procs_per_node: ProcsOpt = 1,
    gpus_per_node: GpusPerNodeOpt = 0,
    name: Annotated[str | None, _opt("--name", "Job name (default: PROJECT-train).")] = None,
    out: Annotated[Path | None, _opt("--out", "Job directory (default: .reprolock/jobs/NAME).",
                                     "-o")] = None,
    outputs: Annotated[Path | None, _opt("--outputs", "Slurm: host directory mounted at "
                                         "/outputs (default: [run] outputs).")] = None,
    fast: Annotated[bool, _opt("--fast", "Per-node check on metadata only.")] = False,
    submit: Annotated[bool, _opt("--submit", "Slurm: submit with sbatch.")] = False,
    bundle: Annotated[Path | None, _opt("--bundle", "Slurm: where the runtime bundle goes "
                                        "(default: JOBDIR/bundle).")] = None,
    runtime: Annotated[str, _opt("--runtime", "Slurm: oci (srun --container and a bundle), "
                                 "pyxis or docker (a registry image).")] = "oci",
    partition: Annotated[str | None, _opt("--partition", "Slurm partition.")] = None,
    time_limit: Annotated[str | None, _opt("--time", "Slurm time limit.")] = None,
    namespace: Annotated[str, _opt("--namespace", "Kubernetes namespace.")] = "default",
    claim: Annotated[str | None, _opt("--outputs-claim", "Kubernetes: the PVC mounted at "
                                      "/outputs (default: NAME-outputs).")] = None,
    queue: Annotated[str | None, _opt("--queue", "Kubernetes: Kueue LocalQueue.")] = None,
    jobset: Annotated[bool, _opt("--jobset", "Kubernetes: a JobSet.")] = False,
    policy: Annotated[str, _opt("--policy", "Kubernetes admission policy: kyverno, sigstore "
                                "or none.")] = "none",
    key: Annotated[Path | None, _opt("--key", "Kubernetes: the public key the policy "
                                     "trusts.")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write a cluster job for the locked image: reprolock job --engine slurm|kubernetes
    --image REF [OPTIONS] [-- CMD ...]. Each node checks its environment before training
    and writes a run record. Exit 1 when the image is not the locked one."""
    from reprolock._internal.cache import default_cache_dir
    from reprolock.workflows.job import JobOptions, write_job

    options = JobOptions(
        engine=engine, image=image, command=_command_args(ctx), nodes=nodes,
        procs_per_node=procs_per_node, gpus_per_node=gpus_per_node, name=name, out=out,
        outputs=outputs, fast=fast, submit=submit, bundle=bundle, runtime=runtime,
        partition=partition,
        time_limit=time_limit, namespace=namespace, outputs_claim=claim, queue=queue,
        jobset=jobset, policy=policy, public_key=key)
    outcome = write_job(_load(project), options, cache_dir=default_cache_dir(),
                        progress=_progress(not quiet))
    if as_json:
        _emit_json(outcome.to_json())
        return
    print(f"{outcome.engine} job in {outcome.job_dir} for {outcome.image}")
    if outcome.job_id:
        print(f"submitted: job {outcome.job_id}")


@app.command()
@handles_errors
def inspect(
    project: ProjectOpt = Path(),
    as_json: JsonOpt = False,
    files: Annotated[bool, typer.Option("--files", help="List every code file.")] = False,
) -> None:
    """Show the code file set, its tree digest, git state and imports against the lock."""
    from reprolock.workflows.inspect import inspect_project

    found = inspect_project(_load(project))
    data = found.to_json(files=files or as_json)
    if as_json:
        _emit_json(data)
        return
    code = found.code
    print(f"code: {len(code.files)} files, {code.total_size} bytes, tree {code.tree_digest}")
    if code.git:
        print(f"git: {code.git.commit or '(no commit)'}{' (dirty)' if code.git.dirty else ''}")
    if code.untracked:
        print(f"untracked (not in the image; git add or ignore them): "
              f"{', '.join(code.untracked[:10])}{' …' if len(code.untracked) > 10 else ''}")
    for warning in code.warnings:
        print(f"warning: {one_paragraph(warning)}", file=sys.stderr)
    for entry in data["code"].get("fileList", []):
        print(f"  {entry['sha256'][:12]} {'x' if entry['executable'] else '-'} {entry['path']}")
    print("imports:")
    for module, dist in found.provided.items():
        where = dist or ("NOT PROVIDED by the lock" if found.locked else "(no lock yet)")
        print(f"  {module:<24} {where}")


from reprolock.audit.command import audit as _audit  # noqa: E402

app.command(name="audit")(handles_errors(_audit))


def main() -> None:
    try:
        _app_for(sys.argv[1:])()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_ERROR)


def _app_for(args: list[str]) -> typer.Typer:
    """``app`` with only the command that ``args`` start with, when they start with one:
    typer builds the options of every command before it runs one (17 ms of a warm
    ``lock``'s 0.5 s). Anything else (``--help``, an unknown name) gets the whole app."""
    chosen = [c for c in app.registered_commands if args and _command_name(c) == args[0]]
    if not chosen:
        return app
    only = typer.Typer(**_SETTINGS)
    only.registered_callback = app.registered_callback
    only.registered_commands = chosen
    return only


def _command_name(info: typer.models.CommandInfo) -> str:
    # as typer names a command: its given name, else its function's with dashes
    return info.name or (info.callback.__name__ if info.callback else "").replace("_", "-")
