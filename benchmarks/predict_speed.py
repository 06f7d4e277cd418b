"""Prediction speed on CPUs: voxels per second, where the time goes, and how far that is from the limit.

The ``fast`` preset's network predicts a synthetic seismic volume (default 192 x 192 x 96)
with ``Predictor(model, flips=False)``, best of ``--reps`` runs, at 1 and 2 torch threads,
on three paths of ``HyperbolicNet.forward`` without autograd, interleaved:

- ``before``: :meth:`HyperbolicNet.step` per layer (a new state-sized tensor for each
  product and sum) and the Haar transforms as contractions with the 8 x 8 Haar matrix
  (the engine until December 2026);
- ``in place``: ``HyperbolicNet._propagate_in_place`` (the two states updated in place),
  Haar transforms still contractions;
- ``in place + Haar conv``: the default, the Haar transforms of states up to 32 channels
  as stride-2 oneDNN convolutions (``napari_geoseg.nn.haar``).

Then one prediction on the default path runs under ``torch.profiler`` and its time is
split into convolutions (oneDNN), Haar transforms (their contractions and reorders),
element-wise updates, the other torch operators (softmax, flips), the predictor's steps
outside torch timed around their methods (the flattened depth of the whole volume, each
block's input: reading, padding, features; labels and entropy) and the wall time left
(blending, Python). The convolutions' multiply-adds per voxel come from the network's shapes,
so their share of the time gives the rate at which they run, and the voxels per second
the prediction would reach if everything but the convolutions were free: the limit of
this network on this machine without changing its arithmetic.

Run ``python benchmarks/predict_speed.py`` from the repository root (``--size``,
``--depth``, ``--reps``). Results go to ``benchmarks/results/predict_speed.{json,png}``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import time
from typing import Any

import _common

PATHS = ("before", "in place", "in place + Haar conv")
#: The predictor's steps outside torch, timed around the methods that do them.
NUMPY_STEPS = {"flattened depth": ("napari_geoseg.train.flattening", "FlattenedDepth", "of"),
               "block inputs": ("napari_geoseg.train.predictor", "Predictor", "_block_input"),
               "labels and entropy": ("napari_geoseg.train.predictor", "Predictor", "_decide")}
CATEGORIES = ("convolutions", "Haar transforms", "element-wise", "rest", *NUMPY_STEPS,
              "other outside torch (blending, Python)")


def trained_model(shape: tuple[int, int, int]):
    from napari_geoseg.data import synthetic_seismic
    from napari_geoseg.train import Trainer

    volume = synthetic_seismic(shape, seed=0)
    # A few iterations: speed does not depend on how well the weights fit.
    return volume.image, Trainer(volume.image, volume.labels, preset="fast", iterations=3, block=32).train()


def use_path(path: str) -> None:
    from napari_geoseg.nn import haar
    from napari_geoseg.nn.hyperbolic import HyperbolicNet

    haar._CONV_MAX_CHANNELS = 32 if path == "in place + Haar conv" else 0
    if path == "before":
        def steps(self, x):
            import torch

            cur, vel = x, torch.zeros_like(x)
            for index in range(len(self.layers)):
                cur, vel = self.step(index, cur, vel)
            return cur, vel

        HyperbolicNet._propagate_in_place = steps
    else:
        HyperbolicNet._propagate_in_place = _IN_PLACE


def conv_macs_per_voxel(net, ndim: int = 3) -> float:
    """Multiply-adds of the convolutions per input voxel (two per layer: K and K^T)."""
    macs, scale = 0.0, 1.0
    for kind, layer in zip(net.resample, net.layers):
        if kind == "coarsen":
            scale /= 2 ** ndim
        elif kind == "refine":
            scale *= 2 ** ndim
        rank, channels, *kernel = layer.weight.shape
        taps = 1
        for k in kernel:
            taps *= k
        macs += 2 * rank * channels * taps * scale
    return macs


def categorise(name: str, shapes: Any) -> str:
    if "convolution" in name:
        # The Haar transforms' convolutions have 2 x 2 x 2 kernels, the layers' 3 x 3 x 3.
        kernel = shapes[1] if shapes and len(shapes) > 1 else []
        return "Haar transforms" if len(kernel) == 5 and kernel[-1] == 2 else "convolutions"
    if name in ("aten::bmm", "aten::mm") or (name == "aten::copy_" and shapes and len(shapes[0]) >= 8):
        return "Haar transforms"
    if name in ("aten::add_", "aten::add", "aten::sub", "aten::mul", "aten::mul_", "aten::relu_", "aten::neg_",
                "aten::clone", "aten::zeros_like", "aten::fill_"):
        return "element-wise"
    return "rest"


@contextlib.contextmanager
def timed_numpy_steps(seconds: dict[str, float]):
    """Add the wall time of each of :data:`NUMPY_STEPS` to ``seconds`` while inside."""
    originals = []
    for name, (module_name, owner_name, attribute) in NUMPY_STEPS.items():
        owner = getattr(importlib.import_module(module_name), owner_name)
        original = owner.__dict__[attribute]
        function = original.__func__ if isinstance(original, (classmethod, staticmethod)) else original

        def timed(*args, _function=function, _name=name, **kwargs):
            started = time.perf_counter()
            try:
                return _function(*args, **kwargs)
            finally:
                seconds[_name] += time.perf_counter() - started

        setattr(owner, attribute, type(original)(timed) if isinstance(original, (classmethod, staticmethod))
                else timed)
        originals.append((owner, attribute, original))
    try:
        yield
    finally:
        for owner, attribute, original in originals:
            setattr(owner, attribute, original)


def profile(predictor, image) -> dict[str, float]:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    seconds = dict.fromkeys(CATEGORIES, 0.0)
    with timed_numpy_steps(seconds), torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        started = time.perf_counter()
        predictor.predict(image)
        wall = time.perf_counter() - started
    for event in prof.key_averages(group_by_input_shape=True):
        seconds[categorise(event.key, event.input_shapes)] += event.self_cpu_time_total / 1e6
    # The profiler sees torch's operators only; the predictor's numpy steps are timed
    # around their methods, and the blending and Python are the wall time left over.
    seconds["other outside torch (blending, Python)"] = max(wall - sum(seconds.values()), 0.0)
    return {"wall_s": wall, "self_cpu_s": seconds, "share": {k: v / wall for k, v in seconds.items()}}


_IN_PLACE = None


def main(argv=None) -> int:
    global _IN_PLACE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=192, help="inline and crossline size (default 192)")
    parser.add_argument("--depth", type=int, default=96, help="samples per trace (default 96)")
    parser.add_argument("--reps", type=int, default=3, help="timed runs per path and thread count (default 3)")
    args = parser.parse_args(argv)
    _common.ensure_package()
    import torch

    from napari_geoseg.nn.hyperbolic import HyperbolicNet
    from napari_geoseg.train import Predictor

    _IN_PLACE = HyperbolicNet._propagate_in_place
    shape = (args.size, args.size, args.depth)
    voxels = shape[0] * shape[1] * shape[2]
    image, model = trained_model(shape)
    predictor = Predictor(model, flips=False)
    results: dict[str, Any] = {}
    labels = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for path in PATHS:  # warm-up
            use_path(path)
            labels[path] = predictor.predict(image).labels
        times: dict[str, list[float]] = {path: [] for path in PATHS}
        for _ in range(args.reps):
            for path in PATHS:
                use_path(path)
                started = time.perf_counter()
                predictor.predict(image)
                times[path].append(time.perf_counter() - started)
        results[str(threads)] = {path: {"seconds": min(t), "all_seconds": t, "voxels_per_s": voxels / min(t)}
                                 for path, t in times.items()}
    use_path(PATHS[-1])
    agree = float((labels[PATHS[0]] == labels[PATHS[-1]]).mean())
    breakdown = profile(predictor, image)
    macs = conv_macs_per_voxel(getattr(model.net, "net", model.net))
    conv_s = breakdown["self_cpu_s"]["convolutions"]
    # Per output voxel: the blocks' halos make the network compute more voxels than it
    # outputs, so the rate is a lower bound of what the convolutions achieve.
    limit = {"conv_macs_per_voxel": macs, "conv_gflops": 2 * macs * voxels / conv_s / 1e9,
             "voxels_per_s_if_only_convolutions": voxels / conv_s}
    rows = [[threads, path, f"{r['seconds']:.2f}", f"{r['voxels_per_s'] / 1e6:.2f}"]
            for threads, per_path in results.items() for path, r in per_path.items()]
    print(f"fast preset, {shape} volume, no flip averaging, best of {args.reps}; labels of the first and last "
          f"paths agree on "
          f"{agree:.6%} of the voxels")
    print(_common.format_table(["threads", "path", "seconds", "M voxels/s"], rows))
    print("where the time goes (2 threads, the default path, profiled): " + ", ".join(
        f"{k} {v:.0%}" for k, v in breakdown["share"].items()))
    print(f"convolutions: {macs:.0f} multiply-adds per voxel at {limit['conv_gflops']:.1f} GFLOP/s; with everything "
          f"else free: {limit['voxels_per_s_if_only_convolutions'] / 1e6:.2f} M voxels/s")
    payload = {"benchmark": "predict_speed", "command": "python " + " ".join([sys.argv[0]] + (argv or sys.argv[1:])),
               "machine": _common.machine_info(), "shape": shape, "reps": args.reps, "results": results,
               "labels_agree": agree, "profile": breakdown, "limit": limit}
    path = _common.write_json("predict_speed.json", payload)
    png = plot(results, breakdown)
    print(f"wrote {path} and {png}")
    return 0


def plot(results: dict, breakdown: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for offset, path in zip((-0.27, 0, 0.27), PATHS):
        left.bar([int(t) + offset for t in results], [results[t][path]["voxels_per_s"] / 1e6 for t in results],
                 width=0.27, label=path)
    left.set_xticks([int(t) for t in results])
    left.set_xlabel("torch threads")
    left.set_ylabel("M voxels / s")
    left.set_title("prediction, fast preset, no flips")
    left.legend()
    right.pie([breakdown["self_cpu_s"][k] for k in CATEGORIES], labels=CATEGORIES, autopct="%.0f%%")
    right.set_title("wall time of one prediction (2 threads)")
    fig.tight_layout()
    path = _common.RESULTS / "predict_speed.png"
    fig.savefig(path, dpi=100)
    return path


if __name__ == "__main__":
    sys.exit(main())
