"""Issue 11: resolution that tells the user what it did. A pinned --hash is a constraint;
a pre-release is never chosen unasked; an older release than the newest is explained; a
find-links path is stored as written; the base-pinning advice parses.

Everything runs against a local index on 127.0.0.1 holding tiny distributions built here.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reprolock.image.interface import ResolvedImage
from reprolock.image.reference import open_source, parse_reference
from reprolock.schemas import validate
from reprolock.target import Platform
from reprolock.workflows.lock import unpinned_base_warning
from tests.support.buildproject import build_json, cli, copy_project
from tests.support.cli import run_cli
from tests.support.index import LocalIndex
from tests.support.services import docker_available, require, skopeo_copy
from tests.support.wheels import build_sdist, build_wheel
from tests.test_image_sources import add_index

RESOLVERS = ["uv", "pip-tools"]
AMD64 = Platform.parse("linux/amd64")
MANYLINUX = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    dest = tmp_path_factory.mktemp("honest-dists")
    made = {
        # 2.0 needs a dependency that ships only an sdist: the resolver goes back to 1.0
        "oldpkg-1": build_wheel(dest, "oldpkg", "1.0"),
        "oldpkg-2": build_wheel(dest, "oldpkg", "2.0", requires=["sdistdep"]),
        "sdistdep": build_sdist(dest, "sdistdep", "1.0"),
        # the final 2.0 is an sdist; only its release candidate has a wheel
        "prepkg-1": build_wheel(dest, "prepkg", "1.0"),
        "prepkg-rc": build_wheel(dest, "prepkg", "2.0rc1"),
        "prepkg-2": build_sdist(dest, "prepkg", "2.0"),
        # a dependency that exists only as a pre-release
        "onlypre": build_wheel(dest, "onlypre", "1.0b1"),
        "needspre": build_wheel(dest, "needspre", "1.0", requires=["onlypre"]),
        "usespre-1": build_wheel(dest, "usespre", "1.0"),
        "usespre-2": build_wheel(dest, "usespre", "2.0", requires=["onlypre"]),
        # one release, two wheels: the manylinux one ranks first for the target
        "twofile-any": build_wheel(dest, "twofile", "1.0"),
        "twofile-native": build_wheel(dest, "twofile", "1.0", tag=MANYLINUX),
        "withdep": build_wheel(dest, "withdep", "1.0", requires=["depof"]),
        "depof": build_wheel(dest, "depof", "1.0"),
        "tinyconfig-1.0": build_wheel(dest, "tinyconfig", "1.0.0"),
        "tinyconfig-1.2": build_wheel(dest, "tinyconfig", "1.2.0"),
    }
    for i in range(4):  # more packages held back than a lock asks the resolver about
        made[f"held{i}-1"] = build_wheel(dest, f"held{i}", "1.0")
        made[f"held{i}-2"] = build_wheel(dest, f"held{i}", "2.0", requires=["sdistdep"])
    return made


@pytest.fixture(scope="module")
def honest_index(tmp_path_factory: pytest.TempPathFactory,
                 dists: dict[str, Path]) -> Iterator[LocalIndex]:
    index = LocalIndex(tmp_path_factory.mktemp("honest-index"))
    for path in dists.values():
        index.add(path)
    with index:
        yield index


@pytest.fixture
def project(make_project: Callable[..., Path], honest_index: LocalIndex) -> Callable[..., Path]:
    def make(requirements: str, resolver: str = "uv", name: str = "project") -> Path:
        return make_project(requirements=requirements, resolver=resolver, name=name,
                            index_url=honest_index.url)
    return make


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def locked(root: Path) -> dict[str, dict]:
    data = json.loads((root / "reprolock.lock.json").read_text())
    validate(data, "lock", source="lock")
    return {p["name"]: p for p in data["packages"]}


def lock(root: Path, *extra: str) -> tuple[int, str, str]:
    proc = run_cli("lock", "--no-build", "-C", root, *extra)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


# -- a pinned --hash is a constraint ----------------------------------------------------

@pytest.mark.parametrize("resolver", RESOLVERS)
def test_a_wrong_pinned_hash_fails_the_lock(project: Callable[..., Path],
                                            dists: dict[str, Path], resolver: str) -> None:
    wrong = "0" * 64
    root = project(f"withdep==1.0 \\\n    --hash=sha256:{wrong}\n", resolver)
    code, _, err = lock(root)
    assert code == 2, err
    assert "withdep" in err and "requirements.in" in err
    assert wrong in err and sha(dists["withdep"]) in err  # both hashes
    assert not (root / "reprolock.lock.json").exists()


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_a_pinned_hash_chooses_the_file_and_the_recorded_hashes(
        project: Callable[..., Path], dists: dict[str, Path], resolver: str) -> None:
    pinned = sha(dists["twofile-any"])
    root = project(f"twofile==1.0 --hash=sha256:{pinned}\nwithdep\n", resolver)
    code, _, err = lock(root)
    assert code == 0, err
    twofile = locked(root)["twofile"]
    # the manylinux wheel ranks first for the target, but the user pinned the other one
    assert twofile["artifact"]["sha256"] == pinned
    assert twofile["hashes"] == [f"sha256:{pinned}"]
    assert set(locked(root)) == {"twofile", "withdep", "depof"}


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_a_hash_of_another_version_is_never_locked(project: Callable[..., Path],
                                         dists: dict[str, Path], resolver: str) -> None:
    old = sha(dists["tinyconfig-1.0"])
    root = project(f"tinyconfig --hash=sha256:{old}\n", resolver)
    code, _, err = lock(root)
    if resolver == "pip-tools":  # pip takes only candidates with a pinned hash: 1.0.0
        assert code == 0, err
        assert locked(root)["tinyconfig"]["artifact"]["sha256"] == old
        return
    assert code == 2, err  # uv chooses 1.2.0, whose file is not the one pinned
    assert "tinyconfig" in err and old in err and sha(dists["tinyconfig-1.2"]) in err
    assert "tinyconfig==VERSION" in err  # the fix: pin the version the hash is of


def test_a_hash_reprolock_cannot_check_is_refused(project: Callable[..., Path]) -> None:
    root = project("\n# a comment\ntinyconfig --hash=sha512:abc\n")
    code, _, err = lock(root)
    assert code == 2, err
    assert "requirements.in:3" in err and "sha256" in err


def test_hashes_in_included_files_count(project: Callable[..., Path]) -> None:
    root = project("-r pinned.in\n")
    (root / "pinned.in").write_text(f"tinyconfig==1.2.0 --hash=sha256:{'1' * 64}\n")
    code, _, err = lock(root)
    assert code == 2, err
    assert "pinned.in:1" in err


# -- never a pre-release the user did not ask for ---------------------------------------

@pytest.mark.parametrize("resolver", RESOLVERS)
def test_no_prerelease_when_the_final_release_has_no_wheel(project: Callable[..., Path],
                                                           resolver: str) -> None:
    root = project("prepkg>=1.5\n", resolver)
    code, _, err = lock(root)
    assert code == 2, err
    assert "prepkg" in err and "2.0rc1" in err
    assert "sdist" in err or "no usable wheels" in err  # what blocked 2.0
    assert not (root / "reprolock.lock.json").exists()


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_a_transitive_prerelease_is_refused_until_named(project: Callable[..., Path],
                                                        resolver: str) -> None:
    root = project("needspre\n", resolver)
    code, _, err = lock(root)
    assert code == 2, err
    assert "onlypre" in err and "1.0b1" in err
    (root / "requirements.in").write_text("needspre\nonlypre>=1.0b1\n")
    code, _, err = lock(root)
    assert code == 0, err
    assert locked(root)["onlypre"]["version"] == "1.0b1"


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_a_named_prerelease_is_locked(project: Callable[..., Path], resolver: str) -> None:
    root = project("prepkg>=2.0rc1\n", resolver)
    code, _, err = lock(root)
    assert code == 0, err
    assert locked(root)["prepkg"]["version"] == "2.0rc1"


# -- an older release than the newest is explained --------------------------------------

@pytest.mark.parametrize("resolver", RESOLVERS)
def test_going_back_in_time_names_the_blocking_dependency(project: Callable[..., Path],
                                                          resolver: str) -> None:
    root = project("oldpkg\ntinyconfig\n", resolver)
    code, out, err = lock(root, "--json")
    assert code == 0, err
    assert locked(root)["oldpkg"]["version"] == "1.0"
    said = [w for w in json.loads(out)["warnings"] if "oldpkg" in w]
    assert len(said) == 1, json.loads(out)["warnings"]
    assert "1.0" in said[0] and "2.0" in said[0] and "sdistdep" in said[0]
    assert not [w for w in json.loads(out)["warnings"] if "tinyconfig" in w]  # the newest


def test_going_back_in_time_is_printed(project: Callable[..., Path]) -> None:
    root = project("oldpkg\n")
    code, _, err = lock(root)
    assert code == 0, err
    assert re.search(r"warning: oldpkg is locked at 1\.0, not at its newest release 2\.0: .*"
                     r"sdistdep", err), err


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_a_newest_release_without_a_wheel_is_named(project: Callable[..., Path],
                                                   resolver: str) -> None:
    root = project("prepkg\n", resolver)
    code, _, err = lock(root)
    assert code == 0, err
    assert locked(root)["prepkg"]["version"] == "1.0"
    assert re.search(r"prepkg is locked at 1\.0, not at its newest release 2\.0: .*sdist",
                     err), err


def test_a_newer_release_held_back_by_a_prerelease_says_so(
        project: Callable[..., Path]) -> None:
    root = project("usespre\n")  # uv keeps usespre 1.0: 2.0 needs a pre-release
    code, _, err = lock(root)
    assert code == 0, err
    assert locked(root)["usespre"]["version"] == "1.0"
    assert re.search(r"warning: usespre is locked at 1\.0, not at its newest release 2\.0: "
                     r"it needs onlypre, .*only pre-releases", err), err


@pytest.mark.parametrize(("text", "blocker"), [
    ("cause: Because sdistdep==1.0 has no usable wheels and only sdistdep==1.0 is available, "
     "we can conclude that all versions of sdistdep cannot be used.", "sdistdep"),
    ("Because only antlr4-python3-runtime<=4.9.3 is available and "
     "antlr4-python3-runtime==4.9.3 has no usable wheels, we can conclude",
     "antlr4-python3-runtime"),
    ("Because all versions of Antlr4_Python3_Runtime have no usable wheels and hydra-core==1.3.2 "
     "depends on it", "antlr4-python3-runtime"),
    ("Because there are no versions of onlypre and all versions of usespre depend on onlypre",
     "onlypre"),
    ("pip._internal.exceptions.DistributionNotFound: No matching distribution found for "
     "sdistdep (from oldpkg)", "sdistdep"),
    ("Because oldpkg==2.0 has no usable wheels, we can conclude", None),  # itself
    ("error: Failed to fetch: connection refused", None),
])
def test_the_blocking_package_is_read_from_either_resolver(text: str,
                                                           blocker: str | None) -> None:
    from reprolock.resolver.honesty import blocking_name

    assert blocking_name(text, "oldpkg") == blocker


def test_explanations_are_bounded(project: Callable[..., Path]) -> None:
    root = project("held0\nheld1\nheld2\nheld3\n")
    code, out, err = lock(root, "--json")
    assert code == 0, err
    said = [w for w in json.loads(out)["warnings"] if w.startswith("held")]
    assert len(said) == 4, said
    assert sum("sdistdep" in w for w in said) == 3  # three extra resolver runs, no more
    assert sum("at most 3" in w for w in said) == 1


def test_a_kept_pin_is_explained_again_on_upgrade(project: Callable[..., Path]) -> None:
    root = project("oldpkg\nprepkg\n")
    assert lock(root)[0] == 0
    code, _, err = lock(root)  # a kept pin costs no resolver run; a missing wheel is cheap
    assert code == 0, err
    assert "warning: prepkg is locked at 1.0" in err
    code, _, err = lock(root, "--upgrade")
    assert code == 0, err
    assert re.search(r"warning: oldpkg is locked at 1\.0, .*sdistdep", err), err


def test_a_pinned_version_is_not_going_back(project: Callable[..., Path]) -> None:
    root = project("oldpkg==1.0\nprepkg<2\n")
    code, _, err = lock(root)
    assert code == 0, err
    assert "warning: oldpkg" not in err and "warning: prepkg" not in err


# -- find-links paths as written --------------------------------------------------------

def test_absolute_find_links_survive_a_clone_at_another_depth(
        build_project_template: Path, tmp_path: Path) -> None:
    wheels = Path(shutil.copytree(build_project_template / "wheels",
                                  tmp_path / "shared" / "wheels"))
    root = copy_project(build_project_template, tmp_path / "a" / "project")
    shutil.rmtree(root / "wheels")
    config = root / "reprolock.toml"
    config.write_text(config.read_text().replace('find-links = ["wheels"]',
                                                 f'find-links = ["{wheels}"]'))
    proc = cli("lock", "--no-sbom", "-C", root, cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    paths = {p["artifact"]["path"] for p in locked(root).values()}
    assert paths == {str(wheels / p.name) for p in wheels.iterdir()}
    clone = copy_project(root, tmp_path / "x" / "y" / "z" / "project")
    check = cli("lock", "--check", "-C", clone, cache=tmp_path / "cache")
    assert check.returncode == 0, check.stderr
    built = build_json(clone, tmp_path / "cold-cache")
    assert built["environment"]["matchesLock"] is True


def test_relative_find_links_with_dot_segments_are_normalized(
        build_project_template: Path, tmp_path: Path) -> None:
    root = copy_project(build_project_template, tmp_path / "project")
    config = root / "reprolock.toml"
    config.write_text(config.read_text().replace('find-links = ["wheels"]',
                                                 'find-links = ["./wheels/"]'))
    proc = cli("lock", "--no-build", "-C", root, cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    assert {p["artifact"]["path"].split("/")[0] for p in locked(root).values()} == {"wheels"}


def test_export_keeps_an_absolute_find_links_path(build_project_template: Path,
                                                  tmp_path: Path) -> None:
    wheels = Path(shutil.copytree(build_project_template / "wheels", tmp_path / "w"))
    root = copy_project(build_project_template, tmp_path / "deep" / "project")
    config = root / "reprolock.toml"
    config.write_text(config.read_text().replace('find-links = ["wheels"]',
                                                 f'find-links = ["{wheels}"]'))
    assert cli("lock", "--no-build", "-C", root, cache=tmp_path / "c").returncode == 0
    out = tmp_path / "elsewhere" / "pylock.toml"
    out.parent.mkdir()
    proc = cli("export", "-C", root, "--format", "pylock", "-o", out, cache=tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    assert f'path = "{wheels}/' in out.read_text()


# -- the base-pinning advice parses and names the same image ----------------------------

def suggestion(reference: str, image: ResolvedImage) -> str:
    text = unpinned_base_warning(reference, image)
    match = re.search(r'base = "([^"]+)"', text)
    assert match, text
    return match.group(1)


def assert_pins_the_same_image(reference: str, root: Path = Path("/")) -> str:
    source = open_source(reference, root=root)
    try:
        image = source.resolve(AMD64)
        assert not source.pinned
    finally:
        source.close()
    pinned = suggestion(reference, image)
    parse_reference(pinned)
    again = open_source(pinned, root=root)
    try:
        assert again.pinned, pinned
        assert again.resolve(AMD64).identity == image.identity, pinned
    finally:
        again.close()
    return pinned


def test_oci_layout_advice_is_lockable(make_project: Callable[..., Path], tiny_base: Path,
                                       local_index: LocalIndex) -> None:
    root = make_project()
    code, _, err = lock(root)
    assert code == 0, err
    pinned = re.search(r'write base = "([^"]+)"', err)
    assert pinned, err
    config = root / "reprolock.toml"
    config.write_text(config.read_text().replace(f"oci-layout:{tiny_base}:tiny",
                                                 pinned.group(1)))
    code, _, err = lock(root)
    assert code == 0, err
    assert "names no digest" not in err


def test_advice_for_a_multi_platform_layout(tiny_base: Path, tmp_path: Path) -> None:
    layout = Path(shutil.copytree(tiny_base, tmp_path / "layout"))
    index_digest = add_index(layout, "multi", {"amd64": "tiny", "arm64": "arm"})
    assert assert_pins_the_same_image(f"oci-layout:{layout}:multi") == \
        f"oci-layout:{layout}@{index_digest}"


def test_advice_for_an_oci_archive(tiny_base: Path, tmp_path: Path) -> None:
    archive = tmp_path / "tiny.tar"
    skopeo_copy(f"oci:{tiny_base}:tiny", f"oci-archive:{archive}:v1")
    assert_pins_the_same_image(f"oci-archive:{archive}:v1")


def test_advice_for_a_registry_image(registry: str, tiny_base: Path) -> None:
    skopeo_copy(f"oci:{tiny_base}:tiny", f"docker://{registry}/honesty:1")
    assert assert_pins_the_same_image(f"{registry}/honesty:1").startswith(
        f"{registry}/honesty:1@sha256:")
    assert_pins_the_same_image(f"registry:{registry}/honesty:1")


@pytest.mark.docker
def test_advice_for_a_docker_daemon_image(tiny_base: Path) -> None:
    require(docker_available(), "no Docker Engine is running")
    name = "reprolock-test/honesty:1"
    skopeo_copy(f"oci:{tiny_base}:tiny", f"docker-daemon:{name}")
    try:
        assert_pins_the_same_image(f"docker-daemon:{name}")
    finally:
        import docker

        docker.from_env().images.remove(name, force=True)


def test_advice_for_a_docker_archive_names_no_digest_form(tiny_base: Path,
                                                          tmp_path: Path) -> None:
    archive = tmp_path / "tiny.tar"
    skopeo_copy(f"oci:{tiny_base}:tiny", f"docker-archive:{archive}:honesty/tiny:1")
    source = open_source(f"docker-archive:{archive}", root=Path("/"))
    try:
        image = source.resolve(AMD64)
    finally:
        source.close()
    text = unpinned_base_warning(f"docker-archive:{archive}", image)
    assert "docker-archive:" + str(archive) + "@" not in text
    assert "oci-archive:" in text


# -- reading what the inputs ask for -----------------------------------------------------

def test_requested_lines_are_read_as_pip_reads_them(tmp_path: Path) -> None:
    from reprolock.resolver.requested import read_requested

    digest = "ab" * 32
    (tmp_path / "more.in").write_text("Other_Pkg>=2.0rc1  # a comment\n")
    (tmp_path / "req.in").write_text(
        "# header\n"
        "--prefer-binary\n"
        f"first==1.0 \\\n    --hash=sha256:{digest.upper()} \\\n    --hash sha256:{'cd' * 32}\n"
        "-r more.in\n"
        "-e ./local\n"
        "direct @ https://example.invalid/direct-1.0.tar.gz\n"
        "plain\n")
    found = {r.name: r for r in read_requested([(tmp_path / "req.in", "req.in")])}
    assert set(found) == {"first", "other-pkg", "plain"}
    assert found["first"].where == "req.in:3"
    assert found["first"].hashes == {f"sha256:{digest}", f"sha256:{'cd' * 32}"}
    assert found["other-pkg"].where == "more.in:1" and found["other-pkg"].names_prerelease
    assert not found["plain"].hashes and not found["plain"].names_prerelease


@pytest.mark.parametrize(("line", "toml"), [
    ("--extra-index-url https://download.pytorch.org/whl/cu126",
     'extra-urls = ["https://download.pytorch.org/whl/cu126"]'),
    ("--index-url=https://mirror.example/simple", 'url = "https://mirror.example/simple"'),
    ("-i https://mirror.example/simple", 'url = "https://mirror.example/simple"'),
    ("--find-links ./wheels", 'find-links = ["./wheels"]'),
    ("-f wheels", 'find-links = ["wheels"]'),
    ("--no-index", "no-index = true"),
])
def test_an_index_option_in_a_requirement_file_says_where_it_belongs(
        tmp_path: Path, line: str, toml: str) -> None:
    """Seen on a project whose requirements.txt began with --extra-index-url: uv used the
    index, reprolock's own check of each file and the lock's record did not know it, and
    the error blamed index.url of reprolock.toml."""
    from reprolock.errors import ConfigError
    from reprolock.resolver.requested import read_requested

    (tmp_path / "base.in").write_text(f"torch\n{line}\n")
    (tmp_path / "req.in").write_text("numpy\n-r base.in\n")
    with pytest.raises(ConfigError, match=r"^base\.in:2: ") as caught:
        read_requested([(tmp_path / "req.in", "req.in")])
    assert caught.value.hint is not None and toml in caught.value.hint


def test_an_index_option_s_credentials_are_never_shown(tmp_path: Path) -> None:
    """A review: "--extra-index-url https://__token__:SECRET@..." came back in the message
    and in the hint, which told the user to paste it into reprolock.toml."""
    from reprolock.errors import ConfigError
    from reprolock.resolver.requested import read_requested

    (tmp_path / "req.in").write_text(
        "--extra-index-url https://__token__:s3cr3t-TOKEN@pkgs.example.com/simple\ntorch\n")
    with pytest.raises(ConfigError) as caught:
        read_requested([(tmp_path / "req.in", "req.in")])
    text = f"{caught.value.message} {caught.value.hint}"
    assert "s3cr3t" not in text and "__token__" not in text
    assert 'extra-urls = ["https://${USER}:${TOKEN}@pkgs.example.com/simple"]' in text
    (tmp_path / "req.in").write_text('-i "https://x.example/a"b\n')  # a quote stays TOML
    with pytest.raises(ConfigError) as caught:
        read_requested([(tmp_path / "req.in", "req.in")])
    assert 'url = "\\"https://x.example/a\\"b"' in str(caught.value.hint)
