"""Training-step time of the memory-efficient backward pass against plain autograd.

One step is forward + partial cross-entropy on sparse labels + backward. Both paths run
on the same network object (only ``net.memory_efficient`` is switched), the same input
and the same labels, in the same process, with interleaved repetitions so that slow
drifts of the machine (other jobs, CPU frequency) hit both paths alike. The order
within each repetition alternates (ABBA) for the same reason. A repetition during which
other processes took a noticeable share of the CPUs (read from ``/proc/stat``) is
recorded but repeated: on a 2-core machine a busy neighbour can slow torch's OpenMP
threads tenfold.

Run ``python benchmarks/step_time.py`` from the repository root (``--quick`` for a
smaller input and fewer repetitions). Results go to
``benchmarks/results/step_time.{json,png}``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
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


def timed_step(net, x, labels) -> dict[str, float]:
    """One forward + loss + backward: wall and CPU seconds, and other processes' CPU.

    Gradients are cleared first (not timed) so every step allocates the same buffers.
    """
    _common.clear_grads(net)
    with _common.CpuMonitor() as mon:
        _common.training_loss(net, x, labels, N_CLASSES).backward()
    return {"wall_s": mon.wall, "cpu_s": mon.cpu, "others_cpu_s": mon.others}


def contended(step: dict[str, float], share: float) -> bool:
    """True if other processes used more than ``share`` of one core during the step."""
    return step["others_cpu_s"] > share * step["wall_s"]


def grads_of(net) -> list:
    """Copies of the current parameter gradients."""
    return [p.grad.detach().clone() for p in net.parameters()]


def grad_differences(a: list, b: list) -> dict[str, float]:
    """How far the two paths' gradients are apart (they compute the same numbers).

    ``global``: ``||ga - gb|| / ||gb||`` over all parameters at once; ``max_per_param``:
    the worst single parameter, which is larger for parameters with tiny gradients.
    """
    import torch

    fa, fb = torch.cat([g.flatten() for g in a]), torch.cat([g.flatten() for g in b])
    worst = max(float((ga - gb).norm()) / (float(gb.norm()) or 1.0) for ga, gb in zip(a, b))
    return {"global": float((fa - fb).norm() / fb.norm()), "max_per_param": worst}


def run_pair(net, x, labels, order: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """One step of each path, in ``order``."""
    steps = {}
    for path in order:
        net.memory_efficient = path == "memory_efficient"
        steps[path] = timed_step(net, x, labels)
        s = steps[path]
        print(f"    {path:17s} {s['wall_s']:7.2f} s wall {s['cpu_s']:7.2f} s cpu "
              f"(others {s['others_cpu_s']:5.2f} s)", flush=True)
    return steps


def time_design(net, x, labels, reps: int, warmup: int, share: float,
                max_retries: int, max_wait: float) -> dict[str, Any]:
    """Interleaved timings of both paths on ``net``.

    Each path gets ``warmup`` untimed steps first (oneDNN picks and caches its kernels
    on first use, and first-touch page faults would otherwise land on whichever path runs
    first). Repetition ``i`` runs the paths in order A, B for even ``i`` and B, A for odd.
    A repetition during which other processes used more than ``share`` of a core is
    kept in the record but repeated, up to ``max_retries`` times in all; medians are over
    the quiet repetitions (over all of them if too few were quiet). Before each
    repetition the machine is given up to ``max_wait`` seconds in all to become quiet.
    """
    grads, warm = {}, {}
    for path in PATHS:
        net.memory_efficient = path == "memory_efficient"
        warm[path] = [timed_step(net, x, labels) for _ in range(warmup)]
        grads[path] = grads_of(net)
    kept, discarded, retries, waited = [], [], 0, 0.0
    while len(kept) < reps:
        i = len(kept) + len(discarded)
        waited += _common.wait_for_quiet(max(0.0, max_wait - waited), share)
        print(f"  rep {len(kept) + 1}/{reps}" + (f" (retry {retries})" if retries else ""), flush=True)
        pair = run_pair(net, x, labels, PATHS if i % 2 == 0 else PATHS[::-1])
        if any(contended(s, share) for s in pair.values()) and retries < max_retries:
            discarded.append(pair)
            retries += 1
            print("    -> other processes were busy: repeated", flush=True)
            continue
        kept.append(pair)
    quiet = [p for p in kept if not any(contended(s, share) for s in p.values())]
    used = quiet if len(quiet) * 2 >= reps else kept

    def med(key: str) -> dict[str, float]:
        return {path: statistics.median(p[path][key] for p in used) for path in PATHS}

    wall, cpu = med("wall_s"), med("cpu_s")
    return {
        "reps": kept,
        "discarded_contended_reps": discarded,
        "seconds_waited_for_quiet": waited,
        "warmup": warm,
        "medians_over": "quiet reps" if used is quiet else "all kept reps (too few quiet ones)",
        "n_used": len(used),
        "median_s": wall,
        "median_cpu_s": cpu,
        "ratio": wall["memory_efficient"] / wall["plain_autograd"],
        "ratio_cpu": cpu["memory_efficient"] / cpu["plain_autograd"],
        "times_s": {path: [p[path]["wall_s"] for p in used] for path in PATHS},
        "grad_difference": grad_differences(grads["memory_efficient"], grads["plain_autograd"]),
    }


def print_table(results: list[dict[str, Any]]) -> str:
    """Print and return the table of medians and ratios."""
    rows = [[r["design"], r["layers"], f"{r['median_s']['memory_efficient']:.2f}",
             f"{r['median_s']['plain_autograd']:.2f}", f"{r['ratio']:.2f}", f"{r['ratio_cpu']:.2f}",
             r["n_used"], "PASS" if r["passed"] else "FAIL"] for r in results]
    table = _common.format_table(
        ["design", "layers", "mem-efficient s", "plain autograd s", "ratio", "ratio (cpu time)",
         "reps", f"ratio <= {MAX_RATIO}"], rows)
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
                        help="timed repetitions per path (default 5, quick 2)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per path first")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--busy-share", type=float, default=0.25,
                        help="a rep is contended if other processes used more than this share "
                             "of one core meanwhile (default 0.25)")
    parser.add_argument("--max-retries", type=int, default=6,
                        help="repeat at most this many contended reps per design")
    parser.add_argument("--max-wait", type=float, default=120.0,
                        help="seconds per design to wait, in all, for other processes to go quiet")
    args = parser.parse_args(argv)
    if args.size is None:
        args.size = 32 if args.quick else 64
    if args.reps is None:
        args.reps = 2 if args.quick else 5
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
        result = time_design(net, x, labels, args.reps, args.warmup, args.busy_share, args.max_retries,
                             args.max_wait)
        result.update(design=name, layers=len(net.layers), repr=repr(net).splitlines()[0],
                      passed=bool(result["ratio"] <= MAX_RATIO))
        results.append(result)

    print()
    table = print_table(results)
    for r in results:
        g = r["grad_difference"]
        print(f"target ratio <= {MAX_RATIO} for {r['design']}: {r['ratio']:.2f} -> "
              f"{'PASS' if r['passed'] else 'FAIL'} (medians over {r['n_used']} {r['medians_over']}; "
              f"gradients agree to {g['global']:.1e} overall, {g['max_per_param']:.1e} worst parameter)")

    info["load_average_after"] = _common.load_average()
    payload = {
        "benchmark": "step_time",
        "input_shape": [1, CHANNELS, args.size, args.size, args.size],
        "labels": {"n_classes": N_CLASSES, "fraction": LABEL_FRACTION},
        "reps": args.reps,
        "warmup": args.warmup,
        "contention_rule": f"others_cpu_s > {args.busy_share} * wall_s (repeated, at most "
                           f"{args.max_retries} times per design)",
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
