"""Issue 13: per-package index pinning. A package pinned to a named index comes from it
and from no other index, whether the inputs require it directly or another package does
(the torchtriton hole: a transitive package taken from the default index); no other package
is taken from a named index, even where it serves a copy. Two local indexes built in the
session stand for PyPI and a PyTorch-style index."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reprolock.errors import ArtifactError
from reprolock.index.simple import DistFile
from reprolock.resolver.interface import IndexSettings, NamedIndexSettings, Pin
from reprolock.schemas import validate
from reprolock.workflows.lock import _check_named_sources
from tests.support.cli import run_cli
from tests.support.index import LocalIndex
from tests.support.wheels import build_wheel

USER, PASSWORD = "team", "s3cret-named-index"


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pypi, torch = tmp_path_factory.mktemp("pypi"), tmp_path_factory.mktemp("torch")
    return {
        # the default index: a higher torchlike (the copy an attacker or PyPI would offer)
        "pypi/torchlike": build_wheel(pypi, "torchlike", "2.0",
                                      modules={"torchlike/__init__.py": "origin = 'pypi'\n"}),
        "pypi/parent": build_wheel(pypi, "parent", "1.0", requires=["torchlike"]),
        "pypi/numpylike": build_wheel(pypi, "numpylike", "1.0"),
        # the named index: the wanted torchlike, a package needing it, and a mirror copy
        # of numpylike that must not be used
        "torch/torchlike": build_wheel(torch, "torchlike", "1.0+cu1",
                                       modules={"torchlike/__init__.py": "origin = 'named'\n"}),
        "torch/visionlike": build_wheel(torch, "visionlike", "0.1+cu1",
                                        requires=["torchlike==1.0+cu1"]),
        "torch/numpylike": build_wheel(torch, "numpylike", "9.0"),
    }


@pytest.fixture(scope="module")
def default_index(tmp_path_factory: pytest.TempPathFactory,
                  dists: dict[str, Path]) -> Iterator[LocalIndex]:
    index = LocalIndex(tmp_path_factory.mktemp("default-index"))
    index.add_all([p for k, p in sorted(dists.items()) if k.startswith("pypi/")])
    with index:
        yield index


@pytest.fixture(scope="module")
def named_index(tmp_path_factory: pytest.TempPathFactory,
                dists: dict[str, Path]) -> Iterator[LocalIndex]:
    index = LocalIndex(tmp_path_factory.mktemp("named-index"), auth=(USER, PASSWORD))
    index.add_all([p for k, p in sorted(dists.items()) if k.startswith("torch/")])
    with index:
        yield index


@pytest.fixture
def project(make_project: Callable[..., Path], default_index: LocalIndex,
            named_index: LocalIndex, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    monkeypatch.setenv("NAMED_TOKEN", PASSWORD)
    url = named_index.url.replace("http://", f"http://{USER}:${{NAMED_TOKEN}}@")

    def make(requirements: str, *, resolver: str = "uv", packages: str = '["torchlike"]',
             extra: str = "") -> Path:
        return make_project(
            requirements=requirements, resolver=resolver, index_url=default_index.url,
            extra=f"{extra}\n[[index.named]]\nname = \"pytorch\"\nurl = \"{url}\"\n"
                  f"packages = {packages}\n")

    return make


def lock_of(root: Path) -> dict:
    data = json.loads((root / "reprolock.lock.json").read_text())
    validate(data, "lock", source="lock")
    return data


def packages(root: Path) -> dict[str, dict]:
    return {p["name"]: p for p in lock_of(root)["packages"]}


def test_a_transitive_package_comes_from_its_named_index(
        project: Callable[..., Path], named_index: LocalIndex,
        default_index: LocalIndex) -> None:
    root = project("parent\nnumpylike\n")
    proc = run_cli("lock", "-C", root, "--no-build")
    assert proc.returncode == 0, proc.stderr
    found = packages(root)
    # the default index serves torchlike 2.0, a higher version: it must not be taken
    assert found["torchlike"]["version"] == "1.0+cu1"
    assert found["torchlike"]["artifact"]["url"].startswith(named_index.base_url)
    # the named index serves numpylike 9.0: only the default index's copy counts
    assert found["numpylike"]["version"] == "1.0"
    assert found["numpylike"]["artifact"]["url"].startswith(default_index.base_url)
    assert found["parent"]["artifact"]["url"].startswith(default_index.base_url)


def test_the_lock_records_the_named_index_without_its_credentials(
        project: Callable[..., Path], named_index: LocalIndex) -> None:
    root = project("parent\n")
    assert run_cli("lock", "-C", root, "--no-build").returncode == 0
    named = [i for i in lock_of(root)["indexes"] if i["kind"] == "named"]
    assert named == [{"kind": "named", "name": "pytorch", "url": named_index.url,
                      "packages": ["torchlike"]}]
    text = (root / "reprolock.lock.json").read_text()
    assert PASSWORD not in text and USER + ":" not in text
    check = run_cli("lock", "-C", root, "--check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_direct_package_and_what_it_needs_come_from_the_named_index(
        project: Callable[..., Path], named_index: LocalIndex) -> None:
    root = project("visionlike\n", packages='["torchlike", "visionlike"]')
    proc = run_cli("lock", "-C", root, "--no-build")
    assert proc.returncode == 0, proc.stderr
    found = packages(root)
    assert {found[n]["version"] for n in ("torchlike", "visionlike")} == {"1.0+cu1", "0.1+cu1"}
    assert all(found[n]["artifact"]["url"].startswith(named_index.base_url)
               for n in ("torchlike", "visionlike"))


def test_a_pinned_package_nothing_requires_is_not_added(project: Callable[..., Path]) -> None:
    root = project("numpylike\n")
    proc = run_cli("lock", "-C", root, "--no-build")
    assert proc.returncode == 0, proc.stderr
    assert set(packages(root)) == {"numpylike"}


def test_a_package_only_on_a_named_index_is_not_found_unless_pinned_to_it(
        project: Callable[..., Path]) -> None:
    """visionlike is on the named index alone: without the pin it is not offered."""
    root = project("visionlike\n")
    proc = run_cli("lock", "-C", root, "--no-build")
    assert proc.returncode != 0
    assert "visionlike" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_pip_tools_refuses_named_indexes_naming_the_fix(project: Callable[..., Path]) -> None:
    root = project("parent\n", resolver="pip-tools")
    proc = run_cli("lock", "-C", root, "--no-build")
    assert proc.returncode == 2, proc.stderr
    assert "pip-compile cannot take a package from one index only" in proc.stderr
    assert 'resolver = "uv"' in proc.stderr
    assert PASSWORD not in proc.stderr


@pytest.mark.parametrize(("extra", "packages", "message"), [
    ('[[index.named]]\nname = "other"\nurl = "http://127.0.0.1:9/simple"\n'
     'packages = ["TorchLike"]\n', '["torchlike"]', "torchlike is pinned to two named indexes"),
    ('[[index.named]]\nname = "pytorch"\nurl = "http://127.0.0.1:9/simple"\n'
     'packages = ["x"]\n', '["torchlike"]', "'pytorch' is used twice"),
    ("", "[]", "index.named[0].packages"),
])
def test_a_wrong_named_index_table_is_refused(project: Callable[..., Path], extra: str,
                                              packages: str, message: str) -> None:
    root = project("parent\n", packages=packages, extra="")
    (root / "reprolock.toml").write_text((root / "reprolock.toml").read_text() + extra)
    proc = run_cli("lock", "-C", root, "--no-build")
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_literal_password_in_a_named_index_url_is_refused(
        project: Callable[..., Path]) -> None:
    root = project("parent\n")
    config = root / "reprolock.toml"
    config.write_text(config.read_text().replace("${NAMED_TOKEN}", "literal-password"))
    proc = run_cli("lock", "-C", root, "--no-build")
    assert proc.returncode == 2
    assert "index.named[0].url" in proc.stderr and "literal-password" not in proc.stderr


def test_export_names_the_named_index_for_pip(project: Callable[..., Path],
                                              named_index: LocalIndex) -> None:
    root = project("parent\n")
    assert run_cli("lock", "-C", root, "--no-build").returncode == 0
    proc = run_cli("export", "-C", root, "-o", root / "req.txt")
    assert proc.returncode == 0, proc.stderr
    text = (root / "req.txt").read_text()
    assert f"--extra-index-url {named_index.url}" in text
    assert "torchlike==1.0+cu1" in text


def test_a_pin_resolved_elsewhere_is_refused_naming_the_index() -> None:
    """The check after resolution, whichever resolver: the pinned hash must be a file of
    the named index (looked up there alone)."""
    settings = IndexSettings(url="https://pypi.example/simple", named=(
        NamedIndexSettings("pytorch", "https://u:p@torch.example/simple", ("torchlike",)),))
    pin = Pin("torchlike", "2.0", ("sha256:" + "a" * 64,), ("parent",))
    served = DistFile("torchlike-2.0-py3-none-any.whl", "https://torch.example/t.whl", None,
                      "b" * 64, 10)
    with pytest.raises(ArtifactError) as caught:
        _check_named_sources([pin], {("torchlike", "2.0"): [served]}, settings)
    assert "named index pytorch (https://torch.example/simple)" in str(caught.value)
    assert "u:p@" not in str(caught.value)
    # the same pin among the named index's files passes; an unpinned package is not checked
    _check_named_sources([pin], {("torchlike", "2.0"): [
        DistFile(served.filename, served.url, None, "a" * 64, 10)]}, settings)
    _check_named_sources([Pin("other", "1", ("sha256:" + "c" * 64,), ())],
                         {("other", "1"): []}, settings)
