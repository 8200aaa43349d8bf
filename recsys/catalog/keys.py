"""Normalisation and match keys, as Polars expressions (one implementation, used in bulk and one at a time).

- ``clean_text``: Unicode NFC, control characters as spaces, invisible format characters
  (soft hyphen, zero-width space, bidi marks) removed but the zero-width joiner and
  non-joiner kept, whitespace trimmed and collapsed. This is what is stored as a display name.
- ``name_key``: a case-folded match key: NFKC, format characters dropped, lower case,
  ``&`` → ``and``, punctuation dropped, a leading "the " dropped. Letters of every script and their accents are kept
  (``Şivan Perwer`` and ``Sivan Perwer`` stay distinct: accents carry meaning in many languages).
- ``primary_artist`` / ``featured_artists``: "A feat. B & C" → "A" and ["B", "C"]; featured
  credits in the title ("Song (feat. B)", "Song (with B)") are added to the featured list.
  "with" in an artist credit is part of the name ("Sublime With Rome").
- ``title_base``: the title without featured credits and without release decorations
  ("- Remastered 2011", "(Radio Edit)", "[Single Version]", "(Deluxe)") but keeping what
  makes a different recording ("Live", "Remix", "Acoustic").
- ``recording_key``: ``name_key(primary artist) | name_key(title_base)``: releases of one
  recording (a single and its album or best-of version) share it.

A key is at most ``MAX_KEY_BYTES`` of UTF-8: a longer one is cut. Every indexed key
is one or two of them with a prefix and a separator (``name:<artist key>``,
``<artist key>|<title key>``, ``name:<artist key>|<album key>``), so each stays under
PostgreSQL's B-tree limit of about 2,700 bytes per index entry, however long the name
(NFKC alone can make a name up to 18 times longer, so no cap on names could ensure it).
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

# "A feat. B" in an artist credit. Not "with": it belongs to band names ("Off With Their Heads",
# "Sublime With Rome", "Dance With the Dead"), which must stay whole.
_ARTIST_FEAT_SPLIT = r"(?i)\s+(?:feat\.?|ft\.?|featuring)\s+|\s*\(\s*(?:feat\.?|ft\.?|featuring)\s+"
# "(feat. B)" or "[ft. B]" or " feat. B" at the end of a title.
_TITLE_FEAT = r"(?i)\s*[\(\[]\s*(?:feat\.?|ft\.?|featuring|with)\s+([^\)\]]+)[\)\]]|\s+(?:feat\.?|ft\.?|featuring)\s+(.+)$"
_DECORATION_WORDS = (
    r"(?:\d{4}\s+)?(?:digital(?:ly)?\s+)?remaster(?:ed)?(?:\s+(?:version|\d{4}))?(?:\s+\d{4})?"
    r"|radio\s+edit|single\s+version|album\s+version|original\s+mix|mono(?:\s+version)?|stereo(?:\s+version)?"
    r"|explicit(?:\s+version)?|clean(?:\s+version)?|deluxe(?:\s+edition|\s+version)?|bonus\s+track"
    r"|(?:\d{4}\s+)?re-?master(?:ed)?"
)
_DECORATION_PAREN = r"(?i)\s*[\(\[]\s*(?:" + _DECORATION_WORDS + r")\s*[\)\]]"
_DECORATION_DASH = r"(?i)\s+-\s+(?:" + _DECORATION_WORDS + r")\s*$"
_MULTI_SPLIT = r"\s*(?:,|&|\band\b|\bx\b|/)\s*"
_CREDIT_FEATURED = r"(?i)(?:\s+(?:feat\.?|ft\.?|featuring)\s+|\(\s*(?:feat\.?|ft\.?|featuring)\s+)(.+)$"
# Invisible format characters (Unicode Cf) except the zero-width joiner and non-joiner,
# which spell words in Persian, Indic scripts and emoji: soft hyphen, zero-width space,
# byte-order mark, bidirectional marks. They are removed, not turned into spaces.
_INVISIBLE = r"[\p{Cf}--[\x{200C}\x{200D}]]"


def clean_text(expr: pl.Expr, *, ascii: bool = False) -> pl.Expr:
    """NFC, control characters as spaces, invisible format characters removed (not the
    joiners), whitespace trimmed and collapsed; empty becomes null.

    ``ascii``: every value is printable ASCII (:data:`PRINTABLE_ASCII`), which Unicode
    normalisation leaves as it is and which holds no control or format character and no
    whitespace but the space: the same result without those steps.
    """
    if ascii:
        out = expr.str.replace_all(" {2,}", " ").str.strip_chars(" ")
    else:
        out = (
            expr.str.normalize("NFC")
            .str.replace_all(_INVISIBLE, "")
            .str.replace_all(r"\p{Cc}", " ")
            .str.replace_all(r"\s+", " ")
            .str.strip_chars()
        )
    return out.replace("", None)  # the cleaned text once: a when/then over it would clean it twice


# Text of printable ASCII characters only (space to tilde): most names, and the cheap case of
# clean_text and name_key (``ascii=True``), for values known to match this.
PRINTABLE_ASCII = r"^[\x20-\x7e]*$"


# Bytes of UTF-8 a match key holds at most: two keys and their separators stay under 2,100 bytes.
MAX_KEY_BYTES = 1_000


def _bounded(keys: pl.Series) -> pl.Series:
    """Keys longer than ``MAX_KEY_BYTES`` cut to that many characters, or to a quarter as many
    where those still take more bytes (at most four per character)."""
    long = keys.str.len_bytes() > MAX_KEY_BYTES
    if not long.any():
        return keys
    cut = keys.str.head(MAX_KEY_BYTES)
    cut = cut.zip_with(cut.str.len_bytes() <= MAX_KEY_BYTES, cut.str.head(MAX_KEY_BYTES // 4))
    return keys.zip_with(~long, cut)


def bounded(expr: pl.Expr) -> pl.Expr:
    """``expr``'s text cut as match keys are, to at most ``MAX_KEY_BYTES`` of UTF-8."""
    return expr.map_batches(_bounded, return_dtype=pl.String, is_elementwise=True)


def name_key(expr: pl.Expr, *, ascii: bool = False) -> pl.Expr:
    """Case-folded match key of a name or title (at most ``MAX_KEY_BYTES``).

    ``ascii``: as for :func:`clean_text`, the same keys of printable ASCII values, whose
    letters, digits and whitespace are the ASCII ones.
    """
    if ascii:
        out = (
            expr.str.to_lowercase()
            .str.replace_all(" *& *", " and ")
            .str.replace_all("[^a-z0-9 ]", " ")
            .str.replace_all(" {2,}", " ")
            .str.strip_chars(" ")
            .str.replace("^the +", "")
        )
    else:
        out = (
            expr.str.normalize("NFKC")
            .str.replace_all(r"\p{Cf}", "")
            .str.to_lowercase()
            .str.replace_all(r"\s*&\s*", " and ")
            .str.replace_all(r"[^\p{L}\p{M}\p{N}\s]", " ")
            .str.replace_all(r"\s+", " ")
            .str.strip_chars()
            .str.replace(r"^the\s+", "")
        )
    return out.map_batches(_bounded, return_dtype=pl.String, is_elementwise=True)


def primary_artist(expr: pl.Expr) -> pl.Expr:
    """The first credited artist of an artist credit ("A feat. B" → "A")."""
    return expr.str.replace(r"(?:" + _ARTIST_FEAT_SPLIT + r").*$", "").str.strip_chars()


def featured_artists(artist_credit: pl.Expr, title: pl.Expr) -> pl.Expr:
    """Featured artists from the credit ("A feat. B & C") and from the title ("Song (feat. D)"), in order."""
    from_credit = artist_credit.str.extract(_CREDIT_FEATURED, 1).str.replace(r"\)\s*$", "")
    from_title = pl.coalesce(title.str.extract(_TITLE_FEAT, 1), title.str.extract(_TITLE_FEAT, 2))
    joined = pl.concat_str([from_credit.fill_null(""), from_title.fill_null("")], separator="\x00")
    return (
        joined.str.replace_all(_MULTI_SPLIT, "\x00")
        .str.split("\x00")
        .list.eval(pl.element().str.strip_chars().filter(pl.element().str.len_chars() > 0))
        .list.unique(maintain_order=True)
    )


def title_base(expr: pl.Expr) -> pl.Expr:
    """The title without featured credits and release decorations."""
    return (
        expr.str.replace_all(_TITLE_FEAT, "")
        .str.replace_all(_DECORATION_PAREN, "")
        .str.replace(_DECORATION_DASH, "")
        .str.strip_chars()
    )


def recording_key(artist_credit: pl.Expr, title: pl.Expr) -> pl.Expr:
    return pl.concat_str([name_key(primary_artist(artist_credit)), pl.lit("|"), name_key(title_base(title))])


def apply_one(fn: Callable[..., pl.Expr], *values: str | None) -> object:
    """Apply one of the expressions above to single values (for queries and tests)."""
    frame = pl.DataFrame(
        {f"v{i}": [v] for i, v in enumerate(values)}, schema={f"v{i}": pl.String for i in range(len(values))}
    )
    return frame.select(fn(*[pl.col(f"v{i}") for i in range(len(values))]).alias("out"))["out"][0]
