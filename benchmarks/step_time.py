"""Training-step time of the memory-efficient backward pass against plain autograd.

One step is forward + partial cross-entropy on sparse labels + backward. Both paths run
on the same network object (only ``net.memory_efficient`` is switched), the same input
and the same labels, in the same process, with interleaved repetitions so that slow
drifts of the machine (other jobs, CPU frequency) hit both paths alike. The order
within each repetition alternates (ABBA) for the same reason.

Run ``python benchmarks/step_time.py`` from the repository root (``--quick`` for a
smaller input and fewer repetitions). Results go to
``benchmarks/results/step_time.{json,png}``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import _common

N_CLASSES = 3
LABEL_FRACTION = 0.01
CHANNELS = 8
PATHS = ("memory_efficient", "plain_autograd")
#: The invertible path recomputes each layer once more, so some overhead is expected.
MAX_RATIO = 1.6


def designs() -> dict[str, Callable[[], Any]]:
    """Name -> factory of the networks to time (same seed, so repeatable weights)."""
    import torch
    from napari_geoseg.nn import HyperbolicNet

    def single_resolution():
        torch.manual_seed(0)
        return HyperbolicNet(CHANNELS, [(None, 8)] * 16, dim=3)

    def u_shaped():
        torch.manual_seed(0)
        return HyperbolicNet.symmetric(CHANNELS, depths=(2, 3, 4), ranks=(8, 16, 32), dim=3)

    return {
        "single-resolution depth 16, rank 8": single_resolution,
        "U-shaped symmetric (2,3,4) ranks (8,16,32)": u_shaped,
    }


def timed_step(net, x, labels) -> float:
    """Seconds for one forward + loss + backward (gradients cleared first, not timed)."""
    _common.clear_grads(net)
    start = time.perf_counter()
    _common.training_loss(net, x, labels, N_CLASSES).backward()
    return time.perf_counter() - start


def grads_of(net) -> list:
    """Copies of the current parameter gradients."""
    return [p.grad.detach().clone() for p in net.parameters()]


def max_relative_grad_difference(a: list, b: list) -> float:
    """Largest ``||ga - gb|| / ||gb||`` over parameters: the two paths must agree."""
    worst = 0.0
    for ga, gb in zip(a, b):
        denom = float(gb.norm()) or 1.0
        worst = max(worst, float((ga - gb).norm()) / denom)
    return worst


def time_design(net, x, labels, reps: int, warmup: int) -> dict[str, Any]:
    """Interleaved timings of both paths on ``net``.

    Each path gets ``warmup`` untimed steps first (oneDNN picks and caches its kernels
    on first use, and first-touch page faults would otherwise land on whichever path runs
    first). Repetition ``i`` runs the paths in order A, B for even ``i`` and B, A for odd.
    """
    times: dict[str, list[float]] = {p: [] for p in PATHS}
    warm: dict[str, list[float]] = {p: [] for p in PATHS}
    grads = {}
    for path in PATHS:
        net.memory_efficient = path == "memory_efficient"
        for _ in range(warmup):
            warm[path].append(timed_step(net, x, labels))
        grads[path] = grads_of(net)
    for i in range(reps):
        for path in (PATHS if i % 2 == 0 else PATHS[::-1]):
            net.memory_efficient = path == "memory_efficient"
            times[path].append(timed_step(net, x, labels))
            print(f"    rep {i + 1}/{reps} {path:17s} {times[path][-1]:7.2f} s", flush=True)
    medians = {p: statistics.median(t) for p, t in times.items()}
    return {
        "times_s": times,
        "warmup_times_s": warm,
        "median_s": medians,
        "ratio": medians["memory_efficient"] / medians["plain_autograd"],
        "grad_max_rel_diff": max_relative_grad_difference(grads["memory_efficient"],
                                                          grads["plain_autograd"]),
    }


def print_table(results: list[dict[str, Any]]) -> str:
    """Print and return the table of medians and ratios."""
    rows = [[r["design"], r["layers"], f"{r['median_s']['memory_efficient']:.2f}",
             f"{r['median_s']['plain_autograd']:.2f}", f"{r['ratio']:.2f}",
             "PASS" if r["passed"] else "FAIL"] for r in results]
    table = _common.format_table(
        ["design", "layers", "mem-efficient s", "plain autograd s", "ratio", f"<= {MAX_RATIO}"], rows)
    print(table)
    return table


def plot(results: list[dict[str, Any]], size: int, out: Path) -> None:
    """Grouped bars of the median step time per design, min-max as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    width = 0.38
    for k, path in enumerate(PATHS):
        xs = [i + (k - 0.5) * width for i in range(len(results))]
        med = [r["median_s"][path] for r in results]
        lo = [m - min(r["times_s"][path]) for m, r in zip(med, results)]
        hi = [max(r["times_s"][path]) - m for m, r in zip(med, results)]
        ax.bar(xs, med, width, yerr=[lo, hi], capsize=4, label=path.replace("_", " "))
    for i, r in enumerate(results):
        top = max(max(t) for t in r["times_s"].values())
        ax.annotate(f"ratio {r['ratio']:.2f}", (i, top), textcoords="offset points",
                    xytext=(0, 6), ha="center")
    ax.set_xticks(range(len(results)))
    ax.set_xticklabels([r["design"].replace(" ", "\n", 1) for r in results])
    ax.set_ylabel("training step (s), median and min-max")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.1)
    ax.set_title(f"Step time, input 1 x {CHANNELS} x {size}^3 float32, CPU")
    ax.legend(loc="lower right")
    fig.savefig(out, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="32^3 input, 2 repetitions")
    parser.add_argument("--size", type=int, default=None, help="spatial size (default 64, quick 32)")
    parser.add_argument("--reps", type=int, default=None,
                        help="timed repetitions per path (default 3, quick 2)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per path first")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    if args.size is None:
        args.size = 32 if args.quick else 64
    if args.reps is None:
        args.reps = 2 if args.quick else 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _common.ensure_package()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    info = _common.machine_info()
    torch.manual_seed(1)
    x = torch.randn(1, CHANNELS, args.size, args.size, args.size)
    labels = _common.sparse_labels((args.size,) * 3, LABEL_FRACTION, N_CLASSES, seed=2)

    results = []
    for name, factory in designs().items():
        net = factory()
        print(f"{name} ({len(net.layers)} layers)", flush=True)
        result = time_design(net, x, labels, args.reps, args.warmup)
        result.update(design=name, layers=len(net.layers), repr=repr(net).splitlines()[0],
                      passed=bool(result["ratio"] <= MAX_RATIO))
        results.append(result)

    print()
    table = print_table(results)
    for r in results:
        print(f"target ratio <= {MAX_RATIO} for {r['design']}: {r['ratio']:.2f} -> "
              f"{'PASS' if r['passed'] else 'FAIL'} (grad max rel diff {r['grad_max_rel_diff']:.1e})")

    info["load_average_after"] = _common.load_average()
    payload = {
        "benchmark": "step_time",
        "input_shape": [1, CHANNELS, args.size, args.size, args.size],
        "labels": {"n_classes": N_CLASSES, "fraction": LABEL_FRACTION},
        "reps": args.reps,
        "warmup": args.warmup,
        "target": {"rule": f"median(memory_efficient) / median(plain_autograd) <= {MAX_RATIO}",
                   "all_passed": all(r["passed"] for r in results)},
        "machine": info,
        "results": results,
        "table": table,
    }
    json_path = _common.write_json("step_time.json", payload)
    png_path = _common.RESULTS / "step_time.png"
    plot(results, args.size, png_path)
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
