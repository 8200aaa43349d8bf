"""How ``recsys ui`` runs Streamlit: options that keep a click's round trip short."""

from __future__ import annotations

import gc
from pathlib import Path

from pipelines.ui_server import streamlit_command
from recsys.config import load_settings
from ui.services import settled


def test_streamlit_runs_headless_without_a_full_collection_after_every_run(tmp_path: Path) -> None:
    command = streamlit_command("127.0.0.1", 8599, load_settings(data_dir=tmp_path))
    options = dict(arg[2:].split("=", 1) for arg in command if arg.startswith("--"))
    # a full collection after every page run walks every object of the loaded models while
    # holding the interpreter: the message that the run finished waited for it
    assert options["runner.postScriptGC"] == "false"
    assert options["server.headless"] == "true" and options["browser.gatherUsageStats"] == "false"
    assert options["server.port"] == "8599" and options["server.address"] == "127.0.0.1"


def test_a_settled_resource_is_kept_out_of_later_collections() -> None:
    before = gc.get_freeze_count()
    resource = {"rows": [[i] for i in range(1000)]}
    try:
        assert settled(resource) is resource
        assert gc.get_freeze_count() >= before + 1000  # its objects moved to the permanent generation
    finally:
        gc.unfreeze()
