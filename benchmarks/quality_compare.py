"""Engine variants side by side on the quality suite: is a new default better everywhere?

``quality.py`` runs one variant of ours against the peers. A change of default must be
shown on the whole suite, every label draw, against the default it replaces; this script
puts runs of ours from several ``quality.py`` results files next to each other and next
to the best classical peer of each draw, and says where each variant stands.

Each ``--variant NAME FILE...`` takes the ``ours`` runs of its files (a later file wins
for the same case and draw); ``--peers FILE...`` the runs of the classical peers
(``rf-raw``, ``rf-filters``, ``svm-filters``). A variant's suite mean is over the cases
where it has every draw of ``--seeds``; cases it lacks draws of are marked.

Run: ``python benchmarks/quality_compare.py --variant before A.json --variant after
B.json C.json --peers benchmarks/results/quality.json --name quality_compare``; writes
``benchmarks/results/NAME.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import _common

PEERS = ("rf-raw", "rf-filters", "svm-filters")
#: As in quality.py: no draw more than this below that draw's best peer.
DRAW_TOLERANCE = 0.01


def runs_of(paths: list[Path], methods: tuple[str, ...]) -> dict[tuple[str, str, int], float]:
    """Mean IoU of the successful runs of ``methods`` in ``paths`` by (case, method, seed)."""
    runs = {}
    for path in paths:
        for run in json.loads(Path(path).read_text())["results"]:
            if run.get("ok") and run["method"] in methods:
                runs[(run["case"], run["method"], run["seed"])] = float(run["mean_iou"])
    return runs


def compare(variants: dict[str, list[Path]], peers: list[Path], seeds: list[int]) -> dict[str, Any]:
    """Per case and draw: each variant's score and the best peer's; per variant: means,
    cases ahead of the best peer, draws more than DRAW_TOLERANCE below it."""
    peer_runs = runs_of(peers, PEERS)
    ours = {name: runs_of(paths, ("ours",)) for name, paths in variants.items()}
    cases = list(dict.fromkeys(case for runs in ours.values() for case, _, _ in runs))
    rows = []
    for case in cases:
        best = {}
        for seed in seeds:
            scores = {m: peer_runs[(case, m, seed)] for m in PEERS if (case, m, seed) in peer_runs}
            if scores:
                method = max(scores, key=scores.get)
                best[seed] = (method, scores[method])
        row = {"case": case, "best_peer": {str(s): b for s, b in best.items()}, "variants": {}}
        peer_mean = _mean([b[1] for b in best.values()]) if len(best) == len(seeds) else None
        row["best_peer_mean"] = peer_mean
        for name, runs in ours.items():
            draws = {seed: runs[(case, "ours", seed)] for seed in seeds if (case, "ours", seed) in runs}
            complete = len(draws) == len(seeds)
            row["variants"][name] = {
                "draws": {str(s): v for s, v in draws.items()},
                "mean": _mean(list(draws.values())) if complete else None,
                "ahead": (complete and peer_mean is not None and _mean(list(draws.values())) >= peer_mean),
                "draws_below": [s for s, v in draws.items() if s in best and v < best[s][1] - DRAW_TOLERANCE],
            }
        rows.append(row)
    summary = {}
    for name in variants:
        complete = [r for r in rows if r["variants"][name]["mean"] is not None and r["best_peer_mean"] is not None]
        summary[name] = {
            "cases_complete": len(complete),
            "mean": _mean([r["variants"][name]["mean"] for r in complete]) if complete else None,
            "best_peer_mean": _mean([r["best_peer_mean"] for r in complete]) if complete else None,
            "cases_ahead": sum(r["variants"][name]["ahead"] for r in complete),
            "draws_more_than_tolerance_below": sum(len(r["variants"][name]["draws_below"]) for r in rows),
        }
    return {"cases": cases, "seeds": seeds, "rows": rows, "summary": summary}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def table(result: dict[str, Any], names: list[str]) -> str:
    """Markdown table: per case each variant's mean (draws), the best peer's mean (draws)."""
    header = ["case", *names, "best peer"]
    lines = []
    for row in result["rows"]:
        cells = [row["case"]]
        for name in names:
            v = row["variants"][name]
            draws = " / ".join(f"{v['draws'][str(s)]:.3f}" if str(s) in v["draws"] else "-" for s in result["seeds"])
            mean = f"{v['mean']:.3f}" if v["mean"] is not None else "(incomplete)"
            cells.append(f"{'**' if v['ahead'] else ''}{mean}{'**' if v['ahead'] else ''} ({draws})")
        best = row["best_peer"]
        draws = " / ".join(f"{best[str(s)][1]:.3f}" if str(s) in best else "-" for s in result["seeds"])
        mean = f"{row['best_peer_mean']:.3f}" if row["best_peer_mean"] is not None else "-"
        cells.append(f"{mean} ({draws})")
        lines.append(cells)
    summary = result["summary"]
    lines.append(["mean (complete cases)"] + [
        f"{summary[n]['mean']:.3f} ({summary[n]['cases_complete']} cases; peers {summary[n]['best_peer_mean']:.3f})"
        if summary[n]["mean"] is not None else "-" for n in names] + [""])
    lines.append(["cases ahead of the best peer"] + [str(summary[n]["cases_ahead"]) for n in names] + [""])
    lines.append([f"draws > {DRAW_TOLERANCE} below that draw's best peer"]
                 + [str(summary[n]["draws_more_than_tolerance_below"]) for n in names] + [""])
    return _common.format_table(header, lines)


def plot(result: dict[str, Any], names: list[str], name: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = result["rows"]
    x = np.arange(len(rows))
    width = 0.8 / (len(names) + 1)
    fig, ax = plt.subplots(figsize=(max(8, 0.7 * len(rows)), 4.5))
    for k, variant in enumerate(names + ["best peer"]):
        if variant == "best peer":
            values = [r["best_peer_mean"] or 0 for r in rows]
        else:
            values = [r["variants"][variant]["mean"] or 0 for r in rows]
        ax.bar(x + (k - len(names) / 2) * width, values, width, label=variant,
               color="0.6" if variant == "best peer" else None)
    ax.set_xticks(x, [r["case"] for r in rows], rotation=45, ha="right")
    ax.set_ylabel(f"mean IoU, mean of draws {result['seeds']}")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = _common.RESULTS / f"{name}.png"
    fig.savefig(out, dpi=110)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", nargs="+", action="append", required=True, metavar=("NAME", "FILE"),
                        help="a variant's name and the quality.py results files of its runs of ours")
    parser.add_argument("--peers", nargs="+", type=Path, required=True, help="results files with the peers' runs")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--name", default="quality_compare", help="results file name (default quality_compare)")
    args = parser.parse_args(argv)
    variants = {}
    for spec in args.variant:
        if len(spec) < 2:
            parser.error(f"--variant {spec[0]}: give the variant's results files after its name")
        variants[spec[0]] = [Path(p) for p in spec[1:]]
    result = compare(variants, args.peers, args.seeds)
    names = list(variants)
    text = table(result, names)
    print(text)
    # Quoted as quality.py does, so variant names with spaces survive a copy and paste.
    command = "python " + shlex.join(["benchmarks/quality_compare.py", *(sys.argv[1:] if argv is None else argv)])
    payload = {"benchmark": "quality_compare", "command": command,
               "variants": {n: [str(p) for p in ps] for n, ps in variants.items()},
               "peers": [str(p) for p in args.peers], **result, "table": text}
    _common.write_json(f"{args.name}.json", payload)
    (_common.RESULTS / f"{args.name}.md").write_text(
        f"# Variants of ours on the quality suite\n\nProduced by `{command}`.\n\nMean IoU over the draws "
        f"(draws {' / '.join(map(str, args.seeds))} in brackets); bold: at least the best peer's mean.\n\n{text}\n")
    print(f"wrote {plot(result, names, args.name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
