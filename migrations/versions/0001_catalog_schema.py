"""catalog schema

Revision ID: 0001_catalog
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_catalog"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "artist",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("source_key", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_key", sa.Text(), nullable=False),
        sa.Column("spotify_uri", sa.String(length=64), nullable=True),
        sa.Column("mbid", sa.String(length=36), nullable=True),
        sa.Column("genres", sa.JSON(), nullable=True),
        sa.Column("cultures", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artist")),
        sa.UniqueConstraint("source_key", name=op.f("uq_artist_source_key")),
    )
    with op.batch_alter_table("artist", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_artist_name_key"), ["name_key"], unique=False)

    op.create_table(
        "ingest_batch",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("loaded", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_batch")),
        sa.UniqueConstraint(
            "source", "location", "checksum", name=op.f("uq_ingest_batch_source_location_checksum")
        ),
    )
    op.create_table(
        "model_version",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("data_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("code_version", sa.String(length=64), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_version")),
        sa.UniqueConstraint("kind", "version", name=op.f("uq_model_version_kind_version")),
    )
    op.create_table(
        "pipeline_run",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_run")),
    )
    op.create_table(
        "album",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("source_key", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("artist_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("spotify_uri", sa.String(length=64), nullable=True),
        sa.Column("release_year", sa.Integer(), nullable=True),
        sa.Column("album_type", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["artist_id"], ["artist.id"], name=op.f("fk_album_artist_id_artist")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_album")),
        sa.UniqueConstraint("source_key", name=op.f("uq_album_source_key")),
    )
    with op.batch_alter_table("album", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_album_artist_id"), ["artist_id"], unique=False)

    op.create_table(
        "ingest_reject",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("reject_key", sa.String(length=64), nullable=False),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["ingest_batch.id"],
            name=op.f("fk_ingest_reject_batch_id_ingest_batch"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_reject")),
        sa.UniqueConstraint("reject_key", name=op.f("uq_ingest_reject_reject_key")),
    )
    op.create_table(
        "playlist",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("namespace", sa.String(length=64), server_default="catalog", nullable=False),
        sa.Column("source_key", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_key", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("num_followers", sa.Integer(), nullable=True),
        sa.Column("collaborative", sa.Boolean(), nullable=True),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("num_tracks", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["ingest_batch.id"],
            name=op.f("fk_playlist_batch_id_ingest_batch"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_playlist")),
        sa.UniqueConstraint("namespace", "source_key", name=op.f("uq_playlist_namespace_source_key")),
    )
    op.create_table(
        "track",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("source_key", sa.Text(), nullable=False),
        sa.Column("spotify_uri", sa.String(length=64), nullable=True),
        sa.Column("isrc", sa.String(length=16), nullable=True),
        sa.Column("mbid", sa.String(length=36), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("title_key", sa.Text(), nullable=False),
        sa.Column("artist_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("artist_name", sa.Text(), nullable=False),
        sa.Column("album_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("recording_key", sa.Text(), nullable=False),
        sa.Column("genres", sa.JSON(), nullable=True),
        sa.Column("cultures", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["album_id"], ["album.id"], name=op.f("fk_track_album_id_album")),
        sa.ForeignKeyConstraint(["artist_id"], ["artist.id"], name=op.f("fk_track_artist_id_artist")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_track")),
        sa.UniqueConstraint("source_key", name=op.f("uq_track_source_key")),
    )
    with op.batch_alter_table("track", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_track_album_id"), ["album_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_track_artist_id"), ["artist_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_track_isrc"), ["isrc"], unique=False)
        batch_op.create_index(batch_op.f("ix_track_recording_key"), ["recording_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_track_spotify_uri"), ["spotify_uri"], unique=False)

    op.create_table(
        "audio_asset",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("track_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=True),
        sa.Column("sample_rate", sa.Integer(), nullable=True),
        sa.Column("channels", sa.Integer(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["ingest_batch.id"],
            name=op.f("fk_audio_asset_batch_id_ingest_batch"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["track_id"], ["track.id"], name=op.f("fk_audio_asset_track_id_track"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audio_asset")),
        sa.UniqueConstraint("uri", name=op.f("uq_audio_asset_uri")),
    )
    with op.batch_alter_table("audio_asset", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audio_asset_checksum"), ["checksum"], unique=False)
        batch_op.create_index(batch_op.f("ix_audio_asset_track_id"), ["track_id"], unique=False)

    op.create_table(
        "listen",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("listen_key", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("user_key", sa.Text(), nullable=False),
        sa.Column("track_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("artist_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("listened_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["artist_id"], ["artist.id"], name=op.f("fk_listen_artist_id_artist")),
        sa.ForeignKeyConstraint(["track_id"], ["track.id"], name=op.f("fk_listen_track_id_track")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listen")),
        sa.UniqueConstraint("listen_key", name=op.f("uq_listen_listen_key")),
    )
    with op.batch_alter_table("listen", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_listen_artist_id"), ["artist_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_listen_track_id"), ["track_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_listen_user_key"), ["user_key"], unique=False)

    op.create_table(
        "playlist_track",
        sa.Column("playlist_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["playlist_id"],
            ["playlist.id"],
            name=op.f("fk_playlist_track_playlist_id_playlist"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["track_id"], ["track.id"], name=op.f("fk_playlist_track_track_id_track")),
        sa.PrimaryKeyConstraint("playlist_id", "position", name=op.f("pk_playlist_track")),
    )
    with op.batch_alter_table("playlist_track", schema=None) as batch_op:
        batch_op.create_index("ix_playlist_track_track_id", ["track_id"], unique=False)

    op.create_table(
        "track_artist",
        sa.Column("track_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("artist_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["artist_id"], ["artist.id"], name=op.f("fk_track_artist_artist_id_artist")),
        sa.ForeignKeyConstraint(
            ["track_id"], ["track.id"], name=op.f("fk_track_artist_track_id_track"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("track_id", "position", name=op.f("pk_track_artist")),
    )
    with op.batch_alter_table("track_artist", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_track_artist_artist_id"), ["artist_id"], unique=False)

    op.create_table(
        "track_embedding",
        sa.Column("track_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("vector_name", sa.String(length=32), nullable=False),
        sa.Column("model_version_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("input_checksum", sa.String(length=64), nullable=True),
        sa.Column(
            "embedded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_version.id"],
            name=op.f("fk_track_embedding_model_version_id_model_version"),
        ),
        sa.ForeignKeyConstraint(
            ["track_id"], ["track.id"], name=op.f("fk_track_embedding_track_id_track"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("track_id", "vector_name", name=op.f("pk_track_embedding")),
    )
    with op.batch_alter_table("track_embedding", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_track_embedding_model_version_id"), ["model_version_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("track_embedding", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_track_embedding_model_version_id"))

    op.drop_table("track_embedding")
    with op.batch_alter_table("track_artist", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_track_artist_artist_id"))

    op.drop_table("track_artist")
    with op.batch_alter_table("playlist_track", schema=None) as batch_op:
        batch_op.drop_index("ix_playlist_track_track_id")

    op.drop_table("playlist_track")
    with op.batch_alter_table("listen", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_listen_user_key"))
        batch_op.drop_index(batch_op.f("ix_listen_track_id"))
        batch_op.drop_index(batch_op.f("ix_listen_artist_id"))

    op.drop_table("listen")
    with op.batch_alter_table("audio_asset", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audio_asset_track_id"))
        batch_op.drop_index(batch_op.f("ix_audio_asset_checksum"))

    op.drop_table("audio_asset")
    with op.batch_alter_table("track", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_track_spotify_uri"))
        batch_op.drop_index(batch_op.f("ix_track_recording_key"))
        batch_op.drop_index(batch_op.f("ix_track_isrc"))
        batch_op.drop_index(batch_op.f("ix_track_artist_id"))
        batch_op.drop_index(batch_op.f("ix_track_album_id"))

    op.drop_table("track")
    op.drop_table("playlist")
    op.drop_table("ingest_reject")
    with op.batch_alter_table("album", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_album_artist_id"))

    op.drop_table("album")
    op.drop_table("pipeline_run")
    op.drop_table("model_version")
    op.drop_table("ingest_batch")
    with op.batch_alter_table("artist", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_artist_name_key"))

    op.drop_table("artist")
