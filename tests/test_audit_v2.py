"""Audit v2 (issue 14): fewer false positives, the misses found, the bugs fixed.

Each test names the finding of the issue it settles; projects are written here (in
tmp_path), hadolint runs for real where a test needs it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from reprolock.audit.catalog import RULES
from reprolock.audit.engine import AuditOptions, audit_project
from reprolock.audit.model import AuditReport, Finding
from reprolock.audit.report.text import summary
from tests.support.cli import run_cli
from tests.support.projects import write_project

DIGEST = "0123456789abcdef" * 4
COMMIT = "0123456789abcdef0123456789abcdef01234567"
BASE = f"FROM python:3.11-slim@sha256:{DIGEST}\nENV PYTHONHASHSEED=0\n"


def audit(root: Path, *, hadolint: bool = False) -> AuditReport:
    return audit_project(root, AuditOptions(hadolint=hadolint))


def found(report: AuditReport, rule: str) -> list[Finding]:
    return [f for f in report.active if f.rule == rule]


def rules_of(report: AuditReport) -> set[str]:
    return {f.rule for f in report.active}


# --- false positives and noise ----------------------------------------------------------
LOADER = ("from torch.utils.data import DataLoader\n\n"
          "def loader(ds):\n    return DataLoader(ds, num_workers=4{extra})\n")


@pytest.mark.parametrize("seeding", [
    "import torch\ntorch.manual_seed(0)\n",
    "import lightning\nlightning.seed_everything(0)\n",
    "from lightning.pytorch import seed_everything\nseed_everything(0)\n",
    "from accelerate.utils import set_seed\nset_seed(0)\n",
    "from transformers import set_seed\nset_seed(0)\n",
    "from transformers import TrainingArguments\nargs = TrainingArguments('out', seed=7)\n",
])
def test_dataloader_workers_are_seeded_by_torchs_seed(tmp_path: Path, seeding: str) -> None:
    """RL411 fired although PyTorch seeds random, NumPy and torch in each worker from the
    seeded base generator."""
    root = write_project(tmp_path, {"train.py": seeding + LOADER.format(extra="")})
    assert "RL411" not in rules_of(audit(root))


@pytest.mark.parametrize("extra", ["", ", worker_init_fn=None", ", generator=None"])
def test_dataloader_workers_without_any_seed(tmp_path: Path, extra: str) -> None:
    """Nothing seeds torch: RL411 stays, and a keyword set to None is not a seed."""
    root = write_project(tmp_path, {"train.py": "import torch\n" + LOADER.format(extra=extra)})
    assert len(found(audit(root), "RL411")) == 1


@pytest.mark.parametrize("code", [
    "w = tf.summary.create_file_writer('logs')\nwith w.as_default():\n"
    "    tf.summary.scalar('loss', 0.5, step=1)\n",
    "for event in tf.compat.v1.train.summary_iterator('events.out'):\n    print(event)\n",
    "spec = tf.TensorSpec([1, 3], tf.float32)\ntf.saved_model.save(module, 'export')\n"
    "converter = tf.lite.TFLiteConverter.from_saved_model('export')\n",
])
def test_tensorflow_only_for_tensorboard_or_export_is_not_training(tmp_path: Path,
                                                                   code: str) -> None:
    train = "import torch\ntorch.manual_seed(0)\ntorch.use_deterministic_algorithms(True)\n"
    root = write_project(tmp_path, {"train.py": train,
                              "log.py": "import tensorflow as tf\n\n" + code})
    assert not rules_of(audit(root)) & {"RL404", "RL412"}
    (root / "model.py").write_text("import tensorflow as tf\n\nlayer = tf.keras.layers.Dense(3)\n")
    (finding,) = found(audit(root), "RL404")
    assert finding.path == "model.py"


def test_hadolint_style_codes_are_info(tmp_path: Path) -> None:
    """DL3059, DL3047, DL4006, DL3004 were errors and warnings; the reproducibility codes
    keep their rules and severities."""
    root = write_project(tmp_path, {"Dockerfile": BASE + (
        "RUN sudo mkdir /x\n"
        "RUN mkdir /y\n"
        "RUN mkdir /z\n"
        "RUN wget https://example.com/a.tgz | tar xz\n"
        "RUN apt-get update && apt-get install -y curl\n")})
    report = audit(root, hadolint=True)
    style = found(report, "RL300")
    codes = {f.tool_code for f in style}
    assert {"DL3059", "DL3047", "DL4006", "DL3004"} <= codes, codes
    assert {f.severity.value for f in style} == {"info"}
    assert "(hadolint: DL3004, error)" in next(f.message for f in style
                                               if f.tool_code == "DL3004")
    assert [f.severity.value for f in found(report, "RL302")] == ["warning"]


def test_editable_install_is_not_told_to_add_require_hashes(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"Dockerfile": BASE + "COPY . /src\nRUN pip install -e /src\n"})
    report = audit(root)
    assert "RL305" not in rules_of(report)
    (finding,) = found(report, "RL106")
    assert finding.line == 4 and "--no-deps" in finding.message
    (root / "Dockerfile").write_text(BASE + "RUN pip install --no-deps -e .\n")
    assert not rules_of(audit(root)) & {"RL305", "RL106"}


@pytest.mark.parametrize(("requirements", "expected"), [
    ("numpy==1.26.4\n", "warning"),  # pinned, no hashes
    (f"numpy==1.26.4 --hash=sha256:{DIGEST}\n", None),  # pip's hash-checking mode
    ("numpy>=1\n", None),  # RL101 reports the file itself: not twice
])
def test_pip_install_of_a_requirement_file_is_judged_by_the_file(
        tmp_path: Path, requirements: str, expected: str | None) -> None:
    root = write_project(tmp_path, {"requirements.txt": requirements, "Dockerfile": BASE
                              + "COPY requirements.txt /app/\n"
                              "RUN pip install -r /app/requirements.txt\n"})
    severities = [f.severity.value for f in found(audit(root), "RL305")]
    assert severities == ([expected] if expected else [])


def test_a_requirement_file_not_in_the_project_stays_an_error(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"Dockerfile": BASE + "RUN pip install -r reqs/gpu.txt\n"})
    (finding,) = found(audit(root), "RL305")
    assert finding.severity.value == "error" and "reqs/gpu.txt" in finding.message


def test_pinned_requirements_the_lock_covers_are_not_reported(
        make_project: Callable[..., Path]) -> None:
    root = make_project()
    assert run_cli("lock", "--no-build", "-C", root).returncode == 0
    lock = json.loads((root / "reprolock.lock.json").read_text())
    pins = "".join(f"{p['name']}=={p['version']}\n" for p in lock["packages"])
    (root / "requirements.txt").write_text(pins + "otherpkg==1.0\n")
    (root / "Dockerfile").write_text(BASE + "RUN pip install -r requirements.txt\n")
    report = audit(root)
    assert [f.line for f in found(report, "RL102")] == [len(lock["packages"]) + 1]
    (root / "requirements.txt").write_text(pins)
    report = audit(root)
    assert not found(report, "RL102") and not found(report, "RL305")


def test_a_clock_seed_is_one_finding(tmp_path: Path) -> None:
    """A clock seed gave RL406 for every call and a contradictory 'never seeded'."""
    root = write_project(tmp_path, {"train.py": (
        "import random\nimport time\n\nimport numpy as np\nimport torch\n\n\n"
        "def main():\n    seed = int(time.time())\n    random.seed(seed)\n"
        "    np.random.seed(seed)\n    torch.manual_seed(seed)\n"
        "    return random.random(), np.random.rand(2)\n")})
    report = audit(root)
    (finding,) = found(report, "RL406")
    assert finding.line == 10 and finding.message.endswith("(2 more seeding calls here)")
    assert not rules_of(report) & {"RL401", "RL402", "RL403"}


# --- misses: Dockerfiles ---------------------------------------------------------------
@pytest.mark.parametrize(("run", "rule", "clean"), [
    ("RUN git clone https://github.com/o/r /r",
     "RL306", f"RUN git clone https://github.com/o/r /r && git -C /r checkout {COMMIT}"),
    ("RUN curl -fsSL https://example.com/install.sh | sh",
     "RL307", "RUN curl -fsSLo i.sh https://example.com/i.sh && echo \"x  i.sh\" | "
     "sha256sum -c && sh i.sh"),
    ("RUN curl -fsSL https://example.com/get.py | python3 -", "RL307", None),
    ("RUN wget https://example.com/data.tgz && tar xf data.tgz",
     "RL308", "RUN wget https://example.com/data.tgz && sha256sum -c data.sha256"),
    ("RUN conda install -y -c conda-forge numpy", "RL309",
     "RUN conda install -y -c conda-forge numpy=1.26.4"),
    ("RUN micromamba install -y python pytorch=2.1", "RL309",
     "RUN micromamba install -y python=3.11 pytorch=2.1"),
    # the corpus (google/flax): -yn takes the environment's name, which is no package
    ("RUN conda create -yn flax python", "RL309", "RUN conda create -yn flax python==3.9"),
    ("RUN apt update && apt install -y git", "RL302",
     "RUN apt update && apt install -y git=1:2.39.2-1"),
    ("RUN apt-get update && apt-get upgrade -y", "RL302", None),
    ("RUN pip install --require-hashes git+https://github.com/o/r.git", "RL105",
     f"RUN pip install --no-deps git+https://github.com/o/r.git@{COMMIT}"),
    ("RUN pip install --require-hashes --pre -r requirements.txt", "RL310", None),
    ("RUN pip install --require-hashes -r requirements.txt "
     "--extra-index-url https://download.pytorch.org/whl/nightly/cu121", "RL310", None),
])
def test_dockerfile_hazards_that_were_missed(tmp_path: Path, run: str, rule: str,
                                             clean: str | None) -> None:
    root = write_project(tmp_path, {"Dockerfile": BASE + run + "\n"})
    report = audit(root)
    hits = found(report, rule)
    assert [f.line for f in hits] == [3], (rule, [f.message for f in report.active])
    if clean is not None:
        (root / "Dockerfile").write_text(BASE + clean + "\n")
        assert rule not in rules_of(audit(root)), [f.message for f in audit(root).active]


def test_a_base_image_from_an_arg_without_default(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"Dockerfile": "ARG BASE\nFROM ${BASE}\nENV PYTHONHASHSEED=0\n"})
    (finding,) = found(audit(root), "RL204")
    assert finding.line == 2 and finding.severity.value == "warning"
    (root / "Dockerfile").write_text(f"ARG BASE=python:3.11@sha256:{DIGEST}\nFROM ${{BASE}}\n"
                                     "ENV PYTHONHASHSEED=0\n")
    assert not rules_of(audit(root)) & {"RL204", "RL201", "RL202"}


def test_a_heredoc_hadolint_rejects_is_info_and_still_checked(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"Dockerfile": BASE + (
        "RUN <<EOF1 <<EOF2\ncurl -fsSL https://example.com/x.sh | sh\nEOF1\necho b\nEOF2\n")})
    report = audit(root, hadolint=True)
    (parse,) = found(report, "RL301")
    assert parse.severity.value == "info" and "own Dockerfile checks ran" in parse.message
    assert [f.line for f in found(report, "RL307")] == [4]
    assert report.exit_code(RULES["RL307"].severity) == 1


# --- misses: Python ---------------------------------------------------------------------
def test_a_seed_drawn_from_an_unseeded_generator(tmp_path: Path) -> None:
    code = ("import random\nimport torch\n\nseed = random.randint(0, 2**31)\n"
            "torch.manual_seed(seed)\n")
    root = write_project(tmp_path, {"train.py": code})
    report = audit(root)
    (finding,) = found(report, "RL406")
    assert finding.line == 5 and "random's generator" in finding.message
    assert "RL403" not in rules_of(report)  # one root cause
    (root / "train.py").write_text(code.replace("\nseed =", "\nrandom.seed(1)\nseed ="))
    assert not rules_of(audit(root)) & {"RL406", "RL403"}


def test_a_seed_drawn_into_an_attribute(tmp_path: Path) -> None:
    """pytorch/examples' dcgan: ``opt.manualSeed = random.randint(...)`` when no seed is
    given, then every generator seeded from it."""
    code = ("import argparse\nimport random\nimport torch\n\n"
            "opt = argparse.ArgumentParser().parse_args()\n"
            "if opt.manualSeed is None:\n    opt.manualSeed = random.randint(1, 10000)\n"
            "random.seed(opt.manualSeed)\ntorch.manual_seed(opt.manualSeed)\n")
    report = audit(write_project(tmp_path, {"train.py": code}))
    (finding,) = found(report, "RL406")
    assert finding.line == 8 and "random's generator" in finding.message


@pytest.mark.parametrize("code", [
    "options = tf.data.Options()\noptions.experimental_deterministic = False\n",
    "tf.data.Options().deterministic = False\n",
])
def test_tf_data_determinism_switched_off(tmp_path: Path, code: str) -> None:
    root = write_project(tmp_path, {"data.py": "import tensorflow as tf\n\n" + code})
    (finding,) = found(audit(root), "RL409")
    assert finding.line == code.count("\n") + 2
    (root / "data.py").write_text("import tensorflow as tf\n\n" + code.replace("False", "True"))
    assert "RL409" not in rules_of(audit(root))


def test_keras_3_training_without_its_seed(tmp_path: Path) -> None:
    code = ("import keras\n\nmodel = keras.Sequential([keras.layers.Dense(1)])\n"
            "model.compile(loss='mse')\nmodel.fit(x, y, epochs=1)\n")
    root = write_project(tmp_path, {"train.py": code})
    (finding,) = found(audit(root), "RL416")
    assert finding.line == 5
    (root / "train.py").write_text(code.replace("\n\n", "\n\nkeras.utils.set_random_seed(0)\n"))
    assert "RL416" not in rules_of(audit(root))


@pytest.mark.parametrize(("call", "rule"), [
    ("os.system('pip install torch')", "RL417"),
    ("subprocess.check_call([sys.executable, '-m', 'pip', 'install', package])", "RL417"),
    ("subprocess.run(f'pip install {package}==1.0', shell=True)", "RL417"),
    ("subprocess.run(['wget', '-O', 'data.zip', URL])", "RL413"),
    ("subprocess.run(['curl', '-L', '-o', 'w.bin', URL], check=True)", "RL413"),
    ("os.system('git clone https://github.com/o/r')", "RL306"),
])
def test_commands_run_by_python(tmp_path: Path, call: str, rule: str) -> None:
    root = write_project(tmp_path, {"setup_env.py": "import os\nimport subprocess\nimport sys\n\n\n"
                              f"def main(package, URL):\n    {call}\n"})
    hits = found(audit(root), rule)
    assert [f.line for f in hits] == [7], [f.message for f in audit(root).active]


def test_a_download_checked_in_python_is_not_reported(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"fetch.py": (
        "import hashlib\nimport subprocess\n\n\ndef fetch(url):\n"
        "    subprocess.run(['wget', '-O', 'w.bin', url], check=True)\n"
        "    digest = hashlib.sha256(open('w.bin', 'rb').read()).hexdigest()\n"
        "    assert digest == 'abc'\n")})
    assert "RL413" not in rules_of(audit(root))


# --- misses: shell scripts, notebooks, files not read -----------------------------------
def test_shell_scripts_are_audited(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"scripts/setup.sh": (
        "#!/bin/bash\nset -e\n# download the data\n"
        "wget https://example.com/data.zip\n"
        "pip install torch \\\n    numpy\n"
        "git clone https://github.com/o/r && cd r && git checkout " + COMMIT + "\n")})
    report = audit(root)
    assert [(f.rule, f.line) for f in report.active if f.rule.startswith("RL3")] == [
        ("RL308", 4), ("RL305", 5)]


def _notebook(*cells: list[str]) -> str:
    return json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "outputs": [],
                                  "source": cell} for cell in cells],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1)


def test_notebooks_are_audited(tmp_path: Path) -> None:
    text = _notebook(["%pip install transformers\n", "!wget https://example.com/d.zip\n"],
                     ["import random\n", "x = random.random()\n",
                      "y = random.choice([1])  # reprolock: ignore[RL401]"])
    root = write_project(tmp_path, {"explore.ipynb": text})
    report = audit(root)
    lines = text.splitlines()
    where = {f.rule: lines[f.line - 1] for f in report.active if f.path == "explore.ipynb"}
    assert "%pip install transformers" in where["RL305"]
    assert "!wget" in where["RL308"]
    assert "x = random.random()" in where["RL401"]
    (root / "explore.ipynb").write_text(_notebook(["import random\n",
                                                   "y = random.choice([1])  "
                                                   "# reprolock: ignore[RL401]"]))
    (suppressed,) = [f for f in audit(root).findings if f.rule == "RL401"]
    assert suppressed.suppression is not None


@pytest.mark.parametrize("text", [
    "{not json",
    # two "cells" keys: readers disagree about which counts, so neither is read
    '{"cells": [], "cells": [{"cell_type": "code", "source": "import random"}]}',
    "[" * 10_000 + "]" * 10_000,  # nested past the strict reader's depth
])
def test_a_file_that_is_not_a_notebook(tmp_path: Path, text: str) -> None:
    root = write_project(tmp_path, {"broken.ipynb": text})
    report = audit(root)
    (finding,) = found(report, "RL003")
    assert finding.path == "broken.ipynb"
    assert "RL401" not in rules_of(report)


def test_file_kinds_not_read_are_named_once(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"a.zsh": "pip install x\n", "b/c.zsh": "wget x\n",
                              "Makefile": "all:\n\tpip install x\n",
                              "Dockerfile_gpu": "FROM x\n", "README.md": "# hi\n"})
    notes = found(audit(root), "RL005")
    assert sorted(f.path for f in notes) == ["Dockerfile_gpu", "Makefile", "a.zsh"]
    assert all(f.severity.value == "info" for f in notes)
    assert "a.zsh and 1 more" in next(f.message for f in notes if f.path == "a.zsh")


# --- bugs -------------------------------------------------------------------------------
def test_a_python_file_that_is_not_utf8_is_rl003_info(tmp_path: Path) -> None:
    """docs/audit.md says RL003 (info); it was RL001 (error)."""
    root = write_project(tmp_path, {"train.py": "print(1)\n"})
    (root / "legacy.py").write_bytes(b"name = '\xe9t\xe9'\n")
    report = audit(root)
    assert "RL001" not in rules_of(report)
    (finding,) = found(report, "RL003")
    assert finding.path == "legacy.py" and finding.severity.value == "info"
    (root / "latin.py").write_bytes(b"# -*- coding: latin-1 -*-\nname = '\xe9t\xe9'\n")
    assert [f.path for f in found(audit(root), "RL003")] == ["legacy.py"]


def test_summary_says_one_file(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"train.py": "print(1)\n"})
    assert summary(audit(root)).endswith("; 1 file audited")


def test_the_example_project_is_still_clean(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    root = tmp_path / "example"
    shutil.copytree(repo / "fixtures" / "example", root, ignore=shutil.ignore_patterns(
        ".reprolock", "reprolock.lock.json*", "reprolock.sbom.*", "outputs"))
    assert [f.rule for f in audit(root, hadolint=True).active] == ["RL107"]


def test_a_python_module_named_dockerfile_is_python(tmp_path: Path) -> None:
    """reprolock/inspection/dockerfile.py matched Dockerfile.* and was handed to hadolint
    (RL301 on a Python file)."""
    root = write_project(tmp_path, {"inspection/dockerfile.py": "X = 1\n"})
    assert not rules_of(audit(root, hadolint=True)) & {"RL301", "RL300", "RL602"}


def test_a_requirement_file_named_ambiguously_is_not_guessed(tmp_path: Path) -> None:
    """Two requirements.txt, neither beside the Dockerfile: the audit does not pick one."""
    pinned = f"numpy==1.26.4 --hash=sha256:{DIGEST}\n"
    root = write_project(tmp_path, {"a/requirements.txt": pinned, "b/requirements.txt": pinned,
                              "docker/Dockerfile": BASE + "RUN pip install -r requirements.txt\n"})
    assert [f.severity.value for f in found(audit(root), "RL305")] == ["error"]
    (root / "docker" / "requirements.txt").write_text(pinned)  # beside it: that one
    assert "RL305" not in rules_of(audit(root))


@pytest.mark.parametrize("name", ["Dockerfile-gpu", "docker/Containerfile", "cpu.Dockerfile"])
def test_dockerfiles_by_every_name(tmp_path: Path, name: str) -> None:
    """The issue: files named Dockerfile-*, *.Dockerfile and Containerfile are Dockerfiles."""
    root = write_project(tmp_path, {name: "FROM python:3.11\nENV PYTHONHASHSEED=0\n"})
    assert [f.path for f in found(audit(root), "RL201")] == [name]


def test_a_tf_data_input_pipeline_is_not_asked_for_op_determinism(tmp_path: Path) -> None:
    """A JAX or PyTorch project that feeds itself with tf.data runs no TensorFlow GPU
    kernels: RL412 is silent there, RL404 (its random ops) still applies."""
    root = write_project(tmp_path, {"input_pipeline.py": (
        "import tensorflow as tf\n\n\ndef load(files):\n"
        "    ds = tf.data.TFRecordDataset(files)\n"
        "    return ds.map(lambda x: tf.image.random_flip_left_right(tf.cast(x, tf.float32)))\n")})
    rules = rules_of(audit(root))
    assert "RL412" not in rules and "RL404" in rules


def test_a_clock_seeded_torch_is_not_also_a_dataloader_finding(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"train.py": (
        "import time\nimport torch\n\ntorch.manual_seed(int(time.time()))\n"
        + LOADER.format(extra=""))})
    rules = rules_of(audit(root))
    assert "RL406" in rules and "RL411" not in rules


def test_a_notebook_magic_inside_a_block_keeps_the_block(tmp_path: Path) -> None:
    """An indented %load_ext became an unindented statement: RL001 on a valid notebook."""
    root = write_project(tmp_path, {"nb.ipynb": _notebook(
        ["import random\n", "if True:\n", "  %load_ext tensorboard\n", "random.random()\n"])})
    rules = rules_of(audit(root))
    assert "RL001" not in rules and "RL401" in rules


def test_git_clone_names_its_url_not_an_option_value() -> None:
    from reprolock.audit.shell import scan

    (hazard,) = scan("git clone --depth 1 -b main https://github.com/o/r")
    assert "https://github.com/o/r at branch main" in hazard.message
    (variable,) = scan("git clone -b $branch $repo")
    assert variable.severity.value == "warning"


def test_a_nightly_index_in_a_requirement_file(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"requirements.txt": (
        f"--extra-index-url https://download.pytorch.org/whl/nightly/cu121\n"
        f"torch==2.6.0.dev20241101 --hash=sha256:{DIGEST}\n")})
    assert [f.line for f in found(audit(root), "RL310")] == [1]
    (root / "requirements.txt").write_text(f"torch==2.5.1 --hash=sha256:{DIGEST}\n")
    assert "RL310" not in rules_of(audit(root))
