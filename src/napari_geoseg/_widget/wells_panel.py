"""The widget's Wells section: boreholes whose unit tops become labels, and horizons out.

Tops, deviation surveys, time-depth tables and LAS logs are read by
:mod:`napari_geoseg.io.wells` and placed by :func:`napari_geoseg.data.wells.wells_to_labels`,
as on the command line. The table of tops is what is placed: rows loaded from a file,
typed, or added by clicking a trace (with "Add well" on, each click on the image adds a
top of the class picked in the class table at the clicked depth, in a well at the first
click's trace). Every change places the wells again in a worker thread; their labels are
written into the labels layer where it is unpainted, and the voxels the wells labelled
before are cleared first unless the user has painted over them, so live training picks
the change up as it does a stroke. The holes are drawn in a Points layer named after
the image.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

import numpy as np
from qtpy.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .._axes import engine_order
from ..errors import InputError
from . import layers as _layers
from .notify import notify, user_errors

__all__ = ["WellsPanel", "TOPS_COLUMNS"]

#: Columns of the tops table, as in a tops CSV with line numbers.
TOPS_COLUMNS = ("well", "inline", "crossline", "depth", "unit")
#: The table shows this many rows before it scrolls: the canvas keeps the window.
VISIBLE_ROWS = 4


class WellsPanel(QWidget):
    """Wells of the widget's image: files, a table of tops, click to add, horizons out.

    Parameters
    ----------
    widget : SegmentationWidget
        Gives the viewer, the image and labels layers, the class table and the prediction.
    """

    def __init__(self, widget) -> None:
        super().__init__()
        self.widget = widget
        self.deviation: dict = {}
        self.time_depth: dict = {}
        self.logs: list = []
        self.paths: dict[str, np.ndarray] = {}
        #: Voxels the wells labelled last time (engine indices) and their classes.
        self._drawn: Optional[tuple[tuple[np.ndarray, ...], np.ndarray, object]] = None
        self._worker = None
        self._pending = False
        self._clicking_well: Optional[str] = None
        self._build()

    # -- building ------------------------------------------------------------------------
    def _build(self) -> None:
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        files = QGridLayout()
        self.tops_button = QPushButton("Tops...")
        self.deviation_button = QPushButton("Deviation...")
        self.time_depth_button = QPushButton("Time-depth...")
        self.las_button = QPushButton("LAS...")
        for k, (button, tip) in enumerate((
                (self.tops_button, "unit tops, CSV: well, x, y (or inline, crossline), depth, unit"),
                (self.deviation_button, "deviation surveys, CSV: well, md, inc, azi"),
                (self.time_depth_button, "time-depth tables, CSV: [well,] depth, time"),
                (self.las_button, "LAS files with a discrete log (zone, facies)"))):
            button.setToolTip(tip)
            files.addWidget(button, k // 2, k % 2)  # two by two: the widget stays narrow
        column.addLayout(files)
        self.table = QTableWidget(0, len(TOPS_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(TOPS_COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        row_height = self.table.verticalHeader().defaultSectionSize()
        self.table.setMaximumHeight(row_height * (VISIBLE_ROWS + 1) + 4)
        column.addWidget(self.table)
        actions = QGridLayout()
        self.add_well_button = QPushButton("Add well")
        self.add_well_button.setCheckable(True)
        self.add_well_button.setToolTip("click a trace on the image: each click adds a top of the class picked in "
                                        "the class table at the clicked depth")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("remove the selected tops")
        self.radius_spin = QSpinBox()
        self.radius_spin.setRange(0, 50)
        self.radius_spin.setPrefix("radius ")
        self.radius_spin.setToolTip("also label the traces up to this many traces away from each well")
        self.horizons_button = QPushButton("Horizons...")
        self.horizons_button.setToolTip("write the predicted unit tops as horizons, CSV: one row per trace")
        for k, w in enumerate((self.add_well_button, self.remove_button, self.radius_spin, self.horizons_button)):
            actions.addWidget(w, k // 2, k % 2)
        column.addLayout(actions)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        column.addWidget(self.status)

        self.tops_button.clicked.connect(lambda: self._open("tops", self.load_tops))
        self.deviation_button.clicked.connect(lambda: self._open("deviation surveys", self.load_deviation))
        self.time_depth_button.clicked.connect(lambda: self._open("time-depth tables", self.load_time_depth))
        self.las_button.clicked.connect(self._open_las)
        self.remove_button.clicked.connect(self._remove_selected)
        self.horizons_button.clicked.connect(self._horizons_clicked)
        self.add_well_button.toggled.connect(self._add_mode)
        self.radius_spin.valueChanged.connect(lambda *_: self.place())
        self.table.itemChanged.connect(lambda *_: self.place())

    def _open(self, what: str, load) -> None:
        path, _ = QFileDialog.getOpenFileName(self, f"Open {what}", "", "CSV (*.csv *.txt);;All files (*)")
        if path:
            load(path)

    def _open_las(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open LAS files", "", "LAS (*.las *.LAS);;All files (*)")
        if paths:
            self.load_las(paths)

    # -- the survey ------------------------------------------------------------------------
    def survey(self):
        """The image layer as a Volume description (geometry, scale, translate), without data."""
        from .._writer import _like_volume

        image = self.widget.image_layer
        if image is None:
            raise InputError("no image: open a survey first")
        if _layers.layer_mode(image) != "volume":
            raise InputError(f"{image.name}: wells go into 3D volumes (seismic, property grids), not a "
                             f"{_layers.layer_mode(image)} image")
        engine = _layers.engine_image(image)
        volume = _like_volume(engine, _layers._info(image))
        if volume is None:  # a layer from elsewhere: array indices
            from ..io import Volume

            volume = Volume(np.broadcast_to(np.zeros((), np.float32), engine.shape), source=image.name)
        return volume

    # -- files -----------------------------------------------------------------------------
    @user_errors("reading the tops")
    def load_tops(self, path) -> None:
        """Put the tops of a CSV file into the table (map coordinates become line numbers)."""
        from ..io.wells import read_tops

        wells = read_tops(path)
        survey = self.survey()
        self.table.blockSignals(True)
        for well in wells:
            position = well.position
            if well.kind == "xy":
                geometry = survey.geometry
                if getattr(geometry, "transform", None) is None:
                    self.table.blockSignals(False)
                    raise InputError(f"{path}: the tops are in map coordinates but {survey.source or 'the image'} "
                                     f"has none; give the wells' inline and crossline instead")
                inline, crossline = geometry.xy_to_lines(np.array([position[0]]), np.array([position[1]]))
                position = (float(inline[0]), float(crossline[0]))
            for top in well.tops:
                self._append_row(well.name, position, top.depth, top.unit)
        self.table.blockSignals(False)
        self.place()

    @user_errors("reading the deviation surveys")
    def load_deviation(self, path) -> None:
        from ..io.wells import read_deviation

        self.deviation.update(read_deviation(path))
        self.place()

    @user_errors("reading the time-depth tables")
    def load_time_depth(self, path) -> None:
        from ..io.wells import read_time_depth

        self.time_depth.update(read_time_depth(path))
        self.place()

    @user_errors("reading the LAS files")
    def load_las(self, paths) -> None:
        from ..data.wells import LogWell
        from ..io.wells import read_las_log

        self.logs += [LogWell(*read_las_log(path), source=str(path)) for path in paths]
        self.place()

    # -- the table -------------------------------------------------------------------------
    def _append_row(self, well: str, position, depth: float, unit: str) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        for column, value in enumerate((well, f"{position[0]:g}", f"{position[1]:g}", f"{depth:g}", unit)):
            self.table.setItem(row, column, QTableWidgetItem(str(value)))

    def add_top(self, well: str, position, depth: float, unit: str) -> None:
        """Add a row to the table and place the wells again."""
        self.table.blockSignals(True)
        self._append_row(well, position, depth, unit)
        self.table.blockSignals(False)
        self.place()

    def rows(self) -> list[tuple[int, dict]]:
        """The table's rows (row number from 1) sorted by well and depth, as the engine reads them."""
        rows = []
        for r in range(self.table.rowCount()):
            values = {name: (self.table.item(r, c).text() if self.table.item(r, c) is not None else "")
                      for c, name in enumerate(TOPS_COLUMNS)}
            rows.append((r + 1, values))

        def depth(entry):
            try:
                return float(entry[1]["depth"])
            except ValueError:
                return float("inf")

        order = {name: k for k, name in enumerate(dict.fromkeys(v["well"] for _, v in rows))}
        return sorted(rows, key=lambda entry: (order[entry[1]["well"]], depth(entry)))

    def _remove_selected(self) -> None:
        for row in sorted({index.row() for index in self.table.selectedIndexes()}, reverse=True):
            self.table.removeRow(row)
        self.place()

    # -- clicking wells ---------------------------------------------------------------------
    def _add_mode(self, on: bool) -> None:
        image = self.widget.image_layer
        self._clicking_well = None
        layers = [layer for layer in (image, self.widget.labels_layer) if layer is not None]
        for layer in layers:
            callbacks = layer.mouse_drag_callbacks
            if on and self._clicked not in callbacks:
                callbacks.append(self._clicked)
            elif not on and self._clicked in callbacks:
                callbacks.remove(self._clicked)
        if on:
            self.status.setText("Click the top of each unit along one trace; pick the unit in the class table "
                                "first. Press Add well again when the well is done.")

    def _clicked(self, layer, event) -> None:
        if event.type != "mouse_press":
            return
        self.add_click(layer.world_to_data(event.position), layer)

    @user_errors("adding a top")
    def add_click(self, data_point, layer=None) -> None:
        """Add a top at a point of the image layer (layer data coordinates)."""
        image = self.widget.image_layer
        layer = layer or image
        order = engine_order(layer.metadata, len(data_point))
        point = [float(data_point[a]) for a in order]  # engine order: (inline, crossline, sample)
        survey = self.survey()
        shape = survey.shape
        index = [int(round(p)) for p in point]
        if any(not 0 <= i < s for i, s in zip(index, shape)):
            return  # a click beside the volume
        scale = survey.scale or (1.0, 1.0, 1.0)
        translate = survey.translate or (0.0, 0.0, 0.0)
        geometry = survey.geometry
        if geometry is not None:
            position = (float(geometry.inlines[index[0]]), float(geometry.crosslines[index[1]]))
        else:
            position = (translate[0] + index[0] * scale[0], translate[1] + index[1] * scale[1])
        depth = translate[2] + point[2] * scale[2]
        value = int(self.widget.labels_layer.selected_label) if self.widget.labels_layer is not None else 1
        unit = self.widget.class_names().get(value, f"class {value}")
        if self._clicking_well is None:
            names = {self.table.item(r, 0).text() for r in range(self.table.rowCount()) if self.table.item(r, 0)}
            n = len(names) + 1
            while f"W{n}" in names:
                n += 1
            self._clicking_well = f"W{n}"
            self._well_position = position
        self.add_top(self._clicking_well, self._well_position, round(depth, 3), unit)

    # -- placing -----------------------------------------------------------------------------
    def place(self) -> None:
        """Place the wells of the table and files again, in a worker thread."""
        if self.table.rowCount() == 0 and not self.logs:
            self._show(None)
            return
        if self._worker is not None:
            self._pending = True  # placed again when this one is done
            return
        try:
            survey = self.survey()
            rows = self.rows()
        except InputError as err:
            notify("error", str(err))
            return
        labels = self.widget.labels_layer
        painted = _layers.engine_labels(labels, self.widget.image_layer, copy=False) if labels is not None else None
        from napari.qt.threading import create_worker

        # Errors go to _failed (a notification), not to napari's traceback dialog.
        worker = create_worker(functools.partial(_place, survey, rows, self.radius_spin.value(), self.deviation,
                                                 self.time_depth, list(self.logs), self.widget.class_names(),
                                                 painted), _ignore_errors=True)
        worker.returned.connect(self._placed)
        worker.errored.connect(self._failed)
        worker.finished.connect(self._done)
        self._worker = worker
        self.status.setText("placing the wells...")
        worker.start()

    def _done(self) -> None:
        self._worker = None
        if self._pending:
            self._pending = False
            self.place()

    def _failed(self, err) -> None:
        if isinstance(err, InputError):
            notify("error", str(err))
            self.status.setText(str(err))
        else:
            notify("error", f"placing the wells failed: {type(err).__name__}: {err}")

    @property
    def busy(self) -> bool:
        """Whether wells are being placed (for scripts and tests)."""
        return self._worker is not None or self._pending

    def _placed(self, drawn) -> None:
        self._show(drawn)

    def _show(self, drawn) -> None:
        """Write the wells' labels into the labels layer and draw their holes."""
        labels_layer, image = self.widget.labels_layer, self.widget.image_layer
        if labels_layer is None or image is None:
            return
        view = _layers.engine_labels(labels_layer, image, copy=False)
        changed = False
        if self._drawn is not None and self._drawn[2] is labels_layer:
            index, values, _ = self._drawn
            mine = view[index] == values  # voxels painted over since keep the paint
            cleared = tuple(i[mine] for i in index)
            view[cleared] = 0
            changed = bool(mine.any())
        self._drawn = None
        if drawn is not None:
            index = np.nonzero(drawn.labels)
            values = drawn.labels[index].astype(view.dtype)
            free = view[index] == 0  # painted labels win
            index = tuple(i[free] for i in index)
            view[index] = values[free]
            self._drawn = (index, values[free], labels_layer)
            changed = changed or bool(free.any())
            self.widget.class_table.set_names(dict(enumerate(drawn.class_names, start=1)))
            self.paths = drawn.paths
            self.status.setText(", ".join(f"{w}: {n} voxels" for w, n in drawn.labelled.items()))
        else:
            self.paths = {}
            self.status.setText("")
        if changed:
            labels_layer.refresh()
            self.widget._labels_edited()
        self._draw_paths(image)

    def _draw_paths(self, image) -> None:
        """The holes as points, one per voxel they cross, named at their top.

        Points, not 3D paths: napari shows a point on the slice it lies in, so a vertical
        well is a line on the sections through it and a dot on every time slice, where a
        3D path would show on no time slice at all.
        """
        viewer = self.widget.viewer
        name = f"{image.name} wells"
        existing = next((layer for layer in viewer.layers if layer.name == name), None)
        if not self.paths:
            if existing is not None:
                viewer.layers.remove(existing)
            return
        # Engine indices -> the image layer's axes (sections show time down).
        to_layer = np.argsort(engine_order(image.metadata, 3))
        points, labels = [], []
        shape = np.asarray(_layers.engine_image(image).shape[:3])
        for well, path in self.paths.items():
            path = np.asarray(path)
            rounded = np.round(path).astype(np.int64)
            inside = np.all((rounded >= 0) & (rounded < shape), axis=1)
            voxels = np.unique(rounded[inside], axis=0, return_index=True)[1]
            along = path[inside][np.sort(voxels)]
            if not len(along):
                continue
            points.append(along[:, to_layer])
            labels += [well] + [""] * (len(along) - 1)
        points = np.concatenate(points)
        if existing is not None:
            viewer.layers.remove(existing)
        viewer.add_points(points, name=name, size=0.6, face_color="yellow", border_width=0,
                          scale=image.scale, translate=image.translate, units=image.units,
                          properties={"well": labels}, out_of_slice_display=False,
                          text={"string": "{well}", "size": 10, "color": "yellow", "anchor": "upper_left"})
        viewer.layers.selection.active = self.widget.labels_layer

    # -- horizons ------------------------------------------------------------------------------
    @user_errors("writing horizons")
    def _horizons_clicked(self, *_) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Write horizons", "horizons.csv", "CSV (*.csv)")
        if path:
            self.write_horizons(path, overwrite=True)  # the dialog has asked already

    def write_horizons(self, path, overwrite: bool = False) -> int:
        """Write the predicted unit tops of the image as CSV; returns the rows written."""
        from ..data.horizons import write_horizons

        prediction = self.widget.prediction_layer
        if prediction is None:
            raise InputError("no prediction yet: train, or apply a model, first")
        image = self.widget.image_layer
        labels = np.asarray(_layers.engine_labels(prediction, image, copy=False))
        names = self.widget.class_names()
        class_names = [names.get(v, f"class {v}") for v in range(1, max(names, default=0) + 1)]
        rows = write_horizons(Path(path), labels, self.survey(), class_names, overwrite=overwrite)
        notify("info", f"wrote {rows} horizon rows to {path}")
        return rows


def _place(survey, rows, radius, deviation, time_depth, logs, names: dict[int, str], painted):
    """The wells of the table and files in ``survey`` (run in a worker thread).

    Units take the classes named after them; a class that is painted keeps its number
    even when it still has its default name, and units take the free numbers after.
    """
    from ..data.wells import wells_to_labels
    from ..io.wells import tops_from_rows

    named = {v for v, n in names.items() if n != f"class {v}"}
    used = set(np.flatnonzero(np.bincount(np.asarray(painted).ravel().astype(np.int64)))) if painted is not None \
        else set()
    taken = max(named | {int(v) for v in used if v > 0}, default=0)
    class_names = [names.get(v, f"class {v}") for v in range(1, taken + 1)]

    tops = tops_from_rows(rows, "lines", "the wells table") if rows else []
    return wells_to_labels(survey, tops, radius=radius, deviation=deviation, time_depth=time_depth, logs=logs,
                           class_names=class_names, extend_classes=True)
