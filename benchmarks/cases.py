"""The cases of the quality suite: data, sparse labels, truth and the scored voxels.

numpy and scipy only (plus ``napari_geoseg.io.read_volume`` for the .mat and SEG-Y files
and ``napari_geoseg.data.synthetic_seismic`` for the original ``seismic`` case). The real
data come from the shared data folder (``<repo>/../shared/data``, see its README); they
are read in place, never copied, and a case whose files are absent is skipped by the
driver (:func:`missing_files`).

:func:`make_case` returns one *label draw* (a seed) of a case as a dict:

- ``image``: float32; NaN where a cell has no data.
- ``labels``: uint8, 0 = unlabelled, 1..K.
- ``truth``: uint8, the class 1..K of every scored voxel (0 elsewhere allowed).
- ``score_mask``: bool, the scored voxels: unlabelled, valid, with a truth.
- ``class_names``, ``preview_index`` (index along axis 0 of a volume for the preview
  section; -1 for 2D outputs), ``kind`` (``"volume"``: 3D image, optionally with a
  trailing channel axis, labels of the same 3D shape; ``"cube"``: (rows, cols, bands) with
  2D labels; ``"image"``: 2D image, optionally with channels, 2D labels), ``family``
  (hyperspectral, grid, seismic-synthetic, seismic-real, image) and ``label_rule``
  (``"wells"``: columns of traces, ``"strokes"``: short segments on sections, ``"pixels"``:
  single pixels).

The seed changes the labels deterministically, and for the synthetic and derived cases
the data as well. :data:`DESCRIPTIONS` says in one line how each case is built, labelled
and scored (the README has the same text).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Optional

import numpy as np
import seismic_generators as gen
from scipy import ndimage as ndi

#: The shared data folder (read in place; see its README).
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"

SAMSON_CLASSES = ("rock", "tree", "water")
#: Samson: pixels whose largest abundance is at least this are "clean" (labelled and scored).
SAMSON_CLEAN = 0.6
#: Hyperspectral cases: labelled pixels per class.
PIXELS_PER_CLASS = 5
INDIAN_PINES_CLASSES = (
    "alfalfa", "corn-notill", "corn-mintill", "corn", "grass-pasture", "grass-trees", "grass-pasture-mowed",
    "hay-windrowed", "oats", "soybean-notill", "soybean-mintill", "soybean-clean", "wheat", "woods",
    "buildings-grass-trees-drives", "stone-steel-towers")
#: indian-pines-reflectance keeps the largest classes only.
INDIAN_PINES_LARGEST = 8
REEK_FACIES = ("background", "channel", "crevasse")
REEK_WELLS = 6
SEISMIC_WELLS = 4
#: Half-width of a well column: (2 r + 1)^2 traces.
WELL_RADIUS = 1
VOLVE_WELLS = 4
F3_WELLS = 3
STROKE_LENGTH = (10, 20)

FAMILIES = ("hyperspectral", "grid", "seismic-synthetic", "seismic-real", "image")


# == labels ===============================================================================
def pixel_labels(truth: np.ndarray, allowed: np.ndarray, n_classes: int, per_class: int,
                 rng: np.random.Generator) -> np.ndarray:
    """``per_class`` pixels of each class 1..n_classes, drawn among the ``allowed`` ones."""
    labels = np.zeros(truth.shape, np.uint8)
    for k in range(1, n_classes + 1):
        rows, cols = np.nonzero((truth == k) & allowed)
        take = rng.choice(rows.size, min(per_class, rows.size), replace=False)
        labels[rows[take], cols[take]] = k
    return labels


def well_columns(truth: np.ndarray, n_wells: int, rng: np.random.Generator, radius: int = WELL_RADIUS,
                 valid: Optional[np.ndarray] = None) -> list[tuple[int, int]]:
    """Centres (i, j) of ``n_wells`` separate well columns that together hit every class.

    Wells are at least ``2 radius + 3`` traces apart (Chebyshev) and ``radius`` from the
    edges, on columns with at least one valid cell. The first wells go, one at a time, to
    random columns through a class that no earlier well hits yet; the rest are random.
    """
    nx, ny = truth.shape[:2]
    valid = np.ones(truth.shape, bool) if valid is None else valid
    size = 2 * radius + 1
    centre_ok = valid.any(-1)
    centre_ok[:radius] = centre_ok[nx - radius:] = False
    centre_ok[:, :radius] = centre_ok[:, ny - radius:] = False
    classes = [k for k in np.unique(truth[valid]) if k > 0]
    hits = {k: ndi.maximum_filter(((truth == k) & valid).any(-1), size=size, mode="constant") for k in classes}
    wells: list[tuple[int, int]] = []

    def free() -> np.ndarray:
        ok = centre_ok.copy()
        for i, j in wells:
            ok[max(i - size - 1, 0):i + size + 2, max(j - size - 1, 0):j + size + 2] = False
        return ok

    def pick(mask: np.ndarray) -> bool:
        rows, cols = np.nonzero(mask)
        if rows.size == 0:
            return False
        t = rng.integers(rows.size)
        wells.append((int(rows[t]), int(cols[t])))
        return True

    for k in rng.permutation(classes):
        if len(wells) < n_wells and not any(hits[k][i, j] for i, j in wells):
            pick(hits[k] & free())
    while len(wells) < n_wells:
        if not pick(free()):
            raise ValueError(f"no room for {n_wells} wells of radius {radius} in a {nx} x {ny} grid")
    return wells


def column_labels(truth: np.ndarray, wells: list[tuple[int, int]], radius: int = WELL_RADIUS,
                  valid: Optional[np.ndarray] = None) -> np.ndarray:
    """The truth in the well columns (valid cells only), 0 elsewhere."""
    labels = np.zeros(truth.shape, np.uint8)
    for i, j in wells:
        column = np.s_[i - radius:i + radius + 1, j - radius:j + radius + 1, :]
        keep = truth[column] if valid is None else np.where(valid[column], truth[column], 0)
        labels[column] = keep
    return labels


def strokes_2d(truth: np.ndarray, per_class: int, rng: np.random.Generator,
               length: tuple[int, int] = STROKE_LENGTH) -> np.ndarray:
    """Scribbles on a 2D section: ``per_class`` straight strokes inside each class present.

    A stroke starts at a random pixel of its class, has a random direction and a length
    of ``length`` pixels (inclusive range), and grows both ways from its start until it
    reaches that length, the section's edge or another class (a careful user stops at the
    boundary), so each stroke is one connected segment of one class.
    """
    labels = np.zeros(truth.shape, np.uint8)
    for k in [int(k) for k in np.unique(truth) if k > 0]:
        rows, cols = np.nonzero(truth == k)
        for _ in range(per_class):
            t = rng.integers(rows.size)
            start = np.array([rows[t], cols[t]], float)
            angle = rng.uniform(0, np.pi)
            step = np.array([np.cos(angle), np.sin(angle)])
            target = int(rng.integers(length[0], length[1] + 1))
            points = [start]
            for sign in (1, -1):
                for n in range(1, target):
                    p = np.round(start + sign * n * step).astype(int)
                    if (len(points) >= target or not (0 <= p[0] < truth.shape[0] and 0 <= p[1] < truth.shape[1])
                            or truth[p[0], p[1]] != k):
                        break
                    points.append(p)
            for p in points:
                labels[int(round(p[0])), int(round(p[1]))] = k
    return labels


def section_strokes(truth: np.ndarray, rng: np.random.Generator, per_class: int = 2) -> tuple[np.ndarray, list[int]]:
    """Strokes on two inline sections (axis 0) at least a fifth of the volume apart."""
    nx = truth.shape[0]
    lo, hi = nx // 5, nx - nx // 5
    first = int(rng.integers(lo, hi))
    others = [i for i in range(lo, hi) if abs(i - first) >= max(nx // 5, 1)]
    second = int(rng.choice(others))
    labels = np.zeros(truth.shape, np.uint8)
    for i in (first, second):
        labels[i] = strokes_2d(truth[i], per_class, rng)
    return labels, [first, second]


# == hyperspectral ========================================================================
def load_samson(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Samson cube ``(rows, cols, bands)`` float32 and abundances ``(rows, cols, 3)``, as the data README says."""
    from napari_geoseg.io import read_volume

    y = np.asarray(read_volume(folder / "Samson.mat", variable="Y").data, dtype=np.float64)
    a = np.asarray(read_volume(folder / "_EndSamson.mat", variable="A").data, dtype=np.float64)
    side = int(np.sqrt(y.shape[1]))
    if side * side != y.shape[1] or a.shape != (len(SAMSON_CLASSES), y.shape[1]):
        raise ValueError(f"unexpected Samson shapes: Y {y.shape}, A {a.shape}")
    cube = y.reshape(y.shape[0], side, side, order="F").transpose(1, 2, 0)
    abundance = a.reshape(a.shape[0], side, side, order="F").transpose(1, 2, 0)
    return cube.astype(np.float32), abundance


def _samson_base(seed: int, args) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Samson cube (all bands), abundances, truth, labels and the common part of the result."""
    cube, abundance = load_samson(data_path(args, "hyperspectral/Samson.mat").parent)
    truth = (abundance.argmax(-1) + 1).astype(np.uint8)
    clean = abundance.max(-1) >= SAMSON_CLEAN
    labels = pixel_labels(truth, clean, len(SAMSON_CLASSES), PIXELS_PER_CLASS, np.random.default_rng(seed))
    common = {"labels": labels, "truth": truth, "score_mask": clean & (labels == 0),
              "class_names": list(SAMSON_CLASSES), "preview_index": -1}
    return cube.astype(np.float64), abundance, truth, labels, common


def _bands(cube: np.ndarray, args) -> np.ndarray:
    step = max(int(getattr(args, "band_step", 1) or 1), 1)
    return np.ascontiguousarray(cube[..., ::step], dtype=np.float32)


def case_samson(seed: int, args) -> dict[str, Any]:
    cube, _, _, _, common = _samson_base(seed, args)
    return {"image": _bands(cube, args), **common}


def case_samson_counts(seed: int, args) -> dict[str, Any]:
    cube, _, _, _, common = _samson_base(seed, args)
    return {"image": _bands(np.round(cube * 5000 + 80), args), **common}


def case_samson_shape(seed: int, args) -> dict[str, Any]:
    """Each spectrum over its own mean, times a smooth random brightness field (no class information)."""
    cube, _, _, _, common = _samson_base(seed, args)
    shape = cube / np.maximum(cube.mean(-1, keepdims=True), 1e-6)
    rng = np.random.default_rng([seed, 1])
    field = ndi.gaussian_filter(rng.standard_normal(cube.shape[:2]), 6.0, mode="wrap")
    field = (field - field.mean()) / field.std()
    brightness = cube.mean() * np.exp(0.5 * field)
    return {"image": _bands(shape * brightness[..., None], args), **common}


#: samson-brightness: class brightness levels (times the scene's mean) and per-pixel log spread.
BRIGHTNESS_LEVELS = (0.74, 1.0, 1.35)
BRIGHTNESS_SPREAD = 0.15


def case_samson_brightness(seed: int, args) -> dict[str, Any]:
    """One spectral shape for all, brightness by class (overlapping), plus real spectral noise.

    Shape: the scene's mean spectrum (mean 1). Brightness of a pixel: its abundances
    times the class levels ``BRIGHTNESS_LEVELS`` x the scene's mean value, times
    ``exp(0.15 n)`` with n standard normal per pixel, so neighbouring classes overlap
    (levels 0.30 apart in log, 2 spreads). Noise: the high-pass part of the real spectra
    (spectrum minus its Gaussian smoothing along the bands, sigma 2 bands), taken from a
    random permutation of the pixels so that it carries no class information.
    """
    cube, abundance, _, _, common = _samson_base(seed, args)
    rng = np.random.default_rng([seed, 2])
    mean_spectrum = cube.mean((0, 1))
    mean_spectrum /= mean_spectrum.mean()
    levels = cube.mean() * np.asarray(BRIGHTNESS_LEVELS)
    brightness = (abundance @ levels) * np.exp(BRIGHTNESS_SPREAD * rng.standard_normal(cube.shape[:2]))
    noise = (cube - ndi.gaussian_filter1d(cube, 2.0, axis=-1)).reshape(-1, cube.shape[-1])
    noise = noise[rng.permutation(noise.shape[0])].reshape(cube.shape)
    return {"image": _bands(brightness[..., None] * mean_spectrum + noise, args), **common}


def _indian_pines(args) -> tuple[np.ndarray, np.ndarray]:
    return (np.load(data_path(args, "hyperspectral/Indian_pines_corrected.npy")),
            np.load(data_path(args, "hyperspectral/Indian_pines_gt.npy")))


def case_indian_pines(seed: int, args) -> dict[str, Any]:
    cube, gt = _indian_pines(args)
    truth = gt.astype(np.uint8)
    labels = pixel_labels(truth, truth > 0, len(INDIAN_PINES_CLASSES), PIXELS_PER_CLASS,
                          np.random.default_rng(seed))
    return {"image": _bands(cube, args), "labels": labels, "truth": truth,
            "score_mask": (truth > 0) & (labels == 0), "class_names": list(INDIAN_PINES_CLASSES),
            "preview_index": -1}


def case_indian_pines_reflectance(seed: int, args) -> dict[str, Any]:
    """Reflectance (raw / 10000, about 0.1-0.96), the 8 largest classes only (renumbered 1..8)."""
    cube, gt = _indian_pines(args)
    counts = np.bincount(gt.ravel(), minlength=len(INDIAN_PINES_CLASSES) + 1)[1:]
    keep = np.sort(np.argsort(-counts, kind="stable")[:INDIAN_PINES_LARGEST] + 1)
    mapping = np.zeros(len(INDIAN_PINES_CLASSES) + 1, np.uint8)
    mapping[keep] = np.arange(1, keep.size + 1)
    truth = mapping[gt]
    labels = pixel_labels(truth, truth > 0, keep.size, PIXELS_PER_CLASS, np.random.default_rng(seed))
    return {"image": _bands(cube.astype(np.float64) / 10000.0, args), "labels": labels, "truth": truth,
            "score_mask": (truth > 0) & (labels == 0),
            "class_names": [INDIAN_PINES_CLASSES[k - 1] for k in keep], "preview_index": -1}


# == reservoir grids ======================================================================
def _reek(args) -> dict[str, np.ndarray]:
    return {name: np.load(data_path(args, f"grids/reek_{name}.npy"))
            for name in ("porosity", "permeability", "facies", "active")}


def _reek_labels(grid: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    active = grid["active"].astype(bool)
    truth = np.where(active, grid["facies"], 0).astype(np.uint8)
    wells = well_columns(truth, REEK_WELLS, np.random.default_rng(seed), valid=active)
    labels = column_labels(truth, wells, valid=active)
    return {"labels": labels, "truth": truth, "score_mask": active & (truth > 0) & (labels == 0),
            "class_names": list(REEK_FACIES), "preview_index": wells[0][0]}


def case_reek_facies(seed: int, args) -> dict[str, Any]:
    grid = _reek(args)
    return {"image": np.ascontiguousarray(grid["porosity"], dtype=np.float32), **_reek_labels(grid, seed)}


def case_reek_facies_2prop(seed: int, args) -> dict[str, Any]:
    grid = _reek(args)
    active = grid["active"].astype(bool)
    log_perm = np.log10(np.maximum(grid["permeability"].astype(np.float64), 1e-6))
    image = np.stack([grid["porosity"].astype(np.float64), log_perm], -1)
    image[~active] = np.nan
    return {"image": image.astype(np.float32), **_reek_labels(grid, seed)}


# == synthetic seismic ====================================================================
def _size(args) -> int:
    return int(getattr(args, "size", 96) or 96)


def case_seismic(seed: int, args) -> dict[str, Any]:
    from napari_geoseg.data import synthetic_seismic

    volume = synthetic_seismic((_size(args),) * 3, seed=seed)
    labels = volume.labels
    return {"image": volume.image, "labels": labels, "truth": volume.truth, "score_mask": labels == 0,
            "class_names": list(volume.class_names),
            # Preview: the inline through the first borehole (crossline x sample).
            "preview_index": int(volume.boreholes[0][0])}


def _wells_case(volume: gen.SeismicCase, seed: int, n_wells: int = SEISMIC_WELLS) -> dict[str, Any]:
    wells = well_columns(volume.truth, n_wells, np.random.default_rng([seed, 7]))
    labels = column_labels(volume.truth, wells)
    return {"image": volume.image, "labels": labels, "truth": volume.truth, "score_mask": labels == 0,
            "class_names": list(volume.class_names), "preview_index": wells[0][0]}


def case_seismic_thinbeds(seed: int, args) -> dict[str, Any]:
    return _wells_case(gen.thin_beds((_size(args),) * 3, seed=seed), seed)


def case_seismic_channels(seed: int, args) -> dict[str, Any]:
    return _wells_case(gen.channels((_size(args),) * 3, seed=seed), seed)


def case_seismic_faults_noise(seed: int, args) -> dict[str, Any]:
    volume = gen.faults_noise((_size(args),) * 3, seed=seed)
    labels, sections = section_strokes(volume.truth, np.random.default_rng([seed, 7]))
    return {"image": volume.image, "labels": labels, "truth": volume.truth, "score_mask": labels == 0,
            "class_names": list(volume.class_names), "preview_index": sections[0]}


# == real SEG-Y ===========================================================================
def _read_segy(args, name: str) -> np.ndarray:
    from napari_geoseg.io import read_volume

    return np.asarray(read_volume(data_path(args, "seismic/" + name)).data, dtype=np.float32)


def _interval_truth(values: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    edges = np.quantile(values, np.linspace(0, 1, n_classes + 1)[1:-1])
    return (1 + np.searchsorted(edges, values, side="right")).astype(np.uint8), edges


def case_volve_velocity(seed: int, args) -> dict[str, Any]:
    """Velocity intervals: 4 classes split at the velocity quartiles of the whole volume."""
    velocity = _read_segy(args, "volve10-migvel-depth-sub3d.sgy")
    truth, edges = _interval_truth(velocity, 4)
    bounds = [float(velocity.min())] + [float(e) for e in edges] + [float(velocity.max())]
    wells = well_columns(truth, VOLVE_WELLS, np.random.default_rng(seed))
    labels = column_labels(truth, wells)
    return {"image": velocity, "labels": labels, "truth": truth, "score_mask": labels == 0,
            "class_names": [f"{a:.0f}-{b:.0f} m/s" for a, b in zip(bounds[:-1], bounds[1:])],
            "preview_index": wells[0][0]}


#: f3-envelope: Gaussian smoothing (inline, crossline, sample) of the envelope.
F3_ENVELOPE_SIGMA = (2.0, 2.0, 6.0)


def case_f3_envelope(seed: int, args) -> dict[str, Any]:
    """Reflection strength: tertiles of the strongly smoothed amplitude envelope."""
    from scipy.signal import hilbert

    amplitude = _read_segy(args, "f3.sgy")
    envelope = np.abs(hilbert(amplitude.astype(np.float64), axis=-1))
    smooth = ndi.gaussian_filter(envelope, F3_ENVELOPE_SIGMA, mode="nearest")
    truth, _ = _interval_truth(smooth, 3)
    wells = well_columns(truth, F3_WELLS, np.random.default_rng(seed))
    labels = column_labels(truth, wells)
    return {"image": amplitude, "labels": labels, "truth": truth, "score_mask": labels == 0,
            "class_names": ["weak reflections", "medium reflections", "strong reflections"],
            "preview_index": wells[0][0]}


# == image ================================================================================
def case_image_section(seed: int, args) -> dict[str, Any]:
    """The middle inline of a fresh channels volume, (2 size) x (2 size), scribbles."""
    n = 2 * _size(args)
    volume = gen.channels((16, n, n), seed=seed + 100)
    image, truth = volume.image[8], volume.truth[8]
    labels = strokes_2d(truth, 3, np.random.default_rng([seed, 7]))
    return {"image": np.ascontiguousarray(image), "labels": labels, "truth": truth, "score_mask": labels == 0,
            "class_names": list(volume.class_names), "preview_index": -1}


# == the suite ============================================================================
#: name: (family, kind, label rule, files under the data folder, builder, description)
SPECS: dict[str, tuple[str, str, str, tuple[str, ...], Callable[[int, Any], dict[str, Any]], str]] = {
    "seismic": ("seismic-synthetic", "volume", "wells", (), case_seismic,
                "synthetic_seismic(size^3, seed=s): 3 units of thin layers, folded and faulted; labels in its 4 "
                "borehole columns (3 x 3 traces); scored on every unlabelled voxel"),
    "seismic-thinbeds": ("seismic-synthetic", "volume", "wells", (), case_seismic_thinbeds,
                         "about 60 thin beds (2 samples on average) in 4 units that differ only in the spread of "
                         "their bed thicknesses, folded, 2 faults, noise 0.3; 4 wells (3 x 3 traces); scored on "
                         "every unlabelled voxel"),
    "seismic-channels": ("seismic-synthetic", "volume", "wells", (), case_seismic_channels,
                         "2 steeply dipping layered units cut by 3 sinuous channels whose fill is class 3; 4 wells "
                         "(3 x 3 traces), together hitting every class; scored on every unlabelled voxel"),
    "seismic-faults-noise": ("seismic-synthetic", "volume", "strokes", (), case_seismic_faults_noise,
                             "3 units cut by 3 normal faults of throw 16-22 % of the trace, noise std = signal "
                             "std; labels: 2 strokes (10-20 voxels) per class on each of 2 inline sections; "
                             "scored on every unlabelled voxel"),
    "volve-velocity": ("seismic-real", "volume", "wells",
                       ("seismic/volve10-migvel-depth-sub3d.sgy",), case_volve_velocity,
                       "Volve migration velocity in depth (18 x 52 x 226); truth = 4 velocity intervals split at "
                       "the quartiles of the volume's velocities; 4 wells (3 x 3 traces); scored on every "
                       "unlabelled voxel"),
    "f3-envelope": ("seismic-real", "volume", "wells", ("seismic/f3.sgy",), case_f3_envelope,
                    "F3 amplitudes (23 x 18 x 75); truth = tertiles of the amplitude envelope (Hilbert, along the "
                    "trace) smoothed with a Gaussian of sigma (2, 2, 6): weak / medium / strong reflections; 3 "
                    "wells (3 x 3 traces); scored on every unlabelled voxel"),
    "reek-facies": ("grid", "volume", "wells", ("grids/reek_porosity.npy", "grids/reek_facies.npy",
                                                "grids/reek_active.npy", "grids/reek_permeability.npy"),
                    case_reek_facies,
                    "Reek porosity (80 x 128 x 56, inactive cells 0 as in the file); truth = facies (background, "
                    "channel, crevasse); 6 wells (3 x 3 columns, all layers, active cells) at random active "
                    "columns, together hitting every facies; scored on active unlabelled cells"),
    "reek-facies-2prop": ("grid", "volume", "wells", ("grids/reek_porosity.npy", "grids/reek_facies.npy",
                                                      "grids/reek_active.npy", "grids/reek_permeability.npy"),
                          case_reek_facies_2prop,
                          "as reek-facies with two channels, porosity and log10 permeability (80 x 128 x 56 x 2), "
                          "inactive cells NaN"),
    "samson": ("hyperspectral", "cube", "pixels", ("hyperspectral/Samson.mat", "hyperspectral/_EndSamson.mat"),
               case_samson,
               "real Samson scene (95 x 95 x 156, reflectance 0-1); truth = class of largest abundance (rock, tree, "
               "water); 5 pixels per class among the clean ones (largest abundance >= 0.6); scored on the clean "
               "unlabelled pixels"),
    "samson-counts": ("hyperspectral", "cube", "pixels", ("hyperspectral/Samson.mat", "hyperspectral/_EndSamson.mat"),
                      case_samson_counts,
                      "Samson as raw digital numbers, round(cube x 5000 + 80) (integer values in float32); labels "
                      "and scoring as samson"),
    "samson-shape": ("hyperspectral", "cube", "pixels", ("hyperspectral/Samson.mat", "hyperspectral/_EndSamson.mat"),
                     case_samson_shape,
                     "Samson with each spectrum divided by its own mean and multiplied by a seeded smooth random "
                     "brightness field (scene mean x exp(0.5 f), f a Gaussian-smoothed (sigma 6 px) standardised "
                     "white noise): classes differ in spectral shape only; labels and scoring as samson"),
    "samson-brightness": ("hyperspectral", "cube", "pixels",
                          ("hyperspectral/Samson.mat", "hyperspectral/_EndSamson.mat"), case_samson_brightness,
                          "one spectral shape (the scene's mean spectrum) times a brightness per pixel: its "
                          "abundances times the class levels 0.74 / 1.0 / 1.35 x the scene mean, times exp(0.15 n) "
                          "(n standard normal per pixel), so classes overlap partly; plus the real spectra's "
                          "high-pass residual (spectrum minus its band smoothing, sigma 2 bands) from shuffled "
                          "pixels; labels and scoring as samson"),
    "indian-pines": ("hyperspectral", "cube", "pixels",
                     ("hyperspectral/Indian_pines_corrected.npy", "hyperspectral/Indian_pines_gt.npy"),
                     case_indian_pines,
                     "Indian Pines (145 x 145 x 200, raw values 955-9604 as float32); 16 crop classes; 5 pixels "
                     "per class; scored on the unlabelled pixels with a ground truth"),
    "indian-pines-reflectance": ("hyperspectral", "cube", "pixels",
                                 ("hyperspectral/Indian_pines_corrected.npy", "hyperspectral/Indian_pines_gt.npy"),
                                 case_indian_pines_reflectance,
                                 "Indian Pines as reflectance (raw / 10000), only its 8 largest classes (the other "
                                 "8 neither labelled nor scored); 5 pixels per class; scored on the unlabelled "
                                 "pixels of those classes"),
    "image-section": ("image", "image", "strokes", (), case_image_section,
                      "one 2D section (the middle inline, 2 size x 2 size) of a fresh seismic-channels volume: "
                      "upper unit, lower unit, channel fill; 3 strokes (10-20 pixels) per class; scored on every "
                      "unlabelled pixel"),
}
CASES = tuple(SPECS)
DESCRIPTIONS = {name: spec[5] for name, spec in SPECS.items()}


def family_of(case: str) -> str:
    return SPECS[case][0]


def kind_of(case: str) -> str:
    return SPECS[case][1]


def _data_dir(args) -> Path:
    return Path(getattr(args, "data_dir", None) or DATA_DIR)


def data_path(args, name: str) -> Path:
    """A file of the data folder; ``args.samson_dir``, when set, replaces its ``hyperspectral/`` folder."""
    folder, _, rest = name.partition("/")
    if folder == "hyperspectral" and getattr(args, "samson_dir", None):
        return Path(args.samson_dir) / rest
    return _data_dir(args) / name


def missing_files(case: str, args) -> list[Path]:
    """The data files of a case that are absent (the driver skips the case if any)."""
    return [data_path(args, name) for name in SPECS[case][3] if not data_path(args, name).is_file()]


def make_case(case: str, seed: int, args=None) -> dict[str, Any]:
    """One label draw of a case (see the module docstring for the keys)."""
    if case not in SPECS:
        raise ValueError(f"unknown case {case!r}; choose from {', '.join(CASES)}")
    args = args if args is not None else SimpleNamespace()
    family, kind, label_rule, _, build, _ = SPECS[case]
    data = build(seed, args)
    data["labels"] = data["labels"].astype(np.uint8 if len(data["class_names"]) < 256 else np.uint16)
    data["truth"] = data["truth"].astype(data["labels"].dtype)
    data["image"] = np.ascontiguousarray(data["image"], dtype=np.float32)
    data.update(kind=kind, family=family, label_rule=label_rule, preview_index=int(data["preview_index"]))
    return data
