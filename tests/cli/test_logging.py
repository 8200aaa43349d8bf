"""What the command prints on stderr: nothing of the libraries by default; recsys's debug lines on request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.child import child_env, recsys
from tests.conftest import ROOT

TRAIN = ["train", "playlist-encoder", "--epochs", "1", "--hidden", "8", "--embed-dim", "8"]
TRAIN += ["--negatives", "0", "--min-count", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("logging") / "data"
    demo = recsys(
        "demo",
        "--playlists",
        "150",
        "--audio-clips",
        "0",
        "--video-clips",
        "0",
        env={"RECSYS_DATA_DIR": str(data)},
    )
    assert demo.returncode == 0, demo.stderr
    return data


@pytest.mark.slow
def test_training_prints_no_library_noise(demo_data: Path) -> None:
    """Lightning's banners and tips, and a deprecation warning from inside it, are not shown."""
    trained = recsys(*TRAIN, env={"RECSYS_DATA_DIR": str(demo_data), "RECSYS_DEVICE": "cpu"})
    assert trained.returncode == 0, trained.stderr
    assert trained.stderr == ""
    assert "seq2seq-gru-uni" in trained.stdout and "saved" in trained.stdout


@pytest.mark.slow
@pytest.mark.parametrize("switch", ["--verbose", "-v", "RECSYS_LOG_LEVEL=DEBUG"])
def test_verbose_shows_our_debug_lines(demo_data: Path, switch: str) -> None:
    env = {"RECSYS_DATA_DIR": str(demo_data), "RECSYS_DEVICE": "cpu"}
    if "=" in switch:
        name, value = switch.split("=")
        args = TRAIN
        env[name] = value
    else:
        args = [switch, *TRAIN]
    trained = recsys(*args, env=env)
    assert trained.returncode == 0, trained.stderr
    lines = trained.stderr.splitlines()
    assert any(
        line.startswith("DEBUG recsys.catalog.runs: run ") and "started by process" in line for line in lines
    )
    assert any(
        line.startswith("DEBUG recsys.catalog.runs: run ") and line.endswith(" done") for line in lines
    )


def test_loading_a_transformers_model_prints_nothing() -> None:
    """transformers' "Loading weights" progress bar and notices stay out of what a user sees."""
    script = (
        "from pipelines import logs\n"
        "logs.configure()\n"
        "from recsys.embedders.text import MiniLMTextEncoder\n"
        "print(MiniLMTextEncoder(device='cpu').embed(['a song']).shape)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 384)" and done.stderr == ""
