"""Network designs and training settings that users pick by name."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Optional

from .layout import MODES

__all__ = ["Preset", "PRESETS", "get_preset", "live_defaults"]


@dataclass(frozen=True)
class Preset:
    """A U-shaped :meth:`HyperbolicNet.symmetric` design and how to train it.

    Attributes
    ----------
    depths, ranks, up_depths
        Layers and block ranks per level (see ``HyperbolicNet.symmetric``).
    min_channels
        The network input gets at least this many channels (and at least one more than
        there are classes).
    h
        Time step.
    block
        Side of the training sub-volumes in voxels (lateral axes; the vertical or band
        axis is taken whole when it fits).
    iterations, learning_rate
        Adam iterations and initial step; the step decays to a tenth by the end. A
        volume or 2D image that cuts the block to less than a quarter of its voxels
        trains for more iterations, up to three times as many
        (:meth:`~napari_geoseg.train.Trainer._default_iterations`).
    max_bands
        Hyperspectral cubes with more bands are binned (neighbouring bands averaged) down
        to at most this many before they enter the network; 0 keeps every band.
    spectral_block, spectral_iterations
        Block side and iterations for hyperspectral cubes (None: ``block`` and
        ``iterations``). A cube's pixels are told apart mostly by their spectra, which a
        block always holds whole, so smaller blocks (more varied crops, cheaper steps)
        generalise better from a few labelled pixels.
    members, spectral_members
        Networks trained side by side (different starting weights and block draws) whose
        probabilities are averaged when predicting; ``spectral_members`` for cubes (None:
        ``members``). Each costs one more training step per iteration, but memory stays
        that of one network. With a handful of labelled pixels a single network's
        result depends on its luck; the average of a few is steadier.
    illumination_jitter
        Hyperspectral cubes: each training block's spectra are multiplied by a random
        factor in ``[1 - j, 1 + j]``, teaching the network that a pixel's brightness
        (shadows, slopes, haze) does not tell its class. 0 (the default, also of
        ``fast``) turns it off: where classes do differ in brightness the jitter hides
        what separates them. On the quality suite 0.3 scored 0.671 against 0.868 on the
        cube whose classes differ in brightness only and 0.292 against 0.379 on Indian
        Pines as reflectance, for 0.015-0.049 more on Samson and its shape-only cube
        (benchmarks/results/quality_jitter0.md).
    head, spectral_head
        A learned 1 x 1 lifting of the input channels onto the network's width and a
        learned 1 x 1 classification head that reads the last state together with the
        input (:class:`~napari_geoseg.nn.HyperbolicSegmenter`); ``spectral_head`` for
        cubes. Without it the input channels are repeated up to the network's width and
        the classes are read from the first channels of the last state, as in the
        paper. Cubes need it to take their bands as channels; on the suite's volumes it
        scored lower than the bare network (benchmarks/README.md), so volumes and 2D
        images go without.
    width, spectral_width
        Channels of the network's states (0: as many as the scores need); for cubes.
    bands_as_channels
        Hyperspectral cubes: the (binned) bands are the input channels of a 2D network
        over the map instead of an axis of a 3D network (needs ``head``).
    mask_channel
        An input channel marking where the image has data (not NaN or Inf).
    step_bound
        Keep every layer's ``h * ||K||_2`` at most this (the leapfrog stability bound,
        about 2) by projecting the weights after each step; 0 leaves them free.
    race
        Volumes and 2D images: a network with the other design (with the head if
        ``head`` is off, without if on) trains beside the preset's for this share of
        the iterations; the one with the higher accuracy on the held-out labelled voxels
        then trains on alone (:class:`~napari_geoseg.train.Trainer`). A design with a
        head is judged with its probe, each fold of the held-out voxels at the strength
        the other folds prefer (:func:`~napari_geoseg.train.probe.cross_fitted_accuracy`).
        Which design fits depends on the data (the head suits labels that follow a
        voxel's value, the bare network labels that follow the layering), and only the
        user's labels can tell.
        0 trains the preset's design alone. ``fast`` races for 0.3 of its iterations:
        over the 15 cases x 3 label draws of ``benchmarks/quality.py`` it raised the
        suite mean from 0.604 to 0.640 (README.md, Results); ``paper`` does not race
        (not measured; its networks are for GPUs).
    smoothing, smoothing_modes
        Networks with a head for images of ``smoothing_modes``: scales (voxels) of the
        Gaussian-smoothed copies of the image channels (local mean and local amplitude,
        :class:`~napari_geoseg.nn.SmoothedCopies`) that the lifting, the head and the
        probe read beside the input; empty for none. ``fast`` gives cubes and 2D
        images copies at 1, 2, 4, 8 and 16 pixels: over the 15 cases x 3 label draws of
        ``benchmarks/quality.py`` copies at 1, 2 and 4 raised the cubes and the image
        (image-section 0.284 to 0.416, Indian Pines 0.203 to 0.331, brightness-only
        Samson 0.622 to 0.709; shape-only Samson lost 0.034) and the suite mean from
        0.683 to 0.705; the scale of 8 added Indian Pines 0.331 to 0.413 (brightness-only
        Samson 0.709 to 0.671, the image 0.416 to 0.407, the rest within 0.007), suite
        mean 0.708; the scale of 16 (without jitter) Indian Pines as reflectance 0.378 to
        0.399, the image 0.407 to 0.420, the other cubes within 0.004, suite mean 0.721
        to 0.724 (README.md, Results). Volumes go without: there the race picked the design
        with copies on held-out voxels it fitted better than the rest of the volume
        (the engine's own seismic 0.967 to 0.941, channels 0.773 to 0.730), also when
        whole wells were held out (:attr:`hold_out_groups`).
    probe_penalty
        Networks that read smoothed copies (``smoothing`` for their mode): weight of
        the squared norm of the per-voxel probe's weights
        (:func:`~napari_geoseg.train.probe.fit_probe`). Those probes read hundreds of
        features (a cube's bands and their copies) for a few dozen labelled pixels, and
        an unpenalised fit there rests on whichever features it grew first. Probes of
        images without copies read a value or two and go without. ``fast``: 1e-3, which
        raised Indian Pines from 0.414 to 0.514 and the image from 0.420 to 0.483 over
        the 3 label draws of ``benchmarks/quality.py`` (README.md, Results).
    probe_strength
        Strength at which a penalised probe is added where no labelled voxels are held
        out to choose it (fewer than :data:`~napari_geoseg.train.holdout.MIN_PER_CLASS`
        per class on average); an unpenalised probe is not added there. There the probe
        reads the voxel's own values, or those and their smoothed copies, whichever
        classifies the labelled voxels better in 5-fold cross-validation
        (:func:`~napari_geoseg.train.probe.choose_columns`): the copies carry the
        scene's wide fields (Indian Pines), and drown the spectrum of classes finer
        than their scales (Samson).
    smoothing_edges
        With ``smoothing``: the copies also hold the gradient magnitude and the
        Laplacian of each local mean.
    hold_out_groups
        The labelled voxels held out to judge the race and the probe by are whole
        connected groups (wells, strokes) where the labels come in them
        (:func:`~napari_geoseg.train.holdout.validation_split`); off (the default):
        single voxels drawn at random, whose neighbours in the same well stay in
        training. One held-out well of four judged no better than held-out voxels
        (benchmarks/README.md), so it stays off.
    flatten
        Volumes: give the network the flattened depth (which follows the reflectors,
        :class:`~napari_geoseg.train.flattening.FlattenedDepth`) as its position channel
        instead of the plain depth. Units follow the layers, so where the layers are
        folded or tilted away from the labelled wells the plain depth misleads.
    """

    name: str
    depths: tuple[int, ...]
    ranks: tuple[int, ...]
    up_depths: Optional[tuple[int, ...]] = None
    min_channels: int = 4
    h: float = 0.2
    block: int = 64
    iterations: int = 150
    learning_rate: float = 3e-3
    max_bands: int = 0
    spectral_block: Optional[int] = None
    spectral_iterations: Optional[int] = None
    members: int = 1
    spectral_members: Optional[int] = None
    illumination_jitter: float = 0.0
    head: bool = False
    spectral_head: bool = True
    width: int = 0
    spectral_width: Optional[int] = None
    bands_as_channels: bool = True
    mask_channel: bool = True
    step_bound: float = 2.0
    race: float = 0.0
    smoothing: tuple[float, ...] = ()
    smoothing_modes: tuple[str, ...] = MODES
    smoothing_edges: bool = False
    probe_penalty: float = 0.0
    probe_strength: float = 4.0
    hold_out_groups: bool = False
    flatten: bool = True
    description: str = ""

    def _for(self, mode: str, name: str) -> int:
        # Cubes take the ``spectral_`` variant of a setting where the preset gives one.
        spectral = getattr(self, f"spectral_{name}")
        return spectral if mode == "spectral" and spectral else getattr(self, name)

    def block_for(self, mode: str) -> int:
        """Training block side for images of ``mode`` (see :data:`~napari_geoseg.train.layout.MODES`)."""
        return self._for(mode, "block")

    def iterations_for(self, mode: str) -> int:
        """Training iterations for images of ``mode``."""
        return self._for(mode, "iterations")

    def members_for(self, mode: str) -> int:
        """Networks trained side by side for images of ``mode``."""
        return self._for(mode, "members")

    def head_for(self, mode: str) -> bool:
        """Whether networks for images of ``mode`` have a lifting and a head."""
        return self.spectral_head if mode == "spectral" else self.head

    def smoothing_for(self, mode: str) -> tuple[float, ...]:
        """Scales of the smoothed copies that networks with a head read for images of ``mode``."""
        return tuple(self.smoothing) if mode in self.smoothing_modes else ()

    def probe_penalty_for(self, mode: str) -> float:
        """Penalty of the per-voxel probe's weights for images of ``mode``."""
        return self.probe_penalty if self.smoothing_for(mode) else 0.0

    def width_for(self, mode: str) -> int:
        """State channels of the network for images of ``mode`` (0: as the scores need)."""
        return self._for(mode, "width")

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("fast", depths=(2, 2, 4), ranks=(4, 8, 16), min_channels=4, block=64, iterations=250,
               learning_rate=3e-3, max_bands=48, spectral_block=32, spectral_iterations=500,
               spectral_members=3, spectral_width=16, race=0.3,
               smoothing=(1.0, 2.0, 4.0, 8.0, 16.0), smoothing_modes=("spectral", "image"),
               probe_penalty=1e-3, description="three levels, small ranks: trains in minutes on 2 CPU cores"),
        Preset("paper", depths=(2, 3, 3, 10), ranks=(8, 16, 32, 32), up_depths=(3, 3, 6), min_channels=12,
               block=128, iterations=240, learning_rate=1e-3,
               description="the paper's Table 3 seismic design (30 layers, four levels): for GPUs"),
    )
}


def get_preset(name: str, **overrides) -> Preset:
    """The preset called ``name``, with any field replaced by a non-None override."""
    try:
        preset = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
    return replace(preset, **{k: v for k, v in overrides.items() if v is not None})


def live_defaults(preset: Preset, mode: str = "volume") -> tuple[int, int]:
    """Training block side and iterations the widget proposes for a preset and images
    of ``mode`` ("volume", "spectral" or "image").

    Half the preset's block side (at least 16): each iteration sees an eighth of the
    voxels and takes about an eighth of the time, so the prediction on screen improves,
    and a new stroke is picked up, every second or so on a laptop CPU instead of every
    few seconds. The iterations are scaled so that a run sees as many voxels as the
    preset's. On the 96^3 seismic sample this also scored better after the same
    training time (40 s on one core of a busy 2-core machine, seed 0: mean IoU on the
    unlabelled voxels 0.89 with 32^3 blocks at 0.13 s an iteration, 0.86 with 64^3 at 1.0 s).

    Hyperspectral cubes keep a preset's own cube settings (``spectral_block``,
    ``spectral_iterations``): those blocks are already small, and halving them again
    would leave too few pixels around each label.
    """
    if mode == "spectral" and preset.spectral_block:
        return preset.block_for(mode), preset.iterations_for(mode)
    block = max(16, preset.block // 2 // 8 * 8)
    return block, int(preset.iterations * round((preset.block / block) ** 3))
