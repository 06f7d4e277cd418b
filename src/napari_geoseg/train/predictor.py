"""Applying a model to a whole image in overlapping blocks."""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..errors import GeosegError, InputError
from .devices import resolve_device
from .flattening import FlattenedDepth, flattened_depth_of
from .layout import BinnedBands, Layout, build_features
from .model import Model
from .ordering import ordered_argmax
from .trainer import pad_to_multiple

#: Names readers give the vertical axis of a seismic volume (SEG-Y: "sample").
VERTICAL_AXES = frozenset({"sample", "time", "depth", "twt"})

#: Voxels per slab when the blended scores become labels and entropy (bounds temporaries).
_SLAB_VOXELS = 1 << 20

#: Most voxels of a volume's prediction block on a CPU: the network's working memory
#: (about 100 bytes a voxel for the ``fast`` preset) is bounded by it, whatever the block side.
BLOCK_VOXELS = 1 << 20

#: The budget on a CUDA GPU. Larger blocks keep a GPU busier: on an H200, 512 x 512 x 256
#: was predicted at 7.5 M voxels/s with 2^22 against 6.4 M with 2^20, and 6.7 M against
#: 4.9 M with flips, at a peak of 0.69 GB (``benchmarks/results/gpu_scale.json``).
GPU_BLOCK_VOXELS = 1 << 22

__all__ = ["Predictor", "Prediction", "PredictionCancelled"]


class PredictionCancelled(GeosegError):
    """:meth:`Predictor.predict` was stopped before it finished."""


@dataclass
class Prediction:
    """Labels (the user's class values, 0 where the image has no data), per-class
    probabilities ``(K, *shape)``, normalised entropy in [0, 1] (NaN where no data), and
    the number of output voxels masked because the image had NaN or Inf there.
    ``uncertainty`` is None where it was not asked for (:meth:`Predictor.predict_slabs`)."""

    labels: np.ndarray
    probabilities: np.ndarray
    uncertainty: Optional[np.ndarray]
    masked: int = 0


def _taper(size: int, overlap: int) -> np.ndarray:
    """Blending weight along one block axis: ramps up over the overlap, flat inside."""
    if overlap <= 0:
        return np.ones(size, np.float32)
    ramp = (np.arange(size) + 0.5) / overlap
    return np.clip(np.minimum(ramp, ramp[::-1]), 1e-3, 1).astype(np.float32)


def _output_box(output: Optional[tuple[slice, ...]], shape: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """``output`` as (start, stop) per axis within ``shape`` (the whole of it when None)."""
    if output is None:
        return tuple((0, s) for s in shape)
    output = tuple(output) + (slice(None),) * (len(shape) - len(output))
    box = tuple(o.indices(s)[:2] for o, s in zip(output, shape))
    if any(o.step not in (None, 1) for o in output) or any(stop <= start for start, stop in box):
        raise InputError(f"the output box {output} is not a non-empty box of unit steps within {shape}")
    return box


def _overlap(corner: tuple[int, ...], size: tuple[int, ...], box) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Where the block at ``corner`` of ``size`` meets ``box``: slices in the block and in the box."""
    low = [max(c, start) for c, (start, _) in zip(corner, box)]
    high = [min(c + n, stop) for c, n, (_, stop) in zip(corner, size, box)]
    in_block = tuple(slice(lo - c, max(hi, lo) - c) for lo, hi, c in zip(low, high, corner))
    in_box = tuple(slice(lo - start, max(hi, lo) - start) for lo, hi, (start, _) in zip(low, high, box))
    return in_block, in_box


def _shifted(box: tuple[slice, ...], rows: int) -> tuple[slice, ...]:
    """``box`` with its first axis moved up by ``rows``."""
    return (slice(box[0].start - rows, box[0].stop - rows), *box[1:])


def _flip_in_place(x: torch.Tensor, axis: int) -> None:
    """Reverse ``x`` along ``axis`` in place, swapping its slices pairwise (a temporary
    of one slice instead of a copy of the whole tensor)."""
    n = x.shape[axis]
    for i in range(n // 2):
        low, high = x.select(axis, i), x.select(axis, n - 1 - i)
        saved = low.clone()
        low.copy_(high)
        high.copy_(saved)


def _starts(length: int, block: int, step: int) -> list[int]:
    starts = list(range(0, max(length - block, 0) + 1, step))
    if starts[-1] + block < length:
        starts.append(length - block)
    return starts


def _side_choices(length: int, smallest: int, largest: int, multiple: int,
                  blocks_for: Callable[[int], int]) -> list[tuple[int, int]]:
    """``(side, blocks)``: for each number of blocks that can tile an axis of ``length``
    voxels (a multiple of ``multiple``), the smallest side within ``[smallest, largest]``
    that needs that many; ``blocks_for(side)`` counts a side's blocks."""
    best: dict[int, int] = {}
    smallest = min(max(multiple, smallest // multiple * multiple), length)
    for side in range(smallest, min(max(largest, smallest), length) + 1, multiple):
        best.setdefault(blocks_for(side), side)
    return sorted((side, count) for count, side in best.items())


class Predictor:
    """Run a :class:`Model` over images of any size with bounded memory.

    Parameters
    ----------
    model : Model
        A model of several member networks is predicted with each, their probabilities
        averaged.
    device : str, optional
    block : int, optional
        Block side in voxels; defaults to twice the training block, since prediction
        keeps no gradients. Memory grows with the block, not the image. A volume's
        blocks are shaped within ``block_voxels`` voxels for the fewest voxels computed,
        the lateral sides down to the training block so that traces stay whole where
        they fit (no seams and no recomputed overlap along them). Each axis is tiled
        evenly, with the smallest sides that need the fewest blocks (:meth:`block_shape`).
        A side given here is kept where it fits.
    overlap : int, optional
        Overlap between neighbouring blocks (default: a quarter of the block along each
        axis); predictions are blended with weights that fall off towards block edges,
        where zero padding makes the network less sure.
    flips : bool
        Average the probabilities over the four flips of the lateral axes (four network
        passes per block: slower, steadier). Live previews turn it off.
    ordered_units : bool
        Volumes only: the classes are geological units numbered from the top down (a
        smaller label value lies above a larger one), and the labels keep that order
        down every trace (:func:`~napari_geoseg.train.ordering.ordered_argmax`).
        Probabilities and uncertainty are unchanged. Leave it off where units repeat or
        overturn (salt, intrusions, reverse faults, channels).
    block_voxels : int, optional
        Most voxels of a volume's block (default :data:`BLOCK_VOXELS`, or
        :data:`GPU_BLOCK_VOXELS` on a CUDA device): it bounds the network's working memory.
    """

    def __init__(self, model: Model, device: str | torch.device | None = "cpu",
                 block: Optional[int] = None, overlap: Optional[int] = None, flips: bool = True,
                 ordered_units: bool = False, block_voxels: Optional[int] = None) -> None:
        if ordered_units and model.layout.mode != "volume":
            raise InputError(f"ordered units need a model of volumes (units ordered down the vertical axis); "
                             f"this model is for {model.layout.mode} images")
        if block is not None and block < 1:
            raise InputError(f"block must be positive, got {block}", option="block")
        if overlap is not None and overlap < 0:
            raise InputError(f"overlap must be 0 or more, got {overlap}")
        if block_voxels is not None and block_voxels < 1:
            raise InputError(f"block_voxels must be positive, got {block_voxels}")
        self.model = model
        self.flips = flips
        self.ordered_units = ordered_units
        self.device = resolve_device(device)
        self.block_voxels = int(block_voxels or (GPU_BLOCK_VOXELS if self.device.type == "cuda" else BLOCK_VOXELS))
        multiple = model.net.input_multiple
        side = block or 2 * model.preset.block
        self._block_given = block is not None
        self.block_side = max(multiple, side // multiple * multiple)
        self.overlap = overlap
        self._stop = threading.Event()

    def stop(self) -> None:
        """Cancel a running :meth:`predict` (it raises :class:`PredictionCancelled`)."""
        self._stop.set()

    def output_shape(self, image_shape: tuple[int, ...]) -> tuple[int, ...]:
        layout = self.model.layout
        return tuple(image_shape[:layout.labels_ndim()])

    def check_image(self, image_shape: tuple[int, ...], axes: Optional[Sequence[str]] = None) -> Layout:
        """The image's layout, checked against the model's: mode, channels, bands and,
        where the reader named them (``axes``), the kind of the last axis."""
        expected = self.model.layout
        try:
            layout = Layout.for_image(expected.mode, tuple(image_shape))
        except InputError as err:
            raise InputError(f"this model was trained on {expected.mode} images: {err}", option="mode") from None
        if layout.image_channels != expected.image_channels:
            raise InputError(f"this model expects {expected.image_channels} image channel(s), the image has "
                             f"{layout.image_channels}")
        last = str(axes[2]).lower() if axes is not None and len(axes) > 2 else None
        if expected.mode == "spectral" and last in VERTICAL_AXES:
            raise InputError(f"this model was trained on hyperspectral cubes, and the image is a volume (its last "
                             f"axis is {last}); apply a model trained on volumes")
        if expected.mode == "volume" and last == "band":
            raise InputError("this model was trained on volumes, and the image is a hyperspectral cube (its last "
                             "axis is band); apply a model trained on cubes")
        if expected.mode == "spectral" and expected.bands and image_shape[2] != expected.bands:
            raise InputError(f"this model was trained on cubes of {expected.bands} bands, and the image has "
                             f"{image_shape[2]}; apply it to cubes of the same bands")
        return layout

    def check_region(self, image_shape: tuple[int, ...], region) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The origin and size of ``region`` (slices over the spatial axes) in an image.

        Missing trailing slices take the whole axis. The band axis of a cube is always
        whole, since every pixel's prediction reads its whole spectrum.
        """
        layout = self.model.layout
        spatial = tuple(image_shape[:layout.spatial_ndim])
        region = tuple(region) + (slice(None),) * (layout.spatial_ndim - len(tuple(region)))
        if len(region) != layout.spatial_ndim or not all(isinstance(r, slice) for r in region):
            raise InputError(f"region {region}: give at most {layout.spatial_ndim} slices, one per spatial axis")
        bounds = [r.indices(s) for r, s in zip(region, spatial)]
        if any(step != 1 or stop <= start for start, stop, step in bounds):
            raise InputError(f"region {region}: every slice must be non-empty with step 1 in an image of "
                             f"spatial shape {spatial}")
        if layout.mode == "spectral" and (bounds[2][0], bounds[2][1]) != (0, spatial[2]):
            raise InputError("a region of a hyperspectral cube must take the whole band axis")
        return tuple(b[0] for b in bounds), tuple(b[1] - b[0] for b in bounds)

    def _probabilities(self, nets, x: torch.Tensor, k: int, band_slice: bool) -> np.ndarray:
        """Class probabilities of one block, averaged over the members and over flips of
        the lateral axes. With flips, ``x`` is flipped in place and left as it came."""
        # Training flips the lateral axes at random, so each flip is an equally good
        # look at the block; averaging them cancels part of the network's noise. Each
        # pass first flips one lateral axis of ``x`` in place (no second copy of the
        # block's input next to the network's working memory), then flips the scores
        # back along the axes ``x`` is flipped in by then (they have no batch axis).
        passes = [(None, ()), (2, (1,)), (3, (1, 2)), (2, (2,))] if self.flips else [(None, ())]
        total = None
        for axis, flipped in passes:
            if axis is not None:
                _flip_in_place(x, axis)
            for net in nets:
                scores = net(x)[0, :k]
                scores = scores.flip(flipped) if flipped else scores
                if band_slice:
                    scores = scores[..., scores.shape[-1] // 2]  # the band slice the loss reads
                probabilities = torch.softmax(scores.float(), 0)
                total = probabilities if total is None else total.add_(probabilities)
        if self.flips:
            _flip_in_place(x, 3)  # x is flipped along axis 3 only after the last pass
        return (total / (len(passes) * len(nets))).cpu().numpy()

    def predict(self, image, progress: Optional[Callable[[int, int], None]] = None,
                region: Optional[tuple[slice, ...]] = None,
                flattened_depth: Optional[FlattenedDepth] = None,
                output: Optional[tuple[slice, ...]] = None) -> Prediction:
        """Labels, probabilities and uncertainty for ``image``, or for a ``region`` of it.

        ``image`` may be a numpy array, a memory map or a lazy array (zarr, dask): only one
        block of it is read at a time. ``progress(done, total)`` is called after every
        block. ``region`` (slices over the spatial axes, e.g. the few inlines around the
        section on screen) restricts the work and the result to that box; the relative
        position channel still refers to the whole image, so the network sees the same
        features there as in a whole-image prediction. For a model with a flattened
        depth channel the whole image is flattened first (read once more, a tile at a
        time: :class:`~napari_geoseg.train.flattening.FlattenedDepth`); pass
        ``flattened_depth`` (e.g. the :class:`Trainer`'s) to reuse one.

        ``output`` (slices over the label axes, relative to the region) returns only that
        box, computed from the blocks of the whole region's tiling that overlap it: the
        values are exactly those of the same box in the whole prediction, so boxes
        predicted apart (a chunk each, on other processes or machines) put together equal
        the whole prediction. Each block is read with its context, up to a block beyond
        the box.
        """
        shape, n_classes = self._output_extent(image, region, output), self.model.n_classes
        labels = np.empty(shape, self.model.labels_dtype)
        probabilities = np.empty((n_classes, *shape), np.float32)
        uncertainty = np.empty(shape, np.float32)
        masked = 0
        for rows, part in self.predict_slabs(image, progress, region, flattened_depth, output):
            labels[rows], probabilities[:, rows], uncertainty[rows] = part.labels, part.probabilities, part.uncertainty
            masked += part.masked
        return Prediction(labels, probabilities, uncertainty, masked=masked)

    def _output_extent(self, image, region, output) -> tuple[int, ...]:
        """Shape of what :meth:`predict` returns."""
        layout = self.check_image(tuple(image.shape))
        _, spatial = self.check_region(tuple(image.shape), region if region is not None else ())
        out_ndim = layout.labels_ndim()
        return tuple(stop - start for start, stop in _output_box(output, spatial[:out_ndim]))

    @torch.no_grad()
    def predict_slabs(self, image, progress: Optional[Callable[[int, int], None]] = None,
                      region: Optional[tuple[slice, ...]] = None,
                      flattened_depth: Optional[FlattenedDepth] = None,
                      output: Optional[tuple[slice, ...]] = None,
                      uncertainty: bool = True) -> Iterator[tuple[slice, Prediction]]:
        """:meth:`predict`, given a slab of rows (along the first axis) at a time.

        Yields ``(rows, part)``: the rows of the output (relative to it) and their
        :class:`Prediction`, in order and covering it. A row is given as soon as no
        block left touches it, so memory holds a row of blocks' outputs, not the
        whole output's: a chunk of a survey goes to disk slab by slab. The part's
        probabilities are a view of that buffer, overwritten once the next slab is
        asked for: copy what is kept. ``uncertainty=False`` leaves the parts' uncertainty
        None (the entropy is not computed: a slab less of memory, and less time).
        """
        self._stop.clear()
        model = self.model
        layout = self.check_image(tuple(image.shape))
        if layout.mode == "spectral" and model.layout.band_bin > 1:
            image = BinnedBands(image, model.layout.band_bin)  # as in training; still lazy
        nets = [net.to(self.device).eval() for net in model.nets]
        full_spatial = tuple(image.shape[:layout.spatial_ndim])
        origin, spatial = self.check_region(tuple(image.shape), region if region is not None else ())
        # Blocks tile the network's spatial axes (a cube whose bands are channels is
        # read whole along them).
        net_ndim = model.layout.network_ndim
        origin, spatial = origin[:net_ndim], spatial[:net_ndim]
        out_ndim = layout.labels_ndim()
        keep = _output_box(output, spatial[:out_ndim])
        block, corners, window, axis_weights = self._tiling(spatial, keep, out_ndim)
        keep_shape = tuple(stop - start for start, stop in keep)
        # The scores of the rows a row of blocks touches; ``first`` is the output row of
        # the buffer's row 0. Corners come in C order, so a block's first row never
        # lies above the previous block's.
        height = min(block[0], keep_shape[0])
        total = np.zeros((model.n_classes, height, *keep_shape[1:]), np.float32)
        finite = np.ones((height, *keep_shape[1:]), bool)
        first = 0
        if model.layout.flattened:
            flattened_depth = flattened_depth_of(image, model.center, model.scale, reuse=flattened_depth)
        for done, corner in enumerate(corners, start=1):
            if self._stop.is_set():
                raise PredictionCancelled("prediction cancelled")
            row = corner[0] - keep[0][0]
            if row > first:  # the rows above this row of blocks are final
                stop = min(row, keep_shape[0])
                yield self._emit(total, finite, first, stop, axis_weights, uncertainty)
                self._drop_rows(total, finite, stop - first)
                first = row
            inside = tuple(slice(c, min(c + b, s)) for c, b, s in zip(corner, block, spatial))
            features, block_finite = self._block_input(image, inside, origin, full_spatial, flattened_depth)
            while block_finite.ndim > out_ndim:
                block_finite = block_finite.all(-1)
            in_block, in_keep = _overlap(corner[:out_ndim], block_finite.shape, keep)
            finite[_shifted(in_keep, first)] &= block_finite[in_block]
            probabilities = self._probabilities(nets, torch.from_numpy(features)[None].to(self.device),
                                                model.n_classes, model.layout.band_slice)
            in_block, in_keep = _overlap(corner[:out_ndim], block[:out_ndim], keep)
            scores = probabilities[(slice(None), *in_block)]
            scores *= window[in_block]
            total[(slice(None), *_shifted(in_keep, first))] += scores
            if progress is not None:
                progress(done, len(corners))
        yield self._emit(total, finite, first, keep_shape[0], axis_weights, uncertainty)

    def _emit(self, total: np.ndarray, finite: np.ndarray, first: int, stop: int,
              axis_weights: Sequence[np.ndarray], uncertainty: bool = True) -> tuple[slice, Prediction]:
        """The prediction of output rows ``first:stop``, the buffers' first rows (its
        probabilities are those rows of ``total``, turned into probabilities in place)."""
        n = stop - first
        return slice(first, stop), self._decide(total[:, :n], finite[:n],
                                                [axis_weights[0][first:stop], *axis_weights[1:]], uncertainty)

    @staticmethod
    def _drop_rows(total: np.ndarray, finite: np.ndarray, n: int) -> None:
        """Move the buffers' rows up by ``n`` (the first ``n`` were given) and clear the
        rows freed; row by row, as each row's source lies below it and no temporary
        copy of the buffers is needed."""
        height = finite.shape[0]
        for row in range(height - n):
            total[:, row] = total[:, row + n]
            finite[row] = finite[row + n]
        total[:, height - n:] = 0
        finite[height - n:] = True

    def block_shape(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """The blocks' shape for an image (or region) of the network's ``spatial`` shape.

        Sides are multiples of the network's coarsening; blocks reaching past the far end
        of the image are completed by reflection, as in training. Unless a block side
        was given, each side is the smallest that tiles its axis with as few blocks
        (:func:`_side_choices`): 192 voxels take two blocks of 108 overlapping by 24,
        not two of 128. A volume keeps its traces whole where they fit and chooses its
        two lateral sides together, within :attr:`block_voxels`, for the fewest voxels
        computed over the image (:meth:`_volume_block`).
        """
        multiple = self.model.net.input_multiple
        padded = tuple(s + (-s % multiple) for s in spatial)
        block = [min(self.block_side, s) for s in padded]
        if self.model.layout.band_slice:
            block[2] = padded[2]  # the loss reads a band slice: the whole spectrum
        elif self.model.layout.mode == "volume" and len(block) == 3:
            return self._given_volume_block(padded, block) if self._block_given else self._volume_block(padded)
        if self._block_given:
            return tuple(block)
        axes = 3 if len(block) == 3 and not self.model.layout.band_slice else 2
        return tuple(self._even_side(padded[a], block[a]) for a in range(axes)) + tuple(block[axes:])

    def _even_side(self, length: int, largest: int) -> int:
        """The smallest side that tiles an axis of ``length`` voxels with as few blocks as ``largest``."""
        return min(self._side_choices(length, 1, largest), key=lambda choice: (choice[1], choice[0]))[0]

    def _side_choices(self, length: int, smallest: int, largest: int) -> list[tuple[int, int]]:
        """:func:`_side_choices` of an axis of ``length`` (padded) voxels, tiled as :meth:`_tiling` does."""
        return _side_choices(length, smallest, largest, self.model.net.input_multiple,
                             lambda side: len(self._axis_starts(length, side)[0]))

    def _volume_block(self, padded: tuple[int, int, int]) -> tuple[int, int, int]:
        """The volume block within :attr:`block_voxels` that computes the fewest voxels over
        the image. Traces stay whole where they fit beside the narrowest lateral sides
        (the training block, or the image's side where smaller): a cut trace has seams
        and its overlap is computed twice. Longer traces are cut as long as the budget
        allows there, evenly. Then both lateral sides, up to :attr:`block_side`, are
        searched together within what the trace leaves of the budget."""
        floor = self.model.preset.block
        lateral = [self._side_choices(padded[a], floor, self.block_side) for a in (0, 1)]
        narrowest = (lateral[0][0][0], lateral[1][0][0])
        trace = self._even_side(padded[2], min(padded[2], self._longest_trace(narrowest)))
        area = self.block_voxels // trace
        fits = [(count0 * side0 * count1 * side1, count0 * count1, side0, side1)
                for side0, count0 in lateral[0] for side1, count1 in lateral[1] if side0 * side1 <= area]
        if not fits:  # the narrowest sides with the shortest trace are over the budget
            return (*narrowest, trace)
        _, _, side0, side1 = min(fits)
        return side0, side1, trace

    def _given_volume_block(self, padded: tuple[int, int, int], block: list[int]) -> tuple[int, int, int]:
        """A volume block of the side the user gave: kept where it fits in :attr:`block_voxels`;
        above it, the lateral sides narrowed (down to the training block) and the traces as
        long as the budget then allows."""
        if math.prod(block) > self.block_voxels:
            multiple = self.model.net.input_multiple
            side = max(self.model.preset.block, math.isqrt(self.block_voxels // padded[2]) // multiple * multiple)
            block[0], block[1] = min(block[0], side), min(block[1], side)
            block[2] = min(padded[2], self._longest_trace(block))
        return tuple(block)

    def _longest_trace(self, block: Sequence[int]) -> int:
        """The most samples a volume block of these lateral sides takes within :attr:`block_voxels`."""
        multiple = self.model.net.input_multiple
        return max(multiple, self.block_voxels // (block[0] * block[1]) // multiple * multiple)

    def _axis_starts(self, length: int, side: int) -> tuple[list[int], int]:
        """Where blocks of ``side`` start along an axis of ``length`` voxels (padded to
        the network's multiple), and how much neighbours overlap (0 for a single block)."""
        overlap = self._overlap_for(side) if side < length else 0
        return _starts(length, side, max(side - overlap, self.model.net.input_multiple)), overlap

    def _overlap_for(self, block: int) -> int:
        multiple = self.model.net.input_multiple
        if self.overlap is not None:
            return min(self.overlap, block // 2)
        return min(max(multiple, block // 4 // multiple * multiple), block // 2)

    def _tiling(self, spatial: tuple[int, ...], keep, out_ndim: int):
        """Block shape, the corners of the blocks that overlap the output box ``keep``
        (all of them without one), the blending window of a block's outputs, and for
        each output axis the sum of the windows over ``keep``."""
        multiple = self.model.net.input_multiple
        padded_spatial = tuple(s + (-s % multiple) for s in spatial)
        block = list(self.block_shape(spatial))
        axes_starts, tapers = [], []
        for axis in range(len(spatial)):
            starts, overlap = self._axis_starts(padded_spatial[axis], block[axis])
            if axis < len(keep):
                start, stop = keep[axis]
                starts = [c for c in starts if c < stop and c + block[axis] > start]
            axes_starts.append(starts)
            tapers.append(_taper(block[axis], overlap))
        # The blocks form a grid and the window is a product of tapers, so the sum of the
        # windows at a voxel is the product of one sum per axis: no volume of weights.
        axis_weights = []
        for axis, (start, stop) in enumerate(keep):
            weights = np.zeros(stop - start, np.float32)
            for c in axes_starts[axis]:
                (in_block,), (in_keep,) = _overlap((c,), (block[axis],), ((start, stop),))
                weights[in_keep] += tapers[axis][in_block]
            axis_weights.append(weights)
        window = tapers[0][:, None] * tapers[1][None, :]
        if out_ndim == 3:
            window = window[..., None] * tapers[2]
        return block, list(itertools.product(*axes_starts)), window, axis_weights

    def _block_input(self, image, inside: tuple[slice, ...], origin: tuple[int, ...],
                     full_spatial: tuple[int, ...], flattened_depth: Optional[FlattenedDepth]):
        """The network input of the block ``inside`` (region coordinates), padded by
        reflection to the network's multiple, and its mask of voxels with data (the
        block's voxels inside the image; a pixel of a cube is masked if any band is)."""
        model = self.model
        multiple, net_ndim = model.net.input_multiple, model.layout.network_ndim
        source = tuple(slice(o + r.start, o + r.stop) for o, r in zip(origin, inside))
        raw = pad_to_multiple(np.asarray(image[source]), multiple, range(net_ndim), "reflect")
        position_range = position = None
        position_axis = model.layout.position_axis
        if model.layout.flattened:
            position = pad_to_multiple(flattened_depth.position(source), multiple, range(net_ndim), "reflect")
        elif position_axis is not None:
            position_range = (source[position_axis].start, full_spatial[position_axis])
        features, finite = build_features(raw, model.layout, model.center, model.scale, model.feature_repeats,
                                          position_range=position_range, position=position)
        return features, finite[tuple(slice(0, r.stop - r.start) for r in inside)]

    def _decide(self, total: np.ndarray, finite: np.ndarray, axis_weights: Sequence[np.ndarray],
                uncertainty: bool = True) -> Prediction:
        """Labels (the most probable class, or the units in order) and the normalised
        entropy from the blended class scores ``total`` (divided in place by the product
        of ``axis_weights`` into probabilities); voxels without data get 0 and NaN.

        Slab by slab along the first axis (whole traces), so that the temporaries of a
        large chunk stay small."""
        model = self.model
        dtype = model.labels_dtype
        ids = np.asarray([int(v) for v in model.class_ids], dtype)
        shape = total.shape[1:]
        labels = np.empty(shape, dtype)
        entropy = np.empty(shape, np.float32) if uncertainty else None
        rest = axis_weights[1][:, None] * axis_weights[2] if len(shape) == 3 else axis_weights[1]
        log_classes = np.float32(np.log(max(model.n_classes, 2)))
        step = max(1, _SLAB_VOXELS // max(1, int(np.prod(shape[1:]))))
        for first in range(0, shape[0], step):
            rows = slice(first, first + step)
            probabilities = total[:, rows]
            probabilities /= axis_weights[0][rows].reshape(-1, *[1] * (len(shape) - 1)) * rest
            # The label values are the ranks: value 1 is the top unit.
            index = ordered_argmax(probabilities, rank=ids) if self.ordered_units else probabilities.argmax(0)
            labels[rows] = ids[index]
            if entropy is None:
                continue
            slab = entropy[rows]
            slab[...] = 0
            for p in probabilities:
                slab -= p * np.log(np.clip(p, 1e-12, 1))
            slab /= log_classes
        if not finite.all():
            labels[~finite] = 0
            total[:, ~finite] = np.nan
            if entropy is not None:
                entropy[~finite] = np.nan
        return Prediction(labels, total, entropy, masked=int(np.count_nonzero(~finite)))
