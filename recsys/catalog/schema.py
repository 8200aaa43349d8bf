"""The catalog schema (SQLAlchemy 2.0 declarative).

Identity rules, written once here and relied on everywhere:

- Every artist, album, track and playlist has a stable integer ``id`` (internal)
  and a ``source_key``, unique, saying where it came from: ``spotify:track:…``,
  ``isrc:…``, ``audio:<sha256>``, ``name:<artist key>|<title key>`` and so on.
  A Spotify URI seen in two files is one row.
- ``track.recording_key`` groups releases of the same recording (a single and its
  album version): the ISRC when known, else the normalised primary artist and the
  title stripped of version decorations ("- Remastered 2011", "(Radio Edit)").
  Recommenders use it to never offer the same recording twice.
- Artists are matched by their normalised name (``name_key``) unless a Spotify
  artist URI is known; two different artists with the same name and no URI share
  a row. This is the only identity the trimmed MPD offers.
- ``playlist_track`` and ``track_artist``, the bulk-written fact tables, carry no foreign
  keys (a per-row trigger tripled PostgreSQL's load time): the bulk loader resolves
  their ids from rows merged in the same transaction and refuses unknown keys, so the
  references hold by construction. Whoever deletes a playlist or a track deletes its
  rows there too.
- Playlists live in a ``namespace`` (``catalog`` by default): held-out test sets
  are ingested into their own namespace and never mixed into training.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Integer primary keys that are BIGINT on PostgreSQL and INTEGER (rowid alias) on SQLite.
IdType = BigInteger().with_variant(Integer(), "sqlite")
# Identifiers (source keys, Spotify URIs, ISRCs, match keys) compare byte by byte on PostgreSQL
# whatever the database's locale: they are matched, never sorted for people, and under the "C"
# collation their indexes are cheaper to maintain and much cheaper to build (abbreviated sort keys
# instead of a locale-aware comparison per pair). SQLite compares bytes already.
KeyText = Text().with_variant(Text(collation="C"), "postgresql")


def key_string(length: int) -> String:
    """A bounded identifier column, compared byte by byte on PostgreSQL (see ``KeyText``)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


DEFAULT_NAMESPACE = "catalog"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IngestBatch(Base):
    """One input (a file, an API playlist, a folder) offered to ingestion."""

    __tablename__ = "ingest_batch"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))  # mpd, spotify, table, audio-dir, listens, demo
    location: Mapped[str] = mapped_column(Text)  # file path, URL or playlist id
    checksum: Mapped[str] = mapped_column(String(64))  # of the input's bytes (or of the API payload)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running, done, failed
    loaded: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (UniqueConstraint("source", "location", "checksum"),)


class IngestReject(Base):
    """A record that could not be ingested, kept with its reason (nothing is dropped silently)."""

    __tablename__ = "ingest_reject"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    reject_key: Mapped[str] = mapped_column(String(64), unique=True)  # hash(source, location, record, reason)
    batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("ingest_batch.id", ondelete="SET NULL"), nullable=True
    )
    source: Mapped[str] = mapped_column(String(32))
    location: Mapped[str] = mapped_column(Text)  # file and record, e.g. "slice.json: playlists[12]"
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str | None] = mapped_column(Text, nullable=True)  # the record as offered, truncated to 64 KiB
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Artist(Base):
    __tablename__ = "artist"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    source_key: Mapped[str] = mapped_column(KeyText, unique=True)
    name: Mapped[str] = mapped_column(Text)
    name_key: Mapped[str] = mapped_column(KeyText, index=True)
    spotify_uri: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mbid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    genres: Mapped[list | None] = mapped_column(JSON, nullable=True)
    cultures: Mapped[list | None] = mapped_column(JSON, nullable=True)


class Album(Base):
    __tablename__ = "album"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    source_key: Mapped[str] = mapped_column(KeyText, unique=True)
    title: Mapped[str] = mapped_column(Text)
    artist_id: Mapped[int | None] = mapped_column(ForeignKey("artist.id"), nullable=True, index=True)
    spotify_uri: Mapped[str | None] = mapped_column(String(64), nullable=True)
    release_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    album_type: Mapped[str | None] = mapped_column(String(16), nullable=True)


class Track(Base):
    __tablename__ = "track"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    source_key: Mapped[str] = mapped_column(KeyText, unique=True)
    spotify_uri: Mapped[str | None] = mapped_column(key_string(64), nullable=True, index=True)
    isrc: Mapped[str | None] = mapped_column(key_string(16), nullable=True, index=True)
    mbid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    title: Mapped[str] = mapped_column(Text)
    title_key: Mapped[str] = mapped_column(Text)
    artist_id: Mapped[int | None] = mapped_column(ForeignKey("artist.id"), nullable=True, index=True)
    artist_name: Mapped[str] = mapped_column(Text)  # as credited, featured artists included
    album_id: Mapped[int | None] = mapped_column(ForeignKey("album.id"), nullable=True, index=True)
    duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    recording_key: Mapped[str] = mapped_column(KeyText, index=True)
    genres: Mapped[list | None] = mapped_column(JSON, nullable=True)
    cultures: Mapped[list | None] = mapped_column(JSON, nullable=True)


class TrackArtist(Base):
    """Every credited artist of a track, in credit order: the primary one and the featured ones."""

    __tablename__ = "track_artist"

    # No foreign keys on this fact table (see the module docstring): ids of track and artist.
    track_id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    artist_id: Mapped[int] = mapped_column(IdType, index=True)
    role: Mapped[str] = mapped_column(String(16))  # primary, featured


class Playlist(Base):
    __tablename__ = "playlist"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(
        String(64), default=DEFAULT_NAMESPACE, server_default=DEFAULT_NAMESPACE
    )
    source_key: Mapped[str] = mapped_column(KeyText)  # mpd:<pid>, spotify:playlist:<id>, table:<id>
    name: Mapped[str] = mapped_column(Text)
    name_key: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner: Mapped[str | None] = mapped_column(Text, nullable=True)
    num_followers: Mapped[int | None] = mapped_column(Integer, nullable=True)
    collaborative: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    modified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    num_tracks: Mapped[int] = mapped_column(Integer, default=0)
    batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("ingest_batch.id", ondelete="SET NULL"), nullable=True
    )

    __table_args__ = (UniqueConstraint("namespace", "source_key"),)


class PlaylistTrack(Base):
    """An ordered playlist entry. A playlist may list a track more than once; every entry is kept."""

    __tablename__ = "playlist_track"

    # No foreign keys on this fact table (see the module docstring): ids of playlist and track.
    playlist_id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[int] = mapped_column(IdType)

    __table_args__ = (Index("ix_playlist_track_track_id", "track_id"),)


class AudioAsset(Base):
    __tablename__ = "audio_asset"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("track.id", ondelete="CASCADE"), index=True)
    uri: Mapped[str] = mapped_column(Text, unique=True)  # absolute path or URL
    checksum: Mapped[str] = mapped_column(String(64), index=True)  # sha256 of the bytes
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sample_rate: Mapped[int | None] = mapped_column(Integer, nullable=True)
    channels: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    tags: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("ingest_batch.id", ondelete="SET NULL"), nullable=True
    )


class Listen(Base):
    """Listening history: one play event (with a time) or an aggregate count (weight) per user and item."""

    __tablename__ = "listen"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    listen_key: Mapped[str] = mapped_column(String(64), unique=True)  # hash(source, user, item, time)
    source: Mapped[str] = mapped_column(String(32))  # lastfm-2k, lastfm-1k, csv, ...
    user_key: Mapped[str] = mapped_column(Text, index=True)
    track_id: Mapped[int | None] = mapped_column(ForeignKey("track.id"), nullable=True, index=True)
    artist_id: Mapped[int | None] = mapped_column(ForeignKey("artist.id"), nullable=True, index=True)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    listened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ModelVersion(Base):
    """A trained model or encoder: what it is, from which data and code, where it lives, how it scored."""

    __tablename__ = "model_version"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))  # als, bpr, seq2seq, culturemert, dsp, trimodal, ...
    version: Mapped[str] = mapped_column(String(128))  # content hash or name@revision
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    params: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    data_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    code_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    metrics: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("kind", "version"),)


class PipelineRun(Base):
    """One run of a job (ingest, embed, train, index, nightly) with its counts, timings and outcome."""

    __tablename__ = "pipeline_run"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="running")  # running, done, failed, killed
    params: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    counts: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    metrics: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Which process runs it, so that a run whose process is gone can be told from one still going.
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)


class PipelineStep(Base):
    """One step of a run (``nightly``: ingest, embed-audio, train-als, ...): what it saw, did and measured.

    ``fingerprint`` digests the step's inputs; a step whose inputs match those of its last
    successful run is skipped.
    """

    __tablename__ = "pipeline_step"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_run.id", ondelete="CASCADE"), index=True)
    step: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(
        String(16), default="running"
    )  # running, done, skipped, failed, killed
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    counts: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    metrics: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (Index("ix_pipeline_step_step_status", "step", "status"),)


class TrackEmbedding(Base):
    """Which tracks hold which vector from which model version (for incremental, resumable embedding)."""

    __tablename__ = "track_embedding"

    track_id: Mapped[int] = mapped_column(ForeignKey("track.id", ondelete="CASCADE"), primary_key=True)
    vector_name: Mapped[str] = mapped_column(String(32), primary_key=True)  # audio, audio_dsp, cf, music, ...
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_version.id"), index=True)
    input_checksum: Mapped[str | None] = mapped_column(String(64), nullable=True)  # of the audio it came from
    embedded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Feedback(Base):
    """A listener's like (+1) or dislike (-1) of a track; the latest opinion per user and track counts.

    Continuation leaves a user's disliked tracks out and ranks their close neighbours lower;
    ``context`` says where the opinion was given (``continue:playlist:12``, ``similar:track:5``).
    """

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    user_name: Mapped[str] = mapped_column(String(128))
    track_id: Mapped[int] = mapped_column(ForeignKey("track.id", ondelete="CASCADE"), index=True)
    rating: Mapped[int] = mapped_column(SmallInteger)
    context: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("user_name", "track_id"),)


class ApiKey(Base):
    """A key of the HTTP API: its name, the SHA-256 of its secret (never the secret itself), its own
    rate limit where it has one, and when it was revoked (a revoked key is refused)."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # hex SHA-256 of the secret
    rate_per_s: Mapped[float | None] = mapped_column(Float, nullable=True)  # None: the server's setting
    burst: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
