"""Assembling the continuation service from the catalog and a saved factorisation model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, or_, select

from recsys.catalog.queries import playlist_entries, playlists_frame, tracks_frame
from recsys.catalog.schema import (
    DEFAULT_NAMESPACE,
    IngestBatch,
    ModelVersion,
    Playlist,
    PlaylistTrack,
    Track,
)
from recsys.collaborative.baselines import ItemKNN, PlaylistKNN, Popularity
from recsys.collaborative.matrix import InteractionMatrix, playlist_matrix
from recsys.collaborative.store import SavedModel, latest_model
from recsys.errors import InputError, NotFoundError
from recsys.recommend.artist_sources import ArtistIndex, ArtistNeighbourSource, SeedArtistSource
from recsys.recommend.candidates import CandidateSource, ScorerSource, TitleSource
from recsys.recommend.continuation import ContinuationService
from recsys.recommend.diversify import TrackTable
from recsys.recommend.feedback import FeedbackPolicy, ItemSimilarity
from recsys.recommend.ranker import MODEL_KIND as RANKER_KIND
from recsys.recommend.ranker import Ranker, RankerStage
from recsys.recommend.ranker_features import PairFeatures
from recsys.recommend.seq2seq_source import MODEL_KIND, stored_neighbour_source

# The seq2seq nearest-playlist source is served on its own but left out of the fused hybrid:
# it lowered every metric when fused (docs/evaluation.md). The artist sources feed the
# ranker; the fusion (the hybrid without a ranker) keeps its measured members.
DEFAULT_WEIGHTS: dict[str, float] = {
    "als": 1.0,
    "knn": 1.0,
    "title": 0.5,
    "popularity": 0.1,
    "seq2seq": 0.0,
    "playlist_knn": 0.0,
    "artist_knn": 0.0,
    "seed_artists": 0.0,
}


def artist_sources(
    matrix: InteractionMatrix, tracks: TrackTable
) -> tuple[ArtistIndex, list[CandidateSource]]:
    """The artist index of ``matrix``'s tracks and the two artist-level sources over it."""
    index = ArtistIndex(matrix, tracks.artists())
    return index, [ArtistNeighbourSource(index), SeedArtistSource(index)]


def ranker_stage(
    ranker: Ranker,
    matrix: InteractionMatrix,
    index: ArtistIndex,
    tracks: TrackTable,
    model: SavedModel | None,
) -> RankerStage:
    """A trained ranker with the feature builder over the training matrix and the saved model."""
    features = PairFeatures(
        matrix,
        index,
        tracks.titles(),
        None if model is None else model.model,
        None if model is None else model.items,
    )
    return RankerStage(ranker, features)


def latest_ranker(engine: Engine) -> Ranker | None:
    """The newest trained ranker recorded in the catalog (None: none trained yet)."""
    with engine.connect() as conn:
        path = conn.execute(
            select(ModelVersion.path)
            .where(ModelVersion.kind == RANKER_KIND)
            .order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
            .limit(1)
        ).scalar()
    return None if path is None else Ranker.load(Path(path))


def continuation_service(
    engine: Engine,
    model: SavedModel | None,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    weights: Mapping[str, float] | None = None,
    artist_cap: int | None = None,
    data_dir: Path | None = None,
    device: str = "cpu",
    policy: FeedbackPolicy | None = None,
    ranker: Ranker | None = None,
) -> ContinuationService:
    """The hybrid service over the catalog: the saved model, item-kNN, title, popularity, the
    artist sources and seq2seq; with ``ranker``, the hybrid is its order of the pooled candidates.

    The saved factorisation model (ALS or BPR: its source is named ``als`` either way, and
    its reasons say which) keeps its own id map (tracks added since it was trained are not
    among its candidates). Item-kNN, the title index and popularity are fitted here on the
    namespace's playlists as they are now, so building a service takes a while on a large
    catalog: build it once per process and rebuild it when :func:`continuation_versions`
    changes. With ``data_dir``, the newest trained seq2seq encoder whose playlist vectors
    ``recsys embed playlists`` wrote there adds the ``seq2seq`` source (served alone with
    ``method="seq2seq"``; not fused into the hybrid by default); when there is none,
    ``service.unavailable["seq2seq"]`` says why. The item-kNN model also measures how
    close tracks are for feedback (``policy``).
    """
    entries = playlist_entries(engine, namespace=namespace)
    if entries.height == 0:
        raise NotFoundError(
            f"namespace {namespace!r} holds no playlists: ingest some with `recsys ingest mpd PATH…` "
            "(or build the demo catalog with `recsys demo`)"
        )
    matrix = playlist_matrix(entries)
    popularity, knn, playlist_knn = Popularity(), ItemKNN(), PlaylistKNN()
    popularity.fit(matrix)
    knn.fit(matrix)
    playlist_knn.fit(matrix)
    sources: list[CandidateSource] = []
    versions: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    if model is not None:
        kind = model.model.config.kind
        sources.append(
            ScorerSource(model.model, model.items, name="als", label=f"similar taste ({kind.upper()})")
        )
        versions[kind] = model.version
    else:
        unavailable["als"] = "no saved model: train one with `recsys train als`"
    tracks = TrackTable(tracks_frame(engine))
    index, by_artist = artist_sources(matrix, tracks)
    sources += [
        ScorerSource(knn, matrix.items, label="often together (item-kNN)", positive_only=True),
        ScorerSource(playlist_knn, matrix.items, label="in playlists like this one", positive_only=True),
        TitleSource(matrix, playlists_frame(engine, namespace=namespace)),
        ScorerSource(popularity, matrix.items, label="popular", needs_seeds=False, static=True),
        *by_artist,
    ]
    if data_dir is not None:
        try:
            seq2seq, versions["seq2seq"] = stored_neighbour_source(engine, data_dir, entries, device=device)
            sources.append(seq2seq)
        except NotFoundError as exc:
            unavailable["seq2seq"] = str(exc)
    stage = None
    if ranker is not None:
        stage = ranker_stage(ranker, matrix, index, tracks, model)
        versions[RANKER_KIND] = ranker.version
    return ContinuationService(
        sources,
        tracks,
        weights=weights or DEFAULT_WEIGHTS,
        artist_cap=artist_cap,
        similarity=ItemSimilarity(knn, matrix.items),
        policy=policy,
        versions=versions,
        unavailable=unavailable,
        ranker=stage,
    )


def serving_service(engine: Engine, *, data_dir: Path | None, device: str = "cpu") -> ContinuationService:
    """The service the interfaces serve (the UI, the HTTP API): over the newest saved ALS model,
    or without the ALS source when none is trained yet, the seq2seq encoder where one is, and
    the newest trained ranker where one is (else the fusion ranks)."""
    try:
        model = latest_model(engine, "als")
    except NotFoundError:
        model = None
    return continuation_service(engine, model, data_dir=data_dir, device=device, ranker=latest_ranker(engine))


def continuation_versions(engine: Engine, *, kind: str = "als") -> dict[str, str | None]:
    """What a continuation service is built from, cheaply: the newest saved model of ``kind``,
    the newest seq2seq encoder and the newest ingested input (a cache key for the service)."""
    with engine.connect() as conn:

        def newest(model_kind: str) -> str | None:
            return conn.execute(
                select(ModelVersion.version)
                .where(ModelVersion.kind == model_kind)
                .order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
                .limit(1)
            ).scalar()

        batch = conn.execute(select(func.max(IngestBatch.id))).scalar()
        return {
            kind: newest(kind),
            "seq2seq": newest(MODEL_KIND),
            RANKER_KIND: newest(RANKER_KIND),
            "catalog": None if batch is None else str(batch),
        }


@dataclass(frozen=True)
class Seeds:
    track_ids: list[int]
    title: str | None
    unknown: list[str]


def resolve_tracks(engine: Engine, refs: Sequence[str]) -> Seeds:
    """Catalog ids of tracks given by Spotify URI, source key or numeric id, in order.

    References that match no track are returned in ``unknown`` (the caller reports them).
    """
    refs = [r.strip() for r in refs if r.strip()]
    numeric = [int(r) for r in refs if r.isdigit()]
    text = [r for r in refs if not r.isdigit()]
    found: dict[str, int] = {}
    with engine.connect() as conn:
        if text:
            for row in conn.execute(
                select(Track.id, Track.spotify_uri, Track.source_key).where(
                    or_(Track.spotify_uri.in_(text), Track.source_key.in_(text))
                )
            ):
                for key in (row.spotify_uri, row.source_key):
                    if key:
                        found.setdefault(key, row.id)
        if numeric:
            for (track_id,) in conn.execute(select(Track.id).where(Track.id.in_(numeric))):
                found[str(track_id)] = track_id
    ids = [found[r] for r in refs if r in found]
    return Seeds(list(dict.fromkeys(ids)), None, [r for r in refs if r not in found])


def playlist_seeds(engine: Engine, ref: str) -> Seeds:
    """The tracks and title of a catalog playlist given by id or source key (``mpd:123``)."""
    condition = Playlist.id == int(ref) if ref.isdigit() else Playlist.source_key == ref
    with engine.connect() as conn:
        playlist = conn.execute(select(Playlist.id, Playlist.name).where(condition).limit(2)).all()
        if not playlist:
            raise NotFoundError(f"no playlist {ref!r} in the catalog")
        if len(playlist) > 1:
            raise InputError(f"playlist {ref!r} is ambiguous (several namespaces): give its numeric id")
        pid, name = playlist[0]
        tracks = conn.execute(
            select(PlaylistTrack.track_id)
            .where(PlaylistTrack.playlist_id == pid)
            .order_by(PlaylistTrack.position)
        ).scalars()
        return Seeds(list(dict.fromkeys(tracks)), name, [])
