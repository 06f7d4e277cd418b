"""Unit boundaries of a segmented survey as horizons: one row per trace and boundary."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from ..io.atomic import atomic_output
from ..io.volume import Volume

__all__ = ["unit_tops", "write_horizons"]


def unit_tops(labels: np.ndarray, volume: Volume) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Where each class starts going down each trace, below another class.

    Parameters
    ----------
    labels : np.ndarray
        (inline, crossline, sample) classes, 0 = none.
    volume : Volume
        The survey: its scale and translate (and SEG-Y geometry) place the traces and
        samples.

    Returns
    -------
    dict
        Class -> ``(i, j, z)``: array indices of the traces where the class has a top,
        and the top's time or depth, halfway between the last sample above and the first
        sample of the class. A class that starts at the first sample has no top there.
    """
    labels = np.asarray(labels)
    scale = tuple(volume.scale) if volume.scale else (1.0,) * 3
    translate = tuple(volume.translate) if volume.translate else (0.0,) * 3
    tops = {}
    for value in np.unique(labels):
        if value == 0:
            continue
        inside = labels == value
        first = inside.argmax(axis=2)
        i, j = np.nonzero(inside.any(axis=2) & (first > 0))
        above = labels[i, j, first[i, j] - 1]
        keep = above != 0  # a top under nothing (a data gap) is not a boundary
        i, j = i[keep], j[keep]
        z = translate[2] + (first[i, j] - 0.5) * scale[2]
        tops[int(value)] = (i, j, z)
    return tops


def write_horizons(path: str | Path, labels: np.ndarray, volume: Volume,
                   class_names: Optional[Sequence[str] | Mapping[int, str]] = None, overwrite: bool = False) -> int:
    """Write the tops of every class as CSV: ``horizon, inline, crossline, x, y, <time|depth>``.

    ``class_names``: a name per label value, as a mapping, or as a sequence for the
    values 1, 2, ... (other values are called ``class <value>``).

    ``x`` and ``y`` are map coordinates where the survey has them (else empty); inline
    and crossline are line numbers (SEG-Y) or world coordinates. Returns the rows written.
    """
    geometry = volume.geometry
    scale = tuple(volume.scale) if volume.scale else (1.0,) * 3
    translate = tuple(volume.translate) if volume.translate else (0.0,) * 3
    domain = getattr(geometry, "domain", None) or volume.metadata.get("domain", "depth")
    rows = 0
    with atomic_output(Path(path), overwrite=overwrite) as target:
        with open(target, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["horizon", "inline", "crossline", "x", "y", "time" if domain == "time" else "depth"])
            for value, (i, j, z) in unit_tops(labels, volume).items():
                if isinstance(class_names, Mapping):
                    name = class_names.get(value, f"class {value}")
                else:
                    name = class_names[value - 1] if class_names and value <= len(class_names) else f"class {value}"
                if geometry is not None:
                    inline, crossline = np.asarray(geometry.inlines)[i], np.asarray(geometry.crosslines)[j]
                else:
                    inline, crossline = translate[0] + i * scale[0], translate[1] + j * scale[1]
                if getattr(geometry, "transform", None) is not None:
                    x, y = geometry.lines_to_xy(inline, crossline)
                    xy = [(f"{a:.2f}", f"{b:.2f}") for a, b in zip(x, y)]
                else:
                    xy = [("", "")] * len(i)
                for a, b, (x_text, y_text), depth in zip(inline, crossline, xy, z):
                    writer.writerow([f"top {name}", f"{a:g}", f"{b:g}", x_text, y_text, f"{depth:g}"])
                rows += len(i)
    return rows
