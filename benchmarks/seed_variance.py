"""How much the score depends on the training seed, with the labels held fixed.

``quality.py`` draws the volume (or Samson's labelled pixels) and the training seed from
one seed, so its spread mixes harder label draws with luckier training runs. Here each
draw is trained several times with the default ``fast`` settings, changing only the
``Trainer`` seed (network initialisation, block draws, flips), and scored like
``quality.py``. Seismic runs are also scored with ``Predictor(ordered_units=True)``
(``geoseg predict --ordered-units``), which keeps the units in their order down every
trace, on the same model.

Run from the repository root::

    python benchmarks/seed_variance.py                       # seismic volume 1, training seeds 1 5 9
    python benchmarks/seed_variance.py --volumes 0 1 2 --train-seeds 0 1 2
    python benchmarks/seed_variance.py --case samson --volumes 0 1 2 --train-seeds 0 1 2

Writes ``benchmarks/results/seed_variance.json`` and ``seed_variance.png`` (Samson:
``seed_variance_samson.*``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from typing import Optional

import _common
import numpy as np


def load_draw(case: str, seed: int, size: int) -> dict:
    """Image, labels, truth and scored mask of one draw, as ``quality.py`` makes them."""
    import quality

    args = argparse.Namespace(size=size, samson_dir=quality.SAMSON_DIR, band_step=1)
    return quality.make_case(case, seed, args)


def run_one(case: str, draw_seed: int, train_seed: int, size: int) -> dict:
    """Train and predict with the defaults on one draw with one training seed; score it."""
    from napari_geoseg.demo import mean_iou
    from napari_geoseg.train import Predictor, Trainer

    data = load_draw(case, draw_seed, size)
    n_classes = len(data["class_names"])
    start = time.perf_counter()
    trainer = Trainer(data["image"], data["labels"], preset="fast", seed=train_seed)
    model = trainer.train()
    labels = Predictor(model).predict(data["image"]).labels
    seconds = time.perf_counter() - start
    ious = mean_iou(labels, data["truth"], data["score_mask"], n_classes)
    ordered_iou = None
    if case == "seismic":
        # The synthetic units are numbered from the top down, as ordered_units expects.
        ordered = Predictor(model, ordered_units=True).predict(data["image"]).labels
        ordered_iou = float(np.mean(mean_iou(ordered, data["truth"], data["score_mask"], n_classes)))
    return {"volume_seed": draw_seed, "train_seed": train_seed, "mean_iou": float(np.mean(ious)),
            "per_class_iou": [float(v) for v in ious], "ordered_mean_iou": ordered_iou,
            "seconds": seconds, "iterations": trainer.iterations, "block": list(trainer.block)}


def plot(runs: list[dict], path, case: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    volumes = sorted({r["volume_seed"] for r in runs})
    series = {"mean_iou": ("C0", "as predicted"), "ordered_mean_iou": ("C2", "ordered units")}
    keys = score_keys(case)
    fig, ax = plt.subplots(figsize=(1.6 + 1.2 * len(volumes), 3.6))
    for i, v in enumerate(volumes):
        for j, key in enumerate(keys):
            color, label = series[key]
            offset = 0.2 * j - 0.1 * (len(keys) - 1)
            scores = [r[key] for r in runs if r["volume_seed"] == v]
            ax.scatter([i + offset] * len(scores), scores, color=color, label=label if i == 0 else None)
            ax.hlines(np.mean(scores), i + offset - 0.12, i + offset + 0.12, color=color)
    if case == "seismic":
        ax.axhline(0.95, color="grey", ls="--", lw=1, label="target 0.95")
    ax.set_xticks(range(len(volumes)), [f"{'volume' if case == 'seismic' else 'label draw'} {v}" for v in volumes])
    ax.set_ylabel("mean IoU (unlabelled voxels)")
    ax.set_title(f"{case}: same labels, different training seeds")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def score_keys(case: str) -> tuple[str, ...]:
    return ("mean_iou", "ordered_mean_iou") if case == "seismic" else ("mean_iou",)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("seismic", "samson"), default="seismic")
    parser.add_argument("--volumes", nargs="+", type=int, default=[1],
                        help="synthetic volume seeds, or Samson label draws (default 1)")
    parser.add_argument("--train-seeds", nargs="+", type=int, default=[1, 5, 9],
                        help="Trainer seeds per volume (default 1 5 9)")
    parser.add_argument("--size", type=int, default=96, help="volume side (default 96)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    _common.ensure_package()
    import torch

    torch.set_num_threads(args.threads)
    runs = []
    print("volume train_seed mean_IoU  per-class IoU            ordered  seconds", flush=True)
    for volume_seed in args.volumes:
        for train_seed in args.train_seeds:
            run = run_one(args.case, volume_seed, train_seed, args.size)
            runs.append(run)
            print(f"{volume_seed:>6} {train_seed:>10} {run['mean_iou']:>8.3f}  "
                  f"{' / '.join(f'{v:.3f}' for v in run['per_class_iou'])}  "
                  f"{run['ordered_mean_iou'] or float('nan'):7.3f}  "
                  f"{run['seconds']:6.1f}", flush=True)
    summary = []
    for volume_seed in args.volumes:
        for key in score_keys(args.case):
            scores = [r[key] for r in runs if r["volume_seed"] == volume_seed]
            summary.append({"volume_seed": volume_seed, "score": key, "mean": float(np.mean(scores)),
                            "std": float(np.std(scores)), "min": float(np.min(scores)),
                            "max": float(np.max(scores)), "runs": len(scores)})
            print(f"volume {volume_seed}, {key}: mean {np.mean(scores):.3f}, std {np.std(scores):.3f}, "
                  f"range {np.min(scores):.3f}-{np.max(scores):.3f} over {len(scores)} training seeds")
    command = "python " + shlex.join([sys.argv[0]] + (sys.argv[1:] if argv is None else list(argv)))
    payload = {"command": command, "case": args.case,
               "machine": _common.machine_info(), "size": args.size, "runs": runs, "summary": summary}
    name = "seed_variance" if args.case == "seismic" else f"seed_variance_{args.case}"
    path = _common.write_json(f"{name}.json", payload)
    plot(runs, _common.RESULTS / f"{name}.png", args.case)
    print(f"wrote {path} and {_common.RESULTS / f'{name}.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
