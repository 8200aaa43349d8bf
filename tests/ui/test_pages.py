"""Every page of the UI, run with ``AppTest``: its happy path on the demo catalog, and its empty state."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.demo_catalog import HOSTILE_PLAYLIST, HOSTILE_TRACK
from tests.ui.conftest import ROOT, frame, no_exception, page, texts


def test_the_app_declares_every_page_and_opens_on_the_catalog(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECSYS_DATA_DIR", str(demo_dir))
    app = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=120).run()
    no_exception(app)
    assert app.title[0].value == "Catalog"
    assert app.sidebar.text_input(key="user").label == "Your name"
    pages = sorted(p.name for p in (ROOT / "ui" / "screens").glob("*.py"))
    declared = (ROOT / "ui" / "app.py").read_text()
    assert all(f'("{name}",' in declared for name in pages), pages  # each in SECTIONS


# --------------------------------------------------------------------------- catalog


def test_catalog_shows_counts_charts_models_and_rejects(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = page("catalog", demo_dir, monkeypatch).run()
    no_exception(app)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Playlists"] == "301" and int(metrics["Tracks"].replace(",", "")) > 1_600
    assert len(app.get("vega_lite_chart")) == 3
    models = frame(app, 0)
    assert {"als", "trimodal"} <= set(models["model"])
    assert "Nothing was rejected." in texts(app)


def test_catalog_empty_state_names_the_commands(empty_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page("catalog", empty_dir, monkeypatch).run()
    no_exception(app)
    assert "The catalog is empty" in app.info[0].value and "recsys ingest mpd" in app.info[0].value


def test_a_catalog_not_migrated_says_how_to_migrate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page("catalog", tmp_path / "fresh", monkeypatch).run()
    no_exception(app)
    assert "recsys db upgrade" in app.error[0].value


def test_an_unreachable_database_is_one_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = page("catalog", tmp_path, monkeypatch).run()
    no_exception(app)
    assert "cannot reach the catalog database" in app.error[0].value


def test_an_invalid_setting_is_one_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_BATCH_ROWS", "5")
    app = page("catalog", tmp_path, monkeypatch).run()
    no_exception(app)
    assert "RECSYS_BATCH_ROWS" in app.error[0].value


# --------------------------------------------------------------------------- playlists


def test_playlists_search_and_open_one(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page("playlists", demo_dir, monkeypatch).run()
    no_exception(app)
    assert "302" not in texts(app) and "301 playlist(s)" in texts(app)
    assert frame(app, 0).height == 25  # a page, never the whole catalog
    app.text_input(key="playlists_query").input("JAZZ").run()
    hits = frame(app, 0)
    assert hits.height > 0 and all("jazz" in name.lower() for name in hits["name"])
    chosen = int(hits["id"][0])
    app.query_params["playlist"] = str(chosen)
    app.run()
    no_exception(app)
    entries = frame(app, 1)
    assert entries.height > 0 and list(entries["#"]) == list(range(1, entries.height + 1))
    assert any(b.label == "Continue this playlist" for b in app.button)


def test_playlist_names_and_titles_render_as_text(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page("playlists", demo_dir, monkeypatch)
    app.query_params["playlist"] = ""
    app.run()
    app.text_input(key="playlists_query").input("loud").run()
    hit = frame(app, 0)
    assert list(hit["name"]) == [HOSTILE_PLAYLIST]
    app.query_params["playlist"] = str(int(hit["id"][0]))
    app.run()
    no_exception(app)
    heading = app.subheader[0].value
    # Escaped for Markdown: every markup character is preceded by a backslash, so it shows literally.
    assert heading.replace("\\", "") == HOSTILE_PLAYLIST and "\\<b\\>" in heading
    assert HOSTILE_TRACK in list(frame(app, 1)["title"])


def test_playlists_search_without_match_says_so(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page("playlists", demo_dir, monkeypatch).run()
    app.text_input(key="playlists_query").input("zzqx nothing").run()
    no_exception(app)
    assert "No playlist name holds every word" in app.info[0].value


def test_playlists_empty_state(empty_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page("playlists", empty_dir, monkeypatch).run()
    no_exception(app)
    assert "No playlists in the catalog yet" in app.info[0].value


# --------------------------------------------------------------------------- continue


def _results(app: AppTest) -> list[int]:
    """Track ids of the results listed on the page, in order."""
    return [int(t) for t in frame(app, 0)["id"]]


def _select(app: AppTest, rows: list[int]) -> AppTest:
    """Select rows of the results grid, as a click on their row markers does."""
    key = app.dataframe[0].key
    assert key is not None and key.startswith("continue_results_")
    app.session_state[key] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    return app.run()


def _continued(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    playlist: int,
    *,
    user: str | None = None,
    method: str = "hybrid",
) -> AppTest:
    """The Continue page over ``data_dir``, ``playlist`` picked, ``method`` chosen, Continue pressed."""
    app = page("continue_playlist", data_dir, monkeypatch, user=user)
    app.query_params["playlist"] = str(playlist)
    app.run()
    app.selectbox(key="continue_method").set_value(method).run()
    app.button[0].click().run()
    no_exception(app)
    return app


def test_continue_a_playlist_gives_results_with_reasons(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = page("continue_playlist", demo_dir, monkeypatch)
    app.query_params["playlist"] = "7"
    app.run()
    no_exception(app)
    assert app.selectbox(key="continue_playlist").value == 7
    assert app.selectbox(key="continue_method").options[0] == "hybrid"
    app.button[0].click().run()
    no_exception(app)
    listing = frame(app, 0)
    assert listing.height == 25 and list(listing["#"]) == list(range(1, 26))
    assert listing["score"].is_sorted(descending=True)
    assert sum("because of" in why for why in listing["why"]) >= 20
    assert any(b.label == "Download JSPF" for b in app.get("download_button"))
    # without a name, rating is offered but disabled
    _select(app, [0, 1])
    assert app.button(key="continue_dislike").disabled and "2 selected" in texts(app)


def test_one_method_alone_and_a_dislike_that_sticks(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _continued(demo_dir, monkeypatch, 9, user="ui-tester", method="knn")
    assert all("item-kNN" in why for why in frame(app, 0)["why"])
    first, second = _results(app)[:2]
    _select(app, [0])
    app.button(key="continue_dislike").click().run()
    no_exception(app)
    after = _results(app)
    assert first not in after and second in after and len(after) == 25
    # the opinion is in the catalog: a new session of the page still leaves the track out
    assert first not in _results(_continued(demo_dir, monkeypatch, 9, user="ui-tester", method="knn"))
    other = _continued(demo_dir, monkeypatch, 9, user="someone-else", method="knn")
    assert _results(other)[0] == first  # opinions are per listener


def test_a_liked_result_is_kept_for_saving(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _continued(demo_dir, monkeypatch, 13, user="liker")
    liked = _results(app)[0]
    _select(app, [0])
    app.button(key="continue_like").click().run()
    no_exception(app)
    assert liked not in _results(app)  # it joined the seeds
    app.text_input(key="continue_save_name").input("liked and continued").run()
    next(b for b in app.button if b.label == "Save as playlist").click().run()
    saved = int(app.success[0].value.split("#")[1].split()[0])
    from recsys.catalog import db
    from recsys.catalog.browse import playlist_view

    engine = db.make_engine(f"sqlite:///{demo_dir / 'catalog.db'}")
    kept = [e.track_id for e in playlist_view(engine, saved).entries]
    engine.dispose()
    assert liked in kept


def test_save_the_continuation_as_a_playlist(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _continued(demo_dir, monkeypatch, 11, user="saver")
    app.text_input(key="continue_save_name").input("<i>my</i> continued list").run()
    next(b for b in app.button if b.label == "Save as playlist").click().run()
    no_exception(app)
    saved = app.success[0].value
    assert saved.startswith("Saved as playlist #") and "saved" in saved
    playlist_id = int(saved.split("#")[1].split()[0])
    from recsys.catalog import db
    from recsys.catalog.browse import playlist_view

    engine = db.make_engine(f"sqlite:///{demo_dir / 'catalog.db'}")
    view = playlist_view(engine, playlist_id)
    engine.dispose()
    assert view.namespace == "saved" and view.name == "<i>my</i> continued list"
    assert len(view.entries) > 25  # the seeds, then the results


def test_continue_empty_state(empty_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page("continue_playlist", empty_dir, monkeypatch).run()
    no_exception(app)
    assert "recsys ingest mpd" in app.info[0].value


# --------------------------------------------------------------------------- similar


def test_similar_tracks_by_their_audio(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page("similar", demo_dir, monkeypatch).run()
    no_exception(app)
    app.selectbox(key="similar_by").set_value("audio_dsp").run()
    app.text_input(key="similar_track_query").input("drone").run()
    no_exception(app)
    labels = app.selectbox(key="similar_track").options
    assert labels and all("drone" in label for label in labels)
    scores = [float(c.value.split()[1]) for c in app.caption if c.value.startswith("similarity ")]
    # the small demo has one clip per style: the other three are every neighbour there is
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)


def test_similar_playlists_and_the_map(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page("similar", demo_dir, monkeypatch).run()
    no_exception(app)
    alike = frame(app, 0)
    assert alike.height == 10 and alike["similarity"].is_sorted(descending=True)
    assert app.get("vega_lite_chart"), "the map is drawn"
    assert "principal components" in texts(app)


def test_similar_empty_state_names_the_embed_commands(
    empty_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = page("similar", empty_dir, monkeypatch).run()
    no_exception(app)
    shown = " ".join(i.value for i in app.info)
    assert "recsys embed" in shown and "recsys embed playlists" in shown


# --------------------------------------------------------------------------- words → music


def test_words_rank_the_music(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page("words", demo_dir, monkeypatch).run()
    no_exception(app)
    app.text_input(key="words_prompt").input("slow calm drone")
    app.button[0].click().run()
    no_exception(app)
    scores = [c.value for c in app.caption if c.value.startswith("score ")]
    assert len(scores) == 10
    values = [float(s.split()[1]) for s in scores]
    assert values == sorted(values, reverse=True)


def test_words_empty_state(empty_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page("words", empty_dir, monkeypatch).run()
    no_exception(app)
    assert "recsys train trimodal" in app.info[0].value


# --------------------------------------------------------------------------- video


def test_video_from_the_data_dir_with_words(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page("video", demo_dir, monkeypatch).run()
    no_exception(app)
    app.segmented_control(key="video_source").set_value("Pick from the data dir").run()
    no_exception(app)
    app.text_input(key="video_prompt").input("bright fast drums")
    app.button[0].click().run()
    no_exception(app)
    details = [c.value for c in app.caption if c.value.startswith("score ")]
    assert len(details) == 10 and all("video" in d and "words" in d for d in details)
    assert app.get("vega_lite_chart"), "the contributions are drawn"


def test_a_file_that_is_not_a_video_is_one_clear_message(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = page("video", demo_dir, monkeypatch).run()
    app.file_uploader(key="video_upload").upload(
        "holiday.mp4", b"this is a text file, not a video", "video/mp4"
    ).run()
    app.button[0].click().run()
    no_exception(app)
    message = app.error[0].value.replace("\\", "")
    assert message.startswith("holiday.mp4: not a video file") and "upload" not in message


def test_video_empty_state(empty_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page("video", empty_dir, monkeypatch).run()
    no_exception(app)
    assert "recsys train trimodal" in app.info[0].value


# --------------------------------------------------------------------------- evaluation


def test_evaluation_shows_the_reports_of_the_data_dir(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = page("evaluation", demo_dir, monkeypatch).run()
    no_exception(app)
    overall = frame(app, 0)
    assert {"hybrid", "als"} <= set(overall["method"]) and "R-precision" in overall.columns
    assert app.get("vega_lite_chart")


def test_evaluation_empty_state(empty_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page("evaluation", empty_dir, monkeypatch).run()
    no_exception(app)
    assert "recsys evaluate continuation" in app.info[0].value
