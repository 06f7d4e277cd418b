"""A trained model: the network plus everything needed to apply it, in one safe file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..errors import InputError
from ..io.atomic import atomic_output
from ..nn import HyperbolicSegmenter
from .layout import Layout
from .presets import Preset

__all__ = ["Model", "MODEL_FORMAT"]

MODEL_FORMAT = "napari-geoseg-model"
# 3: a lifting and a head around each network, and the input channels they read;
# 2: several networks ("state_dicts"); 1: one "state_dict". Older versions still load,
# as bare networks (no head).
FORMAT_VERSION = 3


@dataclass
class Model:
    """One or more HyperbolicNets of one design, with normalisation and classes.

    Attributes
    ----------
    nets : list of HyperbolicSegmenter
        The members: networks of the same design trained side by side, whose
        probabilities are averaged (usually one; see ``Preset.members``).
    preset : Preset
        The design and training settings it was built from.
    layout : Layout
        Mode and image channels it expects.
    channels : int
        Score channels: room for the classes, and one more for a class added when
        training continues.
    in_channels : int
        Network input channels (:func:`~napari_geoseg.train.layout.build_features`);
        for models without a head the input is repeated up to ``channels``.
    class_ids : list of int
        Label value in the user's label image of each class, in channel order.
    class_names : list of str
    center, scale : np.ndarray
        Per-channel robust normalisation of the training image.
    axes : list of str
        Names of the image axes it was trained on (for information).
    transform : list of list of float, optional
        The survey transform of the SEG-Y image it was trained on,
        ``(x, y) = transform @ (inline, crossline, 1)`` (2 rows of 3 numbers; see
        :attr:`napari_geoseg.io.SegyGeometry.transform`), or None.
    """

    nets: list[HyperbolicSegmenter]
    preset: Preset
    layout: Layout
    channels: int
    class_ids: list[int]
    class_names: list[str]
    center: np.ndarray
    scale: np.ndarray
    axes: list[str] = field(default_factory=list)
    version: str = __version__
    in_channels: int = 0
    transform: list[list[float]] | None = None

    def __post_init__(self) -> None:
        if not self.in_channels:
            self.in_channels = self.channels
        self.transform = _transform_rows(self.transform)

    @property
    def n_classes(self) -> int:
        return len(self.class_ids)

    @property
    def labels_dtype(self) -> np.dtype:
        """The smallest unsigned integer type that holds every class id (uint8 up to 255)."""
        top = max(int(v) for v in self.class_ids)
        for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
            if top <= np.iinfo(dtype).max:
                return np.dtype(dtype)
        raise InputError(f"class id {top} does not fit in 64 bits")

    @property
    def net(self) -> HyperbolicSegmenter:
        """The first member (all share the design: layers, input multiple)."""
        return self.nets[0]

    @property
    def feature_repeats(self) -> int | None:
        """Channels :func:`~napari_geoseg.train.layout.build_features` repeats the input
        to (models without a head), or None."""
        return None if self.net.has_head else self.channels

    @staticmethod
    def build_net(preset: Preset, layout: Layout, in_channels: int, channels: int) -> HyperbolicSegmenter:
        """A member network: ``in_channels`` feature channels in, ``channels`` scores out."""
        head = preset.head_for(layout.mode)
        width = max(preset.width_for(layout.mode), channels) if head else in_channels
        return HyperbolicSegmenter(in_channels, channels, width, preset.depths, preset.ranks,
                                   up_depths=preset.up_depths, h=preset.h, dim=layout.network_ndim,
                                   head=head, smoothing=preset.smoothing_for(layout.mode) if head else (),
                                   smoothed_channels=layout.image_features_in(in_channels),
                                   smoothing_edges=preset.smoothing_edges)

    def to_dict(self) -> dict:
        """Plain data (tensors, numbers, strings, lists): loadable with ``weights_only``."""
        return {
            "format": MODEL_FORMAT,
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "state_dicts": [{k: v.detach().cpu() for k, v in net.state_dict().items()} for net in self.nets],
            "preset": self.preset.to_dict(),
            "mode": self.layout.mode,
            "image_channels": self.layout.image_channels,
            "band_bin": self.layout.band_bin,
            "flattened": self.layout.flattened,
            "bands_as_channels": self.layout.bands_as_channels,
            "mask_channel": self.layout.mask_channel,
            "bands": self.layout.bands,
            "band_statistics": self.layout.band_statistics,
            "channels": self.channels,
            "in_channels": self.in_channels,
            "class_ids": [int(v) for v in self.class_ids],
            "class_names": [str(v) for v in self.class_names],
            "center": torch.from_numpy(np.asarray(self.center, np.float32)),
            "scale": torch.from_numpy(np.asarray(self.scale, np.float32)),
            "axes": [str(a) for a in self.axes],
            "transform": self.transform,
        }

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the model to ``path``; never replaces a file unless ``overwrite``."""
        path = Path(path)
        with atomic_output(path, overwrite=overwrite) as temporary:  # never half a file
            torch.save(self.to_dict(), temporary)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Model":
        """Read a model file written by :meth:`save` (no arbitrary pickle is executed)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such model file")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - torch raises many kinds for a damaged or foreign file
            raise InputError(f"{path}: not a napari-geoseg model file, or a damaged one; "
                             f"give a file written by 'geoseg train' or the widget's Save model") from None
        if not isinstance(blob, dict) or blob.get("format") != MODEL_FORMAT:
            raise InputError(f"{path}: not a napari-geoseg model file")
        if blob.get("format_version", 0) > FORMAT_VERSION:
            raise InputError(f"{path}: written by a newer napari-geoseg ({blob.get('version')}); upgrade to read it")
        try:
            preset_fields = dict(blob["preset"])
            for key in ("depths", "ranks", "up_depths", "smoothing", "smoothing_modes"):
                if preset_fields.get(key) is not None:
                    preset_fields[key] = tuple(preset_fields[key])
            bare = blob.get("format_version", 1) < 3
            if bare:
                # Written before the head: the bare network, trained without the bound.
                preset_fields.update(head=False, spectral_head=False, bands_as_channels=False, mask_channel=False,
                                     step_bound=0.0)
            preset = Preset(**preset_fields)
            layout = Layout(blob["mode"], 2 if blob["mode"] == "image" else 3, int(blob["image_channels"]),
                            int(blob.get("band_bin", 1)), bool(blob.get("flattened", False)),
                            bool(blob.get("bands_as_channels", False)), bool(blob.get("mask_channel", False)),
                            int(blob.get("bands", 0)), bool(blob.get("band_statistics", False)))
            state_dicts = blob["state_dicts"] if "state_dicts" in blob else [blob["state_dict"]]
            if not state_dicts:
                raise ValueError("no networks")
            channels = int(blob["channels"])
            in_channels = int(blob.get("in_channels", channels))
            nets = []
            for state_dict in state_dicts:
                nets.append(cls.build_net(preset, layout, in_channels, channels))
                (nets[-1].net if bare else nets[-1]).load_state_dict(state_dict)
            return cls(nets=nets, preset=preset, layout=layout, channels=channels, in_channels=in_channels,
                       class_ids=list(blob["class_ids"]), class_names=list(blob["class_names"]),
                       center=blob["center"].numpy(), scale=blob["scale"].numpy(),
                       axes=list(blob.get("axes", [])), version=str(blob.get("version", "?")),
                       transform=blob.get("transform"))
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise InputError(f"{path}: damaged napari-geoseg model file ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:120] if str(err) else ''})") from None


def _transform_rows(transform) -> list[list[float]] | None:
    """A survey transform as 2 rows of 3 floats (plain lists: the model file stays
    loadable with ``weights_only``), or None.

    Raises
    ------
    ValueError
        Not 2x3 finite numbers.
    """
    if transform is None:
        return None
    rows = np.asarray(transform, dtype=np.float64)
    if rows.shape != (2, 3) or not np.all(np.isfinite(rows)):
        raise ValueError(f"a survey transform is 2x3 finite numbers, not {rows.shape}")
    return [[float(v) for v in row] for row in rows]
