"""Seeding judged per entry point (issue 14: "Seeding is judged over the whole folder").

A seed counts for an entry point only when it is in that entry point or in a project
module it imports; seeds in tests never count; findings are anchored in the entry point's
file; a project without entry points is judged as a whole, a library not at all.
"""

from __future__ import annotations

from pathlib import Path

from reprolock.audit.engine import AuditOptions, audit_project
from reprolock.audit.entrypoints import is_test
from reprolock.audit.model import AuditReport, Finding
from tests.support.projects import write_project

GUARD = 'if __name__ == "__main__":\n    main()\n'


def audit(root: Path) -> AuditReport:
    return audit_project(root, AuditOptions(hadolint=False))


def found(report: AuditReport, rule: str) -> list[Finding]:
    return [f for f in report.active if f.rule == rule]


def script(body: str) -> str:
    return body + "\n\ndef main():\n    pass\n\n\n" + GUARD


def test_a_seed_in_one_script_does_not_seed_another(tmp_path: Path) -> None:
    root = write_project(tmp_path, {
        "a.py": script("import numpy as np\nnp.random.seed(0)\nx = np.random.rand(3)"),
        "b.py": script("import numpy as np\ny = np.random.rand(3)"),
    })
    (finding,) = found(audit(root), "RL402")
    assert (finding.path, finding.line) == ("b.py", 2)
    assert "entry point b.py" in finding.message


def test_a_seed_in_a_test_does_not_seed_the_training_code(tmp_path: Path) -> None:
    root = write_project(tmp_path, {
        "train.py": script("import torch\nmodel = torch.nn.Linear(3, 1)"),
        "tests/test_train.py": "import torch\ntorch.manual_seed(0)\n",
        "test_other.py": "import torch\ntorch.manual_seed(0)\n",
    })
    (finding,) = found(audit(root), "RL403")
    assert (finding.path, finding.line) == ("train.py", 1)


def test_a_seed_in_an_imported_module_counts(tmp_path: Path) -> None:
    root = write_project(tmp_path, {
        "train.py": script("import torch\nfrom utils.seed import fix\nfix()"),
        "utils/__init__.py": "",
        "utils/seed.py": "import torch\n\ndef fix():\n    torch.manual_seed(0)\n",
        "pkg/__init__.py": "",
        "pkg/run.py": script("import torch\nfrom .seeding import fix"),
        "pkg/seeding.py": "import torch\n\ndef fix():\n    torch.manual_seed(0)\n",
    })
    assert found(audit(root), "RL403") == []


def test_a_finding_stays_at_the_entry_point_when_files_are_added(tmp_path: Path) -> None:
    """The use is in an imported module: the finding is at the entry point's guard, so a
    suppression comment there keeps working when another module comes first."""
    root = write_project(tmp_path, {
        "train.py": script("import model"),
        "model.py": "import torch\n\nnet = torch.nn.Linear(3, 1)\n",
    })
    (before,) = found(audit(root), "RL403")
    assert (before.path, before.line) == ("train.py", 7)
    assert "first use at model.py:1" in before.message
    (root / "aaa.py").write_text("import torch\n")
    (root / "train.py").write_text(script("import aaa\nimport model"))
    (after,) = found(audit(root), "RL403")
    assert (after.path, after.line) == ("train.py", 8)
    (root / "train.py").write_text(script("import aaa\nimport model").replace(
        GUARD, 'if __name__ == "__main__":  # reprolock: ignore[RL403]\n    main()\n'))
    assert found(audit(root), "RL403") == []


def test_a_library_without_entry_points_is_not_judged(tmp_path: Path) -> None:
    """The caller's script seeds (lucidrains/denoising-diffusion-pytorch in the corpus)."""
    root = write_project(tmp_path, {
        "pyproject.toml": '[project]\nname = "lib"\nversion = "1"\n',
        "lib/__init__.py": "from .core import Model\n",
        "lib/core.py": ("import random\nimport torch\nfrom torch.utils.data import "
                        "DataLoader\n\nclass Model(torch.nn.Module):\n    def go(self, ds):\n"
                        "        random.random()\n        return DataLoader(ds, num_workers=4)\n"),
    })
    rules = {f.rule for f in audit(root).active}
    assert not rules & {"RL401", "RL403", "RL408", "RL411"}, rules


def test_a_folder_without_entry_points_is_judged_as_a_whole(tmp_path: Path) -> None:
    root = write_project(tmp_path, {
        "model.py": "import torch\n\ndef net():\n    return torch.nn.Linear(3, 1)\n",
        "seeding.py": "import random\n\ndef draw():\n    return random.random()\n",
    })
    report = audit(root)
    assert [(f.path, f.line) for f in found(report, "RL403")] == [("model.py", 1)]
    assert [(f.path, f.line) for f in found(report, "RL401")] == [("seeding.py", 4)]


def test_a_console_script_is_an_entry_point(tmp_path: Path) -> None:
    root = write_project(tmp_path, {
        "pyproject.toml": ('[project]\nname = "tool"\nversion = "1"\n[project.scripts]\n'
                           'tool-train = "tool.cli:main"\ntool-prep = "tool.prep:main"\n'),
        "tool/__init__.py": "",
        "tool/cli.py": "from tool import train\n\ndef main():\n    train.run()\n",
        "tool/train.py": "import numpy as np\n\ndef run():\n    return np.random.rand(3)\n",
        "tool/prep.py": "import numpy as np\n\ndef main():\n    np.random.seed(0)\n",
    })
    (finding,) = found(audit(root), "RL402")
    assert (finding.path, finding.line) == ("tool/cli.py", 1)
    assert "console script tool-train" in finding.message


def test_a_script_without_a_guard_is_an_entry_point(tmp_path: Path) -> None:
    """pytorch/examples' dcgan/main.py: top-level code, no guard, imported by nothing."""
    root = write_project(tmp_path, {
        "dcgan/main.py": ("import random\nimport torch\nseed = random.randint(1, 10000)\n"
                          "random.seed(seed)\ntorch.manual_seed(seed)\nprint(seed)\n"),
        "imagenet/main.py": script("import random\nrandom.seed(0)"),
    })
    (finding,) = found(audit(root), "RL406")
    assert (finding.path, finding.line) == ("dcgan/main.py", 4)


def test_config_driven_code_may_run_any_module(tmp_path: Path) -> None:
    """hydra.utils.instantiate loads modules named in the config: the seeded entry point
    covers them, and a module's own smoke-test guard is not a program of its own."""
    root = write_project(tmp_path, {
        "src/train.py": script("import hydra\nimport lightning as L\nL.seed_everything(1)\n"
                               "data = hydra.utils.instantiate({})"),
        "src/data.py": ("import torch\nfrom torch.utils.data import DataLoader\n\n"
                        "def loader(ds):\n    return DataLoader(ds, num_workers=4)\n\n\n"
                        + GUARD.replace("main()", "loader([])")),
    })
    rules = {f.rule for f in audit(root).active}
    assert not rules & {"RL403", "RL411"}, rules


def test_what_counts_as_a_test() -> None:
    assert all(map(is_test, ["tests/a.py", "test/a.py", "test_a.py", "a_test.py",
                             "conftest.py", "pkg/tests/util.py"]))
    assert not any(map(is_test, ["train.py", "testing.py", "contest.py", "latest/a.py"]))
