"""Wells placed in a survey, and the labels they give: the units along each borehole.

A well's unit tops (or a discrete LAS log) say which unit each stretch of the hole
crosses. The hole is a vertical line below the well's position, or, with a deviation
survey, the path that the minimum-curvature method draws through its stations. Along
it, every sample of the volume the hole passes is labelled with its unit, and with a
radius ``R`` so are the ``(2R + 1) x (2R + 1)`` traces around it.

Depths: in a vertical well the tops are in the volume's vertical unit (ms for time, m
for depth, sample numbers for a volume without one). Along a deviated well and in LAS
logs they are measured depths in metres; the path turns them into true vertical depth
below the volume's datum (the first station of a deviation survey sits at the well's
position at a true vertical depth equal to its measured depth), and a time-depth table
turns that into two-way time for a time volume.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import InputError
from ..io.volume import Volume
from ..io.wells import DeviationSurvey, TimeDepth, WellTops

__all__ = ["WellLabels", "LogWell", "minimum_curvature", "wells_to_labels", "read_well_labels", "merge_labels",
           "PATH_STEP"]

#: Measured-depth step (m) at which deviated holes and logs are sampled: finer than a
#: sample of any seismic volume, so no sample the hole crosses is skipped.
PATH_STEP = 0.25


@dataclass
class LogWell:
    """A discrete log along a well (from :func:`~napari_geoseg.io.wells.read_las_log`)."""

    name: str
    position: Optional[tuple[float, float]]
    depth: np.ndarray
    codes: np.ndarray
    source: str = ""


@dataclass
class WellLabels:
    """Labels drawn from wells.

    Attributes
    ----------
    labels : np.ndarray
        The volume's spatial shape; 0 = unlabelled, class ``k`` = ``class_names[k - 1]``.
    class_names : list of str
        The units, in class order.
    paths : dict of str to np.ndarray
        Each well's hole as ``(n, 3)`` fractional array indices from the top down, for
        drawing.
    labelled : dict of str to int
        Voxels each well labelled.
    """

    labels: np.ndarray
    class_names: list[str]
    paths: dict[str, np.ndarray] = field(default_factory=dict)
    labelled: dict[str, int] = field(default_factory=dict)


def minimum_curvature(md: np.ndarray, inclination: np.ndarray,
                      azimuth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions of deviation survey stations by the minimum-curvature method.

    Parameters
    ----------
    md, inclination, azimuth : np.ndarray
        Measured depth, inclination from vertical and azimuth from north (degrees) of
        each station.

    Returns
    -------
    north, east, tvd : np.ndarray
        Offsets of each station from the first, and its true vertical depth below the
        first station.

    Notes
    -----
    Between two stations the hole is taken as a circular arc; the ratio factor
    ``2 / beta * tan(beta / 2)`` of the dogleg angle ``beta`` corrects the average of
    the two stations' directions for the arc's length (1 for a straight stretch).

    Examples
    --------
    >>> north, east, tvd = minimum_curvature(np.array([0., 100.]), np.array([0., 0.]), np.array([0., 0.]))
    >>> float(tvd[-1]), float(east[-1])
    (100.0, 0.0)
    """
    md = np.asarray(md, float)
    inc, azi = np.radians(inclination), np.radians(azimuth)
    i1, i2, a1, a2 = inc[:-1], inc[1:], azi[:-1], azi[1:]
    cos_dogleg = np.cos(i2 - i1) - np.sin(i1) * np.sin(i2) * (1 - np.cos(a2 - a1))
    dogleg = np.arccos(np.clip(cos_dogleg, -1.0, 1.0))
    small = dogleg < 1e-9
    ratio = np.where(small, 1.0, 2 / np.where(small, 1.0, dogleg) * np.tan(dogleg / 2))
    half = np.diff(md) / 2 * ratio
    north = half * (np.sin(i1) * np.cos(a1) + np.sin(i2) * np.cos(a2))
    east = half * (np.sin(i1) * np.sin(a1) + np.sin(i2) * np.sin(a2))
    down = half * (np.cos(i1) + np.cos(i2))
    zero = np.zeros(1)
    return (np.concatenate([zero, np.cumsum(north)]), np.concatenate([zero, np.cumsum(east)]),
            np.concatenate([zero, np.cumsum(down)]))


class _Survey:
    """Where the volume's samples are: lateral line numbers or map coordinates, and depth."""

    def __init__(self, volume: Volume):
        if volume.ndim != 3:
            raise InputError(f"{volume.source or 'the image'}: wells need a 3D volume, not {volume.ndim}D data")
        self.volume, self.shape = volume, tuple(volume.shape[:3])
        self.geometry = volume.geometry
        scale = tuple(volume.scale) if volume.scale else (1.0, 1.0, 1.0)
        translate = tuple(volume.translate) if volume.translate else (0.0, 0.0, 0.0)
        self.scale, self.translate = scale, translate
        self.domain = getattr(self.geometry, "domain", None) or volume.metadata.get("domain", "depth")
        self.name = volume.source or "the survey"

    @property
    def transform(self):
        return getattr(self.geometry, "transform", None)

    def line_index(self, inline: np.ndarray, crossline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fractional array indices of line numbers (a SEG-Y survey's), else of world coordinates."""
        if self.geometry is not None:
            return self.geometry.line_index(inline, crossline)
        return ((np.asarray(inline, float) - self.translate[0]) / self.scale[0],
                (np.asarray(crossline, float) - self.translate[1]) / self.scale[1])

    def index_lines(self, i: float, j: float) -> tuple[float, float]:
        """Line numbers (or world coordinates) of array indices; the inverse of :meth:`line_index`."""
        if self.geometry is not None:
            return self.geometry.index_lines(i, j)
        return self.translate[0] + self.scale[0] * i, self.translate[1] + self.scale[1] * j

    def xy_index(self, x: np.ndarray, y: np.ndarray, well: str, source: str) -> tuple[np.ndarray, np.ndarray]:
        if self.transform is None:
            raise InputError(f"{source} (well {well}): the well is given in map coordinates but {self.name} has "
                             f"none (no CDP or source X/Y in its trace headers); give the well's inline and "
                             f"crossline instead")
        return self.line_index(*self.geometry.xy_to_lines(np.asarray(x, float), np.asarray(y, float)))

    def lines_to_xy(self, inline: float, crossline: float, well: str, source: str) -> tuple[float, float]:
        if self.transform is None:
            raise InputError(f"{source} (well {well}): a deviated well is placed in map coordinates but "
                             f"{self.name} has none (no CDP or source X/Y in its trace headers); "
                             f"the well cannot be placed")
        x, y = self.geometry.lines_to_xy(np.asarray(inline, float), np.asarray(crossline, float))
        return float(x), float(y)

    def sample_index(self, z: np.ndarray) -> np.ndarray:
        """Fractional sample index of times or depths in the volume's vertical unit."""
        return (np.asarray(z, float) - self.translate[2]) / self.scale[2]

    def check_inside(self, i: np.ndarray, j: np.ndarray, well: str, source: str) -> None:
        outside = (np.round(i) < 0) | (np.round(i) > self.shape[0] - 1) | (np.round(j) < 0) | \
                  (np.round(j) > self.shape[1] - 1)
        if np.any(outside):
            k = int(np.flatnonzero(outside)[0])
            inline, crossline = self.index_lines(i[k], j[k])
            if self.geometry is not None:
                g = self.geometry
                where = (f"inline {inline:g}, crossline {crossline:g}; the survey spans inlines "
                         f"{g.inlines[0]}..{g.inlines[-1]}, crosslines {g.crosslines[0]}..{g.crosslines[-1]}")
            else:
                last = self.index_lines(self.shape[0] - 1, self.shape[1] - 1)
                where = (f"at {inline:g}, {crossline:g} on the first two axes; the volume spans "
                         f"{self.translate[0]:g}..{last[0]:g} and {self.translate[1]:g}..{last[1]:g}")
            raise InputError(f"{source} (well {well}): the well is outside the survey ({where}); check its "
                             f"position")


class _Classes:
    """Unit names to class numbers: the given names' order, or order of first appearance."""

    def __init__(self, names: Optional[Sequence[str]], extend: bool = False):
        self.fixed = names is not None and not extend
        self.names = [str(n).strip() for n in names] if names is not None else []

    def number(self, unit: str, where: str) -> int:
        if unit not in self.names:
            if self.fixed:
                raise InputError(f"{where}: unit {unit!r} is not among the class names {', '.join(self.names)}; "
                                 f"add it to the class names or fix the row")
            self.names.append(unit)
        return self.names.index(unit) + 1


def _hole(survey: _Survey, name: str, source: str, head: tuple[float, float], kind: str,
          md: np.ndarray, deviation: Optional[DeviationSurvey], time_depth: Optional[TimeDepth],
          in_volume_unit: bool) -> np.ndarray:
    """``(len(md), 3)`` fractional array indices of the hole at measured depths ``md``.

    Without a deviation survey the hole is vertical below ``head``; ``in_volume_unit``
    then says ``md`` is already in the volume's vertical unit (tops of a vertical well).
    """
    if kind == "xy":
        i0, j0 = survey.xy_index([head[0]], [head[1]], name, source)
    else:
        i0, j0 = survey.line_index([head[0]], [head[1]])
    if deviation is None:
        i, j = np.full(md.shape, i0[0]), np.full(md.shape, j0[0])
        depth = md
    else:
        if md[0] < deviation.md[0] or md[-1] > deviation.md[-1]:
            raise InputError(f"{deviation.source} (well {name}): the deviation survey "
                             f"({deviation.md[0]:g}..{deviation.md[-1]:g} m) does not cover measured depths "
                             f"{md[0]:g}..{md[-1]:g}; extend the survey")
        north, east, tvd = minimum_curvature(deviation.md, deviation.inclination, deviation.azimuth)
        x0, y0 = head if kind == "xy" else survey.lines_to_xy(head[0], head[1], name, source)
        x = x0 + np.interp(md, deviation.md, east)
        y = y0 + np.interp(md, deviation.md, north)
        depth = deviation.md[0] + np.interp(md, deviation.md, tvd)
        i, j = survey.xy_index(x, y, name, source)
    if not in_volume_unit and survey.domain == "time":
        if time_depth is None:
            raise InputError(f"{source} (well {name}): depths along the hole are in metres and the survey is in "
                             f"time; give a time-depth table for this well or for all")
        depth = time_depth.times(depth, f"well {name}")
    survey.check_inside(i, j, name, source)
    return np.stack([i, j, survey.sample_index(depth)], axis=1)


def _paint(labels: np.ndarray, points: np.ndarray, classes: np.ndarray, radius: int) -> tuple[int, int]:
    """Label the voxels of ``points`` (and their lateral neighbours); returns (labelled, conflicts)."""
    ijk = np.round(points).astype(np.int64)
    keep = (ijk[:, 2] >= 0) & (ijk[:, 2] < labels.shape[2])
    ijk, classes = ijk[keep], classes[keep]
    offsets = np.arange(-radius, radius + 1)
    di, dj = np.meshgrid(offsets, offsets, indexing="ij")
    i = (ijk[:, 0, None] + di.ravel()).clip(0, labels.shape[0] - 1)
    j = (ijk[:, 1, None] + dj.ravel()).clip(0, labels.shape[1] - 1)
    k = np.broadcast_to(ijk[:, 2, None], i.shape)
    values = np.broadcast_to(classes[:, None], i.shape)
    # Several points of the hole fall in one voxel; the deepest decides, so a voxel whose
    # centre lies below a top belongs to the unit under it.
    flat = np.ravel_multi_index((i.ravel(), j.ravel(), k.ravel()), labels.shape)[::-1]
    index, last = np.unique(flat, return_index=True)
    new = values.ravel()[::-1][last]
    before = labels.ravel()[index]
    conflicts = int(np.count_nonzero((before != 0) & (before != new)))
    labels.ravel()[index] = new
    return len(index), conflicts


def wells_to_labels(volume: Volume, tops: Sequence[WellTops] = (), *, radius: int = 0,
                    deviation: Optional[dict[str, DeviationSurvey]] = None,
                    time_depth: Optional[dict[Optional[str], TimeDepth]] = None,
                    logs: Sequence[LogWell] = (), class_names: Optional[Sequence[str]] = None,
                    extend_classes: bool = False) -> WellLabels:
    """Labels of the units that wells cross in ``volume``.

    Parameters
    ----------
    volume : Volume
        The survey: a 3D volume, (inline, crossline, sample) for SEG-Y; its geometry
        places map coordinates and line numbers, its vertical scale and translate the
        depths.
    tops : sequence of WellTops
        Unit tops by well (:func:`~napari_geoseg.io.wells.read_tops`).
    radius : int
        Also label the traces up to this many traces away from the hole on each axis.
    deviation : dict, optional
        Deviation surveys by well name; wells without one are vertical.
    time_depth : dict, optional
        Time-depth tables by well name (``None``: for every other well); needed for
        deviated wells and logs in a time volume.
    logs : sequence of LogWell
        Discrete logs; a log's well is placed by its own position, else by the tops of
        the well of the same name.
    class_names : sequence of str, optional
        The units in class order; every unit must be among them. Default: order of
        first appearance, tops before logs.
    extend_classes : bool
        Units not among ``class_names`` become new classes after them (as in a live
        session, where painted classes keep their numbers) instead of an error.

    Returns
    -------
    WellLabels

    Raises
    ------
    InputError
        A well outside the survey, in map coordinates on a survey without them, a unit
        not among ``class_names``, a deviation survey or time-depth table that does not
        cover the hole, a well with no sample inside the volume.
    """
    if radius < 0:
        raise InputError(f"the radius around wells must be 0 or more, got {radius}")
    survey = _Survey(volume)
    deviation, time_depth = deviation or {}, time_depth or {}
    classes = _Classes(class_names, extend_classes)
    labels = np.zeros(survey.shape, np.uint8 if class_names is None or len(class_names) < 255 else np.int16)
    result = WellLabels(labels, classes.names)
    conflicts = 0
    bottom_of_volume = survey.translate[2] + (survey.shape[2] - 0.5) * survey.scale[2]
    for well in tops:
        numbers = np.array([classes.number(t.unit, f"{well.path}: row {t.row} (well {well.name})")
                            for t in well.tops])
        survey_of_well = deviation.get(well.name)
        table = time_depth.get(well.name, time_depth.get(None))
        # The hole is sampled from the first top down to the last unit's bottom.
        last = well.tops[-1]
        if survey_of_well is not None:
            end = last.bottom if last.bottom is not None else survey_of_well.md[-1]
            md = np.arange(well.tops[0].depth, end + PATH_STEP / 2, PATH_STEP)
        else:
            end = last.bottom if last.bottom is not None else max(bottom_of_volume, last.depth)
            step = abs(survey.scale[2]) / 4
            md = np.arange(well.tops[0].depth, end + step / 2, step)
        md = md[md <= end]
        points = _hole(survey, well.name, well.source, well.position, well.kind, md, survey_of_well, table,
                       in_volume_unit=survey_of_well is None)
        starts = np.array([t.depth for t in well.tops])
        unit = np.searchsorted(starts, md, side="right") - 1
        ends = np.array([t.bottom if t.bottom is not None else np.inf for t in well.tops])
        inside = md < ends[unit]
        count, clashes = _paint(labels, points[inside], numbers[unit[inside]], radius)
        if count == 0:
            raise InputError(f"{well.source} (well {well.name}): none of its tops lies within the volume's "
                             f"{'times' if survey.domain == 'time' else 'depths'}; check the depths")
        result.paths[well.name] = points
        result.labelled[well.name] = count
        conflicts += clashes
    positions = {w.name: (w.position, w.kind, w.source) for w in tops}
    for log in logs:
        position = (log.position, "xy", log.source) if log.position is not None else positions.get(log.name)
        if position is None:
            raise InputError(f"{log.source}: well {log.name} has no position (no XCOORD/YCOORD in the LAS file and "
                             f"no tops of a well of that name); give its position in the tops file")
        known = np.isfinite(log.codes)
        md, codes = log.depth[known], log.codes[known].astype(np.int64)
        if md.size == 0:
            raise InputError(f"{log.source}: the log holds no values")
        numbers = np.array([classes.number(str(c), f"{log.source} (well {log.name})") for c in np.unique(codes)])
        lookup = dict(zip(np.unique(codes).tolist(), numbers.tolist()))
        survey_of_well = deviation.get(log.name)
        table = time_depth.get(log.name, time_depth.get(None))
        # Resample finely so no sample of the volume along the hole is skipped.
        fine = np.arange(md[0], md[-1] + PATH_STEP / 2, PATH_STEP)
        nearest = np.searchsorted(md, fine).clip(1, md.size - 1)
        nearest -= (fine - md[nearest - 1]) < (md[nearest] - fine)
        fine_codes = codes[nearest]
        near = np.abs(md[nearest] - fine) <= np.maximum(np.median(np.diff(md)) if md.size > 1 else 0, PATH_STEP)
        points = _hole(survey, log.name, position[2], position[0], position[1], fine, survey_of_well, table,
                       in_volume_unit=False)
        count, clashes = _paint(labels, points[near], np.array([lookup[c] for c in fine_codes[near]]), radius)
        if count == 0:
            raise InputError(f"{log.source} (well {log.name}): the log lies outside the volume's "
                             f"{'times' if survey.domain == 'time' else 'depths'}; check the depths")
        result.paths[log.name] = points
        result.labelled[log.name] = result.labelled.get(log.name, 0) + count
        conflicts += clashes
    if conflicts:
        warnings.warn(f"{conflicts} voxels lie in the reach of wells that give them different units; "
                      f"the well listed last wins", stacklevel=2)
    if len(classes.names) > np.iinfo(labels.dtype).max:
        raise InputError(f"the wells name {len(classes.names)} units; at most 255 are supported")
    result.class_names = classes.names
    return result


def read_well_labels(volume: Volume, tops=None, *, deviation=None, time_depth=None, las: Sequence = (),
                     las_curve: Optional[str] = None, radius: int = 0,
                     class_names: Optional[Sequence[str]] = None) -> WellLabels:
    """:func:`wells_to_labels` from files: a tops CSV, a deviation CSV, a time-depth CSV, LAS files.

    Every file is read and checked before any well is placed.
    """
    from ..io.wells import read_deviation, read_las_log, read_time_depth, read_tops

    well_tops = read_tops(tops) if tops is not None else []
    surveys = read_deviation(deviation) if deviation is not None else None
    tables = read_time_depth(time_depth) if time_depth is not None else None
    logs = [LogWell(*read_las_log(path, las_curve), source=str(path)) for path in las]
    if not well_tops and not logs:
        raise InputError("no wells given: give a tops file or LAS logs")
    return wells_to_labels(volume, well_tops, radius=radius, deviation=surveys, time_depth=tables, logs=logs,
                           class_names=class_names)


def merge_labels(painted: Optional[np.ndarray], wells: np.ndarray) -> np.ndarray:
    """Well labels with painted labels on top: where both exist, the painted one wins."""
    if painted is None:
        return wells
    painted = np.asarray(painted)
    if painted.shape != wells.shape:
        raise InputError(f"the painted labels of shape {painted.shape} do not match the survey's "
                         f"{wells.shape}; paint on the same volume")
    return np.where(painted != 0, painted, wells).astype(np.result_type(painted.dtype, wells.dtype))
