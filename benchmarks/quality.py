"""Segmentation quality of napari-geoseg against peers trained on the same sparse labels.

A suite of cases from five families, each over several label draws (seeds); the cases
are defined in ``cases.py`` (data, labels, truth, scored voxels) and the synthetic
seismic volumes in ``seismic_generators.py``:

- synthetic seismic (``seismic``, ``seismic-thinbeds``, ``seismic-channels``: labels
  in well columns; ``seismic-faults-noise``: strokes on two inline sections);
- real SEG-Y (``volve-velocity``: velocity intervals; ``f3-envelope``: reflection
  strength), labels in well columns;
- reservoir grids (``reek-facies``, ``reek-facies-2prop``): facies from porosity (and
  permeability), labels in well columns, inactive cells neither trained nor scored;
- hyperspectral (``samson``, ``samson-counts``, ``samson-shape``, ``samson-brightness``,
  ``indian-pines``, ``indian-pines-reflectance``): 5 labelled pixels per class;
- image (``image-section``): a 2D seismic section with scribbles.

Every case is scored on its unlabelled valid voxels that have a truth; a case whose data
files are absent from ``../shared/data`` is skipped with a message. benchmarks/README.md
describes each case, its labels and its scoring rule.

Methods (all see the same labels; see benchmarks/README.md for the details):

- ``ours``: ``Trainer(image, labels, preset="fast", seed=s).train()`` and
  ``Predictor(model).predict(image).labels``, default settings.
- ``rf-raw``: random forest on the raw values (volume and image: the value of each
  channel; cube: the spectrum).
- ``rf-filters``: random forest on ilastik-style multi-scale filter features (3D filters
  on each channel of a volume, 2D filters on each channel of an image, the spectrum plus
  2D filters on PCA components for a cube).
- ``svm-filters``: RBF SVM on the same features, standardised, C from a small
  cross-validation on the training labels.
- ``unet``: a plain (non-invertible) U-Net of conv-BN-ReLU blocks, trained like ours
  (same blocks, augmentation, loss, Adam schedule and iterations; initial step
  ``--unet-lr``), its width chosen so that one training step peaks at about the memory
  of ours on the same block.
- ``rf-filters-pos`` and ``rf-filters-flat`` (controls, volume cases only, outside the
  targets): ``rf-filters`` plus the plain relative depth, or plus the flattened depth
  (``FlattenedDepth``) that the Trainer gives ours and the U-Net as their position
  channel. They show how much of a score the position channel alone explains.

Every (case, method, seed) runs in a fresh subprocess, which reports its IoU, its
train + predict time and its peak memory (VmHWM, reset after the data are loaded).

Run ``python benchmarks/quality.py`` from the repository root (``--quick`` for a smoke
test; ``--cases`` or ``--family`` to choose cases). Results go to
``benchmarks/results/quality.{json,md,png}`` (and ``quality_maps.png``, the predicted maps).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

import _common
import cases as suite
import numpy as np

MIB = 2**20
CASES = suite.CASES
FAMILIES = suite.FAMILIES
METHODS = ("ours", "rf-raw", "rf-filters", "svm-filters", "unet", "rf-filters-pos", "rf-filters-flat")
#: The peers the targets are about.
PEERS = ("rf-raw", "rf-filters", "svm-filters", "unet")
#: Controls outside the targets: ilastik's features know nothing of depth, while ours and
#: the U-Net get the Trainer's position channel (the flattened depth); these forests get
#: the plain relative depth or that same flattened depth.
CONTROLS = ("rf-filters-pos", "rf-filters-flat")
#: Methods that only make sense for some kinds of case (a cube's band position is not a
#: pixel feature; a 2D image has no depth axis).
# Methods that do not depend on the engine's network: their runs can be reused (--reuse).
CLASSICAL = ("rf-raw", "rf-filters", "svm-filters", "rf-filters-pos", "rf-filters-flat")
METHOD_KINDS = {"rf-filters-pos": ("volume",), "rf-filters-flat": ("volume",)}
#: ilastik's default scales.
SIGMAS = (0.7, 1.0, 1.6, 3.5, 5.0)
SVM_C_GRID = (1.0, 10.0, 100.0)
#: Cubes: PCA components of the spectrum that get the spatial filters.
SAMSON_PCA = 3
SAMSON_CLEAN = suite.SAMSON_CLEAN
SAMSON_LABELS_PER_CLASS = suite.PIXELS_PER_CLASS
SAMSON_CLASSES = suite.SAMSON_CLASSES
DATA_DIR = suite.DATA_DIR
SAMSON_DIR = DATA_DIR / "hyperspectral"
#: U-Net base widths tried by the memory calibration (doubling per level).
UNET_WIDTHS = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
#: Targets: on every case ours at least matches the best peer (means over the draws); over
#: the cases, ours' mean beats the mean of the best peers by SUITE_MARGIN; in every draw
#: ours is within DRAW_TOLERANCE of that draw's best peer. On ``seismic`` ours also
#: reaches SEISMIC_MIN_IOU and beats the best peer by SEISMIC_MARGIN (the original targets).
SUITE_MARGIN = 0.03
DRAW_TOLERANCE = 0.01
SEISMIC_MIN_IOU = 0.95
SEISMIC_MARGIN = 0.05
#: Initial Adam step of the U-Net (decaying to a tenth like ours).
UNET_LR = 1e-2
QUICK_SIZE = 48
QUICK_ITERATIONS = 8
QUICK_BAND_STEP = 4


# == data (made by the driver, read by the workers) ====================================
def make_case(case: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Image, sparse labels, truth, scored voxels, kind and family of one label draw (``cases.py``)."""
    return suite.make_case(case, seed, args)


def load_samson(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Samson cube ``(rows, cols, bands)`` and abundances ``(rows, cols, 3)`` (``cases.load_samson``)."""
    return suite.load_samson(folder)


#: Keys of a label draw besides the arrays, kept through the worker's ``.npz``.
CASE_KEYS = ("preview_index", "kind", "family", "label_rule")


def save_case(data: dict[str, Any], path: Path) -> None:
    np.savez(path, image=data["image"], labels=data["labels"], truth=data["truth"],
             score_mask=data["score_mask"], class_names=np.array(data["class_names"]),
             **{key: np.array(data[key]) for key in CASE_KEYS})


def load_case(path: Path) -> dict[str, Any]:
    with np.load(path) as blob:
        return {"image": blob["image"], "labels": blob["labels"], "truth": blob["truth"],
                "score_mask": blob["score_mask"], "class_names": [str(n) for n in blob["class_names"]],
                "preview_index": int(blob["preview_index"]), "kind": str(blob["kind"]),
                "family": str(blob["family"]), "label_rule": str(blob["label_rule"])}


# == memory ==============================================================================
def current_rss() -> int:
    """Resident set size of this process in bytes, from ``/proc/self/statm``."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss(reset_ok: bool) -> int:
    """VmHWM since the reset, or ``ru_maxrss`` (whole process life) if it could not be reset."""
    hwm = _common.vm_hwm() if reset_ok else None
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# == features for the classical peers ====================================================
def _unit(axis: int, ndim: int, extra: Optional[int] = None) -> list[int]:
    order = [0] * ndim
    order[axis] += 1
    if extra is not None:
        order[extra] += 1
    return order


def _eigvals_into(tensor: np.ndarray, out: np.ndarray, col: int, chunk: int = 262_144) -> None:
    """Eigenvalues (ascending) of symmetric ``(N, d, d)`` matrices into ``out[:, col:col + d]``."""
    for start in range(0, tensor.shape[0], chunk):
        stop = start + chunk
        out[start:stop, col:col + tensor.shape[1]] = np.linalg.eigvalsh(tensor[start:stop])


def filter_features(image: np.ndarray, sigmas: tuple[float, ...] = SIGMAS, include_raw: bool = True) -> np.ndarray:
    """ilastik-style pixel features ``(N, F)`` float32 of a 2D or 3D single-channel image.

    Per sigma: Gaussian smoothing, Laplacian of Gaussian, Gaussian gradient magnitude,
    eigenvalues of the structure tensor (derivative scale sigma, integration scale
    sigma / 2, as ilastik calls vigra) and of the Hessian of Gaussian; ``d + d + 3``
    features per sigma in ``d`` dimensions, plus the raw value first.
    """
    from scipy import ndimage as ndi

    img = np.ascontiguousarray(image, dtype=np.float32)
    d = img.ndim
    per_sigma = 3 + 2 * d
    out = np.empty((img.size, int(include_raw) + per_sigma * len(sigmas)), np.float32)
    col = 0
    if include_raw:
        out[:, 0] = img.ravel()
        col = 1
    tensor = np.empty((img.size, d, d), np.float32)
    for s in sigmas:
        out[:, col] = ndi.gaussian_filter(img, s).ravel()
        out[:, col + 1] = ndi.gaussian_laplace(img, s).ravel()
        out[:, col + 2] = ndi.gaussian_gradient_magnitude(img, s).ravel()
        col += 3
        grads = [ndi.gaussian_filter(img, s, order=_unit(a, d)) for a in range(d)]
        for a in range(d):
            for b in range(a, d):
                tensor[:, a, b] = tensor[:, b, a] = ndi.gaussian_filter(grads[a] * grads[b], 0.5 * s).ravel()
        del grads
        _eigvals_into(tensor, out, col)
        col += d
        for a in range(d):
            for b in range(a, d):
                tensor[:, a, b] = tensor[:, b, a] = ndi.gaussian_filter(img, s, order=_unit(a, d, b)).ravel()
        _eigvals_into(tensor, out, col)
        col += d
    return out


def channels_of(image: np.ndarray, kind: str) -> list[np.ndarray]:
    """The single-channel images of a volume or a 2D image, NaN cells filled with the channel's median."""
    spatial = 3 if kind == "volume" else 2
    stack = image[..., None] if image.ndim == spatial else image
    out = []
    for c in range(stack.shape[-1]):
        channel = np.asarray(stack[..., c], dtype=np.float32)
        finite = np.isfinite(channel)
        if not finite.all():
            fill = float(np.median(channel[finite])) if finite.any() else 0.0
            channel = np.where(finite, channel, np.float32(fill))
        out.append(np.ascontiguousarray(channel))
    return out


def raw_features(image: np.ndarray, labels_ndim: int) -> np.ndarray:
    """One row per labelled-grid voxel: its values (volume, image) or spectrum (cube); NaN -> channel median."""
    n = int(np.prod(image.shape[:labels_ndim]))
    features = np.array(image.reshape(n, -1), dtype=np.float32)
    for c in range(features.shape[1]):
        finite = np.isfinite(features[:, c])
        if not finite.all():
            features[~finite, c] = np.median(features[finite, c]) if finite.any() else 0.0
    return features


def peer_features(kind: str, image: np.ndarray, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Filter features of a label draw, by its kind.

    Volume: 3D filters on each channel (NaN cells filled with the channel's median),
    concatenated. Image: 2D filters on each channel, the same way. Cube: the spectrum
    plus 2D filters on its first PCA components.
    """
    if kind in ("volume", "image"):
        channels = channels_of(image, kind)
        features = np.ascontiguousarray(np.concatenate([filter_features(c) for c in channels], 1))
        d = 3 if kind == "volume" else 2
        per_sigma = 3 + 2 * d
        return features, {"features": f"{len(channels)} channel(s) x (value + {per_sigma} filters x "
                                      f"{len(SIGMAS)} sigmas, {d}D)", "n_features": features.shape[1]}
    if kind != "cube":
        raise ValueError(f"unknown kind {kind!r}")
    from sklearn.decomposition import PCA

    rows, cols, bands = image.shape[:3]
    spectra = image.reshape(rows * cols, -1).astype(np.float32)
    components = PCA(n_components=SAMSON_PCA, random_state=seed).fit_transform(spectra).astype(np.float32)
    parts = [spectra] + [filter_features(components[:, c].reshape(rows, cols)) for c in range(SAMSON_PCA)]
    features = np.ascontiguousarray(np.concatenate(parts, 1))
    return features, {"features": f"spectrum ({spectra.shape[1]}) + {SAMSON_PCA} PCA components x (raw + 7 "
                                  f"filters x {len(SIGMAS)} sigmas, 2D)", "n_features": features.shape[1]}


def label_groups(labels: np.ndarray, kind: str, label_rule: str = "wells") -> Optional[np.ndarray]:
    """Cross-validation groups of the labelled voxels: one per well column (volumes labelled in wells).

    Strokes, pixels and 2D labels: None (the SVM then uses stratified folds).
    """
    if kind != "volume" or label_rule != "wells":
        return None
    from scipy import ndimage as ndi

    columns, _ = ndi.label(labels.any(axis=-1))
    return np.broadcast_to(columns[..., None], labels.shape)[labels > 0]


def predict_chunked(classifier, features: np.ndarray, chunk: int = 131_072) -> np.ndarray:
    return np.concatenate([classifier.predict(features[i:i + chunk]) for i in range(0, len(features), chunk)])


# == the U-Net peer ======================================================================
def build_unet(in_channels: int, n_classes: int, width: int, levels: int, dim: int):
    """A plain U-Net: two conv-BN-ReLU per level, max-pool down, nearest upsample + skip concat up."""
    import torch
    from torch import nn

    conv = nn.Conv3d if dim == 3 else nn.Conv2d
    norm = nn.BatchNorm3d if dim == 3 else nn.BatchNorm2d
    pool = nn.MaxPool3d if dim == 3 else nn.MaxPool2d

    def block(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(conv(cin, cout, 3, padding=1, bias=False), norm(cout), nn.ReLU(inplace=True),
                             conv(cout, cout, 3, padding=1, bias=False), norm(cout), nn.ReLU(inplace=True))

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            widths = [width * 2**level for level in range(levels)]
            self.down = nn.ModuleList([block(in_channels if level == 0 else widths[level - 1], widths[level])
                                       for level in range(levels)])
            self.up = nn.ModuleList([block(widths[level + 1] + widths[level], widths[level])
                                     for level in range(levels - 1)])
            self.pool = pool(2)
            self.head = conv(widths[0], n_classes, 1)

        def forward(self, x):
            skips = []
            for level, down in enumerate(self.down):
                x = down(self.pool(x) if level else x)
                skips.append(x)
            x = skips.pop()
            for level in reversed(range(levels - 1)):
                x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
                x = self.up[level](torch.cat([x, skips[level]], 1))
            return self.head(x)

    return UNet()


class UNetRecipe:
    """How the U-Net reads the Trainer's blocks: its input channels and spatial dimension.

    The feature channels ours reads, without the repeats that only a bare invertible
    network needs (normalised image channels, or a cube's binned bands; the position
    channel of volumes, the flattened depth; the data mask where ours has one), over the
    same spatial axes (3D for volumes, 2D for maps).
    """

    def __init__(self, trainer) -> None:
        model = trainer.model
        self.in_channels = model.in_channels if model.feature_repeats is None else trainer.layout.input_channels(1)
        self.dim = trainer.layout.network_ndim

    def block_input(self, x):
        """Network input from a Trainer batch ``(1, C, *block)``."""
        return x[:, :self.in_channels]

    def image_input(self, features: np.ndarray):
        import torch

        return torch.from_numpy(np.ascontiguousarray(features[:self.in_channels]))[None]


def unet_loss(trainer, unet, x, y):
    from napari_geoseg.nn import partial_cross_entropy

    return partial_cross_entropy(unet(x), y, trainer.n_classes, weight=trainer.class_weight)


# == methods (run inside a worker) ========================================================
def method_ours(data, case, seed, args, times):
    from napari_geoseg.train import Predictor, Trainer, get_preset
    from napari_geoseg.train.layout import MODES

    start = time.perf_counter()
    smoothing = tuple(args.smoothing) if getattr(args, "smoothing", None) is not None else None
    hold_out = getattr(args, "hold_out", None)
    # --smoothing gives the copies to every mode (the preset's own modes otherwise).
    modes = MODES if smoothing is not None else None
    preset = get_preset("fast", race=args.race, smoothing=smoothing, smoothing_modes=modes,
                        smoothing_edges=True if getattr(args, "smoothing_edges", False) else None,
                        hold_out_groups=None if hold_out is None else hold_out == "groups",
                        illumination_jitter=getattr(args, "jitter", None),
                        block=getattr(args, "block", None), members=getattr(args, "members", None))
    trainer = Trainer(data["image"], data["labels"], preset=preset, seed=seed, iterations=args.iterations)
    model = trainer.train()
    times["train_s"] = time.perf_counter() - start
    start = time.perf_counter()
    prediction = Predictor(model).predict(data["image"]).labels
    times["predict_s"] = time.perf_counter() - start
    last = trainer.history[-1] if trainer.history else None
    return prediction, {
        "iterations": trainer.iterations, "block": list(trainer.block), "channels": model.channels,
        "layers": len(model.net.layers), "n_weights": sum(p.numel() for p in model.net.parameters()),
        "train_labels": trainer.n_train_labels,
        "final_loss": last.loss if last else None,
        "validation_accuracy": last.validation_accuracy if last else None,
        "race": trainer.race, "design": trainer.design,
        # Held-out accuracy at each strength of the per-voxel probe (None: no probe).
        "probe": {str(k): v for k, v in trainer.probe.items()} if trainer.probe else None,
        "probe_strength": trainer.probe_strength,
        # Where none are held out: what the probe reads, and the cross-validated accuracy of each choice.
        "probe_features": trainer.probe_features, "probe_features_accuracy": trainer.probe_features_accuracy,
    }


def method_unet(data, case, seed, args, times):
    import torch

    from napari_geoseg.train import Trainer

    start = time.perf_counter()
    trainer = Trainer(data["image"], data["labels"], preset="fast", seed=seed, iterations=args.iterations)
    recipe = UNetRecipe(trainer)
    torch.manual_seed(seed)
    unet = build_unet(recipe.in_channels, trainer.n_classes, args.unet_width, args.unet_levels, recipe.dim)
    unet.train()
    # The Trainer's loop (trainer.py, Trainer.run) with the U-Net in place of the
    # HyperbolicNet: same block draws and flips (same generator), Adam with the step
    # decaying to a tenth, class-weighted partial cross-entropy. Only the initial step
    # differs (--unet-lr): ours' 3e-3 fits the labels too slowly for a thin BN U-Net.
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(unet.parameters(), lr=args.unet_lr)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.1 ** (1 / max(trainer.iterations, 1)))
    loss = None
    for _ in range(trainer.iterations):
        point = trainer._train_points[rng.integers(len(trainer._train_points))]
        x, y = trainer._batch(trainer._crop_around(point, rng), "train", rng)
        optimizer.zero_grad(set_to_none=True)
        loss = unet_loss(trainer, unet, recipe.block_input(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
    times["train_s"] = time.perf_counter() - start
    start = time.perf_counter()
    unet.eval()
    with torch.no_grad():
        # The whole (padded) image in one pass, as the Predictor does for images up to
        # twice the training block.
        scores = unet(recipe.image_input(trainer.features))[0]
    labels_shape = data["labels"].shape
    index = scores.argmax(0).numpy()[tuple(slice(0, s) for s in labels_shape)]
    prediction = np.asarray(trainer.model.class_ids)[index].astype(np.uint8)
    times["predict_s"] = time.perf_counter() - start
    return prediction, {
        "iterations": trainer.iterations, "block": list(trainer.block), "width": args.unet_width,
        "levels": args.unet_levels, "learning_rate": args.unet_lr, "dim": recipe.dim,
        "in_channels": recipe.in_channels,
        "n_weights": sum(p.numel() for p in unet.parameters()),
        "train_labels": trainer.n_train_labels,
        "final_loss": float(loss.detach()) if loss is not None else None,
    }


def _fit_predict_rf(features, data, seed, args, times, info):
    from sklearn.ensemble import RandomForestClassifier

    labels = data["labels"].ravel()
    train = labels > 0
    start = time.perf_counter()
    forest = RandomForestClassifier(n_estimators=args.trees, n_jobs=args.jobs, random_state=seed,
                                    class_weight="balanced")
    forest.fit(features[train], labels[train])
    times["train_s"] = time.perf_counter() - start
    start = time.perf_counter()
    prediction = predict_chunked(forest, features).reshape(data["labels"].shape)
    times["predict_s"] = time.perf_counter() - start
    info.update(trees=args.trees, n_jobs=args.jobs, train_labels=int(train.sum()))
    return prediction, info


def method_rf_raw(data, case, seed, args, times):
    start = time.perf_counter()
    features = raw_features(data["image"], data["labels"].ndim)
    times["features_s"] = time.perf_counter() - start
    name = "spectrum" if data["kind"] == "cube" else "value of each channel (NaN: channel median)"
    return _fit_predict_rf(features, data, seed, args, times, {"features": name, "n_features": features.shape[1]})


def method_rf_filters(data, case, seed, args, times):
    start = time.perf_counter()
    features, info = peer_features(data["kind"], data["image"], seed)
    times["features_s"] = time.perf_counter() - start
    return _fit_predict_rf(features, data, seed, args, times, info)


def _fit_predict_rf_with_position(position: np.ndarray, name: str, data, case, seed, args, times, start):
    features, info = peer_features(data["kind"], data["image"], seed)
    position = np.broadcast_to(np.asarray(position, np.float32), data["labels"].shape).reshape(-1, 1)
    features = np.concatenate([features, position], 1)
    times["features_s"] = time.perf_counter() - start
    info = {**info, "features": info["features"] + f" + {name}", "n_features": features.shape[1]}
    return _fit_predict_rf(features, data, seed, args, times, info)


def method_rf_filters_pos(data, case, seed, args, times):
    start = time.perf_counter()
    # The plain position channel (layout.build_features): 2 i / (n - 1) - 1 down the
    # vertical (last) axis.
    depth = np.linspace(-1, 1, data["labels"].shape[-1], dtype=np.float32)
    return _fit_predict_rf_with_position(depth, "relative vertical position", data, case, seed, args, times, start)


def method_rf_filters_flat(data, case, seed, args, times):
    from napari_geoseg.train import FlattenedDepth

    start = time.perf_counter()
    # The Trainer's position channel for volumes (FlattenedDepth, on the raw amplitudes:
    # the dips do not depend on the amplitude's offset and scale).
    depth = FlattenedDepth.of(data["image"]).position()
    return _fit_predict_rf_with_position(depth, "flattened depth", data, case, seed, args, times, start)


def method_svm_filters(data, case, seed, args, times):
    from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_score
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    start = time.perf_counter()
    features, info = peer_features(data["kind"], data["image"], seed)
    # Standardised over the whole image (no labels involved, like the features themselves).
    features = StandardScaler(copy=False).fit_transform(features)
    times["features_s"] = time.perf_counter() - start
    labels = data["labels"].ravel()
    train = labels > 0
    x, y = features[train], labels[train]
    start = time.perf_counter()
    groups = label_groups(data["labels"], data["kind"], data.get("label_rule", "wells"))
    if groups is not None and len(np.unique(groups)) >= 2:
        folds = list(GroupKFold(n_splits=len(np.unique(groups))).split(x, y, groups))
        cv_name = "leave one well out"
    else:
        n_splits = max(2, min(5, int(np.bincount(y)[1:].min())))
        folds = list(StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(x, y))
        cv_name = f"stratified {n_splits}-fold"
    cv_scores = {}
    for c in SVM_C_GRID:
        model = SVC(C=c, gamma="scale", class_weight="balanced")
        cv_scores[c] = float(np.mean(cross_val_score(model, x, y, cv=folds, scoring="balanced_accuracy")))
    best_c = max(SVM_C_GRID, key=lambda c: cv_scores[c])  # ties: the smaller C
    svm = SVC(C=best_c, gamma="scale", class_weight="balanced").fit(x, y)
    times["train_s"] = time.perf_counter() - start
    start = time.perf_counter()
    prediction = predict_chunked(svm, features).reshape(data["labels"].shape)
    times["predict_s"] = time.perf_counter() - start
    info.update(C=best_c, cv=cv_name, cv_balanced_accuracy={str(k): v for k, v in cv_scores.items()},
                support_vectors=int(svm.n_support_.sum()), train_labels=int(train.sum()))
    return prediction, info


METHOD_FUNCTIONS: dict[str, Callable] = {
    "ours": method_ours, "rf-raw": method_rf_raw, "rf-filters": method_rf_filters,
    "svm-filters": method_svm_filters, "unet": method_unet, "rf-filters-pos": method_rf_filters_pos,
    "rf-filters-flat": method_rf_filters_flat,
}


def import_method_libraries(method: str) -> None:
    """Import what a method needs before the baseline, so that imports are not its memory."""
    if method in ("ours", "unet"):
        import torch  # noqa: F401

        import napari_geoseg.train
    else:
        import scipy.ndimage  # noqa: F401
        import sklearn.decomposition
        import sklearn.ensemble
        import sklearn.model_selection
        import sklearn.svm  # noqa: F401
        if method == "rf-filters-flat":
            import napari_geoseg.train  # noqa: F401


def worker_run(args: argparse.Namespace) -> dict[str, Any]:
    """Train and predict one method on one label draw; score it; report time and memory."""
    from napari_geoseg.demo import mean_iou

    import_method_libraries(args.method)
    data = load_case(args.data)
    gc.collect()
    baseline = current_rss()
    reset_ok = _common.reset_peak_rss()
    times: dict[str, float] = {}
    start = time.perf_counter()
    prediction, info = METHOD_FUNCTIONS[args.method](data, args.case, args.seed, args, times)
    seconds = time.perf_counter() - start
    peak = peak_rss(reset_ok)
    n_classes = len(data["class_names"])
    ious = mean_iou(prediction, data["truth"], data["score_mask"], n_classes)
    if args.preview:
        index = data["preview_index"]
        np.save(args.preview, prediction if index < 0 else prediction[index])
    return {
        "case": args.case, "method": args.method, "seed": args.seed, "ok": True,
        "iou": [float(v) for v in ious], "mean_iou": float(np.nanmean(ious)),
        "seconds": seconds, "times": times,
        "peak_rss_bytes": peak, "baseline_rss_bytes": baseline, "peak_delta_bytes": peak - baseline,
        "peak_is_vmhwm": reset_ok,
        "scored_voxels": int(np.count_nonzero(data["score_mask"])),
        "labelled_voxels": int(np.count_nonzero(data["labels"])),
        "info": info,
    }


def worker_calibrate(args: argparse.Namespace) -> dict[str, Any]:
    """Peak memory of one training step of ours or of a U-Net of ``--unet-width`` on the Trainer's block.

    A step is forward, partial cross-entropy, backward and the Adam update, of a freshly
    built network, so the peak includes its weights, gradients and Adam state as well as
    the activations. Before it, a throwaway copy of the same network takes one step on
    a small crop (thread pools, kernels, allocator) and is freed; the peak (VmHWM) is
    measured above the RSS just before the network is built, as in ``memory_depth.py``.
    """
    import torch

    from napari_geoseg.train import Model, Trainer

    data = load_case(args.data)
    trainer = Trainer(data["image"], data["labels"], preset="fast", seed=args.seed)
    rng = np.random.default_rng(args.seed)
    x, y = trainer._batch(trainer._crop_around(trainer._train_points[0], rng), "train", None)
    recipe = UNetRecipe(trainer)

    def make():
        torch.manual_seed(args.seed)
        if args.method == "ours":
            net = Model.build_net(trainer.preset, trainer.layout, trainer.model.in_channels, trainer.model.channels)
            loss = lambda xb, yb: trainer._loss(net, xb, yb)  # noqa: E731
        else:
            net = build_unet(recipe.in_channels, trainer.n_classes, args.unet_width, args.unet_levels, recipe.dim)
            loss = lambda xb, yb: unet_loss(trainer, net, recipe.block_input(xb), yb)  # noqa: E731
        net.train()
        return net, torch.optim.Adam(net.parameters(), lr=trainer.learning_rate), loss

    def step(net, optimizer, loss, xb, yb) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss(xb, yb).backward()
        optimizer.step()

    # Warm-up on a small crop: 8 voxels along every spatial axis of the network (a cube's
    # bands are channels).
    small = [slice(None), slice(None)] + [slice(0, 8)] * trainer.layout.network_ndim
    y_small = y[tuple(small[:1] + small[2:1 + y.ndim])]
    step(*make(), x[tuple(small)].contiguous(), y_small.contiguous())
    gc.collect()
    baseline = current_rss()
    reset_ok = _common.reset_peak_rss()
    start = time.perf_counter()
    net, optimizer, loss = make()
    step(net, optimizer, loss, x, y)
    seconds = time.perf_counter() - start
    peak = peak_rss(reset_ok)
    if args.method == "ours":
        design = {"preset": "fast", "channels": trainer.model.channels, "layers": len(net.layers)}
    else:
        design = {"width": args.unet_width, "levels": args.unet_levels, "dim": recipe.dim,
                  "in_channels": recipe.in_channels}
    return {"method": args.method, **design, "block": list(trainer.block), "input_shape": list(x.shape),
            "n_weights": sum(p.numel() for p in net.parameters()),
            "step_peak_delta_bytes": peak - baseline, "step_seconds": seconds, "peak_is_vmhwm": reset_ok}


# == driver ==============================================================================
def worker_command(args: argparse.Namespace, **extra: Any) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--jobs", str(args.jobs),
           "--trees", str(args.trees), "--unet-levels", str(args.unet_levels), "--unet-lr", str(args.unet_lr)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.iterations:
        cmd += ["--iterations", str(args.iterations)]
    if getattr(args, "race", None) is not None:
        cmd += ["--race", str(args.race)]
    if getattr(args, "block", None) is not None:
        cmd += ["--block", str(args.block)]
    if getattr(args, "members", None) is not None:
        cmd += ["--members", str(args.members)]
    if getattr(args, "smoothing", None) is not None:
        cmd += ["--smoothing", *[str(s) for s in args.smoothing]]
    if getattr(args, "smoothing_edges", False):
        cmd.append("--smoothing-edges")
    if getattr(args, "jitter", None) is not None:
        cmd += ["--jitter", str(args.jitter)]
    if getattr(args, "hold_out", None) is not None:
        cmd += ["--hold-out", args.hold_out]
    for key, value in extra.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        cmd += [flag] if value is True else [flag, str(value)]
    return cmd


def call_worker(cmd: list[str], timeout: float, threads: Optional[int], live_memory: bool = False) -> dict[str, Any]:
    """Run a worker in a fresh interpreter; its last stdout line is its JSON result.

    ``live_memory`` (the calibration steps): a low mmap threshold makes glibc hand freed
    arrays back at once, so that RSS follows live memory (as in memory_depth.py). The
    method runs keep glibc's defaults, which is what a user gets: their peak includes
    the allocator's slack, and their time is not slowed by the extra page faults.
    """
    env = dict(os.environ)
    if live_memory:
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    if threads:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(threads)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f} s",
                "process_seconds": time.perf_counter() - start}
    wall = time.perf_counter() - start
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        return {"ok": False, "error": f"exit {proc.returncode}: {tail}", "process_seconds": wall}
    result = json.loads(lines[-1])
    result["process_seconds"] = wall
    return result


def calibrate_unet(case: str, data_path: Path, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Find the U-Net width whose training-step peak is closest to ours on the same block.

    Widths from :data:`UNET_WIDTHS`: doubling from 4 until a step exceeds ours, then the
    width between the last two; the closest peak (in ratio) wins.
    """
    ours = call_worker(worker_command(args, calibrate=True, case=case, seed=seed, method="ours",
                                      data=data_path), args.timeout, args.threads, live_memory=True)
    if not ours.get("ok", True) or "step_peak_delta_bytes" not in ours:
        raise RuntimeError(f"calibration of ours failed: {ours.get('error')}")
    target = ours["step_peak_delta_bytes"]
    print(f"  calibration {case}: ours, one training step on {ours['input_shape']}: "
          f"{target / MIB:.1f} MiB", flush=True)
    measured: dict[int, dict[str, Any]] = {}

    def measure(width: int) -> int:
        if width not in measured:
            result = call_worker(worker_command(args, calibrate=True, case=case, seed=seed, method="unet",
                                                unet_width=width, data=data_path),
                                 args.timeout, args.threads, live_memory=True)
            if "step_peak_delta_bytes" not in result:
                raise RuntimeError(f"calibration of the U-Net (width {width}) failed: {result.get('error')}")
            measured[width] = result
            print(f"  calibration {case}: U-Net width {width:3d}, {result['n_weights']:8d} weights: "
                  f"{result['step_peak_delta_bytes'] / MIB:.1f} MiB", flush=True)
        return measured[width]["step_peak_delta_bytes"]

    widths = list(UNET_WIDTHS)
    i = widths.index(4)
    if measure(widths[i]) > target:
        while i > 0 and measure(widths[i]) > target:
            i -= 1
        low, high = i, i + 1
    else:
        while i + 1 < len(widths) and measure(widths[i]) <= target:
            i += 2 if i + 2 < len(widths) else 1
        low, high = max(i - 2, 0), i
    for j in range(low, high + 1):  # fill in the bracket
        measure(widths[j])
    best = min(measured, key=lambda w: abs(math.log(measured[w]["step_peak_delta_bytes"] / target)))
    print(f"  calibration {case}: U-Net width {best} ({measured[best]['step_peak_delta_bytes'] / MIB:.1f} MiB "
          f"against {target / MIB:.1f} MiB)", flush=True)
    return {"ours": ours, "unet": [measured[w] for w in sorted(measured)], "chosen_width": best,
            "ratio": measured[best]["step_peak_delta_bytes"] / target}


STREAM_HEADER = f"{'case':24s} {'method':15s} {'seed':>4s} {'mean IoU':>8s}  {'per-class IoU':22s} " \
                f"{'time s':>8s} {'peak MiB':>9s} {'process MiB':>11s}"


def stream_row(r: dict[str, Any]) -> str:
    head = f"{r['case']:24s} {r['method']:15s} {r['seed']:4d}"
    if not r.get("ok"):
        return f"{head} FAILED: {r.get('error', '?').splitlines()[-1][:100]}"
    per_class = " / ".join(f"{v:.3f}" for v in r["iou"])
    if len(r["iou"]) > 4:
        per_class = f"{len(r['iou'])} classes, min {np.nanmin(r['iou']):.3f}"
    return (f"{head} {r['mean_iou']:8.3f}  {per_class:22s} {r['seconds']:8.1f} "
            f"{r['peak_delta_bytes'] / MIB:9.1f} {r['peak_rss_bytes'] / MIB:11.1f}")


def summarise(results: list[dict[str, Any]], cases: list[str], methods: list[str]) -> list[dict[str, Any]]:
    """Mean (and spread) over seeds of each case and method.

    Where ours ran on only some of a case's draws (runs put together with --reuse), every
    method is summarised over those draws, so that the means compare like with like.
    """
    summary = []
    for case in cases:
        ours_seeds = {r["seed"] for r in results if r["case"] == case and r["method"] == "ours" and r.get("ok")}
        for method in methods:
            runs = [r for r in results if r["case"] == case and r["method"] == method
                    and (not ours_seeds or r["seed"] in ours_seeds)]
            good = [r for r in runs if r.get("ok")]
            if not runs:
                continue
            entry: dict[str, Any] = {"case": case, "method": method, "family": runs[0].get("family"),
                                     "kind": runs[0].get("kind"), "seeds": [r["seed"] for r in good],
                                     "failed_seeds": [r["seed"] for r in runs if not r.get("ok")]}
            if good:
                means = [r["mean_iou"] for r in good]
                entry.update(
                    mean_iou=float(np.mean(means)), mean_iou_std=float(np.std(means)),
                    mean_iou_min=float(np.min(means)),
                    iou=[float(v) for v in np.nanmean([r["iou"] for r in good], 0)],
                    seconds=float(np.mean([r["seconds"] for r in good])),
                    peak_delta_bytes=int(max(r["peak_delta_bytes"] for r in good)),
                    peak_rss_bytes=int(max(r["peak_rss_bytes"] for r in good)),
                )
            summary.append(entry)
    return summary


def check_targets(summary: list[dict[str, Any]], cases: list[str], quick: bool,
                  results: Optional[list[dict[str, Any]]] = None) -> dict[str, Any]:
    """The suite's targets (means over the draws unless said otherwise).

    - every case: ours >= the best peer;
    - every case, every draw: ours >= that draw's best peer - ``DRAW_TOLERANCE``;
    - over the cases with ours and a peer: mean of ours >= mean of the best peers + ``SUITE_MARGIN``;
    - ``seismic`` (the original targets): ours >= ``SEISMIC_MIN_IOU`` and >= the best peer + ``SEISMIC_MARGIN``.

    Controls (``CONTROLS``) are reported next to ours, outside the targets.
    """
    by = {(s["case"], s["method"]): s for s in summary if "mean_iou" in s}
    targets: dict[str, Any] = {}
    results = results or []

    def entry(text: str, passed: bool, **extra: Any) -> dict[str, Any]:
        return {"evaluated": True, "rule": text, "passed": bool(passed), "quick": quick, **extra}

    suite_ours, suite_best = [], []
    for case in cases:
        ours = by.get((case, "ours"))
        peers = [s for (c, m), s in by.items() if c == case and m in PEERS]
        best = max(peers, key=lambda s: s["mean_iou"]) if peers else None
        name = f"{case}_ours_at_least_best_peer"
        if ours is None or best is None:
            targets[name] = {"evaluated": False, "reason": "needs ours and at least one peer"}
        else:
            suite_ours.append(ours["mean_iou"])
            suite_best.append(best["mean_iou"])
            targets[name] = entry(f"ours {ours['mean_iou']:.3f} >= {best['method']} {best['mean_iou']:.3f}",
                                  ours["mean_iou"] >= best["mean_iou"], ours=ours["mean_iou"],
                                  best_peer=best["method"], best_peer_iou=best["mean_iou"], seeds=ours["seeds"])
            # Per draw: ours against the best peer of the same seed.
            draws, failed = [], []
            for seed in ours["seeds"]:
                runs = {r["method"]: r["mean_iou"] for r in results
                        if r.get("ok") and r["case"] == case and r["seed"] == seed}
                peer_runs = {m: v for m, v in runs.items() if m in PEERS}
                if "ours" not in runs or not peer_runs:
                    continue
                best_method = max(peer_runs, key=peer_runs.get)
                ok = runs["ours"] >= peer_runs[best_method] - DRAW_TOLERANCE
                draws.append({"seed": seed, "ours": runs["ours"], "best_peer": best_method,
                              "best_peer_iou": peer_runs[best_method], "passed": bool(ok)})
                if not ok:
                    failed.append(f"seed {seed}: {runs['ours']:.3f} < {best_method} {peer_runs[best_method]:.3f}")
            if draws:
                text = (f"every draw: ours >= that draw's best peer - {DRAW_TOLERANCE} "
                        + (f"({len(draws)} draws)" if not failed else "(" + "; ".join(failed) + ")"))
                targets[f"{case}_ours_per_draw_within_{DRAW_TOLERANCE}_of_best_peer"] = entry(
                    text, not failed, draws=draws)
        if case == "seismic":
            if ours is None:
                targets[f"seismic_ours_at_least_{SEISMIC_MIN_IOU}"] = {"evaluated": False, "reason": "needs ours"}
            else:
                targets[f"seismic_ours_at_least_{SEISMIC_MIN_IOU}"] = entry(
                    f"ours {ours['mean_iou']:.3f} >= {SEISMIC_MIN_IOU}", ours["mean_iou"] >= SEISMIC_MIN_IOU,
                    ours=ours["mean_iou"], seeds=ours["seeds"])
            name = f"seismic_ours_beats_best_peer_by_{SEISMIC_MARGIN}"
            if ours is None or best is None:
                targets[name] = {"evaluated": False, "reason": "needs ours and at least one peer"}
            else:
                targets[name] = entry(
                    f"ours {ours['mean_iou']:.3f} >= {best['method']} {best['mean_iou']:.3f} + {SEISMIC_MARGIN}",
                    ours["mean_iou"] >= best["mean_iou"] + SEISMIC_MARGIN, ours=ours["mean_iou"],
                    best_peer=best["method"], best_peer_iou=best["mean_iou"], seeds=ours["seeds"])
        for control in CONTROLS:
            if ours is not None and (case, control) in by:
                other = by[(case, control)]["mean_iou"]
                targets[f"{case}_ours_vs_{control}"] = {
                    "evaluated": True, "informational": True, "ours": ours["mean_iou"], control: other,
                    "rule": f"control, not a target: ours {ours['mean_iou']:.3f} vs {control} {other:.3f} "
                            f"(difference {ours['mean_iou'] - other:+.3f})"}
    name = f"suite_mean_ours_beats_mean_best_peer_by_{SUITE_MARGIN}"
    if not suite_ours:
        targets[name] = {"evaluated": False, "reason": "needs ours and a peer on at least one case"}
    else:
        mean_ours, mean_best = float(np.mean(suite_ours)), float(np.mean(suite_best))
        targets[name] = entry(f"mean over {len(suite_ours)} cases: ours {mean_ours:.3f} >= best peers "
                              f"{mean_best:.3f} + {SUITE_MARGIN}", mean_ours >= mean_best + SUITE_MARGIN,
                              ours=mean_ours, best_peer_iou=mean_best, n_cases=len(suite_ours))
    return targets


def target_text(t: dict[str, Any], bold: bool = False) -> str:
    if not t["evaluated"]:
        return f"not evaluated ({t['reason']})"
    if t.get("informational"):
        return t["rule"]
    verdict = "PASS" if t["passed"] else "FAIL"
    return f"{t['rule']}: " + (f"**{verdict}**" if bold else verdict)


def summary_table(summary: list[dict[str, Any]], class_names: dict[str, list[str]]) -> str:
    rows = []
    for s in summary:
        if "mean_iou" not in s:
            rows.append([s["case"], s["method"], "failed", "", "", "", "", ""])
            continue
        names = class_names.get(s["case"], [])
        if len(names) > 4:  # e.g. Indian Pines' 16 classes: the full list is in the JSON
            per_class = f"{len(names)} classes: min {np.nanmin(s['iou']):.3f}, median {np.nanmedian(s['iou']):.3f}"
        else:
            per_class = ", ".join(f"{n} {v:.3f}" for n, v in zip(names, s["iou"]))
        spread = f" ± {s['mean_iou_std']:.3f}" if len(s["seeds"]) > 1 else ""
        method = s["method"] + (" (control)" if s["method"] in CONTROLS else "")
        rows.append([s["case"], method, f"{s['mean_iou']:.3f}{spread}", per_class,
                     len(s["seeds"]), f"{s['seconds']:.1f}", f"{s['peak_delta_bytes'] / MIB:.0f}",
                     f"{s['peak_rss_bytes'] / MIB:.0f}"])
    return _common.format_table(["case", "method", "mean IoU", "per-class IoU", "seeds", "train+predict s",
                                 "peak MiB", "process peak MiB"], rows)


def markdown(payload: dict[str, Any], table: str) -> str:
    settings = payload["settings"]
    machine = payload["machine"]
    lines = [
        "# Segmentation quality against peers on the same labels",
        "",
        f"Produced by `{payload['command']}` (from the repository root) on {payload['date']}.",
        "",
    ]
    if payload["quick"]:
        lines += [f"**Quick run** (smoke test): {settings['seismic_size']}^3 synthetic seismic volumes, hyperspectral "
                  f"bands thinned (every {settings['band_step']}th), seeds {settings['seeds']} and "
                  f"{settings['iterations']} iterations; the scores say nothing about the methods. "
                  "Run without `--quick` for the benchmark.", ""]
    lines += [
        f"Machine: {machine['cpu_model']}, {machine['cpu_count']} CPUs, torch {machine['torch']} "
        f"(threads: {settings['threads'] or machine['torch_threads']}), random forests with n_jobs="
        f"{settings['jobs']}; load average at start {machine['load_average']}, at the end "
        f"{machine.get('load_average_after')}; {payload['total_seconds'] / 60:.1f} min in all.",
        "",
        "Mean IoU over the scored voxels of each case (its unlabelled valid voxels with a truth; see the "
        "cases below), averaged over the seeds (± standard deviation across seeds); per-class IoU averaged "
        "the same way. Time: train + predict (features "
        "included) in the worker, not counting process start and data loading. *peak MiB*: peak resident "
        "memory while the method ran above the resident memory just before it (data loaded, libraries "
        "imported; the largest over the seeds); *process peak MiB*: the whole process's peak.",
        "",
        matrix_table(payload),
        "",
        table,
        "",
        "## Cases",
        "",
    ]
    for case, info in payload["cases"].items():
        if "skipped" in info:
            continue
        draw = info["draws"][0]
        lines.append(f"- `{case}` ({info['family']}, {info['kind']}; image {draw['image_shape']}, "
                     f"{len(payload['class_names'].get(case, []))} classes, labelled "
                     f"{[d['labelled'] for d in info['draws']]}, scored {[d['scored'] for d in info['draws']]}): "
                     f"{info['description']}.")
    lines.append("")
    skipped = [f"- {case}: {info['skipped']}" for case, info in payload["cases"].items() if "skipped" in info]
    lines += skipped + ([""] if skipped else []) + ["## Targets", ""]
    for name, t in payload["targets"].items():
        lines.append(f"- `{name}`: " + target_text(t, bold=True))
    lines += ["", "## U-Net memory calibration", ""]
    for case, cal in payload["calibration"].items():
        if "chosen_width" not in cal:
            lines.append(f"- {case}: {cal.get('note', 'not calibrated')}")
            continue
        ours = cal["ours"]
        tried = ", ".join(f"{u['width']}: {u['step_peak_delta_bytes'] / MIB:.1f}" for u in cal["unet"])
        lines.append(f"- {case}: one training step on block {ours['block']} peaks at "
                     f"{ours['step_peak_delta_bytes'] / MIB:.1f} MiB for ours ({ours['n_weights']} weights); "
                     f"U-Net widths tried (MiB): {tried}; chosen width {cal['chosen_width']} "
                     f"(ratio {cal['ratio']:.2f}).")
    lines += ["", "## Every run", "", payload["runs_table"], "",
              "What each method is and how it is measured: [benchmarks/README.md](../README.md).", ""]
    return "\n".join(lines)


def matrix_table(payload: dict[str, Any]) -> str:
    """Mean IoU per case (rows) and method (columns), the best peer of each case in bold."""
    by = {(s["case"], s["method"]): s for s in payload["summary"] if "mean_iou" in s}
    cases = _case_order(payload)
    methods = [m for m in payload["settings"]["methods"] if any((c, m) in by for c in cases)]
    rows = []
    for case in cases:
        peers = {m: by[(case, m)]["mean_iou"] for m in methods if m in PEERS and (case, m) in by}
        best = max(peers, key=peers.get) if peers else None
        cells = []
        for m in methods:
            if (case, m) not in by:
                cells.append("")
                continue
            value = f"{by[(case, m)]['mean_iou']:.3f}"
            cells.append(f"**{value}**" if m == best else value)
        rows.append([case, payload["families"].get(case, "")] + cells)
    means = []
    for m in methods:
        values = [by[(c, m)]["mean_iou"] for c in cases if (c, m) in by]
        means.append(f"{np.mean(values):.3f} ({len(values)})" if values else "")
    rows.append(["mean (cases)", ""] + means)
    return _common.format_table(["case", "family"] + [m + (" (control)" if m in CONTROLS else "") for m in methods],
                                rows)


def runs_table(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        if not r.get("ok"):
            error = str(r.get("error", "?")).splitlines()[-1][:60].replace("|", "/")
            rows.append([r["case"], r["method"], r["seed"], "failed", "", "", "", error])
            continue
        note = ""
        info = r.get("info", {})
        if r["method"] == "svm-filters":
            note = f"C={info.get('C')}, {info.get('support_vectors')} SVs"
        elif r["method"] == "unet":
            note = f"width {info.get('width')}, {info.get('n_weights')} weights"
        elif r["method"] == "ours":
            note = f"{info.get('n_weights')} weights, {info.get('iterations')} its"
        rows.append([r["case"], r["method"], r["seed"], f"{r['mean_iou']:.3f}",
                     " / ".join(f"{v:.3f}" for v in r["iou"]), f"{r['seconds']:.1f}",
                     f"{r['peak_delta_bytes'] / MIB:.0f}", note])
    return _common.format_table(["case", "method", "seed", "mean IoU", "per-class IoU", "s", "peak MiB", "notes"],
                                rows)


def _case_order(payload: dict[str, Any]) -> list[str]:
    summary = [s for s in payload["summary"] if "mean_iou" in s]
    return [c for c in payload["settings"]["cases"] if any(s["case"] == c for s in summary)]


def plot(payload: dict[str, Any], out: Path) -> None:
    """Main figure: mean IoU per case and method (bars; dots: the draws), and train + predict time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    summary = {(s["case"], s["method"]): s for s in payload["summary"] if "mean_iou" in s}
    cases = _case_order(payload)
    if not cases:
        return
    methods = [m for m in payload["settings"]["methods"] if any((c, m) in summary for c in cases)]
    palette = iter(["C0", "C1", "C2", "C4", "C5", "C6", "C7", "C8", "C9"])  # C3 (red) is ours
    colours = {m: ("C3" if m == "ours" else next(palette, "0.5")) for m in methods}
    width = 0.8 / max(len(methods), 1)
    fig, (ax, ax_t) = plt.subplots(2, 1, figsize=(max(7.0, 2.5 + 0.25 * len(cases) * len(methods)), 7.5),
                                   sharex=True, gridspec_kw={"height_ratios": [2.2, 1]}, constrained_layout=True)
    xs = np.arange(len(cases))
    for k, method in enumerate(methods):
        offset = (k - (len(methods) - 1) / 2) * width
        control = method in CONTROLS
        for x, case in zip(xs, cases):
            s = summary.get((case, method))
            if s is None:
                continue
            ax.bar(x + offset, s["mean_iou"], width, color=colours[method], alpha=0.85,
                   hatch="//" if control else "", edgecolor="white" if control else None, lw=0)
            seeds = [r["mean_iou"] for r in payload["results"]
                     if r.get("ok") and r["case"] == case and r["method"] == method]
            ax.plot([x + offset] * len(seeds), seeds, "k.", ms=3)
            ax_t.bar(x + offset, s["seconds"], width, color=colours[method], alpha=0.85,
                     hatch="//" if control else "", lw=0)
    if "seismic" in cases:
        x = cases.index("seismic")
        ax.plot([x - 0.45, x + 0.45], [SEISMIC_MIN_IOU] * 2, color="C3", lw=0.8, ls="--")
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean IoU on scored voxels")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(handles=[Patch(facecolor=colours[m], hatch="//" if m in CONTROLS else "",
                             label=m + (" (control)" if m in CONTROLS else "")) for m in methods],
              fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    families = payload.get("families", {})
    ax.set_title(f"Same sparse labels, different methods ({'quick run' if payload['quick'] else 'benchmark'})\n"
                 f"bars: mean over seeds {payload['settings']['seeds']}, dots: each draw", fontsize=9)
    ax_t.set_yscale("log")
    ax_t.set_ylabel("train + predict s")
    ax_t.grid(axis="y", alpha=0.3)
    ax_t.set_xticks(xs, [f"{c}\n({families.get(c, '')})" for c in cases], rotation=35, ha="right", fontsize=7)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_maps(payload: dict[str, Any], previews: dict[tuple[str, str], np.ndarray],
              truths: dict[str, np.ndarray], out: Path) -> bool:
    """Optional figure: per case, the truth and each method's map of the first seed (one row per case)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    cases = [c for c in _case_order(payload) if c in truths]
    if not cases or not previews:
        return False
    methods = [m for m in payload["settings"]["methods"] if any((c, m) in previews for c in cases)]
    panels = 1 + len(methods)
    fig, axes = plt.subplots(len(cases), panels, figsize=(1.7 * panels, 1.8 * len(cases)), squeeze=False,
                             constrained_layout=True)
    for row, case in enumerate(cases):
        names = payload["class_names"].get(case, [])
        colors = plt.get_cmap("viridis")(np.linspace(0.1, 0.95, max(len(names), 2)))
        cmap = ListedColormap(colors).with_extremes(bad="lightgrey")
        # Volumes and images: the last axis is the vertical one (drawn downwards); cubes: a map.
        vertical = payload["kinds"].get(case) != "cube"
        for col, (name, image) in enumerate([("truth", truths[case])]
                                            + [(m, previews.get((case, m))) for m in methods]):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if image is None:
                ax.set_title(f"{name}: no map", fontsize=6)
                continue
            ax.imshow(image.T if vertical else image, cmap=cmap, vmin=0.5, vmax=len(colors) + 0.5,
                      interpolation="nearest", aspect="auto")
            ax.set_title(f"{case}: {name}" if col == 0 else name, fontsize=6)
    fig.suptitle(f"Maps of seed {payload['settings']['seeds'][0]} (volumes: the section at the preview index, "
                 f"vertical axis down; grey: not scored)", fontsize=8)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return True


def reusable_runs(args: argparse.Namespace) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Successful runs of the --reuse-methods in the --reuse files, by (case, method, seed).

    Only files made with the same data settings (synthetic size, band step) are used; a
    run found in several files is taken from the last one. Each run records its file.
    """
    runs: dict[tuple[str, str, int], dict[str, Any]] = {}
    for path in args.reuse or []:
        earlier = json.loads(Path(path).read_text())
        settings = earlier.get("settings", {})
        if (settings.get("seismic_size"), settings.get("band_step")) != (args.size, args.band_step):
            raise SystemExit(f"quality.py: error: {path} was made with other data settings (size "
                             f"{settings.get('seismic_size')}, band step {settings.get('band_step')}); "
                             f"run without it")
        for r in earlier.get("results", []):
            if r.get("ok") and r["method"] in args.reuse_methods:
                runs[(r["case"], r["method"], r["seed"])] = dict(r, reused_from=str(path))
    return runs


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=None,
                        help="cases to run (default: all, or all of --family)")
    parser.add_argument("--family", nargs="+", choices=FAMILIES, default=None,
                        help="run the cases of these families (with --cases: only those of these families)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="label draws (default 0 1 2; quick: 0)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--iterations", type=int, default=None,
                        help=f"training iterations of ours and the U-Net (default: the preset's; quick: "
                             f"{QUICK_ITERATIONS})")
    parser.add_argument("--race", type=float, default=None,
                        help="ours: the preset's race of designs (Preset.race, a share of the iterations; "
                             "default: the preset's)")
    parser.add_argument("--block", type=int, default=None,
                        help="ours: block side of volumes and 2D images (Preset.block: training blocks, and "
                             "the predictor's tiling; default: the preset's)")
    parser.add_argument("--members", type=int, default=None,
                        help="ours: networks averaged on volumes and 2D images (Preset.members; cubes keep "
                             "Preset.spectral_members; default: the preset's)")
    parser.add_argument("--smoothing-edges", action="store_true",
                        help="ours: the smoothed copies also hold gradient magnitudes and Laplacians "
                             "(Preset.smoothing_edges)")
    parser.add_argument("--hold-out", choices=("groups", "voxels"), default=None,
                        help="ours: hold out whole wells/strokes or single voxels to judge the race and the "
                             "probe by (Preset.hold_out_groups; default: the preset's)")
    parser.add_argument("--smoothing", type=float, nargs="*", default=None,
                        help="ours: scales of the smoothed copies the lifting and head read, in every mode "
                             "(Preset.smoothing and smoothing_modes; none: no copies; default: the preset's)")
    parser.add_argument("--jitter", type=float, default=None,
                        help="ours: illumination jitter of cubes (Preset.illumination_jitter; 0: off; "
                             "default: the preset's)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {QUICK_SIZE}^3 synthetic seismic ({2 * QUICK_SIZE}^2 image section), "
                             f"hyperspectral cubes every {QUICK_BAND_STEP}th band, seed 0, {QUICK_ITERATIONS} "
                             f"iterations")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch (and BLAS/OpenMP) threads in the workers (default: torch's default)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="random forest n_jobs (default: --threads, else torch's default thread count)")
    parser.add_argument("--trees", type=int, default=100, help="random forest trees (default 100)")
    parser.add_argument("--size", type=int, default=None,
                        help="synthetic seismic volume side; the image section is twice as wide (default 96; "
                             "quick 48)")
    parser.add_argument("--band-step", type=int, default=None,
                        help="keep every Nth band of the hyperspectral cubes (default 1; quick 4)")
    parser.add_argument("--unet-width", type=int, default=None,
                        help="U-Net base width; default: calibrated to ours' training-step memory")
    parser.add_argument("--unet-levels", type=int, default=3, help="U-Net resolution levels (default 3, as ours)")
    parser.add_argument("--unet-lr", type=float, default=UNET_LR,
                        help=f"U-Net initial Adam step (default {UNET_LR}; ours uses its preset's 3e-3)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR,
                        help="the shared data folder (default ../shared/data from the repository root)")
    parser.add_argument("--samson-dir", type=Path, default=None,
                        help="folder of the hyperspectral files (default DATA_DIR/hyperspectral)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per worker (default 3600)")
    parser.add_argument("--reuse", type=Path, nargs="+", default=None,
                        help="quality.json files of earlier runs on the same data settings: take the runs of the "
                             "--reuse-methods from them instead of running them again")
    parser.add_argument("--reuse-only", action="store_true",
                        help="run nothing: report the runs found in the --reuse files (e.g. to put together the "
                             "runs of several sessions or machines)")
    parser.add_argument("--reuse-methods", nargs="+", choices=METHODS, default=list(CLASSICAL),
                        help=f"methods whose runs --reuse takes (default: {' '.join(CLASSICAL)}, which do not "
                             f"depend on the engine)")
    # Worker mode.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--calibrate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--preview", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.worker:
        chosen = list(args.cases) if args.cases else list(CASES)
        if args.family:
            chosen = [c for c in chosen if suite.family_of(c) in args.family]
        if not chosen:
            parser.error("no case matches --cases and --family")
        args.cases = chosen
    if args.seeds is None:
        args.seeds = [0] if args.quick else [0, 1, 2]
    if args.iterations is None and args.quick:
        args.iterations = QUICK_ITERATIONS
    if args.size is None:
        args.size = QUICK_SIZE if args.quick else 96
    if args.band_step is None:
        args.band_step = QUICK_BAND_STEP if args.quick else 1
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    _common.ensure_package()
    if args.worker:
        if args.threads and (args.calibrate or args.method in ("ours", "unet")):
            import torch

            torch.set_num_threads(args.threads)
        result = worker_calibrate(args) if args.calibrate else worker_run(args)
        print(json.dumps(result))
        return 0

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.jobs is None:
        args.jobs = args.threads or torch.get_num_threads()
    command = "python " + shlex.join([sys.argv[0]] + (sys.argv[1:] if argv is None else list(argv)))
    info = _common.machine_info()
    cases = list(args.cases)
    payload: dict[str, Any] = {
        "benchmark": "quality", "command": command, "argv": sys.argv if argv is None else list(argv),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "quick": args.quick,
        "settings": {"cases": cases, "methods": list(args.methods), "seeds": args.seeds,
                     "families": args.family, "iterations": args.iterations or "preset default",
                     "race": args.race if args.race is not None else "preset default",
                     "block": args.block or "preset default",
                     "members": args.members or "preset default",
                     "smoothing": args.smoothing if args.smoothing is not None else "preset default",
                     "smoothing_edges": bool(args.smoothing_edges),
                     "hold_out": args.hold_out or "preset default",
                     "jitter": args.jitter if args.jitter is not None else "preset default",
                     "seismic_size": args.size, "band_step": args.band_step, "data_dir": str(args.data_dir),
                     "threads": args.threads, "jobs": args.jobs,
                     "trees": args.trees, "sigmas": list(SIGMAS), "svm_C_grid": list(SVM_C_GRID),
                     "unet_levels": args.unet_levels, "unet_width": args.unet_width, "unet_lr": args.unet_lr,
                     "samson_clean_abundance": SAMSON_CLEAN, "pixels_per_class": SAMSON_LABELS_PER_CLASS,
                     "cube_pca_components": SAMSON_PCA, "timeout_s": args.timeout,
                     "targets": {"suite_margin": SUITE_MARGIN, "draw_tolerance": DRAW_TOLERANCE,
                                 "seismic_min_iou": SEISMIC_MIN_IOU, "seismic_margin": SEISMIC_MARGIN},
                     "env": {"calibration": {"MALLOC_MMAP_THRESHOLD_": "65536"}, "methods": "glibc defaults"}},
        "machine": info, "cases": {}, "calibration": {}, "class_names": {}, "kinds": {}, "families": {},
    }
    results: list[dict[str, Any]] = []
    reused = reusable_runs(args)
    previews: dict[tuple[str, str], np.ndarray] = {}
    truths: dict[str, np.ndarray] = {}
    tmp = Path(tempfile.mkdtemp(prefix="geoseg-quality-"))
    header_printed = False
    started = time.perf_counter()
    try:
        for case in list(cases):
            missing = suite.missing_files(case, args)
            if missing:
                message = f"missing {', '.join(str(m) for m in missing)}: case skipped"
                print(f"{case}: skipped ({message})", flush=True)
                payload["cases"][case] = {"skipped": message, "family": suite.family_of(case),
                                          "kind": suite.kind_of(case)}
                cases.remove(case)
                continue
            paths = {}
            case_info = {"family": suite.family_of(case), "kind": suite.kind_of(case),
                         "description": suite.DESCRIPTIONS[case], "draws": []}
            for seed in args.seeds:
                data = make_case(case, seed, args)
                paths[seed] = tmp / f"{case}-{seed}.npz"
                save_case(data, paths[seed])
                case_info["draws"].append({"seed": seed, "image_shape": list(data["image"].shape),
                                           "labelled": int(np.count_nonzero(data["labels"])),
                                           "scored": int(np.count_nonzero(data["score_mask"])),
                                           "class_counts_scored": np.bincount(
                                               data["truth"][data["score_mask"]],
                                               minlength=len(data["class_names"]) + 1)[1:].tolist()})
                if seed == args.seeds[0]:
                    payload["class_names"][case] = data["class_names"]
                    payload["kinds"][case] = data["kind"]
                    payload["families"][case] = data["family"]
                    index = data["preview_index"]
                    truth = data["truth"].astype(float)
                    truth[~data["score_mask"] & (data["labels"] == 0)] = np.nan  # not scored: grey
                    truths[case] = truth if index < 0 else truth[index]
            payload["cases"][case] = case_info
            print(f"{case}: image {case_info['draws'][0]['image_shape']}, labelled "
                  f"{[d['labelled'] for d in case_info['draws']]}, scored {[d['scored'] for d in case_info['draws']]}"
                  f" (seeds {args.seeds})", flush=True)
            unet_width = args.unet_width
            if "unet" in args.methods and not args.reuse_only:
                if unet_width is None:
                    try:
                        cal = calibrate_unet(case, paths[args.seeds[0]], args.seeds[0], args)
                        unet_width = cal["chosen_width"]
                    except RuntimeError as err:
                        print(f"  calibration {case} failed: {err}", flush=True)
                        cal = {"note": f"calibration failed: {err}"}
                else:
                    cal = {"note": f"width {unet_width} given with --unet-width, not calibrated"}
                payload["calibration"][case] = cal
            kind = payload["kinds"][case]
            methods = [m for m in args.methods if kind in METHOD_KINDS.get(m, (kind,))]
            for seed in args.seeds:
                for method in methods:
                    if (case, method, seed) in reused:
                        result = dict(reused[(case, method, seed)])
                    elif args.reuse_only:
                        continue
                    elif method == "unet" and unet_width is None:
                        result = {"ok": False, "error": "no U-Net width (calibration failed)"}
                    else:
                        preview = tmp / f"preview-{case}-{method}.npy" if seed == args.seeds[0] else None
                        cmd = worker_command(args, case=case, seed=seed, method=method, data=paths[seed],
                                             preview=preview, unet_width=unet_width)
                        result = call_worker(cmd, args.timeout, args.threads)
                        if preview is not None and preview.exists():
                            previews[(case, method)] = np.load(preview)
                    result.update(case=case, method=method, seed=seed, family=payload["families"][case],
                                  kind=kind)
                    results.append(result)
                    if not header_printed:
                        print(STREAM_HEADER, flush=True)
                        header_printed = True
                    print(stream_row(result), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    summary = summarise(results, cases, list(args.methods))
    payload["summary"] = summary
    table = summary_table(summary, payload["class_names"])
    targets = check_targets(summary, cases, args.quick, results)
    print()
    print(matrix_table(payload))
    print()
    print(table)
    for name, t in targets.items():
        print(f"target {name}: " + target_text(t))
    info["load_average_after"] = _common.load_average()
    payload.update(results=results, summary=summary, targets=targets, table=table,
                   runs_table=runs_table(results), total_seconds=time.perf_counter() - started)
    json_path = _common.write_json("quality.json", payload)
    md_path = _common.RESULTS / "quality.md"
    md_path.write_text(markdown(payload, table))
    png_path = _common.RESULTS / "quality.png"
    maps_path = _common.RESULTS / "quality_maps.png"
    try:
        plot(payload, png_path)
        wrote_maps = plot_maps(payload, previews, truths, maps_path)
    except ImportError as err:  # matplotlib missing: the JSON and the markdown are written
        print(f"no figures ({err})")
        wrote_maps = False
    print(f"wrote {json_path}, {md_path}, {png_path}" + (f" and {maps_path}" if wrote_maps else "")
          + f" ({time.perf_counter() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
