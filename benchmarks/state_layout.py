"""Training-step time on CPUs with the states kept channels-last against PyTorch's default layout.

On CPUs the network keeps 3D float32 states channels-last (``napari_geoseg.nn.blr.
state_layout``): oneDNN's convolutions read and write that layout and the Haar
transforms take one contraction there. The alternative, the default layout, reorders
every state into and out of each convolution and shuffles strided memory in each Haar
transform. Both run here on the same network, input and labels (the default layout by
patching ``state_layout``), interleaved ABBA after warm-up steps, one training step =
forward + partial cross-entropy + backward on the memory-efficient path. Designs: the
``fast`` preset's network on a 1 x 4 x 64^3 block (a seismic training step) and the
step-time benchmark's U-shaped design on 1 x 8 x 64^3.

Run ``python benchmarks/state_layout.py`` from the repository root (``--reps N``,
``--size N``). Results go to ``benchmarks/results/state_layout.{json,png}``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import Any

import _common

N_CLASSES = 3
LAYOUTS = ("channels_last", "default")


def designs(size: int) -> dict[str, tuple[Any, Any, Any]]:
    """Name -> (network, input, labels), seeded."""
    import torch

    from napari_geoseg.nn import HyperbolicNet
    from napari_geoseg.train import get_preset

    fast = get_preset("fast")
    out = {}
    torch.manual_seed(0)
    out[f"fast preset (2,2,4) ranks (4,8,16), 4 ch, {size}^3"] = (
        HyperbolicNet.symmetric(4, depths=fast.depths, ranks=fast.ranks, dim=3), torch.randn(1, 4, size, size, size),
        _common.sparse_labels((size,) * 3, 0.01, N_CLASSES, seed=1))
    torch.manual_seed(0)
    out[f"U-shaped (2,3,4) ranks (8,16,32), 8 ch, {size}^3"] = (
        HyperbolicNet.symmetric(8, depths=(2, 3, 4), ranks=(8, 16, 32), dim=3),
        torch.randn(1, 8, size, size, size), _common.sparse_labels((size,) * 3, 0.01, N_CLASSES, seed=1))
    return out


def step(net, x, labels, layout: str) -> dict[str, float]:
    import torch

    import napari_geoseg.nn.hyperbolic as hyperbolic
    from napari_geoseg.nn.blr import state_layout

    hyperbolic.state_layout = state_layout if layout == "channels_last" else (lambda t: torch.contiguous_format)
    try:
        _common.clear_grads(net)
        with _common.CpuMonitor() as mon:
            _common.training_loss(net, x, labels, N_CLASSES).backward()
    finally:
        hyperbolic.state_layout = state_layout
    return {"wall_s": mon.wall, "others_cpu_s": mon.others,
            "grads": [p.grad.detach().clone() for p in net.parameters()]}


def time_design(net, x, labels, reps: int, warmup: int) -> dict[str, Any]:
    import torch

    grads = {}
    for layout in LAYOUTS:
        for _ in range(warmup):
            grads[layout] = step(net, x, labels, layout)["grads"]
    times: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
    others: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
    for i in range(reps):
        _common.wait_for_quiet(20.0)
        for layout in (LAYOUTS if i % 2 == 0 else LAYOUTS[::-1]):
            s = step(net, x, labels, layout)
            times[layout].append(s["wall_s"])
            others[layout].append(s["others_cpu_s"])
            print(f"  rep {i + 1}/{reps} {layout:13s} {s['wall_s']:.3f} s (others {s['others_cpu_s']:.2f} s)",
                  flush=True)
    a = torch.cat([g.flatten() for g in grads["channels_last"]])
    b = torch.cat([g.flatten() for g in grads["default"]])
    median = {layout: statistics.median(times[layout]) for layout in LAYOUTS}
    return {"median_s": median, "times_s": times, "others_cpu_s": others,
            "speedup": median["default"] / median["channels_last"],
            "grad_relative_difference": float((a - b).norm() / b.norm())}


def plot(results: list[dict[str, Any]], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.38
    for k, layout in enumerate(LAYOUTS):
        xs = [i + (k - 0.5) * width for i in range(len(results))]
        ax.bar(xs, [r["median_s"][layout] for r in results], width, label=layout.replace("_", " "))
    ax.set_xticks(range(len(results)), [r["design"].replace(", ", "\n", 1) for r in results], fontsize=8)
    ax.set_ylabel("training step (s, median)")
    ax.set_title("CPU states: channels-last vs default layout")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    _common.ensure_package()
    import torch

    torch.set_num_threads(args.threads)
    results = []
    for name, (net, x, labels) in designs(args.size).items():
        print(name, flush=True)
        row = time_design(net, x, labels, args.reps, args.warmup)
        row.update(design=name, layers=len(net.layers))
        results.append(row)
    rows = [[r["design"], r["layers"], f"{r['median_s']['channels_last']:.3f}", f"{r['median_s']['default']:.3f}",
             f"{r['speedup']:.2f}", f"{r['grad_relative_difference']:.1e}"] for r in results]
    print(_common.format_table(["design", "layers", "channels-last s", "default s", "speed-up", "grad diff"], rows))
    payload = {"machine": _common.machine_info(), "args": vars(args), "torch_threads": torch.get_num_threads(),
               "results": results}
    path = _common.write_json("state_layout.json", payload)
    plot(results, path.with_suffix(".png"))
    print(f"wrote {path} and {path.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
