"""Every route of the API against a real ``recsys serve`` over the demo catalog: its happy path (the
same answer as the library call it makes) and its errors (unknown ids, malformed and invalid bodies)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate

from recsys.catalog import db
from recsys.catalog.feedback import LIKE, user_feedback
from recsys.recommend.service import playlist_seeds, serving_service
from tests.api.conftest import Api, error
from tests.demo_catalog import HOSTILE_PLAYLIST, HOSTILE_TRACK
from tests.videofiles import without_audio

JSPF_SCHEMA = json.loads((Path(__file__).parent / "jspf.schema.json").read_text())


@pytest.fixture(scope="module")
def library(api: Api) -> Any:
    """The continuation service built in this process by the library call the server makes."""
    engine = db.make_engine(f"sqlite:///{api.data_dir / 'catalog.db'}")
    yield engine, serving_service(engine, data_dir=api.data_dir)
    engine.dispose()


# --------------------------------------------------------------------------- schema and health


def test_the_openapi_schema_validates_and_lists_every_route(api: Api) -> None:
    schema = api.get("/openapi.json").json()
    validate(schema)
    paths = set(schema["paths"])
    assert {
        "/v1/health",
        "/v1/ready",
        "/v1/tracks",
        "/v1/tracks/{track_id}",
        "/v1/tracks/{track_id}/similar",
        "/v1/playlists",
        "/v1/playlists/{playlist_id}",
        "/v1/playlists/{playlist_id}/similar",
        "/v1/playlists/{playlist_id}/export",
        "/v1/continue",
        "/v1/search/music",
        "/v1/video/score",
        "/v1/feedback",
        "/v1/catalog",
        "/metrics",
    } <= paths
    assert "ErrorBody" in schema["components"]["schemas"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schema["components"]["securitySchemes"])
    docs = api.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_readiness_names_the_database_the_store_and_the_models(api: Api) -> None:
    ready = api.get("/v1/ready").json()
    assert ready["database"]["ok"] and ready["vector_store"]["ok"]
    assert ready["collections"]["tracks"] is not None and ready["collections"]["playlists"] is not None
    assert ready["continuation"]["methods"][0] == "hybrid" and "als" in ready["continuation"]["versions"]


# --------------------------------------------------------------------------- tracks and playlists


def test_tracks_by_id_and_by_words_in_pages(api: Api) -> None:
    track = api.get("/v1/tracks/1").json()
    assert track["track_id"] == 1 and track["title"] and track["playlists"] >= 1
    hostile = api.get("/v1/tracks", params={"q": "bold script"}).json()
    assert [t["title"] for t in hostile["tracks"]] == [HOSTILE_TRACK]  # names are data, kept as typed
    word = track["title"].split()[0]
    first = api.get("/v1/tracks", params={"q": word, "page_size": 5}).json()
    second = api.get("/v1/tracks", params={"q": word, "page": 2, "page_size": 5}).json()
    assert len(first["tracks"]) == 5 and first["next_page"] == 2
    assert not {t["track_id"] for t in first["tracks"]} & {t["track_id"] for t in second["tracks"]}
    assert all(
        word.lower() in (t["title"] + " " + t["artist"]).lower() for t in first["tracks"] + second["tracks"]
    )
    error(api.get("/v1/tracks/999999999"), 404, "not_found")
    error(api.get("/v1/tracks/0"), 422, "invalid_request")
    error(api.get("/v1/tracks/abc"), 422, "invalid_request")
    error(api.get("/v1/tracks", params={"q": "x", "page_size": 1000}), 422, "invalid_request")


def test_playlists_by_words_and_by_id(api: Api) -> None:
    found = api.get("/v1/playlists", params={"q": "loud link"}).json()
    assert found["total"] == 1 and found["playlists"][0]["name"] == HOSTILE_PLAYLIST
    playlist_id = found["playlists"][0]["playlist_id"]
    opened = api.get(f"/v1/playlists/{playlist_id}").json()
    assert [e["title"] for e in opened["entries"]] == [HOSTILE_TRACK, "Plain Song"]
    assert [e["position"] for e in opened["entries"]] == [0, 1]
    paged = api.get("/v1/playlists", params={"page": 2, "page_size": 7}).json()
    assert paged["page"] == 2 and len(paged["playlists"]) == 7 and paged["total"] >= 300
    error(api.get("/v1/playlists/999999999"), 404, "not_found")


# --------------------------------------------------------------------------- continuation


def test_continuing_a_playlist_gives_the_library_s_answer_with_reasons(api: Api, library: Any) -> None:
    engine, service = library
    answer = api.post("/v1/continue", json={"playlist_id": 1, "n": 10, "artist_cap": 3})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    seeds = playlist_seeds(engine, "1")
    expected = service.recommend(seeds.track_ids, seeds.title, 10, artist_cap=3)
    assert [r["track_id"] for r in body["results"]] == [r.track_id for r in expected]
    assert body["title"] == seeds.title and body["seeds"] == seeds.track_ids
    for rank, result in enumerate(body["results"], 1):
        assert result["rank"] == rank and result["reason"] and result["sources"]
        assert set(result["because"]) <= set(seeds.track_ids)
        assert result["track_id"] not in seeds.track_ids
    artists = [r["artist"] for r in body["results"]]
    assert max(artists.count(a) for a in artists) <= 3


def test_continuing_seeds_and_a_title_by_one_method(api: Api, library: Any) -> None:
    engine, service = library
    seeds = playlist_seeds(engine, "2").track_ids[:3]
    body = api.post(
        "/v1/continue", json={"seeds": seeds, "title": "night drive", "method": "knn", "n": 5}
    ).json()
    expected = service.recommend(seeds, "night drive", 5, method="knn")
    assert [r["track_id"] for r in body["results"]] == [r.track_id for r in expected]
    assert all(r["sources"] == ["knn"] for r in body["results"]) and body["method"] == "knn"
    title_only = api.post("/v1/continue", json={"title": "rock", "n": 3}).json()
    assert len(title_only["results"]) == 3 and title_only["seeds"] == []


def test_continuation_applies_a_user_s_dislikes(api: Api) -> None:
    first = api.post("/v1/continue", json={"playlist_id": 3, "n": 5}).json()["results"][0]["track_id"]
    rated = api.post("/v1/feedback", json={"user": "api-dora", "track_id": first, "rating": "dislike"})
    assert rated.status_code == 200 and rated.json()["dislikes"] == [first]
    again = api.post("/v1/continue", json={"playlist_id": 3, "n": 5, "user": "api-dora"}).json()
    assert again["feedback_applied"] == 1 and first not in [r["track_id"] for r in again["results"]]


def test_continuation_errors(api: Api) -> None:
    error(api.post("/v1/continue", json={"playlist_id": 999999999}), 404, "not_found")
    assert "424242" in error(api.post("/v1/continue", json={"seeds": [1, 424242]}), 404, "not_found")
    malformed = api.post(
        "/v1/continue", content=b'{"playlist_id": 1,', headers={"Content-Type": "application/json"}
    )
    error(malformed, 400, "malformed_body")
    error(api.post("/v1/continue", json={"playlist_id": 1, "seeds": [1]}), 422, "invalid_request")
    error(api.post("/v1/continue", json={}), 422, "invalid_request")
    assert "n:" in error(api.post("/v1/continue", json={"playlist_id": 1, "n": 0}), 422, "invalid_request")
    assert "artst_cap" in error(
        api.post("/v1/continue", json={"playlist_id": 1, "artst_cap": 2}), 422, "invalid_request"
    )
    assert "hybrid" in error(
        api.post("/v1/continue", json={"playlist_id": 1, "method": "magic"}), 400, "bad_input"
    )
    error(api.post("/v1/continue", json=[1, 2]), 422, "invalid_request")


# --------------------------------------------------------------------------- similar and words → music


def test_words_to_music_and_tracks_like_a_track(api: Api) -> None:
    found = api.post("/v1/search/music", json={"prompt": "slow warm drone", "n": 5}).json()["results"]
    assert len(found) == 5
    for hit in found:
        assert hit["video"] == 0 and abs(hit["text"] - hit["score"]) < 1e-5
    assert [h["score"] for h in found] == sorted((h["score"] for h in found), reverse=True)
    western = api.post("/v1/search/music", json={"prompt": "percussion", "culture": "western", "n": 5}).json()
    assert western["results"] and all("western" in h["cultures"] for h in western["results"])
    error(api.post("/v1/search/music", json={"prompt": ""}), 422, "invalid_request")
    error(
        api.post("/v1/search/music", content=b"prompt=x", headers={"Content-Type": "application/json"}),
        400,
        "malformed_body",
    )

    track = found[0]["track_id"]
    alike = api.get(f"/v1/tracks/{track}/similar", params={"by": "music", "n": 4}).json()
    assert alike["by"] == "music" and len(alike["results"]) == 4
    assert track not in [t["track_id"] for t in alike["results"]]
    assert "no 'audio' vector" in error(
        api.get(f"/v1/tracks/{track}/similar", params={"by": "audio"}), 404, "not_found"
    )
    error(api.get("/v1/tracks/999999999/similar", params={"by": "music"}), 404, "not_found")
    error(api.get(f"/v1/tracks/{track}/similar", params={"by": "colour"}), 422, "invalid_request")


def test_playlists_like_a_playlist(api: Api) -> None:
    alike = api.get("/v1/playlists/1/similar", params={"by": "sif", "n": 5}).json()
    assert len(alike["results"]) == 5 and 1 not in [p["playlist_id"] for p in alike["results"]]
    scores = [p["score"] for p in alike["results"]]
    assert scores == sorted(scores, reverse=True)
    error(api.get("/v1/playlists/999999999/similar"), 404, "not_found")
    error(api.get("/v1/playlists/1/similar", params={"by": "seq2seq"}), 404, "not_found")  # not trained here


# --------------------------------------------------------------------------- feedback, export, saving


def test_feedback_is_stored_as_the_ui_stores_it(api: Api) -> None:
    assert (
        api.post("/v1/feedback", json={"user": " api-eve ", "track_id": 5, "rating": "like"}).status_code
        == 200
    )
    engine = db.make_engine(f"sqlite:///{api.data_dir / 'catalog.db'}")
    assert user_feedback(engine, user="api-eve") == {5: LIKE}
    engine.dispose()
    assert api.get("/v1/feedback", params={"user": "api-eve"}).json() == {
        "user": "api-eve",
        "likes": [5],
        "dislikes": [],
    }
    error(
        api.post("/v1/feedback", json={"user": "api-eve", "track_id": 999999999, "rating": "like"}),
        404,
        "not_found",
    )
    error(
        api.post("/v1/feedback", json={"user": "api-eve", "track_id": 5, "rating": "meh"}),
        422,
        "invalid_request",
    )
    error(
        api.post("/v1/feedback", content=b"{", headers={"Content-Type": "application/json"}),
        400,
        "malformed_body",
    )


def test_a_playlist_exports_as_jspf_that_validates_and_as_m3u(api: Api, library: Any) -> None:
    engine, _ = library
    jspf = api.get("/v1/playlists/1/export", params={"format": "jspf"})
    assert jspf.headers["content-type"].startswith("application/jspf+json")
    document = jspf.json()
    validator = jsonschema.Draft202012Validator(JSPF_SCHEMA, format_checker=jsonschema.FormatChecker())
    validator.validate(document)
    tracks = playlist_seeds(engine, "1").track_ids
    assert len(document["playlist"]["track"]) == len(tracks) and document["playlist"]["title"]
    broken = copy.deepcopy(document)
    broken["playlist"]["track"][0]["duration"] = -5  # the schema can fail
    assert list(validator.iter_errors(broken))

    m3u = api.get("/v1/playlists/1/export", params={"format": "m3u"})
    assert m3u.headers["content-type"].startswith("audio/x-mpegurl")
    lines = m3u.text.splitlines()
    assert lines[0] == "#EXTM3U" and sum(line.startswith("#EXTINF:") for line in lines) == len(tracks)
    error(api.get("/v1/playlists/999999999/export"), 404, "not_found")
    error(api.get("/v1/playlists/1/export", params={"format": "pdf"}), 422, "invalid_request")


def test_saving_tracks_as_a_playlist(api: Api) -> None:
    saved = api.post(
        "/v1/playlists", json={"name": "for the road", "track_ids": [3, 1, 2], "user": "api-fay"}
    )
    assert saved.status_code == 201 and saved.json()["namespace"] == "saved"
    opened = api.get(f"/v1/playlists/{saved.json()['playlist_id']}").json()
    assert [e["track_id"] for e in opened["entries"]] == [3, 1, 2] and opened["namespace"] == "saved"
    error(api.post("/v1/playlists", json={"name": "x", "track_ids": [999999999]}), 404, "not_found")
    error(api.post("/v1/playlists", json={"name": "x", "track_ids": []}), 422, "invalid_request")


def test_catalog_counts(api: Api) -> None:
    counts = api.get("/v1/catalog").json()
    assert counts["playlists"] >= 300 and counts["tracks"] > counts["artists"] > 0


# --------------------------------------------------------------------------- music for a video


def test_a_video_upload_is_scored_with_its_parts(api: Api) -> None:
    clip = sorted((api.data_dir / "demo" / "video").glob("*.mov"))[0]
    answer = api.post(
        "/v1/video/score",
        files={"video": (clip.name, clip.read_bytes(), "video/quicktime")},
        data={"prompt": "warm strings", "n": "4"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["name"] == clip.name and body["frames"] > 0 and 0 < body["seconds"] <= 10
    assert len(body["results"]) == 4
    for hit in body["results"]:
        assert abs(hit["video"] + hit["text"] - hit["score"]) < 1e-4
    assert any(hit["text"] != 0 for hit in body["results"])


def test_video_upload_errors(api: Api, tmp_path: Path) -> None:
    big = api.post(
        "/v1/video/score", files={"video": ("big.mp4", b"\0" * (1024 * 1024 + 70_000), "video/mp4")}
    )
    assert "1 MB" in error(big, 413, "upload_too_large")
    text = api.post(
        "/v1/video/score", files={"video": ("notes.mp4", b"these are words, not frames", "video/mp4")}
    )
    assert error(text, 422, "invalid_video").startswith("notes.mp4:")
    long = without_audio(tmp_path / "long.mp4", seconds=14, fps=2)
    too_long = api.post("/v1/video/score", files={"video": ("long.mp4", long.read_bytes(), "video/mp4")})
    assert "at most 10 s" in error(too_long, 422, "invalid_video")
    error(api.post("/v1/video/score", data={"prompt": "no file"}), 422, "invalid_request")
    clip = sorted((api.data_dir / "demo" / "video").glob("*.mov"))[0]
    error(
        api.post("/v1/video/score", files={"video": (clip.name, clip.read_bytes())}, data={"n": "0"}),
        422,
        "invalid_request",
    )
