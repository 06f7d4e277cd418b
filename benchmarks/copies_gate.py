"""Can the labels alone tell where smoothed copies help a volume? A cheap test, no network.

Smoothed copies of the image (local mean and local amplitude at 1-16 voxels,
``napari_geoseg.nn.SmoothedCopies``) raised F3 and Reek in full runs and lowered the
engine's seismic and channels (README.md, Results), and the race cannot tell them apart:
its held-out voxels sit in the same wells as the training voxels. This script asks a
per-voxel probe (``napari_geoseg.train.probe.fit_probe``, penalised as the engine's) the
same question with whole wells or strokes held out, one at a time:

- ``groups_values`` / ``groups_copies``: leave-one-group-out balanced accuracy on the
  labelled voxels of a probe reading the value and the depth, or those and the copies;
- ``truth_values`` / ``truth_copies``: the same probes fitted on every label, scored
  (balanced accuracy) on the unlabelled voxels against the truth: what the gate should
  predict, never seen by it; ``truth_iou_*``: their mean IoU there (the suite's score,
  on a sample of the unlabelled voxels).

Run on every volume case and draw of ``benchmarks/quality.py``:

    python benchmarks/copies_gate.py --data-dir ../shared/data

writes ``benchmarks/results/copies_gate.json`` and ``copies_gate.png`` and prints a table,
with the mean IoU of the current default (``ours``, from the files of the last variant of
``--default``, a ``quality_compare.py`` output) and of the draw's best peer beside the probes'.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases
from _common import RESULTS, write_json
from quality_compare import PEERS, runs_of

from napari_geoseg.demo import mean_iou
from napari_geoseg.nn import SmoothedCopies
from napari_geoseg.train.holdout import connected_groups
from napari_geoseg.train.probe import fit_probe

VOLUME_CASES = ("seismic", "seismic-thinbeds", "seismic-channels", "seismic-faults-noise", "volve-velocity",
                "f3-envelope", "reek-facies")
SIGMAS = (1.0, 2.0, 4.0, 8.0, 16.0)
PENALTY = 1e-3
SCORED = 20000  # unlabelled voxels drawn for the truth scores


def features_of(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(values, copies)``: per-voxel columns ``(N, 2)`` (value, depth) and ``(N, 2 + 10)``
    (value, its copies, depth), each column standardised."""
    finite = np.isfinite(image)
    x = np.where(finite, image, np.median(image[finite])).astype(np.float32)
    x = (x - x.mean()) / (x.std() + 1e-12)
    with torch.no_grad():
        stack = SmoothedCopies(1, SIGMAS, dim=3)(torch.from_numpy(x)[None, None])[0].numpy()
    depth = np.broadcast_to(np.linspace(-1, 1, x.shape[-1], dtype=np.float32), x.shape)
    columns = np.concatenate([stack.reshape(len(stack), -1), depth.reshape(1, -1)]).T
    columns = (columns - columns.mean(0)) / (columns.std(0) + 1e-12)
    return columns[:, [0, -1]], columns


def balanced_accuracy(predicted: np.ndarray, classes: np.ndarray) -> float:
    return float(np.mean([np.mean(predicted[classes == c] == c) for c in np.unique(classes)]))


def probe_predict(train_x, train_y, test_x, n_classes, weight) -> np.ndarray:
    w, b = fit_probe(torch.from_numpy(train_x), torch.from_numpy(train_y), n_classes, weight, penalty=PENALTY)
    return (torch.from_numpy(test_x) @ w.T + b).argmax(1).numpy()


def leave_one_group_out(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_classes: int, weight) -> float:
    predicted = np.empty_like(y)
    for g in np.unique(groups):
        test = groups == g
        predicted[test] = probe_predict(x[~test], y[~test], x[test], n_classes, weight)
    return balanced_accuracy(predicted, y)


def gate_case(name: str, seed: int, args) -> dict:
    data = cases.make_case(name, seed, args)
    labels, truth = data["labels"], data["truth"]
    values, copies = features_of(data["image"])
    points = np.argwhere(labels > 0)
    flat = np.ravel_multi_index(points.T, labels.shape)
    ids = np.unique(labels[labels > 0])
    y = np.searchsorted(ids, labels.ravel()[flat]).astype(np.int64)
    n_classes = len(ids)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weight = torch.tensor(counts.sum() / (n_classes * counts), dtype=torch.float32)
    groups = connected_groups(points, labels.shape)
    scored = np.flatnonzero(np.asarray(data["score_mask"]).ravel() & np.isin(truth.ravel(), ids))
    scored = np.random.default_rng(seed).choice(scored, min(SCORED, len(scored)), replace=False)
    truth_y = np.searchsorted(ids, truth.ravel()[scored])
    row = {"case": name, "seed": seed, "groups": int(groups.max() + 1), "labelled": int(len(y))}
    for key, x in (("values", values), ("copies", copies)):
        row[f"groups_{key}"] = leave_one_group_out(x[flat], y, groups, n_classes, weight)
        predicted = probe_predict(x[flat], y, x[scored], n_classes, weight)
        row[f"truth_{key}"] = balanced_accuracy(predicted, truth_y)
        row[f"truth_iou_{key}"] = float(np.nanmean(mean_iou(predicted + 1, truth_y + 1, np.ones(len(scored), bool),
                                                             n_classes)))
    return row


def reference_scores(default: Path) -> tuple[dict, dict]:
    """``(ours, peer)``: mean IoU by (case, seed) of the default's runs (the last variant of a
    ``quality_compare.py`` output) and of the best peer of that draw."""
    compared = json.loads(default.read_text())
    paths = list(compared["variants"].values())[-1]
    ours = {(c, s): v for (c, _, s), v in runs_of(paths, ("ours",)).items()}
    peers: dict = {}
    for (c, _, s), v in runs_of([RESULTS / "quality.json", RESULTS / "quality_band_statistics.json"], PEERS).items():
        peers[(c, s)] = max(v, peers.get((c, s), 0.0))
    return ours, peers


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['case']} {r['seed']}" for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(12, 4.5))
    for offset, key, name in ((-0.3, "truth_iou_values", "probe: value + depth"),
                              (-0.1, "truth_iou_copies", "probe: value + copies + depth"),
                              (0.1, "ours", "ours (default)"), (0.3, "best_peer", "best peer")):
        ax.bar(x + offset, [r.get(key) or 0.0 for r in rows], 0.2, label=name)
    ax.set_xticks(x, labels, rotation=70, ha="right", fontsize=8)
    ax.set_ylabel("mean IoU, unlabelled voxels")
    ax.set_title("A per-voxel probe on smoothed copies against the network and the best peer")
    ax.legend(fontsize=8, ncol=4, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(VOLUME_CASES), choices=VOLUME_CASES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--data-dir", default=str(cases.DATA_DIR))
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--default", type=Path, default=RESULTS / "quality_small_image_iterations.json",
                        help="quality_compare.py output whose last variant is the default to compare with")
    args = parser.parse_args(argv)
    ours, peers = reference_scores(args.default)
    args.samson_dir, args.quick = None, False
    torch.set_num_threads(args.threads)
    rows = []
    print(f"{'case':>22} {'draw':>4} {'groups':>6} | {'LOGO values':>11} {'LOGO copies':>11} | "
          f"{'truth values':>12} {'truth copies':>12} | {'IoU values':>10} {'IoU copies':>10} {'ours':>6} "
          f"{'peer':>6}")
    for name in args.cases:
        for seed in args.seeds:
            start = time.perf_counter()
            try:
                row = gate_case(name, seed, args)
            except FileNotFoundError as err:
                print(f"{name:>22} skipped: {err}")
                break
            row["seconds"] = time.perf_counter() - start
            row["ours"], row["best_peer"] = ours.get((name, seed)), peers.get((name, seed))
            rows.append(row)
            print(f"{name:>22} {seed:>4} {row['groups']:>6} | {row['groups_values']:11.3f} "
                  f"{row['groups_copies']:11.3f} | {row['truth_values']:12.3f} {row['truth_copies']:12.3f} | "
                  f"{row['truth_iou_values']:10.3f} {row['truth_iou_copies']:10.3f} "
                  f"{row['ours'] or float('nan'):6.3f} {row['best_peer'] or float('nan'):6.3f}")
    out = write_json("copies_gate.json", {"benchmark": "copies_gate", "argv": sys.argv, "sigmas": SIGMAS,
                                          "penalty": PENALTY, "scored_voxels": SCORED,
                                          "default": str(args.default), "rows": rows})
    plot(rows, RESULTS / "copies_gate.png")
    print(f"wrote {out} and copies_gate.png")


if __name__ == "__main__":
    main()
