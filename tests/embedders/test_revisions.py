"""A hub checkpoint at a branch, which can move, is named with the commit it resolved to; a commit is quiet.

The checkpoints live in a Hugging Face cache written here (a branch ref pointing at a
snapshot of a small MERT-format model), so nothing is downloaded.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from recsys.embedders.checkpoints import DEFAULT_REVISION, is_commit, resolve_checkpoint
from tests.cli.child import recsys
from tests.embedders.conftest import write_mert_checkpoint

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_cache(root: Path, repo: str = "owner/culture", commit: str = COMMIT) -> Path:
    """A cache holding ``repo`` at ``commit``, with ``main`` pointing at it."""
    folder = root / f"models--{repo.replace('/', '--')}"
    write_mert_checkpoint(folder / "snapshots" / commit)
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    return root


def test_a_branch_warns_with_its_commit_and_a_commit_does_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = hub_cache(tmp_path / "hub")
    with caplog.at_level(logging.WARNING, logger="recsys"):
        at_branch = resolve_checkpoint("owner/culture", "main", cache_dir=cache)
    assert at_branch.version == f"owner/culture@{COMMIT}"
    [warning] = [r.getMessage() for r in caplog.records]
    assert f"'main', which can move, is commit {COMMIT}" in warning
    assert f"RECSYS_AUDIO_MODEL_REVISION={COMMIT}" in warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="recsys"):
        assert resolve_checkpoint("owner/culture", COMMIT, cache_dir=cache) == at_branch
    assert caplog.records == []


def test_commits_are_told_from_branches() -> None:
    assert is_commit(COMMIT) and not is_commit("main") and not is_commit(COMMIT[:7])
    assert not is_commit(COMMIT.upper()) and not is_commit(COMMIT + "0")
    # The default is a branch until a commit of the default model is pinned (see its comment).
    assert DEFAULT_REVISION == "main" or is_commit(DEFAULT_REVISION)


def test_models_merge_names_the_commits_it_used(tmp_path: Path) -> None:
    cache = hub_cache(tmp_path / "hub")
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    args = ["models", "merge", "--base", "owner/culture", "--culture", "owner/culture"]
    unpinned = recsys(*args, "--out", str(tmp_path / "a"), env=env)
    assert unpinned.returncode == 0, unpinned.stderr
    warnings = unpinned.stderr.splitlines()
    assert len(warnings) == 2 and all(f"is commit {COMMIT}" in line for line in warnings)
    assert json.loads(unpinned.stdout)["base"] == f"owner/culture@{COMMIT}"

    pinned = recsys(*args, "--revision", COMMIT, "--out", str(tmp_path / "b"), env=env)
    assert pinned.returncode == 0 and pinned.stderr == "", pinned.stderr
    assert json.loads((tmp_path / "b" / "merge.json").read_text())["cultures"] == [f"owner/culture@{COMMIT}"]
