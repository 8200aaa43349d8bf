"""`recsys recommend challenge`: a challenge set built from real MPD files, in its published
shape, continued into a submission that keeps every format rule."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.ingest.mpd import ingest_mpd
from recsys.catalog import db
from recsys.errors import InputError
from recsys.recommend.challenge import SUBMISSION_SIZE, read_challenge_set, read_submission

runner = CliRunner()


def challenge_set(files: list[Path], out: Path) -> dict[int, set[str]]:
    """A challenge set from MPD slices: title only, title + first 5, first 10 without a title,
    title + 25 at random; returns each pid's seeds."""
    playlists = [p for f in files for p in json.loads(f.read_text())["playlists"]]
    shaped, seeds = [], {}
    for i, p in enumerate(playlists):
        tracks = [{"pos": k, "track_uri": t["track_uri"], "track_name": t["track_name"],
                   "artist_name": t["artist_name"]} for k, t in enumerate(p["tracks"])]  # fmt: skip
        kind = i % 4
        shown = (
            [] if kind == 0 else tracks[:5] if kind == 1 else tracks[:10] if kind == 2 else tracks[::4][:25]
        )
        record = {"pid": 1_000_000 + i, "num_tracks": len(tracks), "num_samples": len(shown),
                  "num_holdouts": len(tracks) - len(shown), "tracks": shown}  # fmt: skip
        if kind != 2:
            record["name"] = p["name"]
        shaped.append(record)
        seeds[record["pid"]] = {t["track_uri"] for t in shown}
    out.write_text(json.dumps({"date": "2026-12-07", "version": "v1", "playlists": shaped}))
    return seeds


@pytest.fixture(scope="module")
def mpd_files(shared_data: Path) -> list[Path]:
    return sorted((shared_data / "mpd_trimmed").glob("mpd.slice.*.json"))


def test_the_submission_keeps_every_format_rule(mpd_files: list[Path], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    assert ingest_mpd(engine, mpd_files[:6]).ok
    engine.dispose()
    seeds = challenge_set(mpd_files[-3:], tmp_path / "challenge_set.json")
    # one seed the catalog cannot know
    data = json.loads((tmp_path / "challenge_set.json").read_text())
    data["playlists"][1]["tracks"].append({"pos": 99, "track_uri": "spotify:track:" + "0" * 22})
    seeds[data["playlists"][1]["pid"]].add("spotify:track:" + "0" * 22)
    (tmp_path / "challenge_set.json").write_text(json.dumps(data))
    env = {"RECSYS_DATABASE_URL": url, "RECSYS_DATA_DIR": str(tmp_path / "data")}
    out = tmp_path / "submission.csv.gz"
    result = runner.invoke(
        app, ["recommend", "challenge", str(tmp_path / "challenge_set.json"), "--out", str(out),
              "--team", "planted team", "--email", "team@example.org"], env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{len(seeds)} playlists continued by the fusion" in result.output
    unknown = re.search(r"; (\d+) seed tracks not in the catalog", result.output)
    assert unknown and int(unknown.group(1)) >= 1, result.output
    raw = gzip.decompress(out.read_bytes()).decode().splitlines()
    assert raw[0] == "team_info,planted team,team@example.org"
    assert sum(line.startswith("team_info") for line in raw) == 1
    team, rows = read_submission(out)
    assert team == ["team_info", "planted team", "team@example.org"]
    pids = [int(row[0]) for row in rows]
    assert sorted(pids) == sorted(seeds) and len(set(pids)) == len(pids)
    for row in rows:
        uris = row[1:]
        assert len(uris) == SUBMISSION_SIZE and len(set(uris)) == SUBMISSION_SIZE, row[0]
        assert all(u.startswith("spotify:track:") and len(u) == 36 for u in uris), row[0]
        assert not set(uris) & seeds[int(row[0])], row[0]


def test_a_bad_challenge_record_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "challenge_set.json"
    path.write_text(json.dumps({"playlists": [{"pid": 1, "name": "x"}, {"pid": 2, "tracks": [{"pos": 0}]}]}))
    with pytest.raises(InputError, match=r"playlist 1 \(pid 2\): track 0 has no Spotify track URI"):
        read_challenge_set(path)
    path.write_text(json.dumps({"playlists": [{"pid": 3}]}))
    with pytest.raises(InputError, match=r"pid 3\): neither a name nor seed tracks"):
        read_challenge_set(path)
