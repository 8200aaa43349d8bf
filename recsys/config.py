"""Settings, read once from the environment (``RECSYS_*``) in an entry point and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recsys.embedders.checkpoints import DEFAULT_MODEL, DEFAULT_REVISION
from recsys.embedders.precision import Precision
from recsys.errors import ConfigError

SPOTIFY_API_BASE = "https://api.spotify.com/v1/"
SPOTIFY_TOKEN_URL = "https://accounts.spotify.com/api/token"
EXECUTORS = ("local", "ray")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """Everything configurable about a recsys installation.

    Build it once (``Settings()``) where the process starts and hand it to the
    functions that need it; nothing in the library reads the environment itself.
    """

    model_config = SettingsConfigDict(env_prefix="RECSYS_", env_file=None, extra="ignore")

    data_dir: Path = Field(
        default=Path("data"), description="Where the embedded database, vectors, models and runs live."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the catalog; default: a SQLite file catalog.db in the data dir. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/db",
    )
    vector_store: str | None = Field(
        default=None,
        description="Vector store target: a directory (Qdrant Edge, the default: <data dir>/vectors), "
        "':memory:', or an http(s):// URL of a Qdrant server or cluster.",
    )
    qdrant_api_key: SecretStr | None = None
    qdrant_timeout_s: int = Field(default=10, ge=1, description="Timeout of one request to a Qdrant server.")
    qdrant_retries: int = Field(
        default=3,
        ge=0,
        description="Retries (exponential backoff) of a Qdrant request that failed transiently.",
    )
    qdrant_shards: int | None = Field(
        default=None,
        ge=1,
        description="Shards of each new collection on a Qdrant server (None: the server's).",
    )
    qdrant_replicas: int | None = Field(
        default=None, ge=1, description="Copies of each shard on a Qdrant cluster (None: the server's)."
    )
    qdrant_write_consistency: int | None = Field(
        default=None,
        ge=1,
        description="Replicas that must confirm a write before it succeeds, on a Qdrant cluster (None: the server's).",
    )
    vector_batch: int = Field(default=256, ge=1, description="Points per upsert request to the vector store.")
    spotify_api_base: str = SPOTIFY_API_BASE
    spotify_token_url: str = SPOTIFY_TOKEN_URL
    spotify_client_id: str | None = None
    spotify_client_secret: SecretStr | None = None
    spotify_redirect_uri: str = "http://127.0.0.1:8888/callback"
    spotify_access_token: SecretStr | None = Field(
        default=None,
        description="A user access token (for the current user's playlists); skips the OAuth flow.",
    )
    spotify_deadline_s: float = Field(
        default=60.0,
        gt=0,
        description="Longest time one Spotify request may take, however slowly the answer arrives "
        "(rate-limit waits are not counted).",
    )
    device: str = Field(default="auto", description="auto, cpu, cuda or cuda:N for the models.")
    video_precision: Literal["float32", "int8"] = Field(
        default="float32",
        description="How CLIP encodes video frames on the CPU when scoring a video: float32, or int8 "
        "(Linear layers dynamically quantised: about 2x faster, cosine about 0.999 to float32). "
        "On a GPU frames are encoded in float16 either way.",
    )
    batch_rows: int = Field(
        default=200_000, ge=1_000, description="Rows per bulk-load chunk during ingestion."
    )
    max_input_bytes: int = Field(
        default=256 * 2**20,
        ge=1,
        lt=2**31,
        description="Bytes one ingested input (a file, a zip member) may expand to; a larger one is rejected.",
    )
    max_json_depth: int = Field(
        default=64,
        ge=1,
        description="Nesting of arrays and objects a JSON input may reach; a deeper one is rejected.",
    )
    max_name_chars: int = Field(
        default=1_000,
        ge=1,
        description="Characters kept of a name, title or description; a longer one is cut, with a reject row.",
    )
    sqlite_busy_timeout_s: float = Field(
        default=30.0,
        ge=0,
        description="How long a SQLite write waits for another process's write lock before it counts as busy.",
    )
    sqlite_lock_retries: int = Field(
        default=3,
        ge=0,
        description="Times a write transaction that found the SQLite catalog busy starts again "
        "(after 1 s, 2 s, 4 s, ...) before the command gives up.",
    )
    pg_lock_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="How long a PostgreSQL statement waits for a lock another session holds (a bulk load, "
        "an index rebuild, a migration) before the command ends, saying the catalog was busy.",
    )
    log_level: str = Field(
        default="WARNING",
        description="Level of recsys's own log messages: DEBUG, INFO, WARNING or ERROR.",
    )
    audio_model: str = Field(
        default=DEFAULT_MODEL,
        description="CultureMERT (or any MERT/HuBERT-shaped) checkpoint: a Hugging Face id or a local directory.",
    )
    audio_model_revision: str = Field(
        default=DEFAULT_REVISION,
        description="Hub revision (branch, tag or commit) of audio_model; a commit pins the weights, "
        "a branch or tag warns with the commit it resolved to.",
    )
    audio_layers: str = Field(
        default="mean",
        description="Layer pooling of the audio model: mean, a layer index, or 13 comma-separated weights.",
    )
    audio_window_s: float = Field(default=5.0, gt=0, description="Seconds per audio model window.")
    audio_hop_s: float | None = Field(
        default=None, gt=0, description="Seconds between windows (default: the window)."
    )
    audio_batch_size: int = Field(
        default=8, ge=1, description="Windows (CultureMERT) or files (DSP) per batch."
    )
    audio_max_duration_s: float = Field(
        default=600.0, gt=0, description="Seconds of each audio file embedded at most."
    )
    executor: str = Field(
        default="local",
        description="Where embedding jobs decode and embed: local (this process) or ray (a Ray cluster).",
    )
    ray_address: str | None = Field(
        default=None,
        description="Address of the Ray cluster the ray executor joins, e.g. 10.0.0.5:6379 "
        "(default: RAY_ADDRESS, else a Ray started for the job).",
    )
    ray_actors: int | None = Field(
        default=None, ge=1, description="Ray actors of an embedding job (default: one per GPU, else 2)."
    )
    audio_precision: Precision = Field(
        default="float32",
        description="How the audio model computes: float32, int8 (a faster CPU path with int8 linear "
        "layers) or int8-bf16 (and the convolutional front end in bfloat16); part of the model version, "
        "so a switch embeds every track again.",
    )

    ui_max_upload_mb: int = Field(
        default=200, ge=1, le=4096, description="Largest video the UI accepts as an upload, in MB."
    )
    ui_max_video_s: float = Field(
        default=600.0, gt=0, description="Longest video the UI accepts (uploaded or picked), in seconds."
    )
    ui_store_idle_s: float = Field(
        default=20.0,
        gt=0,
        description="Seconds without a request after which the UI lets go of the embedded vector store, "
        "so that versions published since can replace the one it read.",
    )

    api_max_body_kb: int = Field(
        default=256,
        ge=1,
        le=65536,
        description="Largest request body the HTTP API reads, in KiB (a video upload has the UI's cap instead).",
    )
    api_rate_per_s: float = Field(
        default=10.0,
        gt=0,
        description="Requests per second an API key may make on average (a key may be given its own).",
    )
    api_rate_burst: int = Field(
        default=20,
        ge=1,
        description="Requests an API key may make at once before its rate applies (a key may be given its own).",
    )

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("executor")
    @classmethod
    def _known_executor(cls, value: str) -> str:
        name = value.strip().lower()
        if name not in EXECUTORS:
            raise ValueError(f"must be one of {', '.join(EXECUTORS)}")
        return name

    @field_validator("spotify_api_base")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @property
    def catalog_url(self) -> str:
        """The database URL in force: the setting, or the embedded SQLite file under the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'catalog.db').resolve()}"

    @property
    def vector_target(self) -> str:
        """The vector store target in force: the setting, or ``<data dir>/vectors``."""
        return self.vector_store or str((self.data_dir / "vectors").resolve())

    @property
    def max_upload_bytes(self) -> int:
        """The largest video upload accepted (the UI's and the HTTP API's), in bytes."""
        return self.ui_max_upload_mb * 1024 * 1024

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir


def load_settings(**overrides: Any) -> Settings:
    """``Settings`` from the environment; an invalid value is a one-line ``ConfigError`` naming each variable.

    For example ``RECSYS_BATCH_ROWS=500: must be at least 1000``.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(error) for error in exc.errors())) from None


_RULES = {
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_type": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "finite_number": "must be a finite number",
}


def _describe(error: Any) -> str:
    """``RECSYS_NAME=value: rule`` for one pydantic error (a secret's value is not shown)."""
    field = str(error["loc"][0]) if error.get("loc") else "?"
    name = f"RECSYS_{field.upper()}"
    rule = _RULES.get(error["type"])
    if rule is not None:
        rule = rule.format(
            **{k: f"{v:g}" if isinstance(v, float) else v for k, v in error.get("ctx", {}).items()}
        )
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
        rule = message[:1].lower() + message[1:]
    value = error.get("input")
    if field in Settings.model_fields and "SecretStr" in str(Settings.model_fields[field].annotation):
        shown = "…"
    elif isinstance(value, str):
        shown = value if len(value) <= 80 else value[:77] + "..."
    else:
        return f"{name}: {rule}"
    return f"{name}={shown}: {rule}"
