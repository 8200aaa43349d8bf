"""The platform's collections, their named vectors and payload indexes.

``tracks``
    One point per catalog track, point id = ``track.id``. Named vectors: ``audio``
    (CultureMERT), ``audio_dsp`` (the weight-free DSP descriptor), ``cf`` (ALS item
    factors), ``seq2seq`` (item vectors of the playlist encoder), ``music`` (the trimodal
    model's music tower). A point may hold any subset of them. Payload: ``track_id``,
    ``title``, ``artist``, ``artist_id``, ``year``, ``genres``, ``cultures`` (lists),
    ``duration_ms``; indexed for filtering: artist, artist_id, year, genres, cultures,
    duration_ms. ``music_model``: the version of the trimodal model that made the
    point's ``music`` vector (see :func:`model_field`).
``playlists``
    One point per catalog playlist, point id = ``playlist.id``. Named vectors:
    ``seq2seq`` (the encoder's playlist vector) and ``sif`` (SIF-weighted bag of track
    vectors). Payload: ``playlist_id``, ``name``, ``namespace``, ``num_tracks``;
    indexed: namespace, num_tracks.

Vector sizes below are the defaults a fresh collection is created with. A model whose
output size differs writes its vectors after ``spec.with_vector(name, size)`` in a
rebuild; a rebuild keeps the sizes of the current version (see ``pipelines.index``).

A payload field ``<vector>_model`` (:func:`model_field`) records which model version
made the point's named vector, where the embedder writes one (the trimodal model
writes ``music_model``). It belongs to the vector, not to the catalog: a rebuild
carries it over with the vector and drops it when the vector is dropped, so a reader
can always tell which model the vector it found came from.
"""

from __future__ import annotations

from recsys.vectorstore.spec import CollectionSpec, Distance, FieldType, VectorSpec

TRACKS = "tracks"
PLAYLISTS = "playlists"

TRACK_VECTOR_SIZES: dict[str, int] = {
    "audio": 768,
    "audio_dsp": 128,
    "cf": 64,
    "seq2seq": 128,
    "music": 128,  # the trimodal model's default embed_dim
}
PLAYLIST_VECTOR_SIZES: dict[str, int] = {"seq2seq": 256, "sif": 64}

TRACK_INDEXES: dict[str, FieldType] = {
    "artist": FieldType.KEYWORD,
    "artist_id": FieldType.INTEGER,
    "year": FieldType.INTEGER,
    "genres": FieldType.KEYWORD,
    "cultures": FieldType.KEYWORD,
    "duration_ms": FieldType.INTEGER,
}
PLAYLIST_INDEXES: dict[str, FieldType] = {
    "namespace": FieldType.KEYWORD,
    "num_tracks": FieldType.INTEGER,
}


def tracks_spec(sizes: dict[str, int] | None = None) -> CollectionSpec:
    """The ``tracks`` collection; ``sizes`` overrides the default size of some vectors."""
    merged = {**TRACK_VECTOR_SIZES, **(sizes or {})}
    vectors = tuple(VectorSpec(name, size, Distance.COSINE) for name, size in merged.items())
    return CollectionSpec(TRACKS, vectors, dict(TRACK_INDEXES))


def playlists_spec(sizes: dict[str, int] | None = None) -> CollectionSpec:
    """The ``playlists`` collection; ``sizes`` overrides the default size of some vectors."""
    merged = {**PLAYLIST_VECTOR_SIZES, **(sizes or {})}
    vectors = tuple(VectorSpec(name, size, Distance.COSINE) for name, size in merged.items())
    return CollectionSpec(PLAYLISTS, vectors, dict(PLAYLIST_INDEXES))


SPECS = {TRACKS: tracks_spec, PLAYLISTS: playlists_spec}


def default_spec(name: str) -> CollectionSpec:
    try:
        return SPECS[name]()
    except KeyError:
        raise ValueError(f"unknown collection {name!r}; known: {', '.join(sorted(SPECS))}") from None


def model_field(vector: str) -> str:
    """The payload field recording which model version made a point's ``vector`` (``music`` → ``music_model``)."""
    return f"{vector}_model"
