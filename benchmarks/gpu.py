"""GPU measurements: memory against depth, the paper's design at large blocks, and the
engine (``Trainer`` / ``Predictor`` with ``device="cuda"``) on the synthetic seismic volume.

Three parts, each recorded as it finishes (a time limit stops the run between records):

1. ``memory_depth``: peak CUDA memory of one training step (forward, partial
   cross-entropy, backward) of ``HyperbolicNet(8, [(None, 8)] * depth)`` on a
   1 x 8 x ``--size``^3 input, memory-efficient backward against plain autograd.
   ``torch.cuda.max_memory_allocated`` after the step minus ``memory_allocated`` just
   before it (input, weights and the warm-up's leftovers are in the baseline).
2. ``paper_design``: the ``paper`` preset's 30-layer Table 3 network on 12-channel blocks
   of 128^3, 192^3, 256^3: step time (median of ``--reps`` after a warm-up) and peak
   memory, both backward paths; a step that does not fit is recorded as such.
3. ``seismic``: ``Trainer(..., device="cuda")`` and ``Predictor`` on the 96^3 synthetic
   volumes of ``quality.py`` (draws 0, 1, 2), scored the same way (mean IoU on unlabelled
   voxels), for the ``fast`` and ``paper`` presets (``--presets``; ``fast:1000`` for the
   fast design trained 1000 iterations).
4. ``paper_block``: the ``paper`` preset's network trained in one piece on one block of
   ``--big-block``^3 voxels x ``--big-channels`` channels (512^3 x 8 by default), memory-
   efficient backward only: its peak ``torch.cuda.max_memory_allocated`` and step time,
   first as a bare training step, then through the engine (``Trainer(block=512,
   device="cuda")``, two iterations on a 512^3 volume with well labels).
5. ``predict_speed``: ``Predictor(device="cuda")`` on a 512 x 512 x 256 volume, voxels
   per second with and without flip averaging, for several ``block_voxels`` budgets
   (the device's default among them: ``default_budget`` in the results).

Run ``python benchmarks/gpu.py`` on a machine with CUDA (``--quick`` for a smoke test,
which also runs on the CPU). Writes ``benchmarks/results/gpu.json`` (or ``--out``) and
``gpu.png``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import _common

MIB = 2**20
CHANNELS, RANK, N_CLASSES = 8, 8, 3
DEPTHS = (4, 8, 16, 32, 64)
PAPER_BLOCKS = (128, 192, 256)
PATHS = ("memory_efficient", "plain_autograd")


def cuda_peak_step(device, step: Callable[[], Any]) -> tuple[int, float, Any]:
    """Peak memory above the pre-step allocation, seconds and result of ``step()``."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
    start = time.perf_counter()
    result = step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) - baseline if device.type == "cuda" else -1
    return peak, seconds, result


def training_step(net, x, labels) -> float:
    loss = _common.training_loss(net, x, labels, N_CLASSES)
    loss.backward()
    _common.clear_grads(net)
    return float(loss.detach())


def memory_depth(device, size: int, depths, record) -> None:
    import torch

    from napari_geoseg.nn import HyperbolicNet

    labels = _common.sparse_labels((size,) * 3, 0.01, N_CLASSES, seed=1).to(device)
    for depth in depths:
        for path in PATHS:
            torch.manual_seed(0)
            net = HyperbolicNet(CHANNELS, [(None, RANK)] * depth, dim=3,
                                memory_efficient=path == "memory_efficient").to(device)
            x = torch.randn(1, CHANNELS, size, size, size, device=device)
            training_step(net, x, labels)  # warm-up: cuDNN plans, allocator pools
            peak, seconds, _ = cuda_peak_step(device, lambda net=net, x=x: training_step(net, x, labels))
            record("memory_depth", {"depth": depth, "path": path, "size": size, "peak_bytes": peak,
                                    "state_bytes": x.numel() * x.element_size(), "step_s": seconds})
            del net, x


def paper_design(device, blocks, reps: int, record) -> None:
    import torch

    from napari_geoseg.nn import HyperbolicNet
    from napari_geoseg.train import get_preset

    preset = get_preset("paper")
    for block in blocks:
        labels = _common.sparse_labels((block,) * 3, 0.002, N_CLASSES, seed=1).to(device)
        for path in PATHS:
            torch.manual_seed(0)
            net = HyperbolicNet.symmetric(preset.min_channels, preset.depths, preset.ranks, dim=3, h=preset.h,
                                          up_depths=preset.up_depths,
                                          memory_efficient=path == "memory_efficient").to(device)
            x = torch.randn(1, preset.min_channels, block, block, block, device=device)
            row: dict[str, Any] = {"block": block, "path": path, "layers": len(net.layers),
                                   "state_bytes": x.numel() * x.element_size()}
            try:
                training_step(net, x, labels)
                times, peaks = [], []
                for _ in range(reps):
                    peak, seconds, _ = cuda_peak_step(
                        device, lambda net=net, x=x, labels=labels: training_step(net, x, labels))
                    times.append(seconds)
                    peaks.append(peak)
                row.update(step_s=statistics.median(times), step_times=times, peak_bytes=max(peaks), fits=True)
            except torch.OutOfMemoryError as error:
                row.update(fits=False, error=str(error).splitlines()[0])
            del net, x
            if device.type == "cuda":
                torch.cuda.empty_cache()
            record("paper_design", row)


def seismic(device, volumes, presets, size: int, iterations, record) -> None:
    import numpy as np
    import torch

    from napari_geoseg.data import synthetic_seismic
    from napari_geoseg.demo import mean_iou
    from napari_geoseg.train import Predictor, Trainer

    for spec in presets:
        # "fast" or "fast:1000" (a preset with its iterations replaced).
        preset, _, its = spec.partition(":")
        for volume_seed in volumes:
            volume = synthetic_seismic((size,) * 3, seed=volume_seed)
            n_classes = len(volume.class_names)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
            trainer = Trainer(volume.image, volume.labels, preset=preset, seed=volume_seed, device=str(device),
                              iterations=iterations or (int(its) if its else None))
            model = trainer.train()
            train_s = time.perf_counter() - start
            start = time.perf_counter()
            prediction = Predictor(model, device=str(device)).predict(volume.image)
            predict_s = time.perf_counter() - start
            ordered = Predictor(model, device=str(device), ordered_units=True).predict(volume.image).labels
            mask = volume.labels == 0
            ious = mean_iou(prediction.labels, volume.truth, mask, n_classes)
            record("seismic", {
                "preset": preset, "volume_seed": volume_seed, "train_seed": volume_seed,
                "iterations": trainer.iterations, "block": list(trainer.block),
                "mean_iou": float(np.mean(ious)), "per_class_iou": [float(v) for v in ious],
                "ordered_mean_iou": float(np.mean(mean_iou(ordered, volume.truth, mask, n_classes))),
                "train_s": train_s, "predict_s": predict_s,
                "peak_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else -1,
            })


def paper_block(device, side: int, channels: int, record) -> None:
    import numpy as np
    import torch

    from napari_geoseg.nn import HyperbolicNet
    from napari_geoseg.train import Trainer, get_preset

    preset = get_preset("paper", flatten=False)
    labels = _common.sparse_labels((side,) * 3, 0.0005, N_CLASSES, seed=1).to(device)
    torch.manual_seed(0)
    net = HyperbolicNet.symmetric(channels, preset.depths, preset.ranks, dim=3, h=preset.h,
                                  up_depths=preset.up_depths, memory_efficient=True).to(device)
    x = torch.randn(1, channels, side, side, side, device=device)
    row: dict[str, Any] = {"what": "training step", "block": side, "channels": channels, "layers": len(net.layers),
                           "state_bytes": x.numel() * x.element_size()}
    try:
        training_step(net, x, labels)  # warm-up
        peak, seconds, _ = cuda_peak_step(device, lambda net=net, x=x, labels=labels: training_step(net, x, labels))
        row.update(peak_bytes=peak, step_s=seconds, fits=True)
    except torch.OutOfMemoryError as error:
        row.update(fits=False, error=str(error).splitlines()[0])
    del net, x, labels
    if device.type == "cuda":
        torch.cuda.empty_cache()
    record("paper_block", row)
    # The engine: a 512^3 volume, four well columns of three units, one block of it all.
    rng = np.random.default_rng(0)
    z = np.arange(side)
    image = (np.sin(z / 6.0)[None, None, :] + 0.3 * rng.standard_normal((side, side, side))).astype(np.float32)
    well_labels = np.zeros(image.shape, np.uint8)
    units = (np.digitize(z, [side / 3, 2 * side / 3]) + 1).astype(np.uint8)
    for a, b in _common.quarter_wells(side):
        well_labels[a - 1:a + 2, b - 1:b + 2] = units
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    trainer = Trainer(image, well_labels, preset=preset, block=side, iterations=2, device=str(device),
                      members=1, validation_fraction=0.0)
    row = {"what": "Trainer", "block": list(trainer.block), "channels": int(trainer.model.net.feature_channels
                                                                            if trainer.model.net.has_head
                                                                            else trainer.model.in_channels)}
    try:
        trainer.train()
        row.update(fits=True, seconds=time.perf_counter() - start, iterations=len(trainer.history),
                   peak_bytes=torch.cuda.max_memory_allocated(device) if device.type == "cuda" else -1,
                   loss=[p.loss for p in trainer.history])
    except torch.OutOfMemoryError as error:
        row.update(fits=False, error=str(error).splitlines()[0])
    record("paper_block", row)


def predict_speed(device, shape: tuple[int, int, int], budgets, record) -> None:
    import numpy as np
    import torch

    from napari_geoseg.data import synthetic_seismic
    from napari_geoseg.train import Predictor, Trainer, get_preset

    volume = synthetic_seismic((96,) * 3, seed=0)
    model = Trainer(volume.image, volume.labels, preset=get_preset("fast", flatten=False), iterations=20,
                    device=str(device)).train()
    image = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    default = Predictor(model, device=str(device)).block_voxels
    for budget in budgets:
        for flips in (False, True):
            predictor = Predictor(model, device=str(device), flips=flips, block_voxels=budget)
            predictor.predict(image[:64, :64])  # warm-up: cuDNN plans
            if device.type == "cuda":
                torch.cuda.synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
            labels = predictor.predict(image).labels
            seconds = time.perf_counter() - start
            record("predict_speed", {
                "shape": list(shape), "block_voxels": budget, "default_budget": budget == default,
                "block": list(predictor.block_shape(shape)), "flips": flips, "seconds": seconds,
                "voxels_per_s": float(np.prod(shape)) / seconds,
                "peak_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else -1,
                "labels_checksum": int(labels.astype(np.int64).sum())})


def tables(payload: dict[str, Any]) -> str:
    """The results as plain-text tables (markdown-compatible)."""
    results, out = payload["results"], []
    rows = results.get("memory_depth", [])
    if rows:
        by = {(r["depth"], r["path"]): r for r in rows}
        depths = sorted({r["depth"] for r in rows})
        out.append(f"peak CUDA memory of one training step, 1 x {CHANNELS} x {rows[0]['size']}^3 (MiB; step s)")
        out.append(_common.format_table(["layers", *PATHS], [
            [d, *(f"{by[d, p]['peak_bytes'] / MIB:.0f} ({by[d, p]['step_s']:.3f} s)" if (d, p) in by else "-"
                  for p in PATHS)] for d in depths]))
    rows = results.get("paper_design", [])
    if rows:
        by = {(r["block"], r["path"]): r for r in rows}
        blocks = sorted({r["block"] for r in rows})

        def cell(r):
            return f"{r['peak_bytes'] / 2**30:.2f} GiB, {r['step_s']:.3f} s" if r.get("fits") else "does not fit"
        out.append("paper preset (30 layers), 1 x 12 x block^3: peak memory, median step")
        out.append(_common.format_table(["block", *PATHS], [
            [b, *(cell(by[b, p]) if (b, p) in by else "-" for p in PATHS)] for b in blocks]))
    rows = results.get("seismic", [])
    if rows:
        specs = list(dict.fromkeys((r["preset"], r["iterations"]) for r in rows))
        table = []
        for preset, its in specs:
            runs = [r for r in rows if (r["preset"], r["iterations"]) == (preset, its)]
            table.append([preset, its, " / ".join(f"{r['mean_iou']:.3f}" for r in runs),
                          f"{sum(r['mean_iou'] for r in runs) / len(runs):.3f}",
                          f"{sum(r['ordered_mean_iou'] for r in runs) / len(runs):.3f}",
                          f"{min(r['train_s'] for r in runs):.0f}-{max(r['train_s'] for r in runs):.0f} s",
                          f"{max(r['predict_s'] for r in runs):.2f} s"])
        out.append("synthetic seismic 96^3, 4 boreholes, volumes " +
                   ", ".join(str(r["volume_seed"]) for r in rows if (r["preset"], r["iterations"]) == specs[0]))
        out.append(_common.format_table(["preset", "iterations", "mean IoU per volume", "mean", "ordered",
                                         "train", "predict"], table))
    rows = results.get("paper_block", [])
    if rows:
        out.append("paper preset (30 layers) trained in one piece on one block (memory-efficient backward)")
        out.append(_common.format_table(["what", "block", "channels", "peak GiB", "seconds"], [
            [r["what"], r["block"], r["channels"], f"{r['peak_bytes'] / 2**30:.2f}" if r.get("fits") else "no fit",
             f"{r.get('step_s', r.get('seconds', float('nan'))):.2f}" if r.get("fits") else "-"] for r in rows]))
    rows = results.get("predict_speed", [])
    if rows:
        out.append(f"Predictor on a {' x '.join(map(str, rows[0]['shape']))} volume (fast preset)")
        out.append(_common.format_table(["block voxels", "block", "flips", "seconds", "M voxels/s", "peak GiB"], [
            [r["block_voxels"], "x".join(map(str, r["block"])), r["flips"], f"{r['seconds']:.2f}",
             f"{r['voxels_per_s'] / 1e6:.2f}", f"{r['peak_bytes'] / 2**30:.2f}"] for r in rows]))
    return "\n\n".join(out)


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    rows = payload["results"].get("memory_depth", [])
    for name in PATHS:
        pts = [(r["depth"], r["peak_bytes"] / MIB) for r in rows if r["path"] == name]
        if pts:
            axes[0].plot(*zip(*pts), marker="o", label=name.replace("_", " "))
    axes[0].set(xscale="log", xlabel="layers", ylabel="peak CUDA memory of a step (MiB)",
                title=f"depth, 1 x {CHANNELS} x {payload['args']['size']}^3")
    axes[0].set_xticks(DEPTHS, [str(d) for d in DEPTHS])
    axes[0].legend()
    rows = [r for r in payload["results"].get("paper_design", []) if r.get("fits")]
    for name in PATHS:
        pts = [(r["block"], r["peak_bytes"] / 2**30) for r in rows if r["path"] == name]
        if pts:
            axes[1].plot(*zip(*pts), marker="o", label=name.replace("_", " "))
    axes[1].set(xlabel="block side (voxels)", ylabel="peak CUDA memory (GiB)",
                title="paper preset (30 layers), 12 channels")
    if rows:
        axes[1].legend()
    fig.suptitle(payload["machine"].get("cuda_device", "cpu"))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test, CPU allowed)")
    parser.add_argument("--size", type=int, default=128, help="input side for the depth sweep")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--time-limit", type=float, default=420.0, help="stop between records after this (s)")
    parser.add_argument("--parts", nargs="+", default=["memory_depth", "paper_design", "seismic"])
    parser.add_argument("--presets", nargs="+", default=["fast", "paper"],
                        help="seismic part: preset names, NAME:ITERATIONS to change the iterations")
    parser.add_argument("--big-block", type=int, default=512, help="paper_block part: block side")
    parser.add_argument("--big-channels", type=int, default=8, help="paper_block part: channels")
    parser.add_argument("--report", type=Path, nargs="+", help="print the tables of saved JSON files and exit")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/gpu.json)")
    args = parser.parse_args()
    if args.report:
        for path in args.report:
            print(f"{path}\n\n{tables(json.loads(path.read_text()))}\n")
        return
    _common.ensure_package()
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.quick:
        sys.exit("gpu.py: no CUDA device here; run it on a GPU machine (or --quick for a CPU smoke test)")
    if args.quick:
        args.size, args.reps = 16, 1
    machine = _common.machine_info()
    if device.type == "cuda":
        machine.update(cuda_device=torch.cuda.get_device_name(device), cuda_version=torch.version.cuda,
                       cudnn=torch.backends.cudnn.version())
    out = args.out or Path(__file__).resolve().parent / "results" / "gpu.json"
    payload = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "machine": machine, "results": {}}
    deadline = time.perf_counter() + args.time_limit

    class Done(Exception):
        pass

    def record(part: str, row: dict[str, Any]) -> None:
        payload["results"].setdefault(part, []).append(row)
        print(part, json.dumps(row), flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=1))
        if time.perf_counter() > deadline:
            raise Done

    try:
        if "memory_depth" in args.parts:
            memory_depth(device, args.size, DEPTHS[:2] if args.quick else DEPTHS, record)
        if "paper_design" in args.parts:
            paper_design(device, (16,) if args.quick else PAPER_BLOCKS, args.reps, record)
        if "seismic" in args.parts:
            seismic(device, (0,) if args.quick else (0, 1, 2), args.presets, 32 if args.quick else 96,
                    4 if args.quick else None, record)
        if "paper_block" in args.parts:
            paper_block(device, 16 if args.quick else args.big_block, args.big_channels, record)
        if "predict_speed" in args.parts:
            predict_speed(device, (32, 32, 32) if args.quick else (512, 512, 256),
                          (1 << 14, 1 << 16) if args.quick else (1 << 20, 1 << 22, 1 << 24), record)
    except Done:
        payload["stopped_early"] = True
        out.write_text(json.dumps(payload, indent=1))
        print("time limit reached; partial results kept", flush=True)
    plot(payload, out.with_suffix(".png"))
    print(tables(payload))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
