"""The flattened depth: how well it follows the layers, and what it costs.

Two parts:

- *Accuracy*: on the synthetic seismic volumes of ``quality.py`` (96^3, seeds 0 1 2) the
  true depositional time of every voxel is known (the generator's
  ``_relative_geologic_time``, fault included). A position channel that follows the
  layers differs from it by a constant only. The table gives the standard deviation
  (samples) of ``channel - time`` for the plain depth and for ``FlattenedDepth``,
  over all voxels and with the 8 traces next to each volume's edges left out.
- *Cost*: wall time and peak memory (``tracemalloc``: numpy and scipy allocations) of
  ``FlattenedDepth.of`` on random volumes of growing size, with each of ``--threads``
  (the filters' threads; the shift must not change with them). Larger volumes are
  measured tile by tile and solved on groups of traces (``step``), so memory levels off.

Run ``python benchmarks/flattening.py`` from the repository root (``--sizes`` to change
the volumes). Results go to ``benchmarks/results/flattening.{json,png}``.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from typing import Any

import _common
import numpy as np

DEFAULT_SIZES = ("96x96x96", "192x192x192", "256x256x400", "512x512x300")


def accuracy(seeds: list[int], size: int) -> list[dict[str, Any]]:
    from napari_geoseg.data import synthetic_seismic
    from napari_geoseg.data.synthetic import _relative_geologic_time
    from napari_geoseg.train import FlattenedDepth

    rows = []
    shape = (size,) * 3
    inside = np.s_[8:-8, 8:-8, :]
    for seed in seeds:
        volume = synthetic_seismic(shape, seed=seed)
        time_ = _relative_geologic_time(shape, np.random.default_rng(seed))  # the generator's first draws
        flat = FlattenedDepth.of(volume.image).samples((slice(None),) * 3)
        plain = np.broadcast_to(np.arange(size, dtype=np.float64), shape)
        row = {"seed": seed}
        for name, channel in (("plain", plain), ("flattened", flat)):
            error = channel - time_
            row[f"{name}_std"] = float(np.std(error))
            row[f"{name}_std_inside"] = float(np.std(error[inside]))
        rows.append(row)
    return rows


def cost(sizes: list[tuple[int, int, int]], thread_counts: list[int]) -> list[dict[str, Any]]:
    from napari_geoseg.train import FlattenedDepth

    rows = []
    for shape in sizes:
        volume = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        first = None
        for threads in thread_counts:
            tracemalloc.start()
            start = time.perf_counter()
            flat = FlattenedDepth.of(volume, threads=threads)
            seconds = time.perf_counter() - start
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            first = flat.shift if first is None else first
            rows.append({"shape": list(shape), "voxels": int(np.prod(shape)), "volume_mib": volume.nbytes / 2**20,
                         "threads": threads, "seconds": seconds, "peak_mib": peak / 2**20, "step": flat.step,
                         "shift_shape": list(flat.shift.shape), "same_shift": bool(np.array_equal(flat.shift, first))})
            print(f"  {shape}, {threads} thread(s): {seconds:.1f} s, peak {peak / 2**20:.0f} MiB (volume "
                  f"{volume.nbytes / 2**20:.0f} MiB), step {flat.step}", flush=True)
            del flat
        del volume, first
    return rows


def plot(acc: list[dict[str, Any]], costs: list[dict[str, Any]], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    x = np.arange(len(acc))
    left.bar(x - 0.2, [r["plain_std"] for r in acc], 0.4, label="plain depth", color="0.6")
    left.bar(x + 0.2, [r["flattened_std"] for r in acc], 0.4, label="flattened depth", color="C3")
    left.set_xticks(x, [f"seed {r['seed']}" for r in acc])
    left.set_ylabel("std of (channel - depositional time), samples")
    left.set_title("following the layers (96^3 synthetic)")
    left.legend()
    thread_counts = sorted({r["threads"] for r in costs})
    for index, threads in enumerate(thread_counts):
        rows = [r for r in costs if r["threads"] == threads]
        right.plot([r["voxels"] / 1e6 for r in rows], [r["seconds"] for r in rows], "o-", color=f"C{index}",
                   label=f"seconds, {threads} thread(s)")
    right.set_xlabel("volume, million voxels")
    right.set_ylabel("seconds")
    right.legend(loc="upper left")
    rows = [r for r in costs if r["threads"] == thread_counts[0]]
    voxels = [r["voxels"] / 1e6 for r in rows]
    twin = right.twinx()
    twin.plot(voxels, [r["peak_mib"] for r in rows], "s--", color="0.3", label="peak MiB")
    twin.plot(voxels, [r["volume_mib"] for r in rows], ":", color="0.5", label="the volume itself")
    twin.set_ylabel("MiB")
    twin.legend(loc="lower right")
    right.set_title("cost of FlattenedDepth.of")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--size", type=int, default=96, help="side of the synthetic volumes (default 96)")
    parser.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES), help="AxBxV volumes for the cost")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="threads of the filters, each measured (default 1 2)")
    args = parser.parse_args(argv)
    _common.ensure_package()
    acc = accuracy(args.seeds, args.size)
    print(_common.format_table(
        ["seed", "plain depth std", "flattened std", "plain, inside", "flattened, inside"],
        [[r["seed"], f"{r['plain_std']:.2f}", f"{r['flattened_std']:.2f}", f"{r['plain_std_inside']:.2f}",
          f"{r['flattened_std_inside']:.2f}"] for r in acc]))
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]
    costs = cost(sizes, args.threads)
    print(_common.format_table(
        ["shape", "million voxels", "threads", "seconds", "peak MiB", "volume MiB", "step", "shift as 1 thread"],
        [["x".join(map(str, r["shape"])), f"{r['voxels'] / 1e6:.1f}", r["threads"], f"{r['seconds']:.1f}",
          f"{r['peak_mib']:.0f}", f"{r['volume_mib']:.0f}", r["step"], r["same_shift"]] for r in costs]))
    payload = {"command": "python " + " ".join([sys.argv[0]] + (argv or sys.argv[1:])),
               "machine": _common.machine_info(), "args": vars(args), "accuracy": acc, "cost": costs}
    path = _common.write_json("flattening.json", payload)
    plot(acc, costs, path.with_suffix(".png"))
    print(f"wrote {path} and {path.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
