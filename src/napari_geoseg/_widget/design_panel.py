"""The network design and training settings of the widget: preset, custom depths and
ranks, iterations, block side and device, as one form.

The presets, the widget's proposals for them (:func:`~napari_geoseg.train.presets.live_defaults`)
and the device list come from the engine's torch-free modules; the device list imports
torch when the panel is built.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Optional

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLineEdit, QSpinBox, QWidget

from ..errors import GeosegError
from ..train.presets import live_defaults

if TYPE_CHECKING:
    from ..train.presets import Preset

__all__ = ["DesignPanel", "CUSTOM"]

#: The preset choice whose depths and ranks are typed in.
CUSTOM = "custom"


def _numbers(edit: QLineEdit, what: str) -> tuple[int, ...]:
    """Positive whole numbers typed in ``edit`` (commas or spaces between them)."""
    try:
        values = tuple(int(v) for v in edit.text().replace(",", " ").split())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise GeosegError(f"custom {what}: give positive whole numbers, one per level, such as 2, 2, 4")
    return values


class DesignPanel(QWidget):
    """Preset (or custom depths and ranks), iterations, block, depth channel and device.

    Choosing a preset proposes its :func:`live_defaults` for block and iterations, for the
    kind of image given to :meth:`set_mode`; values the user typed are kept.

    Parameters
    ----------
    presets : dict
        Name -> :class:`~napari_geoseg.train.Preset`, in the order to offer them; the first
        is the base of custom designs.
    parent : QWidget, optional
    """

    def __init__(self, presets: dict[str, Preset], parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._presets = dict(presets)
        self._mode = "volume"
        self._proposed: Optional[tuple[int, int]] = None  # block and iterations last proposed
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.preset_combo = QComboBox()
        # Names only, so the panel stays narrow; the descriptions are tooltips.
        for name, preset in self._presets.items():
            self.preset_combo.addItem(name, name)
            self.preset_combo.setItemData(self.preset_combo.count() - 1, preset.description,
                                          Qt.ItemDataRole.ToolTipRole)
        self.preset_combo.addItem("custom", CUSTOM)
        self.preset_combo.setItemData(self.preset_combo.count() - 1, "custom depths and ranks per level",
                                      Qt.ItemDataRole.ToolTipRole)
        self.depths_edit, self.ranks_edit = QLineEdit(), QLineEdit()
        self.depths_edit.setToolTip("layers per level, e.g. 2, 2, 4")
        self.ranks_edit.setToolTip("block rank per level, e.g. 4, 8, 16")
        self.iterations_spin = QSpinBox()
        self.iterations_spin.setRange(1, 1_000_000)
        self.block_spin = QSpinBox()
        self.block_spin.setRange(8, 4096)
        self.block_spin.setSingleStep(8)
        self.block_spin.setToolTip("side of the training sub-volumes in voxels: smaller blocks make each "
                                   "iteration, and so each update of the prediction, quicker")
        self.flatten_check = QCheckBox("Depth follows the layers")
        self.flatten_check.setToolTip("volumes: the network sees each voxel's depth flattened along the "
                                      "reflectors instead of the plain depth; turn off for units that cut "
                                      "across the layers (channels, salt)")
        self.flatten_check.setChecked(self._base().flatten)
        # The CPU until set_devices lists the GPUs: finding them imports torch, which the
        # widget does in a thread rather than pause napari for it.
        self.device_combo = QComboBox()
        self.device_combo.addItem("cpu")
        form.addRow("Preset", self.preset_combo)
        form.addRow("Depths", self.depths_edit)
        form.addRow("Ranks", self.ranks_edit)
        form.addRow("Iterations", self.iterations_spin)
        form.addRow("Block", self.block_spin)
        form.addRow("", self.flatten_check)
        form.addRow("Device", self.device_combo)
        self.preset_combo.currentIndexChanged.connect(self._preset_changed)
        self._preset_changed()

    @property
    def custom(self) -> bool:
        """True when custom depths and ranks are chosen."""
        return self.preset_combo.currentData() == CUSTOM

    def preset(self) -> Preset:
        """The chosen :class:`~napari_geoseg.train.Preset` (custom depths and ranks checked),
        with the depth channel ticked."""
        name = self.preset_combo.currentData()
        flatten = self.flatten_check.isChecked()
        if name != CUSTOM:
            chosen = self._presets[name]
            return chosen if chosen.flatten == flatten else dataclasses.replace(chosen, flatten=flatten)
        depths, ranks = _numbers(self.depths_edit, "depths"), _numbers(self.ranks_edit, "ranks")
        if len(depths) != len(ranks):
            raise GeosegError(f"custom design: {len(depths)} depths but {len(ranks)} ranks; give one of each per level")
        return dataclasses.replace(self._base(), name=CUSTOM, depths=depths, ranks=ranks, up_depths=None,
                                   description="custom depths and ranks", flatten=flatten)

    def select_preset(self, preset: Preset, flatten: Optional[bool] = None) -> None:
        """Show ``preset`` (a model's): by name if it is a known one, else as a custom design
        with its block and iterations; tick the depth box as ``flatten`` (default: the
        preset's)."""
        flatten = preset.flatten if flatten is None else flatten
        self.flatten_check.setChecked(flatten)
        known = self._presets.get(preset.name)
        if known is not None:
            known = dataclasses.replace(known, flatten=preset.flatten)  # the box shows that one
        self.preset_combo.setCurrentIndex(self.preset_combo.findData(preset.name if known == preset else CUSTOM))
        if known != preset:
            self.depths_edit.setText(", ".join(map(str, preset.depths)))
            self.ranks_edit.setText(", ".join(map(str, preset.ranks)))
            self.block_spin.setValue(preset.block)
            self.iterations_spin.setValue(preset.iterations)

    def set_devices(self, devices: list[str]) -> None:
        """Offer ``devices`` (:func:`~napari_geoseg.train.devices.available_devices`),
        keeping the one chosen if it is among them."""
        chosen = self.device_combo.currentText()
        self.device_combo.clear()
        self.device_combo.addItems(devices)
        if chosen in devices:
            self.device_combo.setCurrentText(chosen)

    def device(self) -> str:
        """The chosen torch device (``"cpu"``, ``"cuda"``, ...)."""
        return self.device_combo.currentText()

    def set_editable(self, editable: bool) -> None:
        """Allow changes (not while training); depths and ranks only for a custom design."""
        for widget in (self.preset_combo, self.iterations_spin, self.block_spin, self.flatten_check,
                       self.device_combo):
            widget.setEnabled(editable)
        for widget in (self.depths_edit, self.ranks_edit):
            widget.setEnabled(editable and self.custom)

    def _base(self) -> Preset:
        return self._presets[next(iter(self._presets))]

    def _preset_changed(self, *_) -> None:
        name = self.preset_combo.currentData()
        base = self._presets.get(name) or self._base()
        custom = name == CUSTOM
        # Choosing custom keeps the depths and ranks shown (a preset's, or typed ones) to edit.
        if not custom or not self.depths_edit.text():
            self.depths_edit.setText(", ".join(map(str, base.depths)))
            self.ranks_edit.setText(", ".join(map(str, base.ranks)))
        self.depths_edit.setEnabled(custom)
        self.ranks_edit.setEnabled(custom)
        self.preset_combo.setToolTip(self.preset_combo.itemData(self.preset_combo.currentIndex(),
                                                                Qt.ItemDataRole.ToolTipRole))
        if not custom:
            self._propose(base)

    def _propose(self, preset: Preset) -> None:
        block, iterations = live_defaults(preset, self._mode)
        self.iterations_spin.setValue(iterations)
        self.block_spin.setValue(block)
        self._proposed = (block, iterations)

    def set_mode(self, mode: str) -> None:
        """The kind of image to train on next: re-propose block and iterations for it,
        unless the user changed the proposed ones or a custom design is chosen."""
        if mode == self._mode:
            return
        self._mode = mode
        untouched = self._proposed == (self.block_spin.value(), self.iterations_spin.value())
        if untouched and not self.custom:
            self._propose(self._presets[self.preset_combo.currentData()])
