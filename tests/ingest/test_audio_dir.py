"""Audio folders: measuring, tags, linking by ISRC and by name and duration, rejects, idempotency, real files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile
import sqlalchemy as sa
from mutagen.flac import FLAC

from pipelines.ingest.audio_dir import AUDIO_SUFFIXES, ingest_audio_dir
from pipelines.ingest.tables import ingest_table


def rows(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def tone(path: Path, seconds: float, rate: int = 8_000, channels: int = 1, **tags: str) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    data = np.sin(2 * np.pi * 440 * t).astype("float32")
    soundfile.write(str(path), np.stack([data] * channels, axis=1) if channels > 1 else data, rate)
    if tags:
        tagged = FLAC(str(path))
        for name, value in tags.items():
            tagged[name] = value
        tagged.save()
    return path


def build_folder(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    tone(
        root / "a.flac",
        10.0,
        title="Blue Song",
        artist="The Painters",
        isrc="GB-AAA-20-00001",
        date="2020-02-02",
    )
    tone(
        root / "sub" / "a_radio.flac", 11.5, title="Blue Song (Radio Edit)", artist="Painters"
    )  # same recording
    tone(
        root / "sub" / "a_live.flac", 30.0, title="Blue Song", artist="The Painters"
    )  # too long: another track
    tone(root / "b.flac", 5.0, channels=2, rate=16_000, isrc="USRC17607839", title="Catalogued", artist="X")
    tone(root / "untagged.wav", 2.0)
    (root / "copy").mkdir()
    (root / "copy" / "untagged_copy.wav").write_bytes((root / "untagged.wav").read_bytes())
    (root / "empty.mp3").write_bytes(b"")
    (root / "renamed.mp3").write_text("These are liner notes, not audio.\n" * 50)
    (root / "notes.txt").write_text("not audio")
    return root


def test_link_create_reject_and_rerun(catalog_engine: sa.Engine, tmp_path: Path) -> None:
    table = tmp_path / "catalog.csv"
    table.write_text("isrc,title,artist,duration_ms\nUSRC17607839,Catalogued Song,Known Artist,999000\n")
    assert ingest_table(catalog_engine, [table], kind="tracks").ok
    folder = build_folder(tmp_path / "music")

    report = ingest_audio_dir(catalog_engine, folder)
    assert report.ok
    assert report.loaded == {"linked_by_isrc": 1, "linked_by_name": 1, "tracks_created": 3, "audio_assets": 6}
    assert dict(report.reasons) == {"empty file": 1, "not a decodable audio file": 1}
    assert any("1 file(s) without an audio extension" in m for m in report.messages)

    assets = {
        Path(r[0]).relative_to(folder.resolve()).as_posix(): r[1:]
        for r in rows(
            catalog_engine,
            """SELECT a.uri, t.source_key, t.title, a.format, a.sample_rate, a.channels, a.duration_s
               FROM audio_asset a JOIN track t ON t.id = a.track_id""",
        )
    }
    assets = {uri: (*values[:5], round(values[5], 2)) for uri, values in assets.items()}
    sha = hashlib.sha256((folder / "a.flac").read_bytes()).hexdigest()
    untagged = hashlib.sha256((folder / "untagged.wav").read_bytes()).hexdigest()
    assert assets["b.flac"] == ("isrc:USRC17607839", "Catalogued Song", "FLAC", 16_000, 2, 5.0)
    assert assets["a.flac"][:2] == (f"audio:{sha}", "Blue Song")
    assert assets["sub/a_radio.flac"][:2] == (f"audio:{sha}", "Blue Song")  # within 3 s, same recording key
    assert assets["sub/a_live.flac"][0] != f"audio:{sha}"
    # Identical bytes at two paths: one track, titled by the first file in path order ("copy/…").
    assert assets["copy/untagged_copy.wav"][:2] == (f"audio:{untagged}", "untagged_copy")
    assert assets["untagged.wav"][:2] == (f"audio:{untagged}", "untagged_copy")
    assert rows(
        catalog_engine, f"SELECT isrc, year, duration_ms FROM track WHERE source_key = 'audio:{sha}'"
    ) == [("GBAAA2000001", 2020, 10_000)]
    rejects = dict(
        rows(catalog_engine, "SELECT location, reason FROM ingest_reject WHERE source = 'audio-dir'")
    )
    assert rejects[str((folder / "empty.mp3").resolve())] == "empty file"
    assert rejects[str((folder / "renamed.mp3").resolve())].startswith(
        "not a decodable audio file (soundfile:"
    )

    before = rows(catalog_engine, "SELECT id, track_id, uri, checksum FROM audio_asset ORDER BY id")
    batch = rows(
        catalog_engine,
        "SELECT id, status, loaded, rejected, finished_at FROM ingest_batch WHERE source = 'audio-dir'",
    )
    assert [b[1:4] for b in batch] == [("done", 6, 2)]
    tracks = rows(catalog_engine, "SELECT count(*) FROM track")
    again = ingest_audio_dir(catalog_engine, folder)
    assert again.loaded["audio_assets"] == 0 and again.loaded["tracks_created"] == 0
    assert any("6 file(s) unchanged" in m for m in again.messages)
    assert rows(catalog_engine, "SELECT id, track_id, uri, checksum FROM audio_asset ORDER BY id") == before
    assert rows(catalog_engine, "SELECT count(*) FROM track") == tracks
    assert rows(catalog_engine, "SELECT count(*) FROM ingest_reject") == [(2,)]  # not stored twice
    assert again.skipped == 1
    assert (
        rows(
            catalog_engine,
            "SELECT id, status, loaded, rejected, finished_at FROM ingest_batch WHERE source = 'audio-dir'",
        )
        == batch
    )

    tone(folder / "untagged.wav", 3.0)  # the bytes change: measured and linked again
    third = ingest_audio_dir(catalog_engine, folder)
    assert third.loaded["audio_assets"] == 1 and third.loaded["tracks_created"] == 1
    changed = rows(
        catalog_engine,
        f"SELECT duration_s FROM audio_asset WHERE uri = '{(folder / 'untagged.wav').resolve()}'",
    )
    assert round(changed[0][0], 1) == 3.0


def test_missing_folder_is_an_input_error(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    from recsys.errors import InputError

    with pytest.raises(InputError, match="no such file or directory"):
        ingest_audio_dir(sqlite_engine, tmp_path / "absent")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    with pytest.raises(InputError, match="no audio files"):
        ingest_audio_dir(sqlite_engine, tmp_path / "docs")


@pytest.mark.shared_data
def test_real_audio_folder(sqlite_engine: sa.Engine, shared_data: Path) -> None:
    folder = shared_data / "audio"
    files = sorted(
        p.resolve() for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
    )
    decodable = []
    for path in files:
        try:
            soundfile.info(str(path))
            decodable.append(path)
        except soundfile.LibsndfileError:
            pass
    checksums = {hashlib.sha256(p.read_bytes()).hexdigest() for p in decodable}

    report = ingest_audio_dir(sqlite_engine, folder)
    assert report.ok
    assert report.loaded["audio_assets"] == len(decodable)
    assert report.rejected == len(files) - len(decodable)
    stored = rows(
        sqlite_engine, "SELECT count(*), count(DISTINCT checksum), count(DISTINCT track_id) FROM audio_asset"
    )
    n_assets, n_checksums, n_tracks = stored[0]
    assert (n_assets, n_checksums) == (len(decodable), len(checksums))
    assert n_tracks <= n_checksums
    # The librosa recordings come as a 22 kHz mono .ogg and a high-quality .hq.ogg: same tags, same duration.
    pair = rows(
        sqlite_engine,
        """SELECT count(DISTINCT a.track_id), min(t.title), min(t.artist_name) FROM audio_asset a
           JOIN track t ON t.id = a.track_id WHERE a.uri LIKE '%Karissa_Hobbs_-_Lets_Go_Fishin%'""",
    )
    assert pair == [(1, "Let's Go Fishin'", "Karissa Hobbs")]
    again = ingest_audio_dir(sqlite_engine, folder)
    assert again.loaded["audio_assets"] == 0


def aac(path: Path, seconds: float, rate: int = 22_050) -> Path:
    """An AAC file in an MP4 container, written with PyAV (soundfile cannot open it)."""
    import av

    t = np.arange(int(seconds * rate)) / rate
    frame = av.AudioFrame.from_ndarray(
        (0.3 * np.sin(2 * np.pi * 440 * t)).astype("float32")[None, :], format="fltp", layout="mono"
    )
    frame.sample_rate = rate
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


def test_aac_through_pyav_and_broken_tags(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    from mutagen.easymp4 import EasyMP4

    path = aac(tmp_path / "song.m4a", 4.0)
    tagged = EasyMP4(str(path))
    tagged["title"], tagged["artist"] = "Sunrise Raga", "Sitar Ensemble"
    tagged.save()
    with pytest.raises(soundfile.LibsndfileError):
        soundfile.info(str(path))
    broken = tone(tmp_path / "broken_tags.flac", 1.0, title="Lost")
    data = bytearray(broken.read_bytes())
    offset = 4  # after "fLaC": metadata blocks of (type, 3-byte length); type 4 holds the tags
    while data[offset] & 0x7F != 4:
        offset += 4 + int.from_bytes(data[offset + 1 : offset + 4], "big")
    data[offset + 4 : offset + 8] = (0xFFFFFF00).to_bytes(4, "little")  # a vendor string longer than the file
    broken.write_bytes(bytes(data))

    report = ingest_audio_dir(sqlite_engine, tmp_path)
    assert report.ok, report.summary()
    got = rows(
        sqlite_engine,
        """SELECT a.format, a.sample_rate, a.channels, t.title, t.artist_name, t.duration_ms
           FROM audio_asset a JOIN track t ON t.id = a.track_id WHERE a.uri LIKE '%song.m4a'""",
    )
    assert len(got) == 1
    fmt, rate, channels, title, artist, duration = got[0]
    assert (fmt, rate, channels, title, artist) == ("AAC", 22_050, 1, "Sunrise Raga", "Sitar Ensemble")
    assert abs(duration - 4_000) < 100
    # The audio of the file with broken tags still decodes: it lands untagged, and the report says so.
    assert report.loaded["audio_assets"] == 2 and report.rejected == 0
    assert any("1 file(s) with unreadable tags" in m for m in report.messages)
    assert rows(
        sqlite_engine,
        "SELECT t.title FROM audio_asset a JOIN track t ON t.id = a.track_id WHERE a.uri LIKE '%broken_tags.flac'",
    ) == [("broken_tags",)]
