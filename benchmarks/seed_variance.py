"""How much the seismic score depends on the training seed, with the labels held fixed.

``quality.py`` draws the volume, its borehole labels and the training seed from one seed,
so its spread mixes harder volumes with luckier training runs. Here each synthetic
volume is trained several times with the default ``fast`` settings, changing only the
``Trainer`` seed (network initialisation, block draws, flips), and scored like
``quality.py`` (mean IoU over the unlabelled voxels), both as predicted and with
``Predictor(ordered_units=True)`` (``geoseg predict --ordered-units``), which keeps the
units in their order down every trace, on the same probabilities.

Run from the repository root::

    python benchmarks/seed_variance.py                       # volume 1, training seeds 1 5 9
    python benchmarks/seed_variance.py --volumes 0 1 2 --train-seeds 0 1 2 3

Writes ``benchmarks/results/seed_variance.json`` and ``seed_variance.png``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from typing import Optional

import _common
import numpy as np


def run_one(volume_seed: int, train_seed: int, size: int) -> dict:
    """Train and predict with the defaults on one volume with one training seed; score it."""
    from napari_geoseg.data import synthetic_seismic
    from napari_geoseg.demo import mean_iou
    from napari_geoseg.train import Predictor, Trainer

    volume = synthetic_seismic((size,) * 3, seed=volume_seed)
    start = time.perf_counter()
    trainer = Trainer(volume.image, volume.labels, preset="fast", seed=train_seed)
    model = trainer.train()
    labels = Predictor(model).predict(volume.image).labels
    seconds = time.perf_counter() - start
    n_classes = len(volume.class_names)
    ious = mean_iou(labels, volume.truth, volume.labels == 0, n_classes)
    # The synthetic units are numbered from the top down, as ordered_units expects.
    ordered = Predictor(model, ordered_units=True).predict(volume.image).labels
    ordered_ious = mean_iou(ordered, volume.truth, volume.labels == 0, n_classes)
    return {"volume_seed": volume_seed, "train_seed": train_seed, "mean_iou": float(np.mean(ious)),
            "per_class_iou": [float(v) for v in ious], "ordered_mean_iou": float(np.mean(ordered_ious)),
            "seconds": seconds,
            "iterations": trainer.iterations, "block": list(trainer.block)}


def plot(runs: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    volumes = sorted({r["volume_seed"] for r in runs})
    fig, ax = plt.subplots(figsize=(1.6 + 1.2 * len(volumes), 3.6))
    for i, v in enumerate(volumes):
        for key, offset, color, label in (("mean_iou", -0.1, "C0", "as predicted"),
                                          ("ordered_mean_iou", 0.1, "C2", "ordered units")):
            scores = [r[key] for r in runs if r["volume_seed"] == v]
            ax.scatter([i + offset] * len(scores), scores, color=color, label=label if i == 0 else None)
            ax.hlines(np.mean(scores), i + offset - 0.12, i + offset + 0.12, color=color)
    ax.axhline(0.95, color="grey", ls="--", lw=1, label="target 0.95")
    ax.set_xticks(range(len(volumes)), [f"volume {v}" for v in volumes])
    ax.set_ylabel("mean IoU (unlabelled voxels)")
    ax.set_title("same labels, different training seeds")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", nargs="+", type=int, default=[1], help="synthetic volume seeds (default 1)")
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
            run = run_one(volume_seed, train_seed, args.size)
            runs.append(run)
            print(f"{volume_seed:>6} {train_seed:>10} {run['mean_iou']:>8.3f}  "
                  f"{' / '.join(f'{v:.3f}' for v in run['per_class_iou'])}  {run['ordered_mean_iou']:7.3f}  "
                  f"{run['seconds']:6.1f}", flush=True)
    summary = []
    for volume_seed in args.volumes:
        for key in ("mean_iou", "ordered_mean_iou"):
            scores = [r[key] for r in runs if r["volume_seed"] == volume_seed]
            summary.append({"volume_seed": volume_seed, "score": key, "mean": float(np.mean(scores)),
                            "std": float(np.std(scores)), "min": float(np.min(scores)),
                            "max": float(np.max(scores)), "runs": len(scores)})
            print(f"volume {volume_seed}, {key}: mean {np.mean(scores):.3f}, std {np.std(scores):.3f}, "
                  f"range {np.min(scores):.3f}-{np.max(scores):.3f} over {len(scores)} training seeds")
    command = "python " + shlex.join([sys.argv[0]] + (sys.argv[1:] if argv is None else list(argv)))
    payload = {"command": command,
               "machine": _common.machine_info(), "size": args.size, "runs": runs, "summary": summary}
    path = _common.write_json("seed_variance.json", payload)
    plot(runs, _common.RESULTS / "seed_variance.png")
    print(f"wrote {path} and {_common.RESULTS / 'seed_variance.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
