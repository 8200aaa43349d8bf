"""The nightly pipeline on the trimmed MPD plus audio: a full first run, a run with 1% new data, a no-op run.

    python -m benchmarks.nightly [--mpd ../shared/data/mpd_trimmed] [--audio ../shared/data/audio]
                                 [--als-cadence weekly] [--catalog URL] [--json OUT]

The inputs are linked (never copied) into folders of a temporary data dir: 99% of the
MPD slices and of the audio files for the first run; the remaining 1% (at least one
slice and one audio file) are added before the second; nothing changes before the
third. Every run is ``recsys nightly``'s own function over a pipeline file naming those
folders, the DSP audio encoder and ALS at ``--als-cadence``: ``weekly`` (the default)
is the night when no refit is due, ``always`` refits and publishes a new model and so
rebuilds the index. Targets: the 1% run at most 10% of the full run's time; the no-op
run under 5 s. Printed per run: wall time and each step's status and time.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from pipelines.ingest.audio_dir import AUDIO_SUFFIXES
from pipelines.nightly.config import load_config
from pipelines.nightly.runner import run_nightly
from recsys.catalog import db, runs
from recsys.config import load_settings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _link(files: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number, path in enumerate(files):
        (folder / f"{number:05d}-{path.name}").symlink_to(path.resolve())


def _split(files: list[Path], share: float) -> tuple[list[Path], list[Path]]:
    new = max(1, round(len(files) * share))
    return files[:-new], files[-new:]


def _run(settings: Any, engine: Any, config: Any, label: str) -> dict[str, Any]:
    start = time.perf_counter()
    result = run_nightly(settings, engine, config)
    seconds = time.perf_counter() - start
    with engine.connect() as conn:
        record = runs.history(conn, runs.NIGHTLY, n=1)[0]
    steps = {
        s.step: {"status": s.status, "seconds": round(s.seconds or 0.0, 3), "counts": s.counts}
        for s in record.steps
    }
    print(f"{label}: {seconds:.2f} s")
    for name, step in steps.items():
        shown = runs.counts_text(step["counts"])
        print(f"  {name:<12} {step['status']:<8} {step['seconds']:>8.2f} s  {shown}")
    return {"seconds": round(seconds, 3), "run_id": result.run_id, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mpd", type=Path, default=SHARED / "mpd_trimmed")
    parser.add_argument("--audio", type=Path, default=SHARED / "audio")
    parser.add_argument("--als-cadence", default="weekly", choices=["always", "daily", "weekly"])
    parser.add_argument(
        "--share", type=float, default=0.01, help="Share of the inputs held back for the second run."
    )
    parser.add_argument("--catalog", help="Catalog URL (default: a SQLite file in the temporary data dir).")
    parser.add_argument("--json", type=Path, help="Write the figures here.")
    args = parser.parse_args()

    slices = sorted(args.mpd.rglob("*.json"))
    audio = sorted(p for p in args.audio.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    old_slices, new_slices = _split(slices, args.share)
    old_audio, new_audio = _split(audio, args.share)
    with tempfile.TemporaryDirectory(prefix="nightly-bench-") as tmp:
        root = Path(tmp)
        _link(old_slices, root / "mpd" / "first")
        _link(old_audio, root / "audio" / "first")
        (root / "nightly.toml").write_text(
            '[sources]\nmpd = ["mpd"]\naudio = ["audio"]\n[encoders]\naudio = ["dsp"]\n'
            f'[als]\ncadence = "{args.als_cadence}"\n'
        )
        url = args.catalog or f"sqlite:///{root / 'data' / 'catalog.db'}"
        settings = load_settings(data_dir=root / "data", database_url=url, vector_store=str(root / "vectors"))
        settings.ensure_data_dir()
        engine = db.make_engine(url)
        db.upgrade(engine)
        config = load_config(root / "nightly.toml", settings)
        print(
            f"{len(old_slices)} + {len(new_slices)} slices, {len(old_audio)} + {len(new_audio)} audio files, "
            f"ALS {args.als_cadence}, catalog {db.describe(engine)}"
        )
        full = _run(settings, engine, config, "full first run")
        _link(new_slices, root / "mpd" / "second")
        _link(new_audio, root / "audio" / "second")
        increment = _run(settings, engine, config, f"run with {args.share:.0%} new")
        noop = _run(settings, engine, config, "no-op run")
        engine.dispose()
    ratio = increment["seconds"] / full["seconds"]
    print(
        f"1% run / full run: {ratio:.1%} (target at most 10%); no-op run {noop['seconds']:.2f} s (target under 5 s)"
    )
    figures = {
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "inputs": {
            "slices": [len(old_slices), len(new_slices)],
            "audio_files": [len(old_audio), len(new_audio)],
            "als_cadence": args.als_cadence,
        },
        "full": full,
        "increment": increment,
        "noop": noop,
        "increment_over_full": round(ratio, 4),
        "targets_met": {"increment": ratio <= 0.10, "noop": noop["seconds"] < 5.0},
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
