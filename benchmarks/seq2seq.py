"""Throughput of the seq2seq playlist encoder against the bag-of-tracks (SIF) baseline, same data, same run.

Prints training throughput (playlists per second per epoch) and embedding throughput
(playlists per second) for the seq2seq encoder and for SIF (item2vec-style vectors + SIF
weighting), and writes them as JSON (``--json PATH``, default
``benchmarks/results/seq2seq.json``). Runs unchanged on a CUDA machine, where the
encoder trains in bf16 mixed precision (``--device auto``).

Data: synthetic playlists with MPD-like lengths (10–250) and Zipf-like track popularity,
or the playlists of a catalog (``--catalog sqlite:///data/catalog.db``).

    python benchmarks/seq2seq.py --playlists 1000 --epochs 1
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from recsys.devices import resolve_device
from recsys.models.playlist_baselines import fit_sif
from recsys.models.playlist_seq2seq import Seq2SeqConfig
from recsys.models.playlist_seq2seq_training import fit_seq2seq


def synthetic_playlists(n: int, tracks: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, tracks + 1) ** 0.8
    popularity /= popularity.sum()
    lengths = np.clip(rng.lognormal(4.3, 0.6, size=n).astype(int), 10, 250)
    return [rng.choice(tracks, size=int(k), p=popularity).tolist() for k in lengths]


def catalog_playlists(url: str) -> list[list[int]]:
    from recsys.catalog import db
    from recsys.catalog.queries import playlist_entries

    entries = playlist_entries(db.make_engine(url))
    return entries.group_by("playlist_id", maintain_order=True).agg("track_id")["track_id"].to_list()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--playlists", type=int, default=1000, help="synthetic playlists (ignored with --catalog)"
    )
    parser.add_argument("--tracks", type=int, default=20_000, help="synthetic track pool")
    parser.add_argument("--catalog", help="SQLAlchemy URL of a catalog to read the playlists from")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--arch", default="gru", choices=["gru", "lstm"])
    parser.add_argument("--bidirectional", action="store_true")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/seq2seq.json"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    playlists = (
        catalog_playlists(args.catalog)
        if args.catalog
        else synthetic_playlists(args.playlists, args.tracks, args.seed)
    )
    entries = sum(len(p) for p in playlists)
    device = resolve_device(args.device)
    config = Seq2SeqConfig(
        arch=args.arch,
        bidirectional=args.bidirectional,
        epochs=args.epochs,
        hidden=64,
        embed_dim=32,
        batch_size=128,
        sampled_negatives=512,
        seed=args.seed,
    )

    encoder, report = fit_seq2seq(playlists, config, device=args.device)
    started = time.perf_counter()
    encoder.embed(playlists)
    seq2seq_embed = len(playlists) / (time.perf_counter() - started)

    started = time.perf_counter()
    sif = fit_sif(playlists)
    sif_fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    sif.embed(playlists)
    sif_embed = len(playlists) / (time.perf_counter() - started)

    results = {
        "data": {"source": args.catalog or "synthetic", "playlists": len(playlists), "entries": entries},
        "machine": {
            "device": str(device),
            "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "torch_threads": args.threads,
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "seq2seq": {
            "label": config.label,
            "precision": report.precision,
            "epochs": report.epochs,
            "train_seconds": round(report.seconds, 2),
            "train_playlists_per_s": round(report.playlists_per_second, 1),
            "embed_playlists_per_s": round(seq2seq_embed, 1),
        },
        "baseline_sif": {
            "fit_seconds": round(sif_fit_seconds, 2),
            "fit_playlists_per_s": round(len(playlists) / sif_fit_seconds, 1),
            "embed_playlists_per_s": round(sif_embed, 1),
        },
    }
    print(
        f"data: {len(playlists):,} playlists, {entries:,} entries ({results['data']['source']}); device {device}"
    )
    print(f"{'':<22}{'train/fit pl/s':>16}{'embed pl/s':>14}")
    print(
        f"{config.label + ' ' + report.precision:<22}{report.playlists_per_second:>16.1f}{seq2seq_embed:>14.1f}"
    )
    print(f"{'sif (baseline)':<22}{len(playlists) / sif_fit_seconds:>16.1f}{sif_embed:>14.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
