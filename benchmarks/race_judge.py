"""How the design race is judged: the probe's best strength against a cross-fitted strength.

The race of :class:`~napari_geoseg.train.Trainer` (``Preset.race``) trains a bare network
and one with a head side by side, then keeps the one more accurate on the held-out
labelled voxels. A design with a head stacks a per-voxel probe onto it at one of six
strengths. Judged at the strength that scores best on the same voxels, it is credited
with the largest of six noisy estimates; the engine judges it instead with each fold of
the held-out voxels scored at the strength the other folds prefer
(:func:`~napari_geoseg.train.probe.cross_fitted_accuracy`).

This script runs only the race (the first ``race`` share of the iterations) on every
volume and image case of the quality suite and records, for each label draw and design,
both scores and the design each judge picks. The race's training does not depend on how
it is judged, so a draw whose pick is the same under both judges trains, and scores in
``quality.py``, exactly as before; only the draws that flip need a full rerun.

``--copies`` gives volumes the smoothed copies too (``smoothing_modes`` every mode), so
the design with a head reads them. ``--groups`` holds out whole wells or strokes
(``Preset.hold_out_groups``) instead of single voxels. On volumes the race's held-out
voxels also score a penalised per-voxel probe on the value, its smoothed copies and the
depth, fitted on the race's training voxels (``probe_copies``; ``copies_gate.py``): the
question is whether held-out wells tell where that probe beats the network.

Each row also holds the rival design's lead over the preset's on the held-out voxels
(cross-fitted) with its standard error clustered by well or stroke
(:func:`paired_advantage`), and the design that a judge asking for a lead of more than 1
or 2 such errors would keep (a trial, not the engine's judge).

Usage::

    python benchmarks/race_judge.py --data-dir ../shared/data --seeds 0 1 2 [--copies] [--groups]

Writes ``benchmarks/results/race_judge[_copies][_groups].json`` and ``.png`` and prints a table.
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace
from typing import Any, Optional

import _common
import cases as suite

_common.ensure_package()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from copies_gate import features_of, probe_predict  # noqa: E402

from napari_geoseg.train import Trainer, get_preset  # noqa: E402
from napari_geoseg.train.holdout import connected_groups  # noqa: E402
from napari_geoseg.train.layout import MODES  # noqa: E402
from napari_geoseg.train.probe import choose_strength, cross_fitted_correct  # noqa: E402

#: The suite's cases that race (cubes train one design).
RACING_CASES = [case for case in suite.CASES if suite.kind_of(case) in ("volume", "image")]


#: Both judges' scores of each design in the race being run (design: scores).
SCORES: dict[str, dict[str, float]] = {}
#: Whether each design classifies each held-out voxel right (cross-fitted).
CORRECT: dict[str, np.ndarray] = {}
#: The volume being raced: its per-voxel columns (value, copies, depth), or None, and the
#: accuracy of the probe on them (:func:`probe_copies_accuracy`) once the race is judged.
COPIES: dict[str, Any] = {"features": None, "accuracy": None}


def probe_copies_accuracy(trainer: Trainer) -> float:
    """Accuracy on the race's held-out voxels of a penalised probe on the value, its
    copies and the depth, fitted on the race's training voxels."""
    shape = trainer.image.shape[:3]
    columns = COPIES["features"]
    train = np.ravel_multi_index(trainer._train_points.T, shape)
    held = np.ravel_multi_index(trainer._validation_points.T, shape)
    values = trainer._values.astype(np.int64) - 1
    predicted = probe_predict(columns[train], values[trainer._train], columns[held], trainer.n_classes,
                              trainer.class_weight.cpu())
    return float(np.mean(predicted == values[~trainer._train]))


def recording_race_score(trainer: Trainer, nets) -> float:
    """``Trainer._race_score`` that also notes both judges' scores in :data:`SCORES` and
    the cross-fitted judge's verdict on each held-out voxel in :data:`CORRECT` (it
    replaces the method: the rivals a trainer makes are plain Trainers)."""
    logits, probe_logits, classes, strengths = trainer._held_out_scores(nets)
    best = max(choose_strength(logits, probe_logits, classes, strengths)[1].values())
    correct = cross_fitted_correct(logits, probe_logits, classes, strengths, seed=trainer.seed).numpy()
    SCORES[trainer.design] = {"best_strength": best, "cross_fitted": float(correct.mean()),
                              "held_out_voxels": len(classes)}
    CORRECT[trainer.design] = correct
    if COPIES["features"] is not None and COPIES["accuracy"] is None:
        COPIES["accuracy"] = probe_copies_accuracy(trainer)
    return float(correct.mean())


Trainer._race_score = recording_race_score


#: Standard errors of the lead that the trial judges ask of the rival design.
ERRORS = (1.0, 2.0)


def paired_advantage(rival: np.ndarray, incumbent: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """How much more accurate ``rival`` is than ``incumbent`` on the same held-out voxels
    (``(N,)`` booleans), and the standard error of that lead clustered by ``groups`` (the
    well or stroke of each voxel; sandwich estimator with the ``G / (G - 1)`` factor).

    Held-out voxels of one well are right or wrong together, so a lead won in one well
    counts as one observation, not as many as that well has voxels. 0 error with fewer
    than two groups."""
    difference = rival.astype(np.float64) - incumbent.astype(np.float64)
    if len(difference) == 0:
        return 0.0, 0.0
    lead = float(difference.mean())
    _, group = np.unique(groups, return_inverse=True)
    sums = np.bincount(group, weights=difference - lead)
    g = len(sums)
    if g < 2:
        return lead, 0.0
    return lead, float(np.sqrt(g / (g - 1) * np.sum(sums ** 2)) / len(difference))


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}"


def pick(scores: dict[str, dict[str, float]], judge: str, preset_design: str) -> str:
    """The design a judge keeps: the higher score, ties to the preset's design."""
    order = [preset_design] + [d for d in scores if d != preset_design]
    return max(order, key=lambda d: scores[d][judge])


def _cells(row: dict[str, Any]) -> list:
    s = row["scores"]
    return [row["case"], row["seed"], f"{s['bare']['cross_fitted']:.3f}", f"{s['head']['best_strength']:.3f}",
            f"{s['head']['cross_fitted']:.3f}", s["head"]["held_out_voxels"], row["held_out_groups"],
            f"{row['lead']:+.3f} ± {row['lead_error']:.3f}", row["pick_best_strength"], row["pick_cross_fitted"],
            *(row[f"pick_lead_{errors:g}_errors"] for errors in ERRORS), _fmt(row["probe_copies"])]


def race_once(case: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    data = suite.make_case(case, seed, SimpleNamespace(data_dir=args.data_dir))
    preset = get_preset("fast", smoothing_modes=MODES if args.copies else None,
                        hold_out_groups=True if args.groups else None)
    SCORES.clear()
    CORRECT.clear()
    # The probe on copies reads one property: volumes of several are left out.
    single = data["kind"] == "volume" and data["image"].ndim == 3
    COPIES["features"] = features_of(data["image"])[1] if single else None
    COPIES["accuracy"] = None
    start = time.perf_counter()
    trainer = Trainer(data["image"], data["labels"], preset=preset, seed=seed)
    events = trainer.run()
    for _ in events:
        if trainer.race is not None:
            break
    events.close()
    scores = dict(SCORES)
    preset_design = "head" if preset.head else "bare"
    row = {"case": case, "seed": seed, "scores": scores, "seconds": time.perf_counter() - start,
           "probe_copies": COPIES["accuracy"]}
    if len(scores) == 2:
        row["pick_best_strength"] = pick(scores, "best_strength", preset_design)
        row["pick_cross_fitted"] = pick(scores, "cross_fitted", preset_design)
        row["flips"] = row["pick_best_strength"] != row["pick_cross_fitted"]
        # A trial judge: the rival's cross-fitted lead must exceed ERRORS standard
        # errors of the lead, clustered by well or stroke.
        rival = "bare" if preset_design == "head" else "head"
        groups = connected_groups(trainer._points, data["labels"].shape)[~trainer._train]
        lead, error = paired_advantage(CORRECT[rival], CORRECT[preset_design], groups)
        row.update(lead=lead, lead_error=error, held_out_groups=len(np.unique(groups)))
        for errors in ERRORS:
            row[f"pick_lead_{errors:g}_errors"] = rival if lead > errors * error else preset_design
    return row


def plot(rows: list[dict[str, Any]], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if len(r["scores"]) == 2]
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = [f"{r['case']} {r['seed']}" for r in rows]
    x = np.arange(len(rows))
    for judge, marker in (("best_strength", "o"), ("cross_fitted", "s")):
        margin = [r["scores"]["head"][judge] - r["scores"]["bare"][judge] for r in rows]
        ax.scatter(x, margin, marker=marker, label=f"head - bare, {judge.replace('_', ' ')}")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, labels, rotation=90, fontsize=7)
    ax.set_ylabel("held-out accuracy margin")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=RACING_CASES, choices=RACING_CASES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--data-dir", default=None, help="the shared data folder (default: cases.py's)")
    parser.add_argument("--copies", action="store_true", help="volumes get the smoothed copies too")
    parser.add_argument("--groups", action="store_true", help="hold out whole wells or strokes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default=None, help="results name (default race_judge[_copies][_groups])")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    name = args.name or "race_judge" + ("_copies" if args.copies else "") + ("_groups" if args.groups else "")
    rows = []
    header = ["case", "seed", "bare", "head (best strength)", "head (cross-fitted)", "held out", "wells/strokes",
              "lead ± error", "pick: best strength", "pick: cross-fitted (engine)", "pick: lead > 1 error",
              "pick: lead > 2 errors", "probe on copies"]
    print(" | ".join(header), flush=True)
    for case in args.cases:
        missing = suite.missing_files(case, SimpleNamespace(data_dir=args.data_dir))
        if missing:
            print(f"{case}: skipped, missing {missing[0]}", flush=True)
            continue
        for seed in args.seeds:
            row = race_once(case, seed, args)
            rows.append(row)
            s = row["scores"]
            if len(s) == 2:
                print(" | ".join(str(v) for v in _cells(row)), flush=True)
            else:
                print(f"{case} | {seed} | no race ({', '.join(s) or 'none judged'})", flush=True)
    table = _common.format_table(header, [_cells(r) for r in rows if len(r["scores"]) == 2])
    print(table)
    payload = {"benchmark": "race_judge", "copies": args.copies, "groups": args.groups, "cases": args.cases,
               "seeds": args.seeds,
               "machine": _common.machine_info(), "results": rows,
               "flipped": [(r["case"], r["seed"]) for r in rows if r.get("flips")],
               "flipped_by_errors": {f"{errors:g}": [(r["case"], r["seed"]) for r in rows if "lead" in r
                                                     and r[f"pick_lead_{errors:g}_errors"] != r["pick_cross_fitted"]]
                                     for errors in ERRORS},
               "table": table}
    path = _common.write_json(f"{name}.json", payload)
    plot(rows, _common.RESULTS / f"{name}.png")
    print(f"wrote {path} and {_common.RESULTS / name}.png")


if __name__ == "__main__":
    main()
