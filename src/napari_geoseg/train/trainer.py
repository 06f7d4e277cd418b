"""Training a HyperbolicNet from sparse labels, as a cancellable stream of progress events."""

from __future__ import annotations

import copy
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
import torch

from ..errors import GeosegError, InputError
from ..nn import StepNormBound, partial_cross_entropy
from .devices import resolve_device
from .flattening import FlattenedDepth, flattened_depth_of
from .heap import hold_mmap_threshold
from .holdout import validation_split
from .layout import Layout, band_bin_for, bin_bands, build_features, infer_mode, robust_statistics
from .model import Model
from .presets import Preset, get_preset
from .probe import (
    PROBE_STRENGTHS,
    add_probe,
    best_strength,
    choose_columns,
    choose_strength,
    cross_fitted_accuracy,
    fit_probe,
)
from .reading import array_like, count_nonfinite, finite_at, is_small, labelled_voxels, sampled_statistics

__all__ = ["Trainer", "Progress", "TrainingDiverged", "prepare_labels", "pad_to_multiple"]


# The weights are averaged over this last share of the iterations (stochastic weight
# averaging): with one block per step and a few labels the last iterate is noisy, and the
# average of the iterates is a steadier model at no extra cost.
AVERAGED_SHARE = 0.5

# A volume or 2D image much smaller than a training block cuts the block short, and an
# iteration sees (and costs) a fraction of a full block's. Such a run trains until it has
# seen this share of the voxels of a run on full blocks (:meth:`Trainer._default_iterations`):
# a quarter of the voxels takes about a quarter of the time.
SMALL_IMAGE_VOXEL_SHARE = 0.25

# The most a small image's run multiplies the preset's iterations by: a tiny image would
# otherwise train for thousands of iterations on the same few blocks.
MAX_ITERATION_SCALE = 3.0

# A race shorter than this many iterations would be decided by noise: the design of the
# preset trains alone.
MIN_RACE_ITERATIONS = 10


def member_seed(seed: int, member: int) -> int:
    """Seed of member ``member`` of a model (weights and block draws); member 0 uses ``seed``."""
    return seed + 1000 * member


def slot_seed(seed: int, slot: int) -> int:
    """Seed of the block draws of slot ``slot`` of a step (a rank of a distributed group);
    slot 0 draws with ``seed`` itself."""
    return seed + 7919 * slot


def _accumulate_average(averaged: Optional[tuple[int, list[torch.Tensor]]], net: torch.nn.Module):
    with torch.no_grad():
        if averaged is None:
            return 1, [p.detach().clone() for p in net.parameters()]
        count, tensors = averaged
        count += 1
        for mean, p in zip(tensors, net.parameters()):
            mean.add_(p.detach() - mean, alpha=1 / count)
        return count, tensors


def _load_average(net: torch.nn.Module, averaged: tuple[int, list[torch.Tensor]]) -> None:
    with torch.no_grad():
        for p, mean in zip(net.parameters(), averaged[1]):
            p.copy_(mean)


class TrainingDiverged(GeosegError, RuntimeError):
    """The loss became NaN/Inf or exploded; the model keeps the last good weights."""


@dataclass(frozen=True)
class Progress:
    """One training iteration, as reported to a progress bar or a plot."""

    iteration: int
    iterations: int
    loss: float
    validation_accuracy: Optional[float]
    elapsed: float


def prepare_labels(labels: np.ndarray, class_ids: Optional[Sequence[int]] = None) -> tuple[np.ndarray, list[int]]:
    """Check user labels and map their values onto classes 1..K.

    Returns the remapped labels (int16, 0 = unlabelled) and the user's label value of
    each class. With ``class_ids`` (a model being continued), known values keep their
    class and new values are appended.
    """
    labels = np.asarray(labels)
    if labels.dtype == bool or not (np.issubdtype(labels.dtype, np.integer)
                                    or np.issubdtype(labels.dtype, np.floating)):
        raise InputError(f"labels must hold integers (0 = unlabelled, 1..K), got dtype {labels.dtype}")
    if np.issubdtype(labels.dtype, np.floating):
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise InputError("labels hold non-integer values; labels must be whole numbers (0 = unlabelled, 1..K)")
        labels = labels.astype(np.int64)
    if labels.min(initial=0) < 0:
        raise InputError("labels hold negative values; use 0 for unlabelled and 1..K for classes")
    present = [int(v) for v in np.unique(labels) if v != 0]
    ids = list(class_ids) if class_ids is not None else []
    ids += [v for v in present if v not in ids]
    if len(present) < 2:
        raise InputError(f"labels hold {len(present)} class(es) ({present}); label at least two classes")
    if len(ids) > 255:
        raise InputError(f"labels hold {len(ids)} classes; at most 255 are supported")
    # Any integer id, 10**12 or 2**64 - 1 included: a sorted search, not a table as
    # long as the largest id.
    wide = np.uint64 if max(ids) > np.iinfo(np.int64).max else np.int64
    values = labels.astype(wide, copy=False)
    order = np.argsort(np.asarray(ids, wide))
    sorted_ids = np.asarray(ids, wide)[order]
    position = np.minimum(np.searchsorted(sorted_ids, values), len(ids) - 1)
    classes = (order[position] + 1).astype(np.int16)
    classes[values == 0] = 0
    return classes, ids


def pad_to_multiple(array: np.ndarray, multiple: int, axes: Sequence[int], mode: str) -> np.ndarray:
    """Pad the end of ``axes`` to a multiple of ``multiple`` (reflect for images, zeros for labels)."""
    widths = [(0, 0)] * array.ndim
    for axis in axes:
        widths[axis] = (0, -array.shape[axis] % multiple)
    if not any(w for _, w in widths):
        return array
    if mode == "reflect" and any(array.shape[a] < 2 for a in axes):
        mode = "edge"
    return np.pad(array, widths, mode=mode)


class Trainer:
    """Train (or continue training) a model on an image and sparse labels.

    Parameters
    ----------
    image : array
        ``(A, B, V[, C])`` volume, ``(rows, cols, bands[, dates])`` cube or
        ``(rows, cols[, C])`` image; NaN/Inf samples are masked out.
    labels : array
        0 = unlabelled, other values are classes; the volume's spatial shape, or
        ``(rows, cols)`` for cubes and 2D images.
    preset : str or Preset
        Design and settings (``"fast"`` for CPUs, ``"paper"`` for GPUs).
    mode : str, optional
        ``"volume"``, ``"spectral"`` or ``"image"``; inferred from the shapes if omitted.
    iterations, learning_rate, block, members : optional
        Override the preset. ``members`` networks train side by side, each on its own
        blocks from its own start (:func:`member_seed`), and the model averages them.
    seed : int
        Same seed, same data, same device: same model.
    model : Model, optional
        Continue from this model (its normalisation and classes are kept; new label
        values become new classes while the network has channels for them).
    class_names : sequence of str, optional
        Names of the classes, in order of label value.
    validation_fraction : float
        Share of labelled voxels held out to measure validation accuracy: whole wells
        or strokes where the labels come in them (:attr:`Preset.hold_out_groups`,
        :func:`~napari_geoseg.train.holdout.validation_split`).
    validate_every : int
        Measure the validation accuracy every this many iterations (and at the first
        and the last); each measurement runs the network on up to 4 blocks, about a
        step's cost, and changes nothing in training.
    flattened_depth : FlattenedDepth, optional
        The image's flattened depth from an earlier :class:`Trainer` (its
        :attr:`flattened_depth`), reused instead of flattening the image again; a
        live session passes it to every new trainer on the same image.
    blocks_per_step : int
        Blocks in each optimiser step (the mean of their losses); each is drawn with its
        own generator, the first with the one a single block uses.
    distributed : bool
        Train as one process of a ``torch.distributed`` group (started by ``torchrun``):
        each process draws the blocks of its rank (block ``rank`` of a
        ``blocks_per_step`` of the group's size) and DistributedDataParallel averages the
        gradients, so the group trains as one process with ``blocks_per_step`` equal to
        its size. The design race is off.

    Notes
    -----
    Iterate over :meth:`run` to train; each step yields a :class:`Progress` (one
    iteration of every member, the loss averaged over them). Call
    :meth:`stop` from any thread to end after the current iteration; the model is
    never left half-updated. The final model holds the weights averaged over the last
    half of the iterations (:data:`AVERAGED_SHARE`), also when stopped in that half.
    Hyperspectral cubes with more bands than the preset's ``max_bands`` are binned
    first (:func:`~napari_geoseg.train.layout.bin_bands`). Volumes get their flattened
    depth as the position channel unless the preset's ``flatten`` is off (a continued
    model keeps the channel it was trained with); it is kept as
    :attr:`flattened_depth` for predictions of the same image to reuse. A network with
    a head that trains to the end gets the per-voxel probe added to its head at the
    strength the held-out voxels prefer (:mod:`~napari_geoseg.train.probe`,
    :attr:`probe`), or, with none held out, a penalised probe at the preset's
    ``probe_strength`` (:attr:`probe_strength`) that reads the voxel's own values, or
    those and their smoothed copies, whichever classifies the labelled voxels better in
    cross-validation (:attr:`probe_features`).
    """

    def __init__(self, image, labels, *, preset: str | Preset = "fast", mode: Optional[str] = None,
                 iterations: Optional[int] = None, learning_rate: Optional[float] = None,
                 block: Optional[int] = None, members: Optional[int] = None, seed: int = 0,
                 device: str | torch.device | None = "cpu",
                 model: Optional[Model] = None, class_names: Optional[Sequence[str]] = None,
                 validation_fraction: float = 0.1, validate_every: int = 25,
                 axes: Optional[Sequence[str]] = None,
                 flattened_depth: Optional[FlattenedDepth] = None,
                 blocks_per_step: int = 1, distributed: bool = False) -> None:
        # Blocks, features and the flattening's tiles come and go for the whole run: freed,
        # they must leave the process, or its memory grows with the largest ever freed.
        hold_mmap_threshold()
        image, labels = array_like(image), array_like(labels)
        continued = model is not None
        preset = model.preset if continued else get_preset(preset) if isinstance(preset, str) else preset
        self.preset: Preset = preset
        self._check_settings(iterations=iterations, block=block, members=members, learning_rate=learning_rate,
                             blocks_per_step=blocks_per_step)
        self.learning_rate = float(learning_rate or preset.learning_rate)
        self.seed, self.validate_every = seed, validate_every
        # Only the first design still in a race reports its validation accuracy: a
        # rival's would be measured for nobody.
        self._reporting = True
        self.distributed = bool(distributed)
        self.slots = self._slots(blocks_per_step)
        self.device = resolve_device(device)
        mode = mode or (model.layout.mode if continued else infer_mode(image.shape, labels.shape))
        layout = self._check_shapes(image, labels, mode, model)
        # Labels are held sparse: the labelled voxels' coordinates (C order) and classes.
        points, values = labelled_voxels(labels)
        values, class_ids = prepare_labels(values, model.class_ids if continued else None)
        network_image, layout = self._network_input(image, layout, model)
        if continued:
            model = self._continued_model(model, class_ids, members)
        else:
            model = self._new_model(network_image, layout, class_ids, members, class_names, axes)
        self.model, self.layout, self.n_classes = model, layout, len(class_ids)
        #: The flattened depth of the image (volumes of a flattening layout), for predictions to reuse.
        self.flattened_depth = (flattened_depth_of(network_image, model.center, model.scale, reuse=flattened_depth)
                                if layout.flattened else None)
        self.image = network_image
        multiple = model.net.input_multiple
        #: The network's spatial shape of the image, padded to a multiple of its coarsening.
        self.padded_shape = tuple(s + (-s % multiple) for s in network_image.shape[:layout.network_ndim])
        side = block or preset.block_for(mode)
        side = max(multiple, side // multiple * multiple)
        self.block = self._block_shape(side)
        self.iterations = int(iterations or self._default_iterations(preset.iterations_for(mode), side))
        self._use_labels(points, values, labels.shape, validation_fraction)
        self._stop = threading.Event()
        self.history: list[Progress] = []
        #: Validation accuracy of each design raced (``{"bare": ..., "head": ...}``) once
        #: the race is over, else None.
        self.race: Optional[dict[str, float]] = None
        #: Trainers of the other designs in the race, until it is decided.
        self.rivals: list[Trainer] = []
        #: Validation accuracy of the model with the probe added at each strength
        #: (:mod:`~napari_geoseg.train.probe`) once training has finished, else None.
        self.probe: Optional[dict[float, float]] = None
        #: Strength at which the probe was added to the heads (0: not added), or None
        #: before training has finished.
        self.probe_strength: Optional[float] = None
        #: What the probe reads where that was chosen (none held out, smoothed copies to
        #: choose from): ``"values"`` (the voxel's own input channels) or ``"values and
        #: copies"``; None elsewhere (it reads every feature the head reads but position).
        self.probe_features: Optional[str] = None
        #: Cross-validated accuracy on the labelled voxels of a probe of each of those
        #: choices (:func:`~napari_geoseg.train.probe.choose_columns`), or None.
        self.probe_features_accuracy: Optional[dict[str, float]] = None
        self._probe_fit: Optional[tuple[torch.Tensor, torch.Tensor]] = None
        if not continued and self._should_race():
            self._add_rival(image, labels, mode=mode, iterations=self.iterations, learning_rate=learning_rate,
                            block=block, members=members, seed=seed, device=device, class_names=class_names,
                            validation_fraction=validation_fraction, validate_every=validate_every, axes=axes,
                            flattened_depth=self.flattened_depth, blocks_per_step=blocks_per_step)

    # -- the steps of __init__ ---------------------------------------------------------
    @staticmethod
    def _check_settings(**settings) -> None:
        # None means the preset's; 0 or less is a mistake, not a request for the default.
        for name, option in (("iterations", "iterations"), ("block", "block"), ("members", None),
                             ("learning_rate", None)):
            value = settings[name]
            if value is not None and not value > 0:
                raise InputError(f"{name.replace('_', ' ')} must be positive, got {value}", option=option)
        if settings["blocks_per_step"] < 1:
            raise InputError(f"blocks per step must be at least 1, got {settings['blocks_per_step']}")

    def _slots(self, blocks_per_step: int) -> list[int]:
        """The blocks this process draws in each step (:meth:`_step`)."""
        if not self.distributed:
            return list(range(blocks_per_step))
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized():
            raise InputError("distributed training needs a torch.distributed process group; start it with torchrun")
        return [dist.get_rank()]  # one block per process of the group

    @staticmethod
    def _check_shapes(image, labels, mode: str, model: Optional[Model]) -> Layout:
        """The image's layout for ``mode``, once labels (and a continued model) fit it."""
        layout = Layout.for_image(mode, image.shape)
        spatial = image.shape[:layout.spatial_ndim]
        expected = spatial[:layout.labels_ndim()]
        if labels.shape != expected:
            raise InputError(f"labels of shape {labels.shape} do not match the image: expected {expected} "
                             f"for a {mode} image of shape {image.shape}")
        if model is not None and layout.image_channels != model.layout.image_channels:
            raise InputError(f"the model expects {model.layout.image_channels} image channels, "
                             f"this image has {layout.image_channels}")
        return layout

    def _network_input(self, image, layout: Layout, model: Optional[Model]):
        """The image as the network reads it (a cube's bands binned) and the full layout:
        flattened depth, bands as channels, mask channel (a continued model's, else the
        preset's)."""
        preset, mode = self.preset, layout.mode
        if mode != "volume":
            image = np.asarray(image)  # maps, cubes and 2D images are small: only volumes stay lazy
        self.nonfinite = count_nonfinite(image)
        if self.nonfinite:
            warnings.warn(f"{self.nonfinite} NaN or Inf samples in the image are masked out of training",
                          stacklevel=3)
        if mode == "volume":
            flattened = model.layout.flattened if model is not None else preset.flatten
            layout = replace(layout, flattened=bool(flattened))
        if mode == "spectral":
            # Neighbouring bands are averaged so the whole spectrum fits the network's reach.
            band_bin = model.layout.band_bin if model is not None else band_bin_for(image.shape[2], preset.max_bands)
            as_channels = (model.layout.bands_as_channels if model is not None
                           else preset.head_for(mode) and preset.bands_as_channels)
            band_statistics = model.layout.band_statistics if model is not None else bool(as_channels)
            layout = replace(layout, band_bin=band_bin, bands_as_channels=bool(as_channels), bands=int(image.shape[2]),
                             band_statistics=bool(band_statistics))
            image = bin_bands(image, band_bin)
        layout = replace(layout, mask_channel=bool(model.layout.mask_channel if model is not None
                                                   else preset.head_for(mode) and preset.mask_channel))
        return image, layout

    def _new_model(self, image, layout: Layout, class_ids: list[int], members: Optional[int],
                   class_names: Optional[Sequence[str]], axes: Optional[Sequence[str]]) -> Model:
        """Untrained member networks, with the image's normalisation."""
        preset, mode, n_classes = self.preset, layout.mode, len(class_ids)
        center, scale = (robust_statistics(image, layout, seed=self.seed) if is_small(image)
                         else sampled_statistics(image, layout, seed=self.seed))
        n_bands = image.shape[2] if mode == "spectral" else 1
        if preset.head_for(mode):
            channels = max(preset.min_channels, n_classes + 1)
            in_channels = layout.input_channels(n_bands)
        else:
            channels = max(preset.min_channels, n_classes + 1, layout.input_channels(n_bands))
            in_channels = channels
        n_members = preset.members_for(mode) if members is None else int(members)
        if n_members < 1:
            raise InputError(f"members must be at least 1, got {n_members}")
        nets = []
        with torch.random.fork_rng(devices=[]):
            for member in range(n_members):
                torch.manual_seed(member_seed(self.seed, member))
                nets.append(Model.build_net(preset, layout, in_channels, channels))
        names = list(class_names or [])[:n_classes]
        names += [f"class {v}" for v in class_ids[len(names):]]  # fewer names than classes
        return Model(nets=nets, preset=preset, layout=layout, channels=channels, in_channels=in_channels,
                     class_ids=class_ids, class_names=names, center=center, scale=scale,
                     axes=list(axes) if axes is not None else [])

    @staticmethod
    def _continued_model(model: Model, class_ids: list[int], members: Optional[int]) -> Model:
        """A copy of ``model`` to train on, with room checked for the labels' classes."""
        if members is not None and members != len(model.nets):
            raise InputError(f"the model has {len(model.nets)} member network(s), not {members}; "
                             f"continue with as many or train a new model")
        if len(class_ids) > model.channels:
            raise InputError(f"the labels now have {len(class_ids)} classes but the model has room for "
                             f"{model.channels}; train a new model")
        model = copy.deepcopy(model)
        model.class_ids = class_ids
        if len(model.class_names) < len(class_ids):
            model.class_names += [f"class {v}" for v in class_ids[len(model.class_names):]]
        return model

    def _use_labels(self, points: np.ndarray, values: np.ndarray, shape: tuple[int, ...],
                    validation_fraction: float) -> None:
        """Keep the labelled voxels with data, hold some out, and weigh the classes."""
        # A labelled voxel without data is dropped (a pixel of a cube if any band is missing).
        keep = finite_at(self.image, points, self.layout)
        self._points, self._values = points[keep], values[keep]
        self._split_validation(validation_fraction, shape)
        counts = np.bincount(self._values[self._train], minlength=self.n_classes + 1)[1:].astype(np.float64)
        if np.count_nonzero(counts) < 2:
            raise InputError("after holding out validation voxels fewer than two classes remain; label more voxels")
        weight = counts.sum() / (self.n_classes * np.maximum(counts, 1))
        self.class_weight = torch.tensor(np.where(counts > 0, weight, 0), dtype=torch.float32, device=self.device)

    def _should_race(self) -> bool:
        """Whether a rival design trains beside this one (:attr:`Preset.race`): volumes and
        2D images, on one process, with held-out labels to judge by and iterations enough."""
        return (not self.distributed and self.layout.mode != "spectral" and len(self._validation_points) > 0
                and round(self.iterations * self.preset.race) >= MIN_RACE_ITERATIONS)

    def _add_rival(self, image, labels, **settings) -> None:
        """A trainer of the other design (with the head if this one has none, and back)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # this trainer has already warned about the image
            rival = Trainer(image, labels, preset=replace(self.preset, head=not self.preset.head, race=0.0),
                            **settings)
        rival._stop = self._stop
        self.rivals.append(rival)

    # -- setup -----------------------------------------------------------------------
    def _split_validation(self, fraction: float, shape: tuple[int, ...]) -> None:
        held = validation_split(self._points, self._values, shape, fraction, self.seed,
                                groups=self.preset.hold_out_groups)
        self._train = ~held
        self._train_points = self._points[~held]
        self._validation_points = self._points[held]

    @property
    def n_train_labels(self) -> int:
        """Labelled voxels that training uses (the others are held out for validation)."""
        return int(np.count_nonzero(self._train))

    def labels_of(self, which: str, crop: tuple[slice, ...]) -> np.ndarray:
        """Dense labels of ``crop`` (padded coordinates): ``"train"`` or ``"validation"`` voxels."""
        chosen = self._train if which == "train" else ~self._train
        points, values = self._points[chosen], self._values[chosen]
        crop = crop[:points.shape[1]]
        low = np.array([c.start for c in crop])
        high = np.array([c.stop for c in crop])
        inside = np.all((points >= low) & (points < high), axis=1)
        block = np.zeros(tuple(high - low), np.int16)
        block[tuple((points[inside] - low).T)] = values[inside]
        return block

    def block_features(self, crop: tuple[slice, ...]) -> np.ndarray:
        """Network input of ``crop`` (padded coordinates), read from the image on demand.

        The same values as a crop of the whole image's features padded by reflection,
        which is what the network sees in training and prediction alike.
        """
        layout, model = self.layout, self.model
        shape = self.image.shape[:layout.network_ndim]
        real = tuple(slice(c.start, min(c.stop, s)) for c, s in zip(crop, shape))
        position_range = position = None
        if self.flattened_depth is not None:
            position = self.flattened_depth.position(real)
        elif layout.position_axis is not None and layout.position_axis < len(real):
            axis = layout.position_axis
            position_range = (real[axis].start, shape[axis])
        features, _ = build_features(np.asarray(self.image[real]), layout, model.center, model.scale,
                                     model.feature_repeats, position_range=position_range, position=position)
        widths = [(0, 0)] + [(0, c.stop - r.stop) for c, r in zip(crop, real)]
        return np.pad(features, widths, mode="reflect") if any(w for _, w in widths) else features

    @property
    def features(self) -> np.ndarray:
        """The network input of the whole (padded) image: for small images, tests and diagnostics."""
        return self.block_features(tuple(slice(0, s) for s in self.padded_shape))

    def _block_shape(self, side: int) -> tuple[int, ...]:
        shape = self.padded_shape
        block = [min(side, s) for s in shape]
        if self.layout.band_slice:
            block[2] = shape[2]  # the loss reads a band slice: keep the whole spectrum
        return tuple(block)

    def _default_iterations(self, iterations: int, side: int) -> int:
        """The preset's ``iterations``, or more where the image cuts the block of ``side``
        to less than :data:`SMALL_IMAGE_VOXEL_SHARE` of its voxels: enough for the run to
        see that share of the voxels of ``iterations`` full blocks, at most
        :data:`MAX_ITERATION_SCALE` times ``iterations``.

        Volumes and 2D images only (a cube's block always holds the whole spectrum). On
        the suite (``benchmarks/quality.py``) this touches only the 23 x 18 x 75 F3 crop,
        whose blocks hold an 8.5th of a 64^3 block (README.md, Results).
        """
        if self.layout.mode == "spectral":
            return iterations
        ratio = side ** len(self.block) / float(np.prod(self.block))
        scale = min(MAX_ITERATION_SCALE, max(1.0, ratio * SMALL_IMAGE_VOXEL_SHARE))
        return int(round(iterations * scale))

    def _crop_around(self, point: np.ndarray, rng: np.random.Generator) -> tuple[slice, ...]:
        shape = self.padded_shape
        slices = []
        for axis, (b, s) in enumerate(zip(self.block, shape)):
            centre = int(point[axis]) if axis < len(point) else s // 2
            low = min(max(centre - int(rng.integers(0, b)), 0), s - b)
            slices.append(slice(low, low + b))
        return tuple(slices)

    def _covering_crops(self, points: np.ndarray) -> list[tuple[tuple[slice, ...], np.ndarray]]:
        """Blocks centred on labelled points until every point is in one, each with the
        indices of the points it takes."""
        remaining = np.arange(len(points))
        crops = []
        while len(remaining):
            centre = points[remaining[0]]
            crop = []
            for axis, (b, s) in enumerate(zip(self.block, self.padded_shape)):
                c = int(centre[axis]) if axis < len(centre) else s // 2
                low = min(max(c - b // 2, 0), s - b)
                crop.append(slice(low, low + b))
            inside = np.all([(points[remaining, a] >= crop[a].start) & (points[remaining, a] < crop[a].stop)
                             for a in range(points.shape[1])], axis=0)
            crops.append((tuple(crop), remaining[inside]))
            remaining = remaining[~inside]
        return crops

    @torch.no_grad()
    def _at_points(self, points: np.ndarray, nets: Sequence[torch.nn.Module]):
        """What the head reads of the input ``(N, F)`` and each member's class scores
        ``(N, K)`` at ``points``."""
        features = torch.empty(len(points), self.model.net.feature_channels)
        logits = [torch.empty(len(points), self.n_classes) for _ in nets]
        for crop, rows in self._covering_crops(points):
            x = torch.from_numpy(np.ascontiguousarray(self.block_features(crop)))[None].to(self.device)
            local = tuple(torch.from_numpy(points[rows, a] - crop[a].start) for a in range(points.shape[1]))
            features[rows] = self.model.net.inputs(x)[0][(slice(None), *local)].T.cpu()
            for member, net in enumerate(nets):
                out = net(x)[0, :self.n_classes]
                logits[member][rows] = out[(slice(None), *local)].T.cpu()
        return features, logits

    def _fitted_probe(self) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """The probe of the training voxels' input features (fitted once; they do not
        change as the network trains), or None where it does not apply: networks
        without a head, cubes run in 3D over their bands."""
        if not self.model.net.has_head or self.layout.band_slice:
            return None
        if self._probe_fit is None:
            features, _ = self._at_points(self._train_points, [])
            # The probe reads a voxel's values, not where it is: near the labelled wells
            # the position alone fits the labels (the held-out voxels too, as they lie
            # in the same wells) and tells little about the rest of the volume. Zero
            # features get zero weights.
            features[:, self._position_feature] = 0
            classes = torch.from_numpy(self._values[self._train].astype(np.int64) - 1)
            weight = self.class_weight[:self.n_classes].cpu()
            penalty = self.preset.probe_penalty_for(self.layout.mode)
            if penalty and len(self._validation_points) == 0:
                # A handful of labelled pixels a class and hundreds of features: whether
                # the smoothed copies help the probe depends on the scene (fields wider
                # than the copies' scales, or classes finer than them), and with none held
                # out only the labelled voxels themselves, in folds, can tell.
                candidates = self._probe_candidates(features.shape[1])
                self.probe_features, self.probe_features_accuracy = choose_columns(
                    features, classes, self.n_classes, candidates, weight, penalty, seed=self.seed)
                features = features * candidates[self.probe_features].to(features)
            self._probe_fit = fit_probe(features, classes, self.n_classes, weight, penalty=penalty)
        return self._probe_fit

    def _probe_candidates(self, n_features: int) -> dict[str, torch.Tensor]:
        """Columns of the head's features a probe may read: the network's input channels
        (the voxel's own values), or those and their smoothed copies."""
        values = torch.zeros(n_features, dtype=torch.bool)
        values[:self.model.in_channels] = True
        return {"values": values, "values and copies": torch.ones(n_features, dtype=torch.bool)}

    @property
    def _position_feature(self) -> list[int]:
        """Index of the position channel among the features the head reads (none or one)."""
        if self.layout.position_axis is None:
            return []
        return [self.layout.image_features_in(self.model.in_channels)]

    def _held_out_scores(self, nets: Sequence[torch.nn.Module]
                         ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, tuple[float, ...]]:
        """Class scores of each of ``nets`` and of the probe at every held-out labelled
        voxel, their classes, and the probe strengths to try (only 0 without a probe)."""
        features, logits = self._at_points(self._validation_points, nets)
        classes = torch.from_numpy(self._values[~self._train].astype(np.int64) - 1)
        probe = self._fitted_probe()
        if probe is None:
            return logits, torch.zeros_like(logits[0]), classes, (0.0,)
        return logits, features @ probe[0].T + probe[1], classes, PROBE_STRENGTHS

    def _held_out_accuracies(self, nets: Sequence[torch.nn.Module]) -> dict[float, float]:
        """Accuracy on every held-out labelled voxel of ``nets`` (probabilities averaged)
        with the probe added at each strength (only 0 without a probe)."""
        logits, probe_logits, classes, strengths = self._held_out_scores(nets)
        return choose_strength(logits, probe_logits, classes, strengths)[1]

    def _race_score(self, nets: Sequence[torch.nn.Module]) -> float:
        """Held-out accuracy of ``nets`` that judges the race: with a probe, each fold of
        the held-out voxels is scored at the strength the other folds prefer
        (:func:`~napari_geoseg.train.probe.cross_fitted_accuracy`), so that a design with
        a probe is not credited with the luck of its best strength."""
        logits, probe_logits, classes, strengths = self._held_out_scores(nets)
        return cross_fitted_accuracy(logits, probe_logits, classes, strengths, seed=self.seed)

    def _stack_probe(self, nets: Sequence[torch.nn.Module]) -> None:
        """Add the probe to every member's head with the strength that the held-out voxels
        prefer (:mod:`~napari_geoseg.train.probe`); ties keep the network alone. With none
        held out only a penalised probe is added, at the preset's ``probe_strength``."""
        self.probe_strength = 0.0
        penalised = self.preset.probe_penalty_for(self.layout.mode) > 0
        if (len(self._validation_points) == 0 and not penalised) or self._fitted_probe() is None:
            return
        if len(self._validation_points):
            self.probe = self._held_out_accuracies(nets)
            strength = best_strength(self.probe)
        else:
            strength = self.preset.probe_strength
        self.probe_strength = strength
        if strength:
            for net in nets:
                add_probe(net, *self._fitted_probe(), strength)

    def _batch(self, crop: tuple[slice, ...], which: str, rng: Optional[np.random.Generator]):
        """A block's input and labels (``which``: ``"train"`` or ``"validation"``), flipped at random."""
        x = torch.from_numpy(np.ascontiguousarray(self.block_features(crop)))
        y = torch.from_numpy(self.labels_of(which, crop))
        jitter = self.preset.illumination_jitter
        if rng is not None and jitter > 0 and self.layout.mode == "spectral":
            x = self._illuminate(x, float(rng.uniform(1 - jitter, 1 + jitter)))
        if rng is not None:
            # Flip and swap the lateral axes only: up and down mean something in geology
            # and in a spectrum.
            for axis in self.layout.lateral_axes:
                if rng.random() < 0.5:
                    x, y = x.flip(axis + 1), y.flip(axis)
            if self.block[0] == self.block[1] and rng.random() < 0.5:
                x, y = x.transpose(1, 2), y.transpose(0, 1)
        return x[None].to(self.device), y[None].long().to(self.device)

    def _illuminate(self, x: torch.Tensor, gain: float) -> torch.Tensor:
        """Features of the block as if its image values were multiplied by ``gain``.

        A feature channel normalised with statistics ``k`` is ``(v - center_k) / scale_k``;
        for ``gain * v`` it becomes ``gain * feature + (gain - 1) * center_k / scale_k``.
        Position and mask channels are left alone.
        """
        ratio = np.asarray(self.model.center, np.float64).ravel() / np.asarray(self.model.scale, np.float64).ravel()
        mult = np.ones(x.shape[0], np.float32)
        offset = np.zeros(x.shape[0], np.float32)
        layout = self.layout
        n_bands = ((self.model.in_channels - layout.input_channels(0)) // layout.image_channels
                   if layout.bands_as_channels else 1)
        sources = layout.statistic_of_features(x.shape[0], n_bands, self.model.feature_repeats is not None)
        for channel, k in enumerate(sources):
            if k >= 0:
                mult[channel], offset[channel] = gain, (gain - 1) * ratio[k]
        shape = (-1,) + (1,) * (x.ndim - 1)
        return x * torch.from_numpy(mult).reshape(shape) + torch.from_numpy(offset).reshape(shape)

    def _loss(self, net, x, y) -> torch.Tensor:
        out = net(x)
        band_slice = (2, x.shape[-1] // 2) if self.layout.band_slice else None
        return partial_cross_entropy(out, y, self.n_classes, weight=self.class_weight, slice=band_slice)

    @torch.no_grad()
    def validation_accuracy(self, nets: Optional[Sequence[torch.nn.Module]] = None,
                            max_blocks: int = 4) -> Optional[float]:
        """Accuracy on held-out labelled voxels in up to ``max_blocks`` fixed blocks, of the
        networks ``nets`` (default: the model's members) with their probabilities averaged."""
        if len(self._validation_points) == 0:
            return None
        nets = self.model.nets if nets is None else nets
        rng = np.random.default_rng(self.seed + 1)
        picks = rng.choice(len(self._validation_points), min(max_blocks, len(self._validation_points)), replace=False)
        correct = total = 0
        for point in self._validation_points[picks]:
            crop = self._crop_around(point, rng)
            x, y = self._batch(crop, "validation", None)
            out = sum(torch.softmax(net(x)[:, :self.n_classes], 1) for net in nets)
            if self.layout.band_slice:
                out = out[..., x.shape[-1] // 2]
            mask = y > 0
            correct += int(((out.argmax(1) + 1) == y)[mask].sum())
            total += int(mask.sum())
        return correct / total if total else None

    # -- training --------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`run` to end after the current iteration (thread-safe)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def design(self) -> str:
        """``"head"`` for networks with a lifting and a head, else ``"bare"``."""
        return "head" if self.model.net.has_head else "bare"

    def run(self) -> Iterator[Progress]:
        """Train, yielding a :class:`Progress` after every iteration.

        With rivals (:attr:`Preset.race`), every design trains for the race's share
        of the iterations, one step each per iteration (the reported loss is their
        mean); the design with the highest accuracy on the held-out labelled voxels
        then becomes this trainer's (:attr:`model`, :attr:`layout`, ...) and trains on
        alone. :attr:`race` records the accuracies.

        Raises
        ------
        TrainingDiverged
            The loss became NaN/Inf or grew a thousandfold; :attr:`model` keeps the weights
            of the last good iteration. In a race, a design that diverges drops out.
        """
        start = time.perf_counter()
        events = self._race() if self.rivals else self._run()
        for event in events:
            event = replace(event, elapsed=time.perf_counter() - start)
            self.history.append(event)
            yield event

    def _race(self) -> Iterator[Progress]:
        contenders = [self, *self.rivals]
        runs = [contender._run() for contender in contenders]
        alive = list(range(len(contenders)))
        failure: Optional[TrainingDiverged] = None
        race_end = round(self.iterations * self.preset.race)
        for _ in range(race_end):
            if self._stop.is_set():
                break
            for k, contender in enumerate(contenders):
                contender._reporting = k == alive[0]
            steps = []
            for k in list(alive):
                try:
                    steps.append(next(runs[k]))
                except TrainingDiverged as err:
                    failure = failure or err
                    alive.remove(k)
                except StopIteration:
                    pass
            if not alive:
                raise failure
            if steps:
                # The validation reported is that of the first design still in the race.
                yield replace(steps[0], loss=float(np.mean([step.loss for step in steps])))
        if self._stop.is_set():
            # Stopped before the race was decided: the preset's design stays, no time is
            # spent validating.
            best = 0 if 0 in alive else alive[0]
        else:
            scores = {}
            for k in alive:
                nets = contenders[k].model.nets
                for net in nets:
                    net.eval()
                scores[k] = contenders[k]._race_score(nets)
                for net in nets:
                    net.train()
            best = max(alive, key=lambda k: scores[k])  # ties go to the preset's design
            self.race = {contenders[k].design: scores[k] for k in alive}
        for k in alive:
            if k != best:
                runs[k].close()
        winner = contenders[best]
        winner._reporting = True
        if winner is not self:
            winner.model.class_names = list(self.model.class_names)  # may have been renamed since
            kept = {"history", "_stop", "rivals", "race"}
            self.__dict__.update({key: value for key, value in winner.__dict__.items() if key not in kept})
        self.rivals = []
        yield from runs[best]
        # Set as the winner's run ends.
        self.probe, self.probe_strength = winner.probe, winner.probe_strength
        self.probe_features, self.probe_features_accuracy = winner.probe_features, winner.probe_features_accuracy

    def _run(self) -> Iterator[Progress]:
        nets = [net.to(self.device).train() for net in self.model.nets]
        # Each member draws its own blocks; member 0 draws exactly what a single network would.
        rngs = [[np.random.default_rng(slot_seed(member_seed(self.seed, k), slot)) for slot in self.slots]
                for k in range(len(nets))]
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            # The wrapper averages the gradients over the group in backward; the bare
            # network stays in the model, for the bound, averaging and saving.
            steppers = [DistributedDataParallel(net) for net in nets]
        else:
            steppers = nets
        optimizers = [torch.optim.Adam(net.parameters(), lr=self.learning_rate) for net in nets]
        # Decay the step to a tenth over the run.
        decay = 0.1 ** (1 / max(self.iterations, 1))
        schedulers = [torch.optim.lr_scheduler.ExponentialLR(optimizer, decay) for optimizer in optimizers]
        bound = self.preset.step_bound
        bounds = [StepNormBound(net.net, bound, seed=member_seed(self.seed, k)) if bound > 0 else None
                  for k, net in enumerate(nets)]
        start = time.perf_counter()
        first_losses: list[Optional[float]] = [None] * len(nets)
        validation = None
        averaged: list = [None] * len(nets)
        for iteration in range(1, self.iterations + 1):
            if self._stop.is_set():
                break
            good = [{k: v.detach().clone() for k, v in net.state_dict().items()} for net in nets]
            losses = []
            for member, net in enumerate(nets):
                value = self._step(steppers[member], optimizers[member], rngs[member])
                if bounds[member] is not None:
                    bounds[member]()
                if first_losses[member] is None:
                    first_losses[member] = max(value, 1e-3)
                problem = None
                if not np.isfinite(value) or value > 1000 * first_losses[member]:
                    problem = f"loss {value:.3g}"
                elif not all(torch.isfinite(p).all() for p in net.parameters()):
                    problem = "weights became NaN"
                if problem:
                    for restored, state in zip(nets, good):
                        restored.load_state_dict(state)
                    raise TrainingDiverged(f"training diverged at iteration {iteration} ({problem}); "
                                           f"kept the weights of iteration {iteration - 1}; "
                                           f"try a smaller learning rate")
                schedulers[member].step()
                losses.append(value)
            if iteration > self.iterations * (1 - AVERAGED_SHARE):
                averaged = [_accumulate_average(a, net) for a, net in zip(averaged, nets)]
            if iteration == self.iterations and averaged[0] is not None:
                for net, a in zip(nets, averaged):
                    _load_average(net, a)
            due = validation is None or iteration % self.validate_every == 0 or iteration == self.iterations
            if self._reporting and due and len(self._validation_points):
                for net in nets:
                    net.eval()
                validation = self.validation_accuracy(nets)
                for net in nets:
                    net.train()
            yield Progress(iteration, self.iterations, float(np.mean(losses)), validation,
                           time.perf_counter() - start)
        if self._stop.is_set() and averaged[0] is not None:
            # Stopped late in the run: the average is still the better model.
            for net, a in zip(nets, averaged):
                _load_average(net, a)
        for net in nets:
            net.eval()
        if not self._stop.is_set():
            self._stack_probe(nets)

    def _step(self, net: torch.nn.Module, optimizer: torch.optim.Optimizer,
              rngs: Sequence[np.random.Generator]) -> float:
        """One Adam step of ``net`` on a block drawn with each of ``rngs`` (the mean of their
        losses); returns the loss."""
        optimizer.zero_grad(set_to_none=True)
        loss = 0.0
        for rng in rngs:
            point = self._train_points[rng.integers(len(self._train_points))]
            x, y = self._batch(self._crop_around(point, rng), "train", rng)
            loss = loss + self._loss(net, x, y) / len(rngs)
        value = loss.item()
        finite = np.isfinite(value)
        if self.distributed:
            import torch.distributed as dist

            # Every process must take part in backward, or the others wait for ever.
            flag = torch.tensor([1.0 if finite else 0.0])
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            finite = bool(flag.item())
        if finite:
            loss.backward()
            optimizer.step()
        return value

    def train(self) -> Model:
        """Run to the end and return the model."""
        for _ in self.run():
            pass
        return self.model
