"""How an image and its labels map onto the network: modes, channels, features.

Three modes:

- ``"volume"``: a 3D image ``(A, B, V)`` (optionally with a trailing channel axis) and
  labels of the same spatial shape, e.g. seismic ``(inline, crossline, sample)``. The
  last spatial axis is the vertical one.
- ``"spectral"``: a hyperspectral cube ``(rows, cols, bands)`` (optionally with a
  trailing axis of acquisition dates, used as channels) and labels ``(rows, cols)``.
  The bands (binned) are the input channels of a 2D network over the map, lifted by a
  learned 1 x 1 layer (:attr:`Layout.bands_as_channels`); older models ran the network
  in 3D over the cube and read one band-axis slice (the paper's §3.3).
- ``"image"``: a 2D image ``(rows, cols)`` (optionally with a trailing channel axis)
  and labels ``(rows, cols)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["Layout", "infer_mode", "robust_statistics", "column_statistics", "build_features", "bin_bands",
           "BinnedBands", "band_bin_for", "MODES"]

MODES = ("volume", "spectral", "image")


def infer_mode(image_shape: tuple[int, ...], labels_shape: tuple[int, ...] | None = None, *,
               bands: bool | None = None, name: str = "the image") -> str:
    """How the engine treats an image: ``"volume"``, ``"spectral"`` (a hyperspectral
    cube) or ``"image"`` (2D). The one place the mode is guessed: the Trainer (and so the
    command line, from the shapes alone), the reader and the widget all ask here.

    Parameters
    ----------
    image_shape : tuple of int
        The image's shape, engine order.
    labels_shape : tuple of int, optional
        The shape of its labels, when known: a 3-axis image with 2-axis labels is a cube
        (or a colour image, if its last axis is short enough, <= 4, to be colour
        channels); with 3-axis labels it is a volume.
    bands : bool, optional
        What the file says of the last axis: True, bands (an ENVI or MATLAB cube, an
        axis named like bands); False, a spatial axis (a seismic survey's samples); None,
        nothing, and the shapes decide (3 axes without labels: a volume). Labels of the
        image's whole shape make it a volume whatever the file says.
    name : str
        The image in messages.

    Raises
    ------
    InputError
        The image has not 2 or 3 axes (4 with channels), or the labels do not fit it.
    """
    image_shape = tuple(image_shape)
    ndim = len(image_shape)
    if labels_shape is None or bands is False:
        if ndim == 2:
            return "image"
        if ndim == 3:
            return "spectral" if bands else "volume"
        raise InputError(f"{name}: an image of {ndim} axes; napari-geoseg segments 2D images and 3D volumes "
                         f"or cubes")
    labels_shape = tuple(labels_shape)
    if len(labels_shape) == 3 and image_shape[:3] == labels_shape and ndim in (3, 4):
        return "volume"
    if len(labels_shape) == 2 and image_shape[:2] == labels_shape:
        if ndim == 2 or (ndim == 3 and image_shape[2] <= 4 and not bands):
            return "image"
        if ndim in (3, 4):
            return "spectral"
    raise InputError(
        f"{name} of shape {image_shape} and labels of shape {labels_shape} do not fit together: labels "
        f"must have the image's spatial shape (volume or 2D image) or its first two axes (hyperspectral)"
    )


@dataclass(frozen=True)
class Layout:
    """Where the spatial, channel and vertical axes are for a mode.

    Attributes
    ----------
    mode : str
        One of :data:`MODES`.
    spatial_ndim : int
        Spatial axes of the network (3 for volume and spectral, 2 for image).
    image_channels : int
        Channels of the user's image (1 when it has no channel axis).
    band_bin : int
        Spectral mode: the network sees the mean of every ``band_bin`` neighbouring
        bands (see :func:`bin_bands`); 1 elsewhere.
    flattened : bool
        Volume mode: the position channel is the flattened depth
        (:class:`~napari_geoseg.train.flattening.FlattenedDepth`), which follows the
        reflectors, instead of the plain depth.
    bands_as_channels : bool
        Spectral mode: every (binned) band is an input channel of a 2D network over the
        map, so each pixel's whole spectrum reaches the classifier at once. False: the
        network runs in 3D over ``(rows, cols, bands)`` (models before the head).
    mask_channel : bool
        An input channel that is 1 where the image has data and 0 where it is NaN or
        Inf (dead traces, inactive cells), so that a filled-in 0 is not read as a value.
    bands : int
        Spectral mode: the bands of the cubes the model was trained on (0: not known,
        models written before it was recorded).
    band_statistics : bool
        Spectral mode with bands as channels: every (binned) band is centred and scaled
        by its own median and spread (:func:`robust_statistics`) instead of all bands by
        one. A spectrum's bands differ in level and range far more than the spectra of
        two crops differ in any band; with one statistic for all, those small
        differences are a sliver of each input channel's range and a few labelled
        pixels do not train the network to read them (Indian Pines, draw 0: 20 % of its
        own labelled pixels right after training, against 81 % per band).
    """

    mode: str
    spatial_ndim: int
    image_channels: int
    band_bin: int = 1
    flattened: bool = False
    bands_as_channels: bool = False
    mask_channel: bool = False
    bands: int = 0
    band_statistics: bool = False

    @classmethod
    def for_image(cls, mode: str, image_shape: tuple[int, ...]) -> "Layout":
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        spatial = 2 if mode == "image" else 3
        if len(image_shape) not in (spatial, spatial + 1):
            raise InputError(f"a {mode} image needs {spatial} axes (or {spatial + 1} with channels), "
                             f"got shape {tuple(image_shape)}")
        channels = image_shape[spatial] if len(image_shape) > spatial else 1
        return cls(mode, spatial, int(channels))

    @property
    def position_axis(self) -> int | None:
        """The spatial axis whose relative position becomes an input channel.

        The vertical (sample) axis of a volume and the band axis of a cube: geological
        units are ordered in depth, and a band's position in the spectrum is meaningful.
        A 2D image gets none, so that a model does not learn where things are on a map,
        nor does a cube whose bands are channels (their order is the channel order).
        """
        return None if self.mode == "image" or self.bands_as_channels else 2

    @property
    def network_ndim(self) -> int:
        """Spatial axes of the network: 2 for images and cubes with bands as channels."""
        return 2 if self.mode == "image" or self.bands_as_channels else 3

    @property
    def band_slice(self) -> bool:
        """The network runs over the bands and the scores are read at the middle band."""
        return self.mode == "spectral" and not self.bands_as_channels

    def statistic_columns(self, image_shape: tuple[int, ...]) -> int:
        """How many centres and scales :func:`robust_statistics` gives for an image of
        ``image_shape`` (binned bands): one per image channel, or one per band and
        channel (band-major) with :attr:`band_statistics`."""
        if self.band_statistics and not self.bands_as_channels:
            raise ValueError("per-band statistics need the bands as input channels")
        return self.image_channels * (image_shape[2] if self.band_statistics else 1)

    def input_channels(self, n_bands: int) -> int:
        """Feature channels :func:`build_features` gives without repeats (``n_bands``:
        the binned bands of a cube)."""
        image = self.image_channels * (n_bands if self.bands_as_channels else 1)
        return image + (self.position_axis is not None) + int(self.mask_channel)

    def image_features_in(self, n_features: int) -> int:
        """How many of ``n_features`` channels of :func:`build_features` (no repeats) hold
        the image: all but the position and mask channels, which follow them."""
        return n_features - (self.position_axis is not None) - int(self.mask_channel)

    def _image_features(self, n_features: int, n_bands: int, repeated: bool) -> list[int]:
        """For each channel :func:`build_features` gives, its index among the image
        feature channels (band-major: band ``i // C``, image channel ``i % C``), or -1
        for position and mask; ``repeated``: the channels were repeated up to ``n_features``."""
        n_image = self.image_features_in(self.input_channels(n_bands))
        period = self.input_channels(n_bands) if repeated else n_features
        return [c % period if c % period < n_image else -1 for c in range(n_features)]

    def image_channel_of_features(self, n_features: int, n_bands: int, repeated: bool) -> list[int]:
        """For each channel :func:`build_features` gives, the image channel it holds
        (-1: position or mask); ``repeated``: the channels were repeated up to
        ``n_features``."""
        return [i % self.image_channels if i >= 0 else -1
                for i in self._image_features(n_features, n_bands, repeated)]

    def statistic_of_features(self, n_features: int, n_bands: int, repeated: bool) -> list[int]:
        """For each channel :func:`build_features` gives, the column of the centre and
        scale it was normalised with (-1: position or mask)."""
        if not self.band_statistics:
            return self.image_channel_of_features(n_features, n_bands, repeated)
        return self._image_features(n_features, n_bands, repeated)

    @property
    def lateral_axes(self) -> tuple[int, int]:
        """Spatial axes along which flips and swaps do not change the meaning."""
        return (0, 1)

    def labels_ndim(self) -> int:
        return 2 if self.mode in ("spectral", "image") else 3


def robust_statistics(image: np.ndarray, layout: Layout, max_samples: int = 1_000_000,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (or per band and channel, :attr:`Layout.band_statistics`) median and
    robust spread (IQR / 1.349) of the finite values.

    Large images are subsampled so that this stays fast; seismic amplitudes have heavy
    tails, so mean and standard deviation would let a few spikes set the scale.
    """
    values = np.asarray(image, dtype=np.float32).reshape(-1, layout.statistic_columns(np.shape(image)))
    if values.shape[0] > max_samples:
        rows = np.random.default_rng(seed).choice(values.shape[0], max_samples, replace=False)
        values = values[np.sort(rows)]
    return column_statistics(values)


def column_statistics(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and robust spread (IQR / 1.349, else the standard deviation, else 1) of
    the finite values of each column of ``values`` ``(samples, columns)``."""
    center = np.empty(values.shape[1], np.float32)
    scale = np.empty(values.shape[1], np.float32)
    for c in range(values.shape[1]):
        finite = values[:, c][np.isfinite(values[:, c])]
        if finite.size == 0:
            where = f" in band or channel {c}" if values.shape[1] > 1 else ""
            raise InputError(f"the image holds no finite values{where} (all NaN or Inf)")
        q1, median, q3 = np.percentile(finite, [25, 50, 75])
        spread = (q3 - q1) / 1.349
        if not spread > 0:
            spread = float(finite.std()) or 1.0
        center[c], scale[c] = median, spread
    return center, scale


def build_features(image: np.ndarray, layout: Layout, center: np.ndarray, scale: np.ndarray,
                   channels: int | None = None, position_range: tuple[int, int] | None = None,
                   position: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Network input ``(C, *network spatial)`` float32 and the mask of finite voxels.

    Channels are the normalised image channels (for a cube with
    :attr:`Layout.bands_as_channels`, every band of every image channel, band-major,
    over the map), then the relative position along :attr:`Layout.position_axis` (in
    ``[-1, 1]`` over ``position_range``, the full extent of that axis in the whole
    image, so blocks agree), then the data mask (:attr:`Layout.mask_channel`).
    ``channels`` (networks without a lifting) repeats these until there are that many
    (the paper's channel repetition, §3.2). Non-finite samples become 0 after
    normalisation and are reported in the mask, which has the network's spatial
    shape. ``position`` (the image's spatial shape) replaces the plain relative
    position, e.g. with the flattened depth of a volume.
    """
    data = np.asarray(image, dtype=np.float32)
    if data.ndim == layout.spatial_ndim:
        data = data[..., None]
    spatial = data.shape[:-1]
    base = np.moveaxis(data, -1, 0)
    finite = np.isfinite(base).all(0)
    if layout.band_statistics:
        # (band, channel) statistics against (channel, rows, cols, band) values.
        def per_band(values: np.ndarray) -> np.ndarray:
            return np.asarray(values, np.float32).reshape(spatial[2], -1).T[:, None, None, :]

        base = (base - per_band(center)) / per_band(scale)
    else:
        base = (base - center.reshape(-1, *[1] * len(spatial))) / scale.reshape(-1, *[1] * len(spatial))
    base = np.where(np.isfinite(base), base, 0.0).astype(np.float32)
    if layout.bands_as_channels:
        base = base.transpose(3, 0, 1, 2).reshape(-1, *spatial[:2])
        finite, spatial = finite.all(-1), spatial[:2]
    parts = [base]
    axis = layout.position_axis
    if position is not None:
        if position.shape != spatial:
            raise ValueError(f"position of shape {position.shape} does not match the image's {spatial}")
        parts.append(np.asarray(position, dtype=np.float32)[None])
    elif axis is not None:
        start, total = position_range if position_range is not None else (0, spatial[axis])
        index = np.arange(start, start + spatial[axis], dtype=np.float32)
        position = 2 * index / max(total - 1, 1) - 1
        shape = [1] * len(spatial)
        shape[axis] = spatial[axis]
        parts.append(np.broadcast_to(position.reshape(shape), spatial)[None])
    if layout.mask_channel:
        parts.append(finite[None].astype(np.float32))
    features = np.concatenate(parts, 0)
    if channels is not None:
        repeats = -(-channels // features.shape[0])
        features = np.concatenate([features] * repeats, 0)[:channels]
    return np.ascontiguousarray(features), finite


def band_bin_for(n_bands: int, max_bands: int) -> int:
    """How many neighbouring bands to average so that at most ``max_bands`` remain (0: no limit)."""
    return max(1, -(-n_bands // max_bands)) if max_bands else 1


def bin_bands(cube: np.ndarray, band_bin: int) -> np.ndarray:
    """Mean of every ``band_bin`` neighbouring bands of a ``(rows, cols, bands[, C])`` cube.

    Hyperspectral bands are narrow and strongly correlated: averaging a few keeps what
    tells materials apart while letting the 3D network see the whole spectrum with a
    few coarsenings, at a fraction of the cost. A last, shorter group is averaged too.
    """
    cube = np.asarray(cube)
    if band_bin <= 1:
        return cube
    starts = np.arange(0, cube.shape[2], band_bin)
    counts = np.diff(np.append(starts, cube.shape[2])).astype(np.float32)
    sums = np.add.reduceat(cube.astype(np.float32, copy=False), starts, axis=2)
    shape = [1] * cube.ndim
    shape[2] = len(starts)
    return sums / counts.reshape(shape)


class BinnedBands:
    """A lazy view of a cube with its bands binned: only the pixels asked for are read.

    Indexing takes row and column slices (the band axis must be whole, as every pixel's
    prediction reads its whole spectrum), so a memory map or a zarr array stays on disk.
    """

    def __init__(self, cube, band_bin: int) -> None:
        self.cube, self.band_bin = cube, int(band_bin)
        shape = tuple(cube.shape)
        self.shape = (*shape[:2], -(-shape[2] // self.band_bin), *shape[3:])
        self.ndim = len(self.shape)
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, key) -> np.ndarray:
        key = tuple(key) if isinstance(key, tuple) else (key,)
        rows_cols = key[:2]
        rest = key[2:]
        if rest and rest[0].indices(self.shape[2]) != (0, self.shape[2], 1):
            raise IndexError("BinnedBands reads whole spectra: the band axis must be taken whole")
        return bin_bands(np.asarray(self.cube[rows_cols]), self.band_bin)[(slice(None), slice(None), *rest)]
