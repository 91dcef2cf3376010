"""RL4xx: training code that makes runs unrepeatable, read from the one-pass index.

Seeding and determinism are judged per program (``reprolock.audit.entrypoints``): a
seed set in ``utils/seed.py`` covers the generator used in ``train.py`` when
``train.py`` imports it, and a seed in another script or a test does not. These rules ask
"is it set anywhere in this entry point or what it imports?" and report once per entry
point, in its file (at the first use there, else at its ``__main__`` guard), saying how
many more uses there are. A project without entry points is judged as a whole, a library
not at all (its caller seeds).
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from reprolock.audit.context import AuditContext
from reprolock.audit.entrypoints import EntryPoint, Unit, units
from reprolock.audit.model import Finding, Severity
from reprolock.audit.pyindex import (
    DOWNLOAD_CALLS,
    NUMPY_NOT_GLOBAL,
    RANDOM_FUNCS,
    SEED_CALLS,
    SEED_KEYWORD_CALLS,
    CallSite,
    FileFacts,
)

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_CHECKPOINT = re.compile(r"(^|/)checkpoint-[0-9]+/?$")  # the Trainer's checkpoint folders
_JAX_KEY_FUNCS = frozenset({"PRNGKey", "key", "split", "fold_in", "key_data",
                            "wrap_key_data", "clone", "key_impl"})
# helpers that seed several generators at once → which ones
_SEED_HELPERS: dict[str, frozenset[str]] = {
    **dict.fromkeys(("lightning.seed_everything", "lightning.pytorch.seed_everything",
                     "pytorch_lightning.seed_everything", "lightning.fabric.seed_everything",
                     "lightning_fabric.seed_everything", "transformers.set_seed",
                     "transformers.trainer_utils.set_seed",
                     "transformers.enable_full_determinism",
                     "transformers.trainer_utils.enable_full_determinism",
                     "accelerate.utils.set_seed"),
                    frozenset({"random", "numpy", "torch"})),
    **dict.fromkeys(("tensorflow.keras.utils.set_random_seed", "keras.utils.set_random_seed",
                     "tf_keras.utils.set_random_seed", "keras.src.utils.set_random_seed"),
                    frozenset({"random", "numpy", "tensorflow", "keras"})),
    "random.seed": frozenset({"random"}),
    "numpy.random.seed": frozenset({"numpy"}),
    "torch.manual_seed": frozenset({"torch"}),
    "torch.random.manual_seed": frozenset({"torch"}),
    "tensorflow.random.set_seed": frozenset({"tensorflow"}),
    "tensorflow.compat.v1.set_random_seed": frozenset({"tensorflow"}),
    "jax.random.PRNGKey": frozenset({"jax"}),
    "jax.random.key": frozenset({"jax"}),
}
# TensorFlow used only to write TensorBoard events or to export a model trains nothing:
# a file whose every TensorFlow call is one of these is not TensorFlow training
_TF_TOOLING = ("tensorflow.summary.", "tensorflow.compat.v1.summary.",
               "tensorflow.compat.v2.summary.", "tensorflow.io.", "tensorflow.compat.v1.io.",
               "tensorflow.saved_model.", "tensorflow.compat.v1.saved_model.",
               "tensorflow.lite.", "tensorflow.python.summary.", "tensorflow.core.",
               "tensorflow.train.summary_iterator", "tensorflow.compat.v1.train."
               "summary_iterator", "tensorflow.Summary", "tensorflow.compat.v1.Summary",
               "tensorflow.compat.v1.Event", "tensorflow.TensorSpec", "tensorflow.function",
               "tensorflow.constant", "tensorflow.convert_to_tensor", "tensorflow.Module",
               "tensorflow.config.set_visible_devices", "tensorflow.config.experimental."
               "set_memory_growth", "tensorflow.config.list_physical_devices",
               "tensorflow.config.experimental.set_visible_devices", "tensorflow.make_"
               "tensor_proto", "tensorflow.compat.v1.enable_eager_execution")
# an input pipeline (tf.data, decoding, augmenting on the CPU) runs no GPU kernels, so
# op determinism (RL412) is not its concern; its random ops still need a seed (RL404)
_TF_PIPELINE = (*_TF_TOOLING, "tensorflow.data.", "tensorflow.image.", "tensorflow.io.",
                "tensorflow.random.", "tensorflow.strings.", "tensorflow.cast",
                "tensorflow.reshape", "tensorflow.shape", "tensorflow.stack",
                "tensorflow.unstack", "tensorflow.concat", "tensorflow.squeeze",
                "tensorflow.expand_dims", "tensorflow.clip_by_value", "tensorflow.py_function",
                "tensorflow.numpy_function", "tensorflow.one_hot", "tensorflow.range",
                "tensorflow.zeros", "tensorflow.ones", "tensorflow.where", "tensorflow.round",
                "tensorflow.minimum", "tensorflow.maximum", "tensorflow.sequence_mask",
                "tensorflow.cond", "tensorflow.equal", "tensorflow.not_equal",
                "tensorflow.greater", "tensorflow.less", "tensorflow.logical_",
                "tensorflow.reduce_", "tensorflow.math.", "tensorflow.pad", "tensorflow.gather",
                "tensorflow.transpose", "tensorflow.tile")
_TF_DATA_DETERMINISM = frozenset({"tensorflow.data.Options().experimental_deterministic",
                                  "tensorflow.data.Options().deterministic"})
_TRAINERS = frozenset({"lightning.Trainer", "lightning.pytorch.Trainer",
                       "pytorch_lightning.Trainer"})
# Hugging Face trainers call set_seed(args.seed) (default 42) when they are made, or
# enable_full_determinism(args.seed) with TrainingArguments(full_determinism=True)
_HF_TRAINERS = frozenset({
    "transformers.Trainer", "transformers.Seq2SeqTrainer", "transformers.trainer.Trainer",
    "transformers.trainer_seq2seq.Seq2SeqTrainer", "trl.SFTTrainer", "trl.DPOTrainer",
    "trl.RewardTrainer", "trl.GRPOTrainer"})
_FULL_DETERMINISM = frozenset({"transformers.enable_full_determinism",
                               "transformers.trainer_utils.enable_full_determinism"})
_DATALOADERS = frozenset({"torch.utils.data.DataLoader",
                          "torch.utils.data.dataloader.DataLoader"})
_HF_ROOTS = frozenset({"transformers", "diffusers", "peft", "sentence_transformers",
                       "huggingface_hub", "datasets", "timm", "optimum", "accelerate",
                       "evaluate"})
_HF_DOWNLOADS = frozenset({"huggingface_hub.hf_hub_download", "huggingface_hub.snapshot_download",
                           "huggingface_hub.file_download.hf_hub_download",
                           "datasets.load_dataset", "evaluate.load"})
# the argument that names the repository, where it is not repo_id (evaluate.load(path,
# config_name, ..., revision=) fetches the metric's Space from the Hub)
_HF_NAME_ARGUMENT = {"datasets.load_dataset": "path", "evaluate.load": "path"}
_LOCAL_DATASET_BUILDERS = frozenset({"csv", "json", "parquet", "text", "arrow", "pandas",
                                     "imagefolder", "audiofolder", "webdataset", "sql"})
# downloads that always save a file; the others (urlopen, requests, httpx) return a
# response, which is a download only if its bytes are used or saved (not .json()/.text)
_SAVING_DOWNLOADS = frozenset({"urllib.request.urlretrieve", "wget.download",
                               "gdown.download"})
_BYTES_ATTRIBUTES = frozenset({"content", "raw", "iter_content", "iter_bytes", "iter_raw",
                               "aiter_bytes", "aiter_raw", "read", "readinto"})
_WRITERS = frozenset({"write", "write_bytes", "write_text", "writelines", "copyfileobj"})
_HELPER_DOWNLOADS = {  # helper → the arguments that carry its checksum
    "torchvision.datasets.utils.download_url": ("md5",),
    "torchvision.datasets.utils.download_and_extract_archive": ("md5",),
    "torchvision.datasets.utils.download_file_from_google_drive": ("md5",),
    "tensorflow.keras.utils.get_file": ("file_hash",),
    "keras.utils.get_file": ("file_hash",),
    "gdown.cached_download": ("hash", "md5"),
}
# an expression naming a model that is a local folder, not a Hub repository
_LOCAL_HINTS = ("output", "checkpoint", "ckpt", "save", "local", "cache")
_PATH_BUILDERS = frozenset({"join", "Path", "PurePath", "PosixPath", "abspath", "realpath",
                            "expanduser", "resolve"})


@dataclass(frozen=True)
class _Site:
    path: str
    line: int
    column: int
    what: str


@dataclass(frozen=True)
class _Project:
    """What the whole code set does, computed once for every rule."""

    seeded: frozenset[str]  # generators seeded somewhere, by a seed that is not the clock
    # generators seeded from the clock or an unseeded draw: RL406 reports them, so the
    # "never seeded" rules stay silent (one root cause, one finding)
    badly_seeded: frozenset[str]
    workers_seeded: bool  # torch's base seed is fixed, so DataLoader workers are seeded
    asks_determinism: tuple[tuple[FileFacts, CallSite], ...]
    cudnn_deterministic: tuple[_Site, ...]  # torch.backends.cudnn.deterministic = True
    full_determinism_helper: bool  # transformers' full determinism does it all
    local_dirs: frozenset[str]  # folders the code saves models to (output_dir=, save_*)
    verifying_functions: frozenset[str]  # functions that check a digest (hashlib)


@dataclass(frozen=True)
class _Program:
    """One entry point with what it imports: the context seen through its files."""

    entry: EntryPoint | None
    ctx: AuditContext
    project: _Project


def check(ctx: AuditContext) -> Iterator[Finding]:
    project = _summarize(ctx.python)
    programs = [_program(ctx, unit) for unit in units(ctx)]
    for rule in _RULES:
        yield from rule(ctx, project)
    for program in programs:
        for program_rule in _PROGRAM_RULES:
            yield from program_rule(program.ctx, program.project, program.entry)
    yield from _check_clock_seeds(ctx, project, programs)
    yield from _check_dataloaders(ctx, programs)


def _program(ctx: AuditContext, unit: Unit) -> _Program:
    return _Program(unit.entry, dataclasses.replace(ctx, python=unit.files),
                    _summarize(unit.files))


def _summarize(files: Iterable[FileFacts]) -> _Project:
    seeds = _Seeds()
    asks: list[tuple[FileFacts, CallSite]] = []
    cudnn: list[_Site] = []
    local_dirs: set[str] = set()
    verifying: set[str] = set()
    helper = False
    for facts in files:
        seeds.hf_trainer |= not _HF_TRAINERS.isdisjoint(facts.subclassed)
        verifying |= facts.verifying_functions
        for call in facts.calls:
            seeds.note(call)
            if _asks_determinism(call):
                asks.append((facts, call))
            helper |= call.name in _FULL_DETERMINISM
            if call.name in SEED_KEYWORD_CALLS:
                helper |= _constant(_argument(call.node, 99, "full_determinism")) is True
            local_dirs.update(_saved_to(call))
        cudnn += [_Site(facts.path, s.line, s.column, s.name) for s in facts.attribute_sets
                  if s.name == "torch.backends.cudnn.deterministic"
                  and _constant(s.value) is True]
    seeded = seeds.seeded()
    return _Project(seeded, frozenset(seeds.bad - seeded),
                    "torch" in seeded or seeds.hf_arguments_seed, tuple(asks), tuple(cudnn),
                    helper, frozenset(local_dirs), frozenset(verifying))


class _Seeds:
    """What the seeding calls of the project seed, read call by call."""

    def __init__(self) -> None:
        self.good: set[str] = set()
        self.bad: set[str] = set()  # from the clock, or from an unseeded draw
        self.drawn: list[tuple[frozenset[str], frozenset[str]]] = []  # (from, covers)
        self.hf_trainer = self.hf_clock_seed = self.hf_arguments_seed = False

    def note(self, call: CallSite) -> None:
        covers = _SEED_HELPERS.get(call.name)
        self.hf_trainer |= call.name in _HF_TRAINERS
        if call.name in SEED_KEYWORD_CALLS:
            self.hf_clock_seed |= call.clock_seeded
            seed = _argument(call.node, 99, "seed")
            # TrainingArguments(seed=S) is what the Trainer's DataLoaders seed workers by
            self.hf_arguments_seed |= seed is not None and not call.clock_seeded \
                and _constant(seed) is not None
        if not covers:
            return
        if call.clock_seeded:
            self.bad |= covers
        elif call.drawn_from:
            self.drawn.append((call.drawn_from, covers))
        elif call.node.args or call.node.keywords:
            self.good |= covers

    def seeded(self) -> frozenset[str]:
        """A seed drawn from a generator is a seed only if that generator is seeded."""
        good = set(self.good)
        if self.hf_trainer and not self.hf_clock_seed:  # Trainer() calls set_seed(seed)
            good |= {"random", "numpy", "torch"}
        changed = True
        while changed:
            changed = False
            for sources, covers in self.drawn:
                if sources <= good and not covers <= good:
                    good |= covers
                    changed = True
        self.bad |= {g for sources, covers in self.drawn if not sources <= good
                     for g in covers}
        return frozenset(good)


def _saved_to(call: CallSite) -> list[str]:
    """The constant folder a call writes a model to: TrainingArguments(output_dir=...),
    model.save_pretrained(...), trainer.save_model(...)."""
    if call.name in SEED_KEYWORD_CALLS:
        folder = _constant(_argument(call.node, 0, "output_dir"))
    elif call.name.endswith((".save_pretrained", ".save_model")):
        folder = _constant(_argument(call.node, 0, "save_directory")
                           or _argument(call.node, 99, "output_dir"))
    else:
        return []
    return [_relative(folder)] if isinstance(folder, str) and _relative(folder) else []


def _relative(path: str) -> str:
    while path.startswith("./"):
        path = path[2:]
    return path.rstrip("/")


def _asks_determinism(call: CallSite) -> bool:
    if call.name == "torch.use_deterministic_algorithms":
        return _constant(_argument(call.node, 0, "mode")) not in (False, 0)
    if call.name in _TRAINERS:
        return _constant(_argument(call.node, 99, "deterministic")) in (True, "warn")
    return False


# --- seeds (RL401-RL406) --------------------------------------------------------------
def _first(entry: EntryPoint | None, rule: str, severity: Severity, sites: list[_Site],
           message: Callable[[_Site], str]) -> Iterator[Finding]:
    """One finding for the program, counting the other uses: at the first use in the
    entry point's file, else at the entry point's guard (so that the finding, and a
    suppression comment on its line, stay put when other files change); without entry
    points, at the first use in the project."""
    if not sites:
        return
    sites.sort(key=lambda s: (s.path != (entry.path if entry else s.path), s.path, s.line,
                              s.column))
    site = sites[0]
    more = len(sites) - 1
    files = len({s.path for s in sites[1:]})  # where the other uses are
    tail = f" ({more} more use{'s' * (more != 1)} in {files} file{'s' * (files != 1)})" \
        if more else ""
    if entry is None:
        yield Finding(rule, severity, site.path, site.line, message(site) + tail,
                      column=site.column + 1)
        return
    judged = f" (judged for the entry point {entry.path}, a {entry.kind}, and the project " \
        "modules it imports)"
    if site.path == entry.path:
        yield Finding(rule, severity, site.path, site.line, message(site) + tail + judged,
                      column=site.column + 1)
    else:
        yield Finding(rule, severity, entry.path, entry.line, message(site) + judged +
                      f"; first use at {site.path}:{site.line}{tail}")


def _calls(ctx: AuditContext, keep: Callable[[CallSite], bool]) -> list[_Site]:
    return [_Site(f.path, c.node.lineno, c.node.col_offset, _short(c.name))
            for f in ctx.python for c in f.calls if keep(c)]


def _imports(ctx: AuditContext, *modules: str) -> list[_Site]:
    return [_Site(s.path, s.line, 0, s.module) for f in ctx.python for s in f.imports
            if s.module in modules and not s.optional]


def _check_random_instances(ctx: AuditContext, project: _Project) -> Iterator[Finding]:
    for facts in ctx.python:
        for call in facts.calls:
            if call.name == "random.Random" and not (call.node.args or call.node.keywords):
                yield _at(facts, call, "RL401", "random.Random() without a seed is seeded "
                          "from the OS on every run; pass a seed")


def _check_random(ctx: AuditContext, project: _Project,
                  entry: EntryPoint | None) -> Iterator[Finding]:
    if "random" in project.seeded or "random" in project.badly_seeded:
        return
    uses = _calls(ctx, lambda c: c.name.startswith("random.")
                  and c.name[len("random."):] in RANDOM_FUNCS)
    yield from _first(entry, "RL401", Severity.ERROR, uses, lambda s: (
        f"{s.what}() draws from Python's global generator, but random.seed() is never "
        "called with a seed"))


def _check_numpy_instances(ctx: AuditContext, project: _Project) -> Iterator[Finding]:
    for facts in ctx.python:
        for call in facts.calls:
            if call.name in ("numpy.random.default_rng", "numpy.random.RandomState") \
                    and not (call.node.args or call.node.keywords):
                yield _at(facts, call, "RL402", f"{_short(call.name)}() without a seed draws "
                          "fresh OS entropy on every run (numpy.random.seed does not seed "
                          "it); pass a seed")


def _check_numpy(ctx: AuditContext, project: _Project,
                 entry: EntryPoint | None) -> Iterator[Finding]:
    if "numpy" in project.seeded or "numpy" in project.badly_seeded:
        return
    uses = _calls(ctx, lambda c: c.name.startswith("numpy.random.")
                  and c.name.count(".") == 2
                  and c.name.rsplit(".", 1)[1] not in NUMPY_NOT_GLOBAL)
    yield from _first(entry, "RL402", Severity.ERROR, uses, lambda s: (
        f"{s.what}() draws from NumPy's global generator, but numpy.random.seed() is never "
        "called"))


def _check_torch(ctx: AuditContext, project: _Project,
                 entry: EntryPoint | None) -> Iterator[Finding]:
    if "torch" in project.seeded or "torch" in project.badly_seeded:
        return
    yield from _first(entry, "RL403", Severity.ERROR, _imports(ctx, "torch"), lambda s: (
        "torch is imported, but torch.manual_seed() is never called: weights, dropout and "
        "shuffling differ on every run"))


def _check_tensorflow(ctx: AuditContext, project: _Project,
                      entry: EntryPoint | None) -> Iterator[Finding]:
    if "tensorflow" in project.seeded or "tensorflow" in project.badly_seeded:
        return
    yield from _first(entry, "RL404", Severity.ERROR, _tf_training(ctx, _TF_TOOLING),
                      lambda s: (
        "TensorFlow is imported, but no global seed is set (tf.keras.utils.set_random_seed)"))


def _tf_training(ctx: AuditContext, besides: tuple[str, ...]) -> list[_Site]:
    """Imports of TensorFlow in the files that call more of it than the ``besides``
    prefixes (a file that imports it and calls nothing of it counts: it may pass tf
    around)."""
    sites = []
    for facts in ctx.python:
        imports = [s for s in facts.imports if s.module == "tensorflow" and not s.optional]
        if imports and not _tf_only(facts, besides):
            sites += [_Site(s.path, s.line, 0, s.module) for s in imports]
    return sites


def _tf_only(facts: FileFacts, prefixes: tuple[str, ...]) -> bool:
    used = [c.name for c in facts.calls if c.name.startswith("tensorflow.")]
    return bool(used) and all(name.startswith(prefixes) for name in used)


def _check_jax(ctx: AuditContext, project: _Project,
               entry: EntryPoint | None) -> Iterator[Finding]:
    if "jax" in project.seeded or "jax" in project.badly_seeded:
        return
    uses = _calls(ctx, lambda c: c.name.startswith("jax.random.")
                  and c.name.rsplit(".", 1)[1] not in _JAX_KEY_FUNCS)
    yield from _first(entry, "RL405", Severity.ERROR, uses, lambda s: (
        f"{s.what}() draws with a key, but no key is made from a seed (jax.random.key(SEED)) "
        "anywhere in the project"))


def _check_keras(ctx: AuditContext, project: _Project,
                 entry: EntryPoint | None) -> Iterator[Finding]:
    """Keras 3 (``import keras``, any backend) training without its global seed."""
    if "keras" in project.seeded or "keras" in project.badly_seeded:
        return
    fits = [_Site(f.path, c.node.lineno, c.node.col_offset, "fit") for f in ctx.python
            if any(s.module == "keras" and not s.optional for s in f.imports)
            for c in f.calls if c.name in ("?.fit", "keras.Model.fit")]
    yield from _first(entry, "RL416", Severity.ERROR, fits, lambda s: (
        "a Keras model is trained (.fit), but keras.utils.set_random_seed() is never called: "
        "weights, dropout and shuffling differ on every run"))


def _check_clock_seeds(ctx: AuditContext, project: _Project,
                       programs: list[_Program]) -> Iterator[Finding]:
    """One finding per function: ``seed = time.time()`` handed to three seeding calls
    is one root cause. A seed drawn from a generator is judged in each program that runs
    it: ``random.seed(random.randint(...))`` is no seed where nothing seeds random first."""
    unseeded = _drawn_unseeded(ctx, project, programs)
    for facts in ctx.python:
        by_scope: dict[int, list[CallSite]] = {}
        for call in facts.calls:
            if call.clock_seeded or (id(call) in unseeded and call.name in SEED_CALLS):
                by_scope.setdefault(call.scope, []).append(call)
        for calls in by_scope.values():
            first, more = calls[0], len(calls) - 1
            tail = f" ({more} more seeding call{'s' * (more != 1)} here)" if more else ""
            yield _at(facts, first, "RL406", _clock_message(first, unseeded) + tail)


def _drawn_unseeded(ctx: AuditContext, project: _Project,
                    programs: list[_Program]) -> dict[int, frozenset[str]]:
    """Seeding calls (by id) fed by draws from generators some program never seeds; a
    library (no program) is judged against its own seeds."""
    judged = [(p.ctx.python, p.project) for p in programs] or [(ctx.python, project)]
    unseeded: dict[int, frozenset[str]] = {}
    for files, seeds in judged:
        for facts in files:
            for call in facts.calls:
                if call.drawn_from - seeds.seeded:
                    unseeded[id(call)] = unseeded.get(id(call), frozenset()) \
                        | (call.drawn_from - seeds.seeded)
    return unseeded


def _clock_message(call: CallSite, unseeded_by_call: dict[int, frozenset[str]]) -> str:
    if call.clock_seeded:
        return (f"{_short(call.name)}() is seeded from the clock or the OS, so the run "
                "cannot be repeated; use a fixed seed")
    unseeded = sorted(unseeded_by_call[id(call)])
    return (f"{_short(call.name)}() is seeded by a draw from {' and '.join(unseeded)}'s "
            "generator, which is never seeded: the seed differs on every run; use a fixed "
            "seed")


# --- determinism (RL407-RL412) ----------------------------------------------------------
def _constant(node: ast.expr | None) -> object:
    return node.value if isinstance(node, ast.Constant) else ...


def _argument(call: ast.Call, index: int, name: str) -> ast.expr | None:
    if len(call.args) > index:
        return call.args[index]
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def _check_cudnn_benchmark(ctx: AuditContext, project: _Project) -> Iterator[Finding]:
    for facts in ctx.python:
        for setting in facts.attribute_sets:
            value = _constant(setting.value)
            # only a constant that is true: a computed value gets the benefit of the doubt
            if setting.name == "torch.backends.cudnn.benchmark" and value is not ... \
                    and bool(value):
                yield Finding("RL407", Severity.ERROR, facts.path, setting.line,
                              "torch.backends.cudnn.benchmark is switched on: cuDNN picks "
                              "its algorithms by timing, so results differ between runs",
                              column=setting.column + 1)


def _check_torch_determinism(ctx: AuditContext, project: _Project,
                             entry: EntryPoint | None) -> Iterator[Finding]:
    """use_deterministic_algorithms(True) covers cuDNN too; cudnn.deterministic = True
    alone covers only cuDNN's convolutions, so it gets a message of its own."""
    if project.asks_determinism or project.full_determinism_helper:
        return
    if project.cudnn_deterministic:
        yield from _first(entry, "RL408", Severity.WARNING, list(project.cudnn_deterministic),
                          lambda s: "torch.backends.cudnn.deterministic = True makes only "
                          "cuDNN's convolutions deterministic, and "
                          "torch.use_deterministic_algorithms(True) is never called: other "
                          "CUDA kernels (scatter, index_add, ...) stay nondeterministic")
        return
    yield from _first(entry, "RL408", Severity.WARNING, _imports(ctx, "torch"), lambda s:
                      "torch is imported, but torch.use_deterministic_algorithms(True) is never "
                      "called (nor torch.backends.cudnn.deterministic = True set)")


def _check_determinism_disabled(ctx: AuditContext, project: _Project) -> Iterator[Finding]:
    for facts in ctx.python:
        for call in facts.calls:
            if call.name == "torch.use_deterministic_algorithms" \
                    and _constant(_argument(call.node, 0, "mode")) in (False, 0):
                yield _at(facts, call, "RL409", "torch.use_deterministic_algorithms(False) "
                          "switches nondeterministic kernels back on", Severity.WARNING)
        for setting in facts.attribute_sets:
            if setting.name == "torch.backends.cudnn.deterministic" \
                    and _constant(setting.value) is False:
                yield Finding("RL409", Severity.WARNING, facts.path, setting.line,
                              "torch.backends.cudnn.deterministic = False switches "
                              "nondeterministic cuDNN kernels back on",
                              column=setting.column + 1)
            elif setting.name in _TF_DATA_DETERMINISM and _constant(setting.value) is False:
                yield Finding("RL409", Severity.WARNING, facts.path, setting.line,
                              f"tf.data.Options().{setting.name.rsplit('.', 1)[1]} = False "
                              "lets tf.data return elements in any order (parallel map and "
                              "interleave), so batches differ between runs",
                              column=setting.column + 1)


def _check_cublas(ctx: AuditContext, project: _Project,
                  entry: EntryPoint | None) -> Iterator[Finding]:
    if not project.asks_determinism or project.full_determinism_helper \
            or "CUBLAS_WORKSPACE_CONFIG" in ctx.environment_names():
        return
    if not any(facts.mentions_cuda for facts in ctx.python):
        return  # CPU only: cuBLAS is never used
    facts, call = project.asks_determinism[0]
    yield _at(facts, call, "RL410", "deterministic algorithms are asked for and CUDA is used, "
              "but CUBLAS_WORKSPACE_CONFIG is not set (in code, [image] env or a Dockerfile "
              "ENV): cuBLAS raises or stays nondeterministic", Severity.WARNING)


def _check_dataloaders(ctx: AuditContext, programs: list[_Program]) -> Iterator[Finding]:
    """A DataLoader is judged in the programs that run its file: its workers are seeded
    when one of them fixes torch's seed (a program that does not is RL403's finding)."""
    run = {f.path for p in programs for f in p.ctx.python}
    seeded = {f.path for p in programs for f in p.ctx.python
              if p.project.workers_seeded or "torch" in p.project.badly_seeded}
    for facts in ctx.python:
        if facts.path not in run or facts.path in seeded:
            continue  # workers seed random, NumPy and torch from torch's base seed
            # (a clock seed of torch is RL406's: one root cause, one finding)
        for call in facts.calls:
            if call.name not in _DATALOADERS or _has_splat(call.node):
                continue
            workers = _argument(call.node, 5, "num_workers")
            if workers is None or _constant(workers) == 0:
                continue
            named = {k.arg for k in call.node.keywords if _constant(k.value) is not None}
            if not named & {"worker_init_fn", "generator"}:
                yield _at(facts, call, "RL411", "DataLoader with num_workers > 0 has neither "
                          "worker_init_fn nor generator, and torch's seed is not fixed: worker "
                          "random state differs between runs", Severity.WARNING)


def _check_tensorflow_determinism(ctx: AuditContext, project: _Project,
                                  entry: EntryPoint | None) -> Iterator[Finding]:
    enabled = any(c.name.endswith("config.experimental.enable_op_determinism")
                  or c.name.endswith("config.enable_op_determinism")
                  for f in ctx.python for c in f.calls)
    if enabled or "TF_DETERMINISTIC_OPS" in ctx.environment_names():
        return
    yield from _first(entry, "RL412", Severity.WARNING, _tf_training(ctx, _TF_PIPELINE), lambda s:
                      "TensorFlow is imported, but tf.config.experimental."
                      "enable_op_determinism() is never called")


# --- downloads (RL413-RL415) ------------------------------------------------------------
def _check_downloads(ctx: AuditContext, project: _Project) -> Iterator[Finding]:
    for facts in ctx.python:
        views: dict[int, _ScopeView] = {}
        for call in facts.calls:
            if call.name in DOWNLOAD_CALLS:
                view = views.get(call.scope)
                if view is None:
                    view = views[call.scope] = _ScopeView(facts.download_scopes[call.scope])
                if call.name not in _SAVING_DOWNLOADS and not view.bytes_used(call.node):
                    continue  # an API call (.json(), .text): no file to check
                if call.scope in facts.verifying_scopes \
                        or view.checks_digest(project.verifying_functions):
                    continue
                yield _at(facts, call, "RL413", f"{_short(call.name)}() downloads without "
                          "checking a checksum (hashlib, or a comparison of digests) in the "
                          "same function", Severity.WARNING)
            elif call.name in _HELPER_DOWNLOADS and all(
                    _missing(_argument(call.node, 99, name))
                    for name in _HELPER_DOWNLOADS[call.name]):
                yield _at(facts, call, "RL413", f"{_short(call.name)}() without "
                          f"{_HELPER_DOWNLOADS[call.name][0]}= does not check what it "
                          "downloads", Severity.WARNING)


class _ScopeView:
    """One function (or a module's top level) that downloads: who each node's parent
    is and what names hold each response. Only scopes that download are looked at again,
    so the one-pass index stays one pass for everything else."""

    def __init__(self, scope: ast.AST) -> None:
        self.parents: dict[ast.AST, ast.AST] = {}
        self.names: dict[str, list[ast.Name]] = {}  # loads of each name
        self.bound: dict[ast.Call, set[str]] = {}  # a call → the names it is bound to
        self.nodes: list[ast.AST] = []
        stack: list[ast.AST] = []
        if isinstance(scope, ast.Lambda):
            stack.append(scope.body)
        elif isinstance(scope, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef):
            stack += scope.body
        for node in stack:
            self.parents[node] = scope
        while stack:
            node = stack.pop()
            self.nodes.append(node)
            self._note(node)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue  # another scope
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
                stack.append(child)

    def _note(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            self.names.setdefault(node.id, []).append(node)
        elif isinstance(node, ast.Assign | ast.AnnAssign) \
                and isinstance(node.value, ast.Call):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            self.bound.setdefault(node.value, set()).update(
                t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.withitem) and isinstance(node.context_expr, ast.Call) \
                and isinstance(node.optional_vars, ast.Name):
            self.bound.setdefault(node.context_expr, set()).add(node.optional_vars.id)

    def bytes_used(self, call: ast.Call) -> bool:
        """The response of ``call`` is read as bytes or written to a file."""
        uses: list[ast.expr] = [call]
        for name in self.bound.get(call, ()):
            uses += self.names.get(name, [])
        return any(self._as_bytes(use) for use in uses)

    def _as_bytes(self, use: ast.expr) -> bool:
        parent = self.parents.get(use)
        if isinstance(parent, ast.Attribute) and parent.attr in _BYTES_ATTRIBUTES \
                and not (parent.attr == "read" and self._decoded(parent)):
            return True  # r.content, r.iter_content(), r.raw, response.read()
        node: ast.AST = use
        while (parent := self.parents.get(node)) is not None \
                and not isinstance(parent, ast.stmt):
            if isinstance(parent, ast.Call) and node is not parent.func \
                    and _callee(parent.func) in _WRITERS:
                return True  # f.write(r.text), shutil.copyfileobj(response, f)
            node = parent
        return False

    def _decoded(self, read: ast.Attribute) -> bool:
        """``response.read().decode()`` or ``json.loads(response.read())``: text."""
        call = self.parents.get(read)
        outer = self.parents.get(call) if isinstance(call, ast.Call) else None
        if isinstance(outer, ast.Attribute):
            return outer.attr == "decode"
        return isinstance(outer, ast.Call) and _callee(outer.func) in ("loads", "load")

    def checks_digest(self, verifying_functions: frozenset[str]) -> bool:
        """A digest compared (``h.hexdigest() != SHA256``) or a checking helper called."""
        for node in self.nodes:
            if isinstance(node, ast.Compare) and any(
                    isinstance(inner, ast.Call) and _callee(inner.func) in ("hexdigest",
                                                                            "digest")
                    for operand in (node.left, *node.comparators)
                    for inner in ast.walk(operand)):
                return True
            if isinstance(node, ast.Call) and _callee(node.func) in verifying_functions:
                return True
        return False


def _callee(func: ast.expr) -> str:
    """The last name of a callee: ``f.write`` → ``write``."""
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _missing(node: ast.expr | None, *falsy: object) -> bool:
    """No argument, or a constant None (or one of ``falsy``)."""
    return node is None or _constant(node) in (None, *falsy)


def _check_torch_hub(ctx: AuditContext, project: _Project) -> Iterator[Finding]:
    for facts in ctx.python:
        for call in facts.calls:
            message = _torch_hub_problem(call)
            if message:
                yield _at(facts, call, "RL414", message)


def _torch_hub_problem(call: CallSite) -> str | None:
    node = call.node
    if call.name == "torch.hub.load_state_dict_from_url":
        if _missing(_argument(node, 4, "check_hash"), False):
            return "torch.hub.load_state_dict_from_url() without check_hash=True accepts " \
                   "any bytes"
    elif call.name == "torch.hub.download_url_to_file":
        if _missing(_argument(node, 2, "hash_prefix"), ""):
            return "torch.hub.download_url_to_file() without hash_prefix accepts any bytes"
    elif call.name == "torch.hub.load":
        repo = _constant(_argument(node, 0, "repo_or_dir"))
        source = _constant(_argument(node, 99, "source"))
        if isinstance(repo, str) and source != "local":
            _, _, ref = repo.partition(":")
            if not _COMMIT.match(ref):
                return f"torch.hub.load('{repo}') follows a branch or tag; pin " \
                       "'owner/repo:<40-hex commit>'"
    return None


def _check_huggingface(ctx: AuditContext, project: _Project) -> Iterator[Finding]:
    for facts in ctx.python:
        uses_hf = any(site.module in _HF_ROOTS for site in facts.imports)
        for call in facts.calls:
            downloads, repository = _hf_download(call, uses_hf)
            if not downloads or _pinned_revision(call.node):
                continue
            value = _constant(repository)
            if isinstance(value, str):
                if not _local_folder(value, ctx, project):
                    yield _at(facts, call, "RL415", f"{_short(call.name)}() without "
                              "revision= set to a commit id fetches whatever the repository's "
                              "branch holds today")
            elif repository is not None and value is ... and not _local_expression(repository):
                yield _at(facts, call, "RL415", f"{_short(call.name)}() loads a name computed "
                          "at run time, so the audit cannot tell a local folder from a Hub "
                          "repository: if it is a repository, pass revision= set to a commit "
                          "id", Severity.WARNING)


def _hf_download(call: CallSite, uses_hf: bool) -> tuple[bool, ast.expr | None]:
    """Whether ``call`` may fetch from the Hub, and the argument naming what it fetches."""
    node = call.node
    if call.name in _HF_DOWNLOADS:
        first = _argument(node, 0, _HF_NAME_ARGUMENT.get(call.name, "repo_id"))
        local = call.name == "datasets.load_dataset" \
            and _constant(first) in _LOCAL_DATASET_BUILDERS
        return not local, first
    if not call.name.endswith(".from_pretrained"):
        return False, None
    hf = call.name.split(".")[0] in _HF_ROOTS or (call.name == "?.from_pretrained" and uses_hf)
    if not hf or _constant(_argument(node, 99, "local_files_only")) is True:
        return False, None
    if call.name.startswith("peft.PeftModel"):  # PeftModel.from_pretrained(model, model_id)
        return True, _argument(node, 1, "model_id")
    return True, _argument(node, 0, "pretrained_model_name_or_path")


def _local_folder(name: str, ctx: AuditContext, project: _Project) -> bool:
    """A Hub id is ``name`` or ``org/name``; a path, a folder of the project, a folder
    the code saves to, or a Trainer checkpoint is local."""
    if name.startswith(("/", "./", "../", "~", ".\\")) or "\\" in name \
            or name.count("/") > 1 or _CHECKPOINT.search(name):
        return True
    relative = _relative(name)
    if any(relative == d or relative.startswith(d + "/") for d in project.local_dirs):
        return True
    try:
        return (ctx.root / relative).exists() \
            or ("/" in relative and (ctx.root / relative.split("/")[0]).is_dir())
    except (OSError, ValueError):
        return False


def _local_expression(node: ast.expr) -> bool:
    """``args.output_dir``, ``os.path.join(...)``, ``Path(...) / "best"``, an f-string
    naming a checkpoint: a folder, not a Hub id."""
    for inner in ast.walk(node):
        if isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Div):
            return True
        if isinstance(inner, ast.Call) and _callee(inner.func) in _PATH_BUILDERS:
            return True
        word = (inner.id if isinstance(inner, ast.Name)
                else inner.attr if isinstance(inner, ast.Attribute)
                else inner.value if isinstance(inner, ast.Constant)
                and isinstance(inner.value, str) else "")
        if any(hint in word.lower() for hint in _LOCAL_HINTS):
            return True
    return False


def _pinned_revision(node: ast.Call) -> bool:
    revision = _argument(node, 99, "revision")
    if revision is None:
        return _has_splat(node)  # revision may come in **kwargs
    value = _constant(revision)
    return value is ... or (isinstance(value, str) and bool(_COMMIT.match(value)))


# --- helpers ----------------------------------------------------------------------------
def _at(facts: FileFacts, call: CallSite, rule: str, message: str,
        severity: Severity = Severity.ERROR) -> Finding:
    return Finding(rule, severity, facts.path, call.node.lineno, message,
                   column=call.node.col_offset + 1)


def _has_splat(node: ast.Call) -> bool:
    return any(k.arg is None for k in node.keywords)


def _short(name: str) -> str:
    """``numpy.random.shuffle`` → ``np.random.shuffle`` style names people write."""
    for long, short in (("numpy.", "np."), ("tensorflow.", "tf."), ("?.", "")):
        if name.startswith(long):
            return short + name[len(long):]
    return name


# rules of single files and calls; _PROGRAM_RULES run once per entry point
_RULES: Iterable[Callable[[AuditContext, _Project], Iterator[Finding]]] = (
    _check_random_instances, _check_numpy_instances, _check_cudnn_benchmark,
    _check_determinism_disabled, _check_downloads, _check_torch_hub, _check_huggingface,
)
_PROGRAM_RULES: Iterable[Callable[[AuditContext, _Project, EntryPoint | None],
                                  Iterator[Finding]]] = (
    _check_random, _check_numpy, _check_torch, _check_tensorflow, _check_jax, _check_keras,
    _check_torch_determinism, _check_cublas, _check_tensorflow_determinism,
)
