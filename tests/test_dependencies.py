"""Whatever the project imports from outside the standard library is declared in pyproject.toml."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
OURS = {"recsys", "pipelines", "migrations", "ui", "tests", "benchmarks"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalise(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0])


def declared(group: str | None = None) -> set[str]:
    """Distributions required by the project (by one extra, or by the core and every extra)."""
    project = PYPROJECT["project"]
    if group is not None:
        return {requirement_name(r) for r in project["optional-dependencies"][group]}
    names = {requirement_name(r) for r in project["dependencies"]}
    for requirements in project["optional-dependencies"].values():
        names |= {requirement_name(r) for r in requirements}
    return names


def imported(*folders: str) -> dict[str, set[str]]:
    """Top-level modules imported (anywhere in a file, also lazily) → the files importing them."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in OURS and top != "__future__":
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def distributions(module: str) -> set[str]:
    return {normalise(d) for d in packages_distributions().get(module, [module])}


def test_every_import_is_declared() -> None:
    names = declared()
    undeclared = {
        module: sorted(files)[:3]
        for module, files in imported("recsys", "pipelines", "migrations", "ui", "benchmarks").items()
        if not distributions(module) & names
    }
    assert not undeclared, f"imported but not in pyproject.toml: {undeclared}"


def test_the_audio_extra_holds_what_culturemert_needs() -> None:
    audio = declared("audio")
    needed = imported("recsys/embedders", "recsys/media")
    for module in ("transformers", "huggingface_hub", "safetensors", "torch", "soundfile", "soxr"):
        assert module in needed, module  # still imported there
        assert distributions(module) & audio, module


def test_urllib3_is_a_core_dependency() -> None:
    assert "urllib3" in imported("pipelines/ingest")
    assert "urllib3" in {requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}


def test_the_ui_extra_holds_what_the_pages_import() -> None:
    ui = declared("ui")
    needed = imported("ui")
    for module in ("streamlit", "altair"):
        assert module in needed, module
        assert distributions(module) & ui, module


def test_the_api_extra_holds_what_the_server_imports() -> None:
    api = declared("api")
    needed = imported("recsys/api", "pipelines")
    for module in ("fastapi", "uvicorn", "prometheus_client"):
        assert module in needed, module
        assert distributions(module) & api, module
    assert "multipart" in {normalise(d).removeprefix("python-") for d in api}  # FastAPI's form parser
