"""Memory and speed on volumes stored as zarr: does memory stay flat as the survey grows?

For each size it writes a zarr store of synthetic seismic amplitudes (a layer cake with
noise, made a slab at a time) and a zarr store of labels (four 3 x 3 well columns, three
units), then runs in fresh processes and reports the peak resident memory and time of

- ``geoseg train --iterations N`` (``fast`` preset);
- ``geoseg predict --out P.zarr`` (chunked, one worker), and on the sizes named by
  ``--throughput`` also with ``--workers 2``, with voxels per second and the time that
  rate gives a 1000^3 survey.

Run: ``python benchmarks/scale.py [--sizes 64 256 512] [--depth 256]``; writes
``benchmarks/results/scale.{json,png}``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import _common


def write_survey(folder: Path, side: int, depth: int) -> tuple[Path, Path]:
    """Amplitudes and well labels of a ``side x side x depth`` survey as zarr stores."""
    import numpy as np
    import zarr

    image = zarr.open_array(str(folder / f"survey_{side}.zarr"), mode="w", shape=(side, side, depth),
                            chunks=(64, 64, depth), dtype=np.float32)
    labels = zarr.open_array(str(folder / f"labels_{side}.zarr"), mode="w", shape=(side, side, depth),
                             chunks=(64, 64, depth), dtype=np.uint8)
    rng = np.random.default_rng(0)
    z = np.arange(depth)
    reflectivity = rng.standard_normal(depth).astype(np.float32)
    for start in range(0, side, 64):
        stop = min(start + 64, side)
        a = np.arange(start, stop)[:, None, None]
        b = np.arange(side)[None, :, None]
        shifted = (z[None, None, :] + 0.05 * a + 0.03 * b).astype(int) % depth
        image[start:stop] = reflectivity[shifted] + 0.3 * rng.standard_normal(shifted.shape).astype(np.float32)
        unit = np.digitize(z[None, None, :] + 0.05 * a + 0.03 * b, [depth / 3, 2 * depth / 3]) + 1
        block = np.zeros(shifted.shape, np.uint8)
        for wa, wb in _common.quarter_wells(side):
            rows = slice(max(wa - 1, start) - start, min(wa + 2, stop) - start)
            block[rows, wb - 1:wb + 2] = unit[rows, wb - 1:wb + 2]
        labels[start:stop] = block
    return folder / f"survey_{side}.zarr", folder / f"labels_{side}.zarr"


#: The child's own peak memory in KiB (:func:`_common.vm_hwm`): its ``ru_maxrss`` would
#: start from this process's peak, and this process has just written the survey.
PEAK_KIB = (f"sys.path.append({str(Path(__file__).resolve().parent)!r})\nimport _common, resource\n"
            "def peak_kib():\n"
            "    hwm = _common.vm_hwm()\n"
            "    return hwm // 1024 if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n")


def run(args: list[str]) -> tuple[float, float, str]:
    """Seconds and peak RSS (MiB) of ``geoseg ARGS`` in a fresh process."""
    code = ("import sys, time\n" + PEAK_KIB + "from napari_geoseg.cli import main\nstart = time.perf_counter()\n"
            "code = main(sys.argv[1:])\n"
            "print('RESULT', code, time.perf_counter() - start, peak_kib())")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    line = next((line for line in out.stdout.splitlines() if line.startswith("RESULT")), None)
    if line is None or line.split()[1] != "0":
        raise RuntimeError((out.stderr.strip().splitlines() or ["failed"])[-1])
    _, _, seconds, kib = line.split()
    return float(seconds), float(kib) / 1024, out.stdout


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 512], help="lateral sides")
    parser.add_argument("--depth", type=int, default=256, help="samples per trace (default 256)")
    parser.add_argument("--iterations", type=int, default=5, help="training iterations (default 5)")
    parser.add_argument("--commands", nargs="+", choices=("train", "predict"), default=["train", "predict"])
    parser.add_argument("--name", default="scale", help="results file name (default scale)")
    parser.add_argument("--throughput", type=int, nargs="*", default=[256],
                        help="sizes on which prediction also runs with 2 workers (default 256)")
    parser.add_argument("--chunks", type=int, help="geoseg predict --chunks (default: its own)")
    parser.add_argument("--no-flips", action="store_true", help="geoseg predict --no-flips")
    args = parser.parse_args(argv)
    _common.ensure_package()
    rows, results = [], []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for side in args.sizes:
            image, labels = write_survey(folder, side, args.depth)
            voxels = side * side * args.depth
            entry = {"shape": [side, side, args.depth], "voxels": voxels, "on_disk_mib": voxels * 4 / 2**20}
            model = folder / f"m_{side}.pt"
            seconds, peak, _ = run(["train", "--image", str(image), "--labels", str(labels), "--out", str(model),
                                    "--iterations", str(args.iterations)])
            entry.update(train_s=seconds, train_peak_mib=peak)
            rows.append([f"{side}x{side}x{args.depth}", "train", 1, f"{seconds:.1f}", f"{peak:.0f}", ""])
            for workers in ([1, 2] if side in args.throughput else [1]) if "predict" in args.commands else []:
                out = folder / f"p_{side}_{workers}.zarr"
                chunks = ["--chunks", str(args.chunks)] if args.chunks else []
                chunks += ["--no-flips"] if args.no_flips else []
                seconds, peak, _ = run(["predict", "--model", str(model), "--image", str(image), "--out", str(out),
                                        "--workers", str(workers), *chunks])
                rate = voxels / seconds
                entry[f"predict_{workers}_s"], entry[f"predict_{workers}_peak_mib"] = seconds, peak
                entry[f"predict_{workers}_voxels_per_s"] = rate
                entry[f"predict_{workers}_1000cubed_h"] = 1e9 / rate / 3600
                rows.append([f"{side}x{side}x{args.depth}", "predict", workers, f"{seconds:.1f}", f"{peak:.0f}",
                             f"{rate / 1e6:.2f}"])
            results.append(entry)
    print(_common.format_table(["volume", "command", "workers", "seconds", "peak MiB", "M voxels/s"], rows))
    print("peak RSS of the worker processes is not included for --workers 2 (the driver's only)")
    payload = {"benchmark": "scale", "command": " ".join(["python benchmarks/scale.py", *(argv or sys.argv[1:])]),
               "machine": _common.machine_info(), "cores": os.cpu_count(), "results": results}
    _common.write_json(f"{args.name}.json", payload)
    plot(results, args.name)
    return 0


def plot(results, name: str = "scale") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["on_disk_mib"] for r in results]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(sizes, [r["train_peak_mib"] for r in results], "o-", label="geoseg train")
    if all("predict_1_peak_mib" in r for r in results):
        ax.plot(sizes, [r["predict_1_peak_mib"] for r in results], "s-", label="geoseg predict --out P.zarr")
    ax.set_xscale("log")
    ax.set_xlabel("volume on disk (MiB, zarr)")
    ax.set_ylabel("peak resident memory (MiB)")
    ax.set_title("Memory against survey size")
    ax.legend()
    fig.tight_layout()
    out = _common.RESULTS / f"{name}.png"
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
