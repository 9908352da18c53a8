"""The layout holds: one namespace, arrows that point one way, a public API that imports."""

import ast
from pathlib import Path

import caseextract

from conftest import ROOT

PACKAGE = ROOT / "extract"


def _module_name(path: Path) -> str:
    if path.is_relative_to(ROOT / "evals"):
        return "caseextract.evals." + path.stem
    if path.is_relative_to(ROOT / "prompts"):
        return (
            "caseextract.prompts" if path.stem == "__init__" else "caseextract.prompts." + path.stem
        )
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["caseextract", *parts])


def _import_statements(path: Path) -> list[tuple[str, list[str]]]:
    """Every import of a module, anywhere in it (inside functions and under
    ``TYPE_CHECKING`` too), as (absolute module, names); ``import x`` gives (x, [])."""
    here = _module_name(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here[: len(here) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((base, [a.name for a in node.names]))
    return found


def _imports(path: Path) -> set[str]:
    """Absolute names of everything a module imports (relative imports resolved)."""
    found = set()
    for base, names in _import_statements(path):
        found.add(base)
        found.update(f"{base}.{name}" for name in names)
    return found


def _modules() -> dict[str, Path]:
    paths = [*PACKAGE.rglob("*.py"), *(ROOT / "evals").glob("*.py"), ROOT / "prompts/__init__.py"]
    return {_module_name(p): p for p in paths}


def _edges(path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules ``path`` imports anywhere in it: at the top, inside functions,
    under ``TYPE_CHECKING``; ``from package import module`` counts as the module."""
    targets = set()
    for base, names in _import_statements(path):
        if not names:
            targets.add(base)
        targets.update(f"{base}.{n}" if f"{base}.{n}" in known else base for n in names)
    out = set()
    for name in targets:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            out.add(name)
    out.discard(_module_name(path))
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_cycles_counting_lazy_and_type_checking_imports():
    known = _modules()
    graph = {name: _edges(path, known) for name, path in known.items()}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_the_package_root():
    """The root package only re-exports (lazily); ``_version`` holds the version."""
    for name, path in _modules().items():
        if name == "caseextract":
            continue
        assert "caseextract" not in _edges(path, _modules()), name


def test_no_import_of_another_modules_private_name():
    known = _modules()
    for path in [*known.values(), *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or node.level):
                continue
            module = node.module or ""
            if node.level == 0 and not module.startswith("caseextract"):
                continue
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                is_module = f"{module}.{alias.name}" in known
                assert not private or is_module, f"{path.name} imports {module}.{alias.name}"


def test_every_public_name_imports():
    for name in caseextract.__all__:
        assert getattr(caseextract, name) is not None, name


def test_nothing_below_the_cli_imports_it_and_extraction_never_imports_evals():
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        if name.startswith("caseextract.cli") or name == "caseextract.__main__":
            continue
        deps = _imports(path)
        assert not any(d.startswith("caseextract.cli") for d in deps), name
        assert not any(d.startswith("caseextract.evals") for d in deps), name


def test_evals_import_the_package_by_its_installed_name():
    for path in (ROOT / "evals").glob("*.py"):
        deps = _imports(path)
        assert not any(d == "extract" or d.startswith("extract.") for d in deps), path.name


def test_only_the_llm_package_imports_the_sdks():
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        if name.startswith(("caseextract.llm", "caseextract.testing")):
            continue
        deps = _imports(path)
        assert not any(d.split(".")[0] in ("openai", "instructor") for d in deps), name


def test_every_package_folder_is_listed_for_the_wheel():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    listed = set(config["setuptools"]["packages"])
    roots = {"caseextract": PACKAGE, "caseextract.evals": ROOT / "evals"}
    roots["caseextract.prompts"] = ROOT / "prompts"
    found = set()
    for name, folder in roots.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder).parts
            found.add(".".join([name, *rel]))
    for prompt_set in (ROOT / "prompts").iterdir():
        if (prompt_set / "system.j2").is_file():
            found.add(f"caseextract.prompts.{prompt_set.name}")
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


def _defined(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}


def test_the_model_client_keeps_the_call_path_and_nothing_else():
    """Classification lives in llm/failures.py, the HTTP stack in llm/transport.py, answer
    checks in llm/completion.py, the call's state in llm/call.py; one (async) call path."""
    llm = PACKAGE / "llm"
    client = _defined(llm / "client.py")
    assert "ModelClient" in client and "ModelSettings" in _defined(llm / "types.py")
    assert not client & _defined(llm / "failures.py")
    assert not client & _defined(llm / "transport.py")
    assert not client & _defined(llm / "completion.py")
    assert not client & _defined(llm / "call.py")
    deps = _imports(llm / "client.py")
    assert "httpx2" not in deps and "tenacity.Retrying" not in deps  # no sync twin
    for path in llm.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        builds_client = any(f"openai.{c}(" in text for c in ("AsyncOpenAI", "AsyncAzureOpenAI"))
        assert not builds_client or path.name == "transport.py", path.name


def test_recording_files_are_parsed_in_one_module():
    """Only llm/recording.py knows the recording file's keys (the ledger reads through it)."""
    for path in PACKAGE.rglob("*.py"):
        if path.name == "recording.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert "document (user message)" not in text, path
        assert '.get("provenance")' not in text, path
