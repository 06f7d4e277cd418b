"""The table of classes of the widget: label value, class name and colour, one row each.

The value is what is painted for a class; the name travels with the model (shown,
saved); the colour is used for the labels and the prediction alike. The table knows
nothing of training or of the viewer: the widget listens to its signals.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QColor
from qtpy.QtWidgets import QColorDialog, QHeaderView, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

__all__ = ["ClassTable"]

#: Colour of a new row while there is no labels layer to take it from.
NO_LAYER_COLOUR = (0.5, 0.5, 0.5, 1.0)
#: Every labels layer starts with these classes: training needs at least two.
FIRST_CLASSES = (1, 2)


class ClassTable(QWidget):
    """Label values, class names and colours, with an "Add class" button below.

    Signals
    -------
    class_picked(int)
        The user chose this label value to paint with (a row clicked, or a class added).
    colours_changed()
        The user changed a class colour: :meth:`colormap` has it.
    names_changed()
        A cell changed (a class renamed, most often).
    """

    class_picked = Signal(int)
    colours_changed = Signal()
    names_changed = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        #: The labels layer the rows belong to: its colormap colours new rows.
        self.labels_layer = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["label", "class name", "colour"])
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMaximumHeight(120)
        self.table.setToolTip("click a row to paint that class; double-click a colour to change it")
        self.add_class_button = QPushButton("Add class")
        layout.addWidget(self.table)
        layout.addWidget(self.add_class_button)
        self.add_class_button.clicked.connect(self._add_class)
        self.table.cellClicked.connect(self._clicked)
        self.table.cellDoubleClicked.connect(self._double_clicked)
        self.table.itemChanged.connect(self._item_changed)

    # -- reading -----------------------------------------------------------------------------
    def count(self) -> int:
        """The number of classes (rows)."""
        return self.table.rowCount()

    def class_values(self) -> list[int]:
        """The label values of the rows, top to bottom."""
        return [int(self.table.item(r, 0).text()) for r in range(self.table.rowCount())]

    def class_names(self) -> dict[int, str]:
        """Label value -> class name, for the rows with a name."""
        names = {}
        for row in range(self.table.rowCount()):
            value, name = self.table.item(row, 0), self.table.item(row, 1)
            if value is not None and name is not None and name.text().strip():
                names[int(value.text())] = name.text().strip()
        return names

    def colormap(self):
        """The class colours as a napari ``DirectLabelColormap`` (0 transparent)."""
        from napari.utils.colormaps import DirectLabelColormap

        colours: dict[Any, Any] = {None: "transparent", 0: "transparent"}
        for row in range(self.table.rowCount()):
            colours[int(self.table.item(row, 0).text())] = list(self.table.item(row, 2).data(Qt.ItemDataRole.UserRole))
        return DirectLabelColormap(color_dict=colours)

    # -- writing -----------------------------------------------------------------------------
    def fill(self, labels_layer, image_layer=None) -> None:
        """One row per class of ``labels_layer``: the values painted, and the names its or
        the image's ``geoseg`` metadata gives, and at least classes 1 and 2.

        Parameters
        ----------
        labels_layer : napari.layers.Labels or None
            None empties the table.
        image_layer : napari.layers.Image, optional
            Its ``class_names`` metadata names the classes the labels' own does not.
        """
        self.labels_layer = labels_layer
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        self.table.blockSignals(False)
        if labels_layer is None:
            return
        data = np.asarray(labels_layer.data)
        # bincount is much quicker than unique on the usual small unsigned labels.
        values = (np.flatnonzero(np.bincount(data.ravel())) if data.dtype.kind == "u" and data.dtype.itemsize <= 2
                  else np.unique(data))
        known: dict[int, str] = {}
        for source in (labels_layer, image_layer):
            names = ((getattr(source, "metadata", None) or {}).get("geoseg") or {}).get("class_names") or []
            for k, name in enumerate(names, start=1):
                known.setdefault(k, str(name))
        values = sorted({int(v) for v in values if v > 0} | set(known) | set(FIRST_CLASSES))
        for value in values:
            self.add_class_row(value, known.get(value, f"class {value}"))

    def add_class_row(self, value: int, name: str) -> None:
        """Append a row, coloured as the labels layer shows ``value``."""
        layer = self.labels_layer
        rgba = layer.colormap.map(value) if layer is not None else NO_LAYER_COLOUR
        rgba = np.asarray(rgba, float).ravel()
        row = self.table.rowCount()
        self.table.blockSignals(True)
        self.table.insertRow(row)
        value_item = QTableWidgetItem(str(value))
        value_item.setFlags(value_item.flags() & ~Qt.ItemFlag.ItemIsEditable)
        colour_item = QTableWidgetItem("")
        colour_item.setFlags(colour_item.flags() & ~Qt.ItemFlag.ItemIsEditable)
        colour_item.setBackground(QColor.fromRgbF(*[float(c) for c in rgba[:3]]))
        colour_item.setData(Qt.ItemDataRole.UserRole, [float(c) for c in rgba[:4]])
        self.table.setItem(row, 0, value_item)
        self.table.setItem(row, 1, QTableWidgetItem(name))
        self.table.setItem(row, 2, colour_item)
        self.table.blockSignals(False)

    def ensure_class(self, value: int) -> None:
        """Add a row for ``value`` (a label chosen in napari's layer controls) if it has none."""
        if value > 0 and value not in self.class_values():
            self.add_class_row(value, f"class {value}")

    def set_names(self, names: dict[int, str]) -> None:
        """Rename the rows of these values; add rows for values the table does not have."""
        rows = {v: r for r, v in enumerate(self.class_values())}
        for value, name in names.items():
            if value in rows:
                self.table.item(rows[value], 1).setText(name)
            else:
                self.add_class_row(int(value), name)

    # -- the user ------------------------------------------------------------------------------
    def _add_class(self) -> None:
        value = max(self.class_values(), default=0) + 1
        self.add_class_row(value, f"class {value}")
        self.class_picked.emit(value)

    def _item_changed(self, _item) -> None:
        self.names_changed.emit()

    def _clicked(self, row: int, column: int) -> None:
        if column != 2:  # the colour column opens the colour dialog instead
            self.class_picked.emit(self.class_values()[row])

    def _double_clicked(self, row: int, column: int) -> None:
        if column != 2:
            return
        item = self.table.item(row, 2)
        colour = QColorDialog.getColor(item.background().color(), self, "Class colour")
        if colour.isValid():
            item.setBackground(colour)
            item.setData(Qt.ItemDataRole.UserRole, [colour.redF(), colour.greenF(), colour.blueF(), 1.0])
            self.colours_changed.emit()
