"""Training descriptions synthesised from music tags by analogy, with a hook for a language model.

ViML prompted a language model with a few human-written descriptions and the tags
a music tagger gave each clip, and asked for a description of a new clip "by
analogy". Without a model at hand the same idea works as templates: each
human-written example below is stored with the tags it describes; the words that
express a tag become a slot, so the example becomes a template; a new clip's tags
fill the slots of a template whose slots it has, each value said in one of several
phrasings. ``LLMDescriber`` builds the few-shot analogy prompt from the same
examples and hands it to any completion function (a local model, an API client).

Tags come from a manifest or a sidecar (the synthetic set knows its own), or, for
any folder of videos, from :func:`tags_from_audio`: tempo, energy and register
measured on the soundtrack.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from recsys.media.rhythm import tempo_bpm

PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "instrument": {
        "piano": ("piano", "soft piano", "keys"),
        "strings": ("strings", "a string section", "bowed strings"),
        "flute": ("flute", "a breathy flute", "woodwind"),
        "percussion": ("percussion", "hand drums", "drums"),
        "guitar": ("acoustic guitar", "guitar", "plucked guitar"),
    },
    "culture": {
        "western": ("western", "classical western", "European"),
        "indian": ("Indian", "raga-like", "Hindustani"),
        "japanese": ("Japanese", "east Asian", "koto-like"),
        "celtic": ("Celtic", "Irish folk", "pentatonic folk"),
    },
    "mood": {
        "warm": ("warm", "golden", "cosy"),
        "serene": ("serene", "peaceful", "calm"),
        "melancholic": ("melancholic", "wistful", "sad"),
        "dreamy": ("dreamy", "hazy", "floating"),
        "calm": ("calm", "quiet", "gentle"),
        "energetic": ("energetic", "lively", "driving"),
    },
    "tempo": {
        "slow": ("slow", "unhurried", "slowly unfolding"),
        "medium": ("mid-tempo", "steady", "walking-pace"),
        "fast": ("fast", "quick", "racing"),
    },
    "energy": {
        "sparse": ("sparse", "spacious", "minimal"),
        "flowing": ("flowing", "gently moving", "rolling"),
        "busy": ("busy", "dense", "bustling"),
    },
    "register": {
        "deep": ("deep", "low", "dark-toned"),
        "bright": ("bright", "high", "airy"),
    },
}

# Human-written descriptions and the tags each one expresses (the first phrasing of each tag value).
EXAMPLES: tuple[tuple[str, dict[str, str]], ...] = (
    (
        "warm acoustic guitar, slow and sparse",
        {"mood": "warm", "instrument": "guitar", "tempo": "slow", "energy": "sparse"},
    ),
    (
        "a melancholic Indian piece for piano, mid-tempo",
        {"mood": "melancholic", "culture": "indian", "instrument": "piano", "tempo": "medium"},
    ),
    (
        "fast and busy percussion with a bright, Celtic feel",
        {
            "tempo": "fast",
            "energy": "busy",
            "instrument": "percussion",
            "register": "bright",
            "culture": "celtic",
        },
    ),
    (
        "serene Japanese flute over a flowing, slow pulse",
        {
            "mood": "serene",
            "culture": "japanese",
            "instrument": "flute",
            "energy": "flowing",
            "tempo": "slow",
        },
    ),
    (
        "deep strings, dreamy and slow",
        {"register": "deep", "instrument": "strings", "mood": "dreamy", "tempo": "slow"},
    ),
    ("something slow and calm", {"tempo": "slow", "mood": "calm"}),
)


@dataclass(frozen=True)
class Template:
    text: str  # with {slot} fields
    slots: frozenset[str]


def template_from_example(text: str, tags: Mapping[str, str]) -> Template:
    """Turn a described example into a template: each tag's phrase becomes ``{tag}``."""
    out = text
    for key, value in tags.items():
        phrase = PHRASES[key][value][0]
        pattern = re.compile(re.escape(phrase), flags=re.IGNORECASE)
        if not pattern.search(out):
            raise ValueError(f"example {text!r} does not say {key}={value} as {phrase!r}")
        out = pattern.sub("{" + key + "}", out, count=1)
    return Template(out, frozenset(tags))


class Describer(Protocol):
    def describe(self, tags: Mapping[str, str], key: str) -> str: ...


@dataclass
class AnalogyDescriber:
    """Fills the example templates with a clip's tags; deterministic per ``key`` (the clip id)."""

    examples: tuple[tuple[str, dict[str, str]], ...] = EXAMPLES
    templates: list[Template] = field(init=False)

    def __post_init__(self) -> None:
        self.templates = [template_from_example(text, tags) for text, tags in self.examples]

    def describe(self, tags: Mapping[str, str], key: str) -> str:
        known = {k: v for k, v in tags.items() if k in PHRASES and v in PHRASES[k]}
        rng = np.random.default_rng(zlib.crc32(key.encode()))
        fitting = [t for t in self.templates if t.slots <= known.keys()]
        if not fitting:
            return "music"
        # Prefer templates that say the most about the clip, then vary among them.
        best = max(len(t.slots) for t in fitting)
        choice = [t for t in fitting if len(t.slots) >= best - 1]
        template = choice[int(rng.integers(len(choice)))]
        values = {
            k: PHRASES[k][known[k]][int(rng.integers(len(PHRASES[k][known[k]])))] for k in template.slots
        }
        text = template.text.format(**values)
        extra = sorted(known.keys() - template.slots)
        if extra:  # tags the template has no slot for are appended, so nothing known is dropped
            text += ", " + ", ".join(PHRASES[k][known[k]][0] for k in extra)
        return text[0].upper() + text[1:]


@dataclass
class LLMDescriber:
    """The analogy prompt (examples with their tags, then the new tags) sent to ``complete``."""

    complete: Callable[[str], str]
    examples: tuple[tuple[str, dict[str, str]], ...] = EXAMPLES

    def prompt(self, tags: Mapping[str, str]) -> str:
        lines = ["Describe the music in one short line, like these examples.", ""]
        for text, example_tags in self.examples:
            lines.append(f"Tags: {_tag_line(example_tags)}\nDescription: {text}\n")
        lines.append(f"Tags: {_tag_line(tags)}\nDescription:")
        return "\n".join(lines)

    def describe(self, tags: Mapping[str, str], key: str) -> str:
        text = self.complete(self.prompt(tags)).strip().splitlines()
        if not text or not text[0].strip():
            raise ValueError(f"{key}: the language model returned no description")
        return text[0].strip()


def _tag_line(tags: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))


def tags_from_audio(samples: np.ndarray, sample_rate: int) -> dict[str, str]:
    """Tempo, energy, register and a coarse mood measured on a soundtrack (weight-free)."""
    import librosa  # deferred: librosa (audio extra), compiled by numba on first use

    audio = np.asarray(samples, dtype=np.float32)
    hop = 512
    onset = librosa.onset.onset_strength(y=audio, sr=sample_rate, hop_length=hop)
    tags: dict[str, str] = {}
    if onset.size > 8 and onset.std() > 0:
        fps = sample_rate / hop
        if onset.size > int(fps * 60 / 50):  # at least one beat period at 50 BPM
            bpm = tempo_bpm(onset, sample_rate, hop)
            tags["tempo"] = "slow" if bpm < 85 else "fast" if bpm > 120 else "medium"
        rate = float((onset > onset.mean() + onset.std()).mean() * fps)
        tags["energy"] = "sparse" if rate < 1.0 else "busy" if rate > 3.0 else "flowing"
    centroid = float(librosa.feature.spectral_centroid(y=audio, sr=sample_rate).mean())
    tags["register"] = "deep" if centroid < 1500 else "bright"
    rms = float(np.sqrt(np.mean(audio**2)))
    tags["mood"] = "energetic" if rms > 0.15 and tags.get("energy") == "busy" else "calm"
    return tags
