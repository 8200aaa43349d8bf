"""Rendering shared by the pages: errors as one clear message, catalog text shown literally,
durations, audio players and the user name from the sidebar."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from recsys.errors import LockedError, NotFoundError, RecsysError, VectorStoreError

USER_KEY = "user"
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def literal(text: object) -> str:
    """``text`` escaped for Markdown, so names from catalogs render as the characters they are
    (a track called ``**bold**`` or ``<script>`` shows exactly that)."""
    return _MARKDOWN.sub(r"\\\1", " ".join(str(text if text is not None else "").split()))


def duration(ms: int | None) -> str:
    if ms is None or ms <= 0:
        return ""
    seconds = round(ms / 1000)
    return f"{seconds // 60}:{seconds % 60:02d}"


def show(message: str, kind: str = "info") -> None:
    (st.error if kind == "error" else st.warning if kind == "warning" else st.info)(message)


def stop(message: str, *, kind: str = "info") -> NoReturn:
    """Show one message and end the page's run here."""
    show(message, kind)
    st.stop()
    raise AssertionError("unreachable")  # st.stop raises; this keeps type checkers informed


def message_for(exc: BaseException) -> tuple[str, str]:
    """(kind, one-line message) for an error a page can meet."""
    if isinstance(exc, LockedError):
        return "warning", f"The vector store is busy: {exc} Try again when the other command has finished."
    if isinstance(exc, NotFoundError):
        return "info", str(exc)
    if isinstance(exc, VectorStoreError):
        return "error", f"The vector store cannot be used: {exc}"
    if isinstance(exc, RecsysError):
        return "error", str(exc)
    if isinstance(exc, SQLAlchemyError):
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return "error", f"The catalog database cannot be read: {first}"
    raise exc


@contextmanager
def guard(*, stop_page: bool = True) -> Iterator[None]:
    """Run a block; a known error becomes one message on the page (never a traceback) and ends
    the page's run there, or only the block with ``stop_page=False`` (a tab among others)."""
    try:
        yield
    except (RecsysError, SQLAlchemyError) as exc:
        kind, text = message_for(exc)
        show(text, kind)
        if stop_page:
            st.stop()


def user() -> str:
    """The user name given in the sidebar ("" when none)."""
    return " ".join(str(st.session_state.get(USER_KEY) or "").split())


def audio_player(path: Path | None) -> None:
    if path is not None and path.is_file():
        st.audio(str(path))
