"""What every page shares, opened once per process: settings, the catalog engine, the vector
store, the continuation service, the video–music scorer; and the cached catalog queries.

Expensive objects come from ``st.cache_resource`` factories keyed by plain values (the
database URL, the store target, the model versions, a collection's published version),
so a newly trained model is picked up on the next request, and two data dirs never share
an object. (Streamlit leaves parameters whose names start with ``_`` out of the key:
every key part here has a plain name.) Query results are cached
with ``st.cache_data`` for a short time, keyed by the same model versions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import streamlit as st
from sqlalchemy import Engine

from recsys.catalog import browse, db, track_search
from recsys.catalog.feedback import feedback_counts
from recsys.catalog.queries import catalog_stats, reject_reasons
from recsys.config import Settings, load_settings
from recsys.evaluation.found import find_reports
from recsys.heap import settle_heap, unsettle_heap
from recsys.models.trimodal_bundle import load_bundle, model_file
from recsys.recommend import similar
from recsys.recommend.service import continuation_versions, serving_service
from recsys.recommend.video_scoring import VideoScorer
from recsys.vectorstore import open_store
from recsys.vectorstore.base import VectorStore
from recsys.vectorstore.held import IdleStore

TTL_S = 60  # cached query results live this long (a new ingest shows within a minute)


def settings() -> Settings:
    """The settings of this process, read from the environment (``RECSYS_*``) once."""
    return _settings(tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("RECSYS_"))))


@st.cache_resource(show_spinner=False)
def _settings(env: tuple[tuple[str, str], ...]) -> Settings:
    return load_settings()


def data_dir_label() -> str:
    """The data dir as a person reads it: relative to where the UI was started when inside it."""
    path = settings().data_dir.resolve()
    try:
        return "./" + str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def catalog_url() -> str:
    return settings().catalog_url


def engine() -> Engine:
    """The catalog engine, checked to be migrated to the newest schema."""
    return _engine(catalog_url())


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    engine = db.settings_engine(settings())  # url: the cache key, the settings' catalog_url
    db.require_current(engine)
    return engine


def store() -> VectorStore:
    """The vector store (readers switch to new versions as they are published).

    The embedded store gives each process a view of the published version; the UI lets go
    of it after ``ui_store_idle_s`` seconds without a request, so that an idle UI holds no
    old version, and opens the current one again on the next request.
    """
    return _store(settings().vector_target, settings().ui_store_idle_s).touch()


@st.cache_resource(show_spinner=False)
def _store(target: str, idle_s: float) -> IdleStore:
    return IdleStore(open_store(settings()), idle_s)


def settled(resource: Any) -> Any:
    """A long-lived resource just built, kept out of the cycle collector's passes (``recsys.heap``)."""
    settle_heap()
    return resource


def continuation() -> Any:
    """The continuation service over the catalog, its newest ALS model and (where trained) the
    ranker and the seq2seq encoder; rebuilt when one of them, or the catalog, changes."""
    url = catalog_url()
    return _continuation(url, _continuation_key(url))


@st.cache_data(ttl=2, show_spinner=False)
def _continuation_key(url: str) -> tuple[tuple[str, str | None], ...]:
    return tuple(sorted(continuation_versions(_engine(url)).items()))


@st.cache_resource(show_spinner="Preparing the recommenders (once per model)…", max_entries=2)
def _continuation(url: str, versions: tuple[tuple[str, str | None], ...]) -> Any:
    cfg = settings()
    unsettle_heap()  # the service this one replaces may hold cycles: let the collector see them again
    return settled(serving_service(_engine(url), data_dir=cfg.data_dir, device=cfg.device))


def video_scorer() -> Any:
    """The video–music scorer (model, frame and text encoders), loaded once per trained model."""
    path = model_file(settings().data_dir)
    stamp = path.stat().st_mtime_ns if path.is_file() else 0
    store()  # a use of the store: keeps it open while the page works
    return _video_scorer(str(path), stamp, settings().vector_target)


@st.cache_resource(show_spinner="Loading the video–music model (once)…", max_entries=1)
def _video_scorer(path: str, stamp: int, target: str) -> Any:
    unsettle_heap()
    return settled(
        VideoScorer(
            load_bundle(Path(path)),
            store(),
            device=settings().device,
            frame_precision=settings().video_precision,
        )
    )


# --------------------------------------------------------------------------- cached queries


@st.cache_data(ttl=TTL_S, show_spinner=False)
def catalog_summary(url: str) -> dict[str, Any]:
    with _engine(url).connect() as conn:
        return {
            "counts": catalog_stats(conn),
            "feedback": feedback_counts(conn),
            "rejects": reject_reasons(conn, limit=20),
            "models": browse.models_in_use(conn),
            "lengths": browse.playlist_lengths(conn),
            "per_artist": browse.tracks_per_artist(conn),
            "top_artists": browse.top_artists(conn, limit=20),
        }


@st.cache_data(ttl=TTL_S, show_spinner=False)
def playlist_page(url: str, query: str, page: int, page_size: int) -> Any:
    return browse.playlist_page(_engine(url), query, page=page, page_size=page_size)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def playlist_view(url: str, playlist_id: int) -> Any:
    return browse.playlist_view(_engine(url), playlist_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def search_tracks(url: str, text: str, limit: int = 25) -> Any:
    return track_search.search_tracks(_engine(url), text, limit=limit)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def tracks_by_id(url: str, ids: tuple[int, ...]) -> Any:
    return track_search.tracks_by_id(_engine(url), list(ids))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def audio_files(url: str, ids: tuple[int, ...]) -> dict[int, Path]:
    return track_search.audio_files(_engine(url), list(ids))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def vector_counts(target: str, collection: str, stamp: int | None) -> dict[str, int]:
    return similar.available_vectors(store(), collection)


def store_stamp(collection: str) -> int | None:
    """The version of ``collection`` readers see now (caches of its contents are keyed by it)."""
    return store().current_version(collection)


@st.cache_data(ttl=600, show_spinner="Projecting the vectors to 2-D…", max_entries=8)
def vector_map(target: str, collection: str, vector: str, stamp: int | None, sample: int) -> Any:
    return similar.vector_map(store(), collection, vector, sample=sample)


@st.cache_data(ttl=30, show_spinner=False)
def reports(root: str) -> list[Any]:
    return find_reports(Path(root))
