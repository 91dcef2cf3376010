"""One pass over each Python file's AST: imports, resolved calls and settings.

Each file is parsed once and walked once (its statements once more, for the imports);
the RL1xx import rules and every RL4xx rule read the :class:`FileFacts` this walk
produces, never the source text. Its import sites are the ones ``reprolock lock`` and
``init`` see, found by the same function (``reprolock.inspection.imports.import_sites``,
which walks the statements only). Names are resolved through imports and aliases in any
scope (``import torch as T``, ``from torch.backends import cudnn``, ``from numpy import
random as npr``, an import inside a function, ``cudnn = torch.backends.cudnn``), so
``T.manual_seed`` is seen as ``torch.manual_seed``.

    >>> import ast
    >>> facts = index_file("t.py", ast.parse("import torch as T\\nT.manual_seed(0)\\n"))
    >>> [c.name for c in facts.calls]
    ['torch.manual_seed']
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reprolock.inspection.imports import ImportSite, import_sites

# calls whose value is the time or OS entropy: a seed made from one is no seed
CLOCK_CALLS = frozenset({
    "time.time", "time.time_ns", "time.perf_counter", "time.perf_counter_ns",
    "time.monotonic", "time.monotonic_ns", "time.process_time", "time.process_time_ns",
    "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today",
    "datetime.date.today", "os.urandom", "os.getpid", "uuid.uuid1", "uuid.uuid4",
    "secrets.randbits", "secrets.randbelow", "secrets.token_bytes", "secrets.token_hex",
    "random.SystemRandom",
})
# draws from the global generators of random and NumPy: a seed drawn from one is a seed
# only if that generator is itself seeded
RANDOM_FUNCS = frozenset({
    "random", "randint", "randrange", "choice", "choices", "shuffle", "sample", "uniform",
    "gauss", "normalvariate", "lognormvariate", "expovariate", "vonmisesvariate",
    "gammavariate", "betavariate", "paretovariate", "weibullvariate", "triangular",
    "getrandbits", "randbytes", "binomialvariate"})
# numpy.random names that are not draws from the global generator
NUMPY_NOT_GLOBAL = frozenset({
    "seed", "default_rng", "RandomState", "Generator", "SeedSequence", "BitGenerator",
    "PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64", "get_state", "set_state"})
# calls that take a seed as their first argument (or seed=)
SEED_CALLS = frozenset({
    "random.seed", "random.Random", "numpy.random.seed", "numpy.random.default_rng",
    "numpy.random.RandomState", "torch.manual_seed", "torch.random.manual_seed",
    "torch.cuda.manual_seed", "torch.cuda.manual_seed_all", "tensorflow.random.set_seed",
    "tensorflow.compat.v1.set_random_seed", "tensorflow.keras.utils.set_random_seed",
    "keras.utils.set_random_seed", "tf_keras.utils.set_random_seed", "jax.random.PRNGKey",
    "jax.random.key", "lightning.seed_everything", "lightning.pytorch.seed_everything",
    "pytorch_lightning.seed_everything", "lightning.fabric.seed_everything",
    "lightning_fabric.seed_everything", "transformers.set_seed", "accelerate.utils.set_seed",
    "transformers.trainer_utils.set_seed", "transformers.enable_full_determinism",
    "transformers.trainer_utils.enable_full_determinism",
})
# Hugging Face training arguments: the seed is the ``seed=`` keyword (default 42), which
# the Trainer passes to set_seed; the first argument is the output directory
SEED_KEYWORD_CALLS = frozenset({
    "transformers.TrainingArguments", "transformers.Seq2SeqTrainingArguments",
    "transformers.training_args.TrainingArguments",
    "transformers.training_args_seq2seq.Seq2SeqTrainingArguments",
    "trl.SFTConfig", "trl.DPOConfig", "trl.RewardConfig", "trl.GRPOConfig",
})
# calls that fetch from a URL: the scope around them is kept for RL413 to read
DOWNLOAD_CALLS = frozenset({
    "urllib.request.urlretrieve", "urllib.request.urlopen", "requests.get",
    "requests.request", "httpx.get", "httpx.stream", "wget.download", "gdown.download"})
# what checks a digest: hashlib, or a constant-time comparison of two digests (the
# builtin hash() and a function merely named "verify" are not checks)
_VERIFYING_CALLS = frozenset({"hmac.compare_digest", "secrets.compare_digest"})
_WATCHED_METHODS = frozenset({"from_pretrained", "manual_seed", "save_pretrained",
                              "save_model", "fit"})
# calls whose value is an object whose attributes the rules read: options = Options()
# then options.experimental_deterministic = False resolves through the call
_INSTANCES = frozenset({"tensorflow.data.Options"})


@dataclass(frozen=True)
class CallSite:
    """A call whose callee resolves (``numpy.random.shuffle``), or, for a few watched
    methods on values that do not resolve, ``?.from_pretrained``."""

    name: str
    node: ast.Call
    scope: int  # the enclosing function (0: module level)
    clock_seeded: bool = False  # a seed call fed by the clock, or seed() with no seed
    drawn_from: frozenset[str] = frozenset()  # generators whose draws its arguments hold


@dataclass(frozen=True)
class AttributeSet:
    name: str  # resolved target, e.g. torch.backends.cudnn.benchmark
    value: ast.expr
    line: int
    column: int


@dataclass(frozen=True)
class ModuleRef:
    """An import as written: ``level`` dots, the module, and the names taken from it
    (``from a import b, c``: the names may be modules too). Entry points follow these."""

    level: int
    module: str
    names: tuple[str, ...] = ()


@dataclass
class FileFacts:
    path: str
    imports: list[ImportSite] = field(default_factory=list)
    calls: list[CallSite] = field(default_factory=list)
    attribute_sets: list[AttributeSet] = field(default_factory=list)
    env_sets: set[str] = field(default_factory=set)  # variables set through os.environ
    verifying_scopes: set[int] = field(default_factory=set)  # scopes that use hashlib
    verifying_functions: set[str] = field(default_factory=set)  # names of those functions
    download_scopes: dict[int, ast.AST] = field(default_factory=dict)  # scope → its node
    subclassed: set[str] = field(default_factory=set)  # resolved base classes
    mentions_cuda: bool = False
    module_refs: list[ModuleRef] = field(default_factory=list)  # every import, local or not
    main_guard: int = 0  # the line of a module-level ``if __name__ == "__main__":``
    runs_at_top: bool = False  # a bare call or a loop at module level: a script

    def imported(self, module: str) -> bool:
        return any(site.module == module for site in self.imports)


def index_file(path: str, tree: ast.Module) -> FileFacts:
    indexer = _Indexer(FileFacts(path, import_sites(tree, path)), tree)
    indexer.walk(tree)
    indexer.facts.runs_at_top = any(_runs(statement) for statement in tree.body)
    return indexer.facts


def _runs(statement: ast.stmt) -> bool:
    """A statement that does work when the module runs (``main()``, ``for ...``), not a
    definition, an import or a docstring."""
    if isinstance(statement, ast.Expr):
        return isinstance(statement.value, ast.Call | ast.Await)
    return isinstance(statement, ast.For | ast.While | ast.With | ast.AsyncFor | ast.AsyncWith)


def _is_main_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides) \
        and any(_string(s) == "__main__" for s in sides)


class _Indexer:
    """The walk. A handler per node type; nodes without one just recurse."""

    def __init__(self, facts: FileFacts, tree: ast.Module) -> None:
        self.facts = facts
        self.scopes: list[dict[str, str]] = [{}]  # local name → qualified name
        self.tainted: list[set[str]] = [set()]  # names holding a clock value, per scope
        self.ever_tainted: set[str] = set()  # a cheap first test for every Name
        self.drawn: list[str] = []  # generators drawn from so far (in evaluation order)
        self.draw_tainted: list[dict[str, frozenset[str]]] = [{}]  # name → generators
        self.scope_ids = [0]
        self.scope_nodes: list[ast.AST] = [tree]
        self.scope_names: list[str | None] = [None]  # function names (None: module, lambda)
        self.next_scope = 1
        self.clock_hits = 0  # clock calls and tainted names seen so far

    # --- walking -------------------------------------------------------------------
    def walk(self, node: ast.AST) -> None:
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            handler(self, node)
            return
        for child in ast.iter_child_nodes(node):
            self.walk(child)

    def walk_all(self, nodes: list[ast.expr] | list[ast.stmt] | list[ast.keyword]) -> None:
        for node in nodes:
            self.walk(node)

    # --- names ---------------------------------------------------------------------
    def resolve(self, node: ast.expr) -> str | None:
        """The qualified name ``node`` stands for, when it is rooted in an import."""
        if isinstance(node, ast.Name):
            for scope in reversed(self.scopes):
                found = scope.get(node.id)
                if found is not None:
                    return found
            return None
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return None if base is None else f"{base}.{node.attr}"
        if isinstance(node, ast.Call) and not node.args and not node.keywords:
            made = self.resolve(node.func)
            return f"{made}()" if made in _INSTANCES else None
        return None

    def bind(self, local: str, qualified: str) -> None:
        self.scopes[-1][local] = qualified

    # --- handlers ------------------------------------------------------------------
    def on_import(self, node: ast.Import) -> None:
        self.facts.module_refs += [ModuleRef(0, alias.name) for alias in node.names]
        for alias in node.names:
            top = alias.name.split(".")[0]
            if alias.asname:
                self.bind(alias.asname, alias.name)
            else:
                self.bind(top, top)

    def on_import_from(self, node: ast.ImportFrom) -> None:
        self.facts.module_refs.append(ModuleRef(node.level, node.module or "", tuple(
            alias.name for alias in node.names if alias.name != "*")))
        if node.level or not node.module:
            return  # a relative import names the project's own code
        for alias in node.names:
            if alias.name != "*":
                self.bind(alias.asname or alias.name, f"{node.module}.{alias.name}")

    def on_scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        args = node.args
        self.walk_all([d for d in [*args.defaults, *args.kw_defaults] if d is not None])
        if not isinstance(node, ast.Lambda):
            self.walk_all(node.decorator_list)
        self.scopes.append({})
        self.tainted.append(set())
        self.draw_tainted.append({})
        self.scope_ids.append(self.next_scope)
        self.scope_nodes.append(node)
        self.scope_names.append(None if isinstance(node, ast.Lambda) else node.name)
        self.next_scope += 1
        if isinstance(node, ast.Lambda):
            self.walk(node.body)
        else:
            self.walk_all(node.body)
        self.scopes.pop()
        self.tainted.pop()
        self.draw_tainted.pop()
        self.scope_ids.pop()
        self.scope_nodes.pop()
        self.scope_names.pop()

    def on_class(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            name = self.resolve(base)
            if name is not None:  # class MyTrainer(transformers.Trainer)
                self.facts.subclassed.add(name)
        for child in ast.iter_child_nodes(node):
            self.walk(child)

    def on_if(self, node: ast.If) -> None:
        if len(self.scopes) == 1 and not self.facts.main_guard and _is_main_guard(node.test):
            self.facts.main_guard = node.lineno
        for child in ast.iter_child_nodes(node):
            self.walk(child)

    def on_try(self, node: ast.Try) -> None:
        self.walk_all(node.body)  # not the handlers' exception types: bodies only
        for handler in node.handlers:
            self.walk_all(handler.body)
        self.walk_all(node.orelse)
        self.walk_all(node.finalbody)

    def on_assign(self, node: ast.Assign | ast.AnnAssign) -> None:
        value = node.value
        if value is None:
            return
        before, drawn = self.clock_hits, len(self.drawn)
        self.walk(value)
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        sources = frozenset(self.drawn[drawn:])
        for target in targets:
            self.assign_target(target, value, clocked=self.clock_hits > before,
                               sources=sources)

    def assign_target(self, target: ast.expr, value: ast.expr, *, clocked: bool,
                      sources: frozenset[str] = frozenset()) -> None:
        if isinstance(target, ast.Name):
            aliased = self.resolve(value)
            if aliased is not None:  # cudnn = torch.backends.cudnn
                self.bind(target.id, aliased)
            self.taint(target.id, clocked=clocked, sources=sources)
        elif isinstance(target, ast.Attribute):
            name = self.resolve(target)
            if name is not None:
                self.facts.attribute_sets.append(
                    AttributeSet(name, value, target.lineno, target.col_offset))
            dotted = _dotted(target)
            if dotted is not None:  # opt.manualSeed = random.randint(1, 10000)
                self.taint(dotted, clocked=clocked, sources=sources)
            self.walk(target.value)
        elif isinstance(target, ast.Subscript):
            if self.resolve(target.value) == "os.environ":
                key = _string(target.slice)
                if key is not None:
                    self.facts.env_sets.add(key)
            self.walk(target.value)
            self.walk(target.slice)
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self.assign_target(element, value, clocked=clocked, sources=sources)

    def on_call(self, node: ast.Call) -> None:
        func = node.func
        name = self.resolve(func)
        before, drawn = self.clock_hits, len(self.drawn)
        self.walk(func)
        self.walk_all(node.args)
        seed_clocked = False
        for keyword in node.keywords:
            hits = self.clock_hits
            self.walk(keyword)
            seed_clocked |= keyword.arg == "seed" and self.clock_hits > hits
        if name is None:
            if isinstance(func, ast.Attribute) and func.attr in _WATCHED_METHODS:
                self.record(f"?.{func.attr}", node, clocked=self.seed_from_clock(
                    node, self.clock_hits > before, reseeds=False))
            return
        if name in CLOCK_CALLS:
            self.clock_hits += 1
        self.note_draw(name)
        if name in SEED_KEYWORD_CALLS:
            seed = _keyword(node, "seed")
            clocked = seed_clocked or (isinstance(seed, ast.Constant) and seed.value is None)
        else:
            clocked = name in SEED_CALLS and self.seed_from_clock(
                node, self.clock_hits > before, reseeds=name.endswith(".seed"))
        self.record(name, node, clocked=clocked, drawn=frozenset(self.drawn[drawn:])
                    if name in SEED_CALLS or name in SEED_KEYWORD_CALLS else frozenset())
        self.note_environment(name, node)
        self.note_verification(name)
        if name in DOWNLOAD_CALLS:
            self.facts.download_scopes[self.scope_ids[-1]] = self.scope_nodes[-1]

    def taint(self, key: str, *, clocked: bool, sources: frozenset[str]) -> None:
        """``key`` (a name, or a dotted attribute such as ``opt.seed``) now holds a value
        from the clock, from draws of ``sources``, or neither."""
        if clocked:
            self.tainted[-1].add(key)
            self.ever_tainted.add(key)
        else:
            self.tainted[-1].discard(key)
        if sources:  # seed = random.randint(0, 2**31)
            self.draw_tainted[-1][key] = sources
            self.ever_tainted.add(key)
        else:
            self.draw_tainted[-1].pop(key, None)

    def read_tainted(self, key: str) -> None:
        if any(key in names for names in self.tainted):
            self.clock_hits += 1
        for names in reversed(self.draw_tainted):
            if key in names:
                self.drawn.extend(names[key])
                break

    def on_name(self, node: ast.Name) -> None:
        if node.id in self.ever_tainted:
            self.read_tainted(node.id)

    def on_attribute(self, node: ast.Attribute) -> None:
        if node.attr == "cuda":
            self.facts.mentions_cuda = True
        if self.ever_tainted and (dotted := _dotted(node)) in self.ever_tainted:
            self.read_tainted(dotted)
            return  # the chain's names hold no other taint to read
        self.walk(node.value)

    def on_constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and node.value.startswith("cuda"):
            self.facts.mentions_cuda = True

    # --- what calls tell -----------------------------------------------------------
    def record(self, name: str, node: ast.Call, *, clocked: bool,
               drawn: frozenset[str] = frozenset()) -> None:
        self.facts.calls.append(CallSite(name, node, self.scope_ids[-1], clocked, drawn))

    def note_draw(self, name: str) -> None:
        """A draw from the global generator of random or NumPy."""
        module, _, function = name.rpartition(".")
        if module == "random" and function in RANDOM_FUNCS:
            self.drawn.append("random")
        elif module == "numpy.random" and function not in NUMPY_NOT_GLOBAL:
            self.drawn.append("numpy")

    def seed_from_clock(self, node: ast.Call, clock_in_args: bool, *, reseeds: bool) -> bool:
        """``seed()``/``seed(None)`` reseed from the OS; a clock value is as bad. (A
        generator made without a seed, ``default_rng()``, is RL401/RL402's to report.)"""
        seed = node.args[0] if node.args else _keyword(node, "seed")
        if seed is None:
            return reseeds and not node.keywords  # seed(**options) may well carry one
        if isinstance(seed, ast.Constant) and seed.value is None:
            return True
        return clock_in_args

    def note_environment(self, name: str, node: ast.Call) -> None:
        if name in ("os.environ.setdefault", "os.putenv") and node.args:
            key = _string(node.args[0])
            if key is not None:
                self.facts.env_sets.add(key)
        elif name == "os.environ.update":
            for arg in node.args:
                if isinstance(arg, ast.Dict):
                    self.facts.env_sets.update(
                        k for k in map(_string_or_none, arg.keys) if k is not None)
            self.facts.env_sets.update(k.arg for k in node.keywords if k.arg)

    def note_verification(self, name: str) -> None:
        if name.startswith("hashlib.") or name in _VERIFYING_CALLS:
            self.facts.verifying_scopes.add(self.scope_ids[-1])
            function = self.scope_names[-1]
            if function is not None:  # a helper that checks: calling it checks too
                self.facts.verifying_functions.add(function)


def _string(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _string_or_none(node: ast.expr | None) -> str | None:
    return None if node is None else _string(node)


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    for keyword in node.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


_HANDLERS: dict[type[ast.AST], Callable[[_Indexer, Any], None]] = {
    ast.Import: _Indexer.on_import,
    ast.ImportFrom: _Indexer.on_import_from,
    ast.FunctionDef: _Indexer.on_scope,
    ast.AsyncFunctionDef: _Indexer.on_scope,
    ast.Lambda: _Indexer.on_scope,
    ast.ClassDef: _Indexer.on_class,
    ast.If: _Indexer.on_if,
    ast.Try: _Indexer.on_try,
    ast.Assign: _Indexer.on_assign,
    ast.AnnAssign: _Indexer.on_assign,
    ast.Call: _Indexer.on_call,
    ast.Name: _Indexer.on_name,
    ast.Attribute: _Indexer.on_attribute,
    ast.Constant: _Indexer.on_constant,
}


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])
