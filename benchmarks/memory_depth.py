"""Peak training memory of a HyperbolicNet against depth, both backward paths.

For each depth and path, one training step (forward, partial cross-entropy on sparse
labels, backward) runs in a fresh subprocess, which reports

- ``rss_delta``: peak resident memory (``ru_maxrss``) minus the resident memory just
  before the step, after a warm-up step on a tiny input has initialised torch's thread
  pools and allocators;
- ``saved``: the bytes autograd keeps from the forward pass for the backward pass
  (``torch.autograd.graph.saved_tensors_hooks``), each storage counted once and the
  parameters left out (they are the weights, not states); parameter bytes are reported
  on their own.

Run ``python benchmarks/memory_depth.py`` from the repository root (``--quick`` for a
smaller input). Results go to ``benchmarks/results/memory_depth.{json,png}``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _common

MIB = 2**20
N_CLASSES = 3
LABEL_FRACTION = 0.01
CHANNELS = 8
RANK = 8
DEPTHS = (4, 8, 16, 32, 64)
PATHS = ("memory_efficient", "plain_autograd")
# Targets: the invertible path must stay flat, plain autograd must visibly grow.
EFFICIENT_MAX_GROWTH = 1.15
PLAIN_MIN_GROWTH = 4.0


# -- worker (runs in a fresh process) -----------------------------------------------------
def current_rss() -> int:
    """Resident set size of this process in bytes, from ``/proc/self/statm``."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def max_rss() -> int:
    """Peak resident set size of this process in bytes (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class SavedTensorCounter:
    """Count the distinct non-parameter storages that autograd saves.

    Views of one tensor (e.g. ``y[:, :3]`` and ``y``) share a storage, so storages are
    keyed by their data pointer. Parameters are excluded by the same key.
    """

    def __init__(self, parameters) -> None:
        self.param_ptrs = {p.untyped_storage().data_ptr() for p in parameters}
        self.storages: dict[int, int] = {}
        self.packs = 0

    def pack(self, tensor):
        self.packs += 1
        storage = tensor.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in self.param_ptrs:
            self.storages[ptr] = storage.nbytes()
        return tensor  # keep the tensor itself: the hook must not change memory use

    @staticmethod
    def unpack(tensor):
        return tensor

    @property
    def nbytes(self) -> int:
        return sum(self.storages.values())


def build(depth: int, memory_efficient: bool, size: int, seed: int = 0):
    """The single-resolution net of ``depth`` layers, an input and sparse labels."""
    import torch

    from napari_geoseg.nn import HyperbolicNet

    torch.manual_seed(seed)
    net = HyperbolicNet(CHANNELS, [(None, RANK)] * depth, dim=3, memory_efficient=memory_efficient)
    x = torch.randn(1, CHANNELS, size, size, size)
    labels = _common.sparse_labels((size, size, size), LABEL_FRACTION, N_CLASSES, seed=seed + 1)
    return net, x, labels


def warm_up(net) -> None:
    """One training step on a 1 x C x 8^3 input: thread pools, oneDNN kernels, allocator."""
    import torch

    x = torch.randn(1, CHANNELS, 8, 8, 8)
    labels = _common.sparse_labels((8, 8, 8), 0.2, N_CLASSES, seed=123)
    _common.training_loss(net, x, labels, N_CLASSES).backward()
    _common.clear_grads(net)


def worker(depth: int, path: str, size: int) -> dict[str, Any]:
    """Measure one training step in this (fresh) process; see the module docstring."""
    import torch

    net, x, labels = build(depth, path == "memory_efficient", size)
    warm_up(net)
    gc.collect()
    baseline = current_rss()
    peak_before = max_rss()
    # A cross-check: ru_maxrss keeps the peak of the whole process life (import included),
    # so a step whose peak stays below an earlier one would be invisible to it; VmHWM
    # after a reset sees the step alone.
    hwm_reset = _common.reset_peak_rss()

    counter = SavedTensorCounter(net.parameters())
    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
        loss = _common.training_loss(net, x, labels, N_CLASSES)
    loss.backward()
    seconds = time.perf_counter() - start

    peak = max_rss()
    return {
        "depth": depth,
        "path": path,
        "size": size,
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak,
        "rss_delta_bytes": peak - baseline,
        # If the step never exceeds an earlier peak, ru_maxrss hides it: flag that case.
        "peak_before_step_bytes": peak_before,
        "step_exceeded_earlier_peak": peak > peak_before,
        "vmhwm_delta_bytes": _common.vm_hwm() - baseline if hwm_reset else None,
        "saved_bytes": counter.nbytes,
        "saved_storages": len(counter.storages),
        "saved_packs": counter.packs,
        "param_bytes": sum(p.numel() * p.element_size() for p in net.parameters()),
        "state_bytes": x.numel() * x.element_size(),
        "step_seconds": seconds,
        "torch_threads": torch.get_num_threads(),
        "loss": float(loss.detach()),
    }


# -- driver ---------------------------------------------------------------------------------
def run_worker(depth: int, path: str, size: int) -> dict[str, Any]:
    """Run :func:`worker` in a fresh interpreter and return its JSON result.

    A fresh process per configuration keeps each peak independent of the others; the
    low mmap threshold makes glibc return freed tensors to the OS at once, so RSS
    follows the live tensors instead of the allocator's high-water mark.
    """
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker",
           "--depth", str(depth), "--path", path, "--size", str(size)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {depth}/{path} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_targets(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Evaluate the two growth targets (depth 64 against depth 8) on the RSS deltas."""
    rss = {(r["path"], r["depth"]): r["rss_delta_bytes"] for r in results}
    targets: dict[str, Any] = {}
    specs = {
        "memory_efficient_flat": ("memory_efficient", "<=", EFFICIENT_MAX_GROWTH),
        "plain_autograd_grows": ("plain_autograd", ">=", PLAIN_MIN_GROWTH),
    }
    for name, (path, op, bound) in specs.items():
        if (path, 8) not in rss or (path, 64) not in rss:
            targets[name] = {"evaluated": False, "reason": "needs depths 8 and 64"}
            continue
        ratio = rss[(path, 64)] / rss[(path, 8)]
        passed = ratio <= bound if op == "<=" else ratio >= bound
        targets[name] = {"evaluated": True, "rule": f"rss_delta(64) / rss_delta(8) {op} {bound}",
                         "ratio": ratio, "passed": bool(passed)}
    return targets


def print_table(results: list[dict[str, Any]]) -> str:
    """Print and return the depth / path / RSS / saved-bytes table."""
    rows = [[r["depth"], r["path"], f"{r['rss_delta_bytes'] / MIB:.1f}",
             f"{r['saved_bytes'] / MIB:.1f}", f"{r['param_bytes'] / 1024:.1f}",
             f"{r['step_seconds']:.1f}"] for r in results]
    table = _common.format_table(
        ["depth", "path", "peak RSS delta MiB", "autograd saved MiB", "params KiB", "step s"], rows)
    print(table)
    return table


def plot(results: list[dict[str, Any]], size: int, out: Path) -> None:
    """Two panels against depth: peak RSS delta and autograd-saved bytes, both paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    panels = (("rss_delta_bytes", "peak RSS above baseline (MiB)"),
              ("saved_bytes", "autograd-saved bytes, no params (MiB)"))
    for ax, (key, label) in zip(axes, panels):
        for path, marker in zip(PATHS, "os"):
            rows = [r for r in results if r["path"] == path]
            ax.plot([r["depth"] for r in rows], [r[key] / MIB for r in rows], marker=marker,
                    label=path.replace("_", " "))
        # Linear axes: plain autograd should grow linearly with depth, so a straight
        # line (not a log-log slope) is the thing to look for.
        ax.set_xticks(sorted({r["depth"] for r in results}))
        ax.set_ylim(bottom=0)
        ax.set_xlabel("depth (layers)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"One training step, input 1 x {CHANNELS} x {size}^3 float32, block rank {RANK}")
    fig.savefig(out, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="32^3 input instead of 64^3")
    parser.add_argument("--size", type=int, default=None, help="spatial size (default 64, quick 32)")
    parser.add_argument("--depths", type=int, nargs="+", default=list(DEPTHS))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--depth", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", choices=PATHS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.size is None:
        args.size = 32 if args.quick else 64
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _common.ensure_package()
    if args.worker:
        print(json.dumps(worker(args.depth, args.path, args.size)))
        return 0

    info = _common.machine_info()
    results = []
    for depth in args.depths:
        for path in PATHS:
            result = run_worker(depth, path, args.size)
            print(f"depth {depth:3d} {path:17s} rss {result['rss_delta_bytes'] / MIB:8.1f} MiB  "
                  f"saved {result['saved_bytes'] / MIB:8.1f} MiB  ({result['step_seconds']:.1f} s)",
                  flush=True)
            results.append(result)

    print()
    table = print_table(results)
    targets = check_targets(results)
    for name, t in targets.items():
        if t["evaluated"]:
            print(f"target {name}: {t['rule']}: ratio {t['ratio']:.2f} -> "
                  f"{'PASS' if t['passed'] else 'FAIL'}")
        else:
            print(f"target {name}: not evaluated ({t['reason']})")
    hidden = [r for r in results if not r["step_exceeded_earlier_peak"]]
    if hidden:
        print(f"warning: {len(hidden)} step(s) peaked below an earlier peak; see vmhwm_delta_bytes")

    info["load_average_after"] = _common.load_average()
    payload = {
        "benchmark": "memory_depth",
        "design": f"HyperbolicNet({CHANNELS}, [(None, {RANK})] * depth, dim=3)",
        "input_shape": [1, CHANNELS, args.size, args.size, args.size],
        "labels": {"n_classes": N_CLASSES, "fraction": LABEL_FRACTION},
        "env": {"MALLOC_MMAP_THRESHOLD_": "65536"},
        "machine": info,
        "results": results,
        "targets": targets,
        "table": table,
    }
    json_path = _common.write_json("memory_depth.json", payload)
    png_path = _common.RESULTS / "memory_depth.png"
    plot(results, args.size, png_path)
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
