"""Well files: unit tops (CSV), deviation surveys (CSV), time-depth tables (CSV), LAS logs.

Every reader checks its file whole before anything is placed in a survey, and reports a
mistake in one line that names the file, the row (1 = the header row) and the well.
Column names are matched without regard to case or surrounding spaces.

Tops
    ``well, x, y, depth, unit`` (map coordinates) or ``well, inline, crossline, depth,
    unit`` (line numbers), optionally ``bottom``. ``depth`` is the top of ``unit`` in the
    volume's vertical unit (ms for time, m for depth); in a well with a deviation survey
    it is the measured depth along the hole instead. A unit runs down to the next top of
    the same well, so a well's tops must deepen row by row; the last unit ends at its
    row's ``bottom`` where given, else at the bottom of the volume.
Deviation surveys
    ``well, md, inc, azi``: measured depth, inclination from vertical and azimuth from
    grid north, in degrees; the first station is taken at the well's top position.
Time-depth tables
    ``depth, time`` (true vertical depth, two-way time in ms), with a ``well`` column for
    one table per well; rows without a well (or a file without the column) are the table
    of every well that has none of its own.
LAS
    A discrete log (zone, facies, lithology) indexed by measured depth: each run of one
    code becomes a unit named after the code. The curve is the one asked for, else the
    first whose name says ZONE, FACIES or LITH.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError
from ._guard import unreadable

__all__ = ["Top", "WellTops", "DeviationSurvey", "TimeDepth", "read_tops", "read_deviation",
           "read_time_depth", "read_las_log", "tops_from_rows", "DISCRETE_CURVE_WORDS"]

#: Words that mark a LAS curve as a discrete log of units when no curve is named.
DISCRETE_CURVE_WORDS = ("ZONE", "FACIES", "LITH")


@dataclass(frozen=True)
class Top:
    """The top of ``unit`` at ``depth``; ``row`` is where it came from, for messages."""

    depth: float
    unit: str
    row: int
    bottom: Optional[float] = None


@dataclass
class WellTops:
    """A well's position and its unit tops, from the top down.

    ``position`` is ``(x, y)`` in map coordinates when ``kind == "xy"``, or
    ``(inline, crossline)`` when ``kind == "lines"``; ``path`` is the tops file and
    ``source`` names its first row (``"tops.csv: row 2"``), for messages.
    """

    name: str
    kind: str
    position: tuple[float, float]
    tops: list[Top] = field(default_factory=list)
    path: str = ""
    source: str = ""


@dataclass(frozen=True)
class DeviationSurvey:
    """Stations of a well's deviation survey: measured depth, inclination, azimuth (degrees)."""

    well: str
    md: np.ndarray
    inclination: np.ndarray
    azimuth: np.ndarray
    source: str = ""


@dataclass(frozen=True)
class TimeDepth:
    """Two-way time (ms) against true vertical depth for one well, or for all (``well=None``)."""

    well: Optional[str]
    depth: np.ndarray
    time: np.ndarray
    source: str = ""

    def times(self, depths: np.ndarray, what: str) -> np.ndarray:
        """Two-way times of ``depths``; ``what`` names them in the error when not covered."""
        depths = np.asarray(depths, float)
        outside = (depths < self.depth[0]) | (depths > self.depth[-1])
        if np.any(outside):
            first = float(depths[outside][0])
            raise InputError(f"{self.source}: the time-depth table ({self.depth[0]:g}..{self.depth[-1]:g} m) does "
                             f"not cover {what} at depth {first:g} m; extend the table")
        return np.interp(depths, self.depth, self.time)


def _rows(path: Path, required: tuple[tuple[str, ...], ...], kind: str):
    """Rows of a CSV file as dicts keyed by lower-case column name, with their row numbers.

    ``required`` holds alternatives: each entry lists column names of which one set must
    all be present (``(("well", "x", "y"), ("well", "inline", "crossline"))``).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such {kind} file")
    with unreadable(str(path), f"{kind} file"):
        with open(path, newline="", encoding="utf-8-sig") as file:
            sample = file.read(4096)
            file.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            reader = csv.reader(file, dialect)
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path}: the {kind} file is empty; give a CSV file with a header row")
            names = [h.strip().lower() for h in header]
            rows = [(number, dict(zip(names, (v.strip() for v in values))))
                    for number, values in enumerate(reader, start=2) if any(v.strip() for v in values)]
    for columns in required:
        if all(c in names for c in columns):
            return names, columns, rows
    wanted = " or ".join(", ".join(columns) for columns in required)
    raise InputError(f"{path}: the {kind} file has columns {', '.join(names)}; it needs {wanted}")


def _number(path: Path, row: int, column: str, text: str, well: str = "") -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        where = f" (well {well})" if well else ""
        raise InputError(f"{path}: row {row}{where}: {column} {text!r} is not a number; fix the row")
    return value


def read_tops(path: str | Path) -> list[WellTops]:
    """Read a tops CSV file (see the module notes); wells in order of first appearance.

    Raises
    ------
    InputError
        Missing columns, a value that is not a number, a well whose position changes
        between rows, tops that do not deepen, a bottom above its top.
    """
    path = Path(path)
    _, columns, rows = _rows(path, (("well", "x", "y", "depth", "unit"),
                                    ("well", "inline", "crossline", "depth", "unit")), "tops")
    return tops_from_rows(rows, "xy" if "x" in columns else "lines", str(path))


def tops_from_rows(rows, kind: str, source: str) -> list[WellTops]:
    """Wells from rows of tops, checked as :func:`read_tops` checks a file.

    Parameters
    ----------
    rows : iterable of (int, dict)
        Row number and values by column name (``well``, ``x``/``y`` or
        ``inline``/``crossline``, ``depth``, ``unit``, optionally ``bottom``), as text
        or numbers.
    kind : {"xy", "lines"}
        Whether positions are map coordinates or line numbers.
    source : str
        Names the rows in messages (a file name, "the wells table").
    """
    first, second = ("x", "y") if kind == "xy" else ("inline", "crossline")
    wells: dict[str, WellTops] = {}
    for row, values in rows:
        values = {k: str(v).strip() if v is not None else "" for k, v in values.items()}
        name = values.get("well", "")
        if not name:
            raise InputError(f"{source}: row {row} names no well; give every top its well")
        position = (_number(source, row, first, values.get(first, ""), name),
                    _number(source, row, second, values.get(second, ""), name))
        depth = _number(source, row, "depth", values.get("depth", ""), name)
        unit = values.get("unit", "")
        if not unit:
            raise InputError(f"{source}: row {row} (well {name}) names no unit; give every top its unit")
        bottom = values.get("bottom") or None
        bottom = _number(source, row, "bottom", bottom, name) if bottom is not None else None
        if bottom is not None and bottom <= depth:
            raise InputError(f"{source}: row {row} (well {name}): bottom {bottom:g} is not below the top {depth:g}; "
                             f"fix the row")
        well = wells.setdefault(name, WellTops(name, kind, position, path=source, source=f"{source}: row {row}"))
        if not np.allclose(position, well.position):
            raise InputError(f"{source}: row {row} (well {name}): the well moves from {well.position} to {position}; "
                             f"give one position per well (deviated wells: a deviation survey)")
        if well.tops and depth <= well.tops[-1].depth:
            raise InputError(f"{source}: row {row} (well {name}): top of {unit} at {depth:g} is not below the top "
                             f"of {well.tops[-1].unit} at {well.tops[-1].depth:g}; list each well's tops from "
                             f"the top down")
        if well.tops and well.tops[-1].bottom is not None and depth < well.tops[-1].bottom:
            raise InputError(f"{source}: row {row} (well {name}): top {depth:g} is above the bottom "
                             f"{well.tops[-1].bottom:g} of the unit before it; fix the rows")
        well.tops.append(Top(depth, unit, row, bottom))
    if not wells:
        raise InputError(f"{source}: no tops; give one row per top")
    return list(wells.values())


def read_deviation(path: str | Path) -> dict[str, DeviationSurvey]:
    """Read deviation surveys (``well, md, inc, azi``), by well.

    Raises
    ------
    InputError
        Missing columns, non-numbers, measured depths that do not increase, an
        inclination outside 0..180 degrees, a well with a single station.
    """
    path = Path(path)
    _, _, rows = _rows(path, (("well", "md", "inc", "azi"),), "deviation survey")
    stations: dict[str, list[tuple[int, float, float, float]]] = {}
    for row, values in rows:
        name = values["well"]
        md, inc, azi = (_number(path, row, c, values[c], name) for c in ("md", "inc", "azi"))
        if not 0 <= inc <= 180:
            raise InputError(f"{path}: row {row} (well {name}): inclination {inc:g} is not within 0..180 degrees")
        previous = stations.setdefault(name, [])
        if previous and md <= previous[-1][1]:
            raise InputError(f"{path}: row {row} (well {name}): measured depth {md:g} does not increase; list "
                             f"each well's stations from the top down")
        previous.append((row, md, inc, azi))
    surveys = {}
    for name, rows_of_well in stations.items():
        if len(rows_of_well) < 2:
            raise InputError(f"{path}: row {rows_of_well[0][0]} (well {name}): a deviation survey needs at least "
                             f"two stations")
        values = np.array([r[1:] for r in rows_of_well], float)
        surveys[name] = DeviationSurvey(name, values[:, 0], values[:, 1], values[:, 2],
                                        source=f"{path}: row {rows_of_well[0][0]}")
    return surveys


def read_time_depth(path: str | Path) -> dict[Optional[str], TimeDepth]:
    """Read time-depth tables, by well (``None``: the table of every other well).

    Raises
    ------
    InputError
        Missing columns, non-numbers, depth or time that do not increase, a table of
        fewer than two rows.
    """
    path = Path(path)
    names, _, rows = _rows(path, (("depth", "time"),), "time-depth")
    tables: dict[Optional[str], list[tuple[int, float, float]]] = {}
    for row, values in rows:
        name = values.get("well") or None
        depth = _number(path, row, "depth", values["depth"], name or "")
        time = _number(path, row, "time", values["time"], name or "")
        previous = tables.setdefault(name, [])
        if previous and (depth <= previous[-1][1] or time <= previous[-1][2]):
            raise InputError(f"{path}: row {row}{f' (well {name})' if name else ''}: depth and time must both "
                             f"increase from row to row")
        previous.append((row, depth, time))
    result = {}
    for name, entries in tables.items():
        if len(entries) < 2:
            raise InputError(f"{path}: row {entries[0][0]}: a time-depth table needs at least two rows")
        values = np.array([e[1:] for e in entries], float)
        label = f"{path} (well {name})" if name else str(path)
        result[name] = TimeDepth(name, values[:, 0], values[:, 1], source=label)
    if not result:
        raise InputError(f"{path}: no rows in the time-depth file")
    return result


def read_las_log(path: str | Path, curve: Optional[str] = None) -> tuple[str, Optional[tuple[float, float]],
                                                                         np.ndarray, np.ndarray]:
    """A discrete log from a LAS file.

    Parameters
    ----------
    path : str or Path
    curve : str, optional
        The curve's mnemonic; default: the first whose name holds one of
        :data:`DISCRETE_CURVE_WORDS`.

    Returns
    -------
    well : str
        The well name (``~Well`` section WELL, else the file name's stem).
    position : (x, y) or None
        XCOORD / YCOORD (or X / Y) of the ``~Well`` section where given.
    depth : np.ndarray
        Measured depth of each sample.
    codes : np.ndarray
        The log's code at each sample (NaN where null).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such LAS file")
    try:
        import lasio
    except ImportError:
        raise InputError(f"{path}: reading LAS files needs the lasio package; pip install lasio") from None
    with unreadable(str(path), "LAS file"):
        las = lasio.read(str(path))
    mnemonics = [c.mnemonic for c in las.curves]
    if curve is None:
        found = [m for m in mnemonics[1:] if any(word in m.upper() for word in DISCRETE_CURVE_WORDS)]
        if not found:
            raise InputError(f"{path}: no curve named like {', '.join(DISCRETE_CURVE_WORDS)} among "
                             f"{', '.join(mnemonics)}; name the discrete log to use")
        curve = found[0]
    elif curve not in mnemonics:
        raise InputError(f"{path}: no curve {curve!r}; the file has {', '.join(mnemonics)}")

    def header(*keys):
        for key in keys:
            if key in las.well and str(las.well[key].value).strip():
                return las.well[key].value
        return None

    name = str(header("WELL") or path.stem).strip()
    x, y = header("XCOORD", "X"), header("YCOORD", "Y")
    try:
        position = (float(x), float(y)) if x is not None and y is not None else None
    except (TypeError, ValueError):
        position = None
    depth = np.asarray(las.index, float)
    codes = np.asarray(las[curve], float)
    if depth.size < 2 or np.any(np.diff(depth) <= 0):
        raise InputError(f"{path}: the depth index must increase down the file")
    known = codes[np.isfinite(codes)]
    if known.size and np.any(known != np.round(known)):
        raise InputError(f"{path}: curve {curve} holds non-integer values; give a discrete log (zones, facies)")
    return name, position, depth, codes
