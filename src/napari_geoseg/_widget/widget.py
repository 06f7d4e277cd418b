"""The "Interactive segmentation" dock widget: paint, train live, see the prediction.

Threads: training and prediction run in :mod:`napari_geoseg.train.session` threads; this
widget polls their queues with a 50 ms timer on the GUI thread and is the only code that
touches layers. Labels are copied (engine order) on the GUI thread before they are
handed over, after strokes have been quiet for :data:`DEBOUNCE_MS`.

The driving API (used by scripts and tests): ``image_layer`` and ``labels_layer``
(settable), :meth:`SegmentationWidget.start_training`, :meth:`~SegmentationWidget.stop_training`,
``is_training``, ``prediction_layer``, :meth:`~SegmentationWidget.save_model`,
:meth:`~SegmentationWidget.load_model` and :meth:`~SegmentationWidget.apply_model`.

The parts: :class:`~.class_table.ClassTable` (class names and colours),
:class:`~.design_panel.DesignPanel` (preset, design, block, iterations,
device) and :mod:`.notify` (errors as notifications); this module wires
them to the viewer's layers, the training session, the output layers and model files.

torch is imported when the widget is built, not when this module is imported.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
from qtpy.QtCore import QEvent, QTimer, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from ..errors import GeosegError, add_hint
from ..train.session import (
    Finished,
    LiveSession,
    Message,
    PredictionJob,
    PredictionUpdate,
    TrainingUpdate,
    default_threads,
    rename_classes,
    warm_up,
)
from . import layers as _layers
from .class_table import ClassTable
from .design_panel import DesignPanel
from .notify import HINTS, notify, user_errors
from .plot import TrainingPlot
from .wells_panel import WellsPanel

if TYPE_CHECKING:  # the engine imports torch: only for type checkers
    from ..train import Preset

__all__ = ["SegmentationWidget", "DEBOUNCE_MS"]

logger = logging.getLogger(__name__)

#: Strokes quiet for this long are handed to the training thread.
DEBOUNCE_MS = 600
#: How often the GUI reads what the threads reported.
POLL_MS = 50
#: How long closing waits for a thread to end its current iteration.
JOIN_SECONDS = 10.0
#: Training starts this long after Train, once napari has drawn the new output layers.
START_DELAY_MS = 150
#: How often the widget looks whether the warm-up thread has listed torch's devices.
DEVICE_POLL_MS = 100


def _unwrap(obj):
    """The object behind napari's PublicOnlyProxy (plugins get the viewer through one).

    The widget keeps layers in lists and dictionaries and compares them by identity;
    proxies are made afresh on every access, so two of the same layer are not ``is``.
    Only public attributes are used on what is unwrapped.
    """
    return getattr(obj, "__wrapped__", obj)


def _section(title: str, content: QWidget, expanded: bool = False) -> QCollapsible:
    """A titled section that folds away with a click on its title."""
    section = QCollapsible(title)
    section.setContent(content)
    if expanded:
        section.expand(animate=False)
    else:
        section.collapse(animate=False)
    return section


def _narrow(combo: QComboBox) -> QComboBox:
    """A combo box whose width does not follow its longest entry (layer names can be long)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(8)
    return combo


def _shutdown(threads: list, warm_up_thread: Optional[threading.Thread] = None, *_) -> None:
    """Stop and join background threads (also called after the widget's C++ side is gone).

    The warm-up thread is joined too: a thread still inside torch when the interpreter
    exits makes the process abort ("terminate called without an active exception").
    """
    for thread in threads:
        thread.stop()
    deadline = time.monotonic() + JOIN_SECONDS
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.1))
    if warm_up_thread is not None:
        warm_up_thread.join(max(deadline - time.monotonic(), 0.1))


class SegmentationWidget(QWidget):
    """Interactive segmentation of the image layer from the labels painted on it.

    Parameters
    ----------
    napari_viewer : napari.Viewer

    Signals
    -------
    labels_handed(int)
        New strokes were handed to training as this labels generation.
    prediction_shown(int)
        A prediction trained on this labels generation was written into the layers.
    """

    labels_handed = Signal(int)
    prediction_shown = Signal(int)

    def __init__(self, napari_viewer, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        from ..train import PRESETS  # imports torch: when the widget opens, not when napari starts

        self.viewer = _unwrap(napari_viewer)
        self._image_choices: list = []
        self._labels_choices: list = []
        self._apply_choices: list = []
        self._last_session: Optional[LiveSession] = None
        self._session: Optional[LiveSession] = None
        self._session_layers: Optional[tuple] = None  # the running session's (image, labels) layers
        self._progress_text = ""  # the last training progress, for the status line
        self._was_docked = False  # closing an undocked widget is not closing the viewer
        self._threads: list = []  # every thread not yet joined (sessions stopping, prediction jobs)
        self._jobs: dict = {}  # PredictionJob -> image layer
        self._outputs: dict = {}  # image layer id -> OutputLayers
        self._model = None
        self._model_source = ""
        self._handed: Optional[np.ndarray] = None
        self._watched = None
        self._progress_bars: dict = {}
        self._to_refresh: list = []
        self._started = 0.0
        self._closed = False
        self._outputs_pending = False  # a _prepare_outputs call is queued
        #: Generation of the newest labels handed to training, and of the newest prediction shown.
        self.labels_generation = 0
        self.shown_generation = -1
        self._warm_up = warm_up()
        self.destroyed.connect(functools.partial(_shutdown, self._threads, self._warm_up))
        self._build(PRESETS)
        self._connect_viewer()
        self._refresh_layer_choices()
        QTimer.singleShot(DEVICE_POLL_MS, self._offer_devices)

    def _offer_devices(self) -> None:
        """List torch's devices in the design panel once the warm-up thread has them."""
        if self._closed:
            return
        if self._warm_up.devices is not None:
            self.design.set_devices(self._warm_up.devices)
        elif self._warm_up.is_alive():
            QTimer.singleShot(DEVICE_POLL_MS, self._offer_devices)
        else:  # the warm-up failed before listing them: ask here
            from ..train.devices import available_devices

            self.design.set_devices(available_devices())

    # -- building ------------------------------------------------------------------------
    def _build(self, presets: dict) -> None:
        # Collapsible sections, only Data open: the widget stays narrow and short, and
        # leaves the canvas most of the window.
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        data = QWidget()
        form = QFormLayout(data)
        form.setContentsMargins(0, 0, 0, 0)
        self.image_combo = _narrow(QComboBox())
        self.labels_combo = _narrow(QComboBox())
        self.new_labels_button = QPushButton("New")
        self.new_labels_button.setToolTip("add an empty labels layer of the image's shape")
        row = QHBoxLayout()
        row.addWidget(self.labels_combo, 1)
        row.addWidget(self.new_labels_button)
        form.addRow("Image", self.image_combo)
        form.addRow("Labels", row)
        self.class_table = ClassTable()
        form.addRow(self.class_table)
        layout.addWidget(_section("Data", data, expanded=True))
        self.wells = WellsPanel(self)
        layout.addWidget(_section("Wells", self.wells))

        settings = QWidget()
        column = QVBoxLayout(settings)
        column.setContentsMargins(0, 0, 0, 0)
        self.design = DesignPanel(presets)
        # The panel's fields, under the names scripts and tests have always used.
        self.preset_combo = self.design.preset_combo
        self.depths_edit, self.ranks_edit = self.design.depths_edit, self.design.ranks_edit
        self.iterations_spin, self.block_spin = self.design.iterations_spin, self.design.block_spin
        self.device_combo, self.flatten_check = self.design.device_combo, self.design.flatten_check
        self.live_check = QCheckBox("Live: pick up new strokes")
        self.live_check.setToolTip("strokes painted while training are added to the labels it trains on")
        self.live_check.setChecked(True)
        self.probabilities_check = QCheckBox("Probabilities")
        self.probabilities_check.setToolTip("also show each class's probability (a layer with a class axis)")
        self.uncertainty_check = QCheckBox("Uncertainty")
        self.uncertainty_check.setToolTip("show where the network is unsure: where to label next")
        self.ordered_check = QCheckBox("Units ordered top down")
        self.ordered_check.setToolTip("volumes: classes are units numbered from the top down; keep that order down "
                                      "every trace (not for salt, intrusions, channels or reverse faults)")
        # A class axis adds a slider to the viewer: off unless asked for.
        self.probabilities_check.setChecked(False)
        self.uncertainty_check.setChecked(True)
        column.addWidget(self.design)
        column.addWidget(self.live_check)
        outputs = QHBoxLayout()
        outputs.addWidget(self.probabilities_check)
        outputs.addWidget(self.uncertainty_check)
        column.addLayout(outputs)
        column.addWidget(self.ordered_check)
        layout.addWidget(_section("Network and training", settings))

        buttons = QHBoxLayout()
        self.train_button = QPushButton("Train")
        self.stop_button = QPushButton("Stop")
        self.new_model_button = QPushButton("New model")
        self.new_model_button.setToolTip("forget the current model: the next Train starts from scratch")
        for button in (self.train_button, self.stop_button, self.new_model_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.status_label = QLabel("Paint at least two classes, then press Train.")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)
        self.plot = TrainingPlot()
        layout.addWidget(self.plot)

        model_box = QWidget()
        form = QFormLayout(model_box)
        form.setContentsMargins(0, 0, 0, 0)
        self.model_label = QLabel("none yet")
        self.model_label.setWordWrap(True)
        row = QHBoxLayout()
        self.save_button, self.load_button = QPushButton("Save..."), QPushButton("Load...")
        self.save_button.setToolTip("save the current model to a file")
        self.load_button.setToolTip("load a model file: train on from it, or apply it")
        row.addWidget(self.save_button)
        row.addWidget(self.load_button)
        self.apply_combo = _narrow(QComboBox())
        self.apply_button = QPushButton("Apply")
        apply_row = QHBoxLayout()
        apply_row.addWidget(self.apply_combo, 1)
        apply_row.addWidget(self.apply_button)
        form.addRow("Current", self.model_label)
        form.addRow(row)
        form.addRow("Apply to", apply_row)
        layout.addWidget(_section("Model", model_box))
        layout.addStretch(1)

        self._poll_timer = QTimer(self)
        self._poll_timer.setInterval(POLL_MS)
        self._poll_timer.timeout.connect(self._poll)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._hand_labels)

        self.new_labels_button.clicked.connect(self._new_labels_clicked)
        self.class_table.class_picked.connect(self._class_picked)
        self.class_table.colours_changed.connect(self._apply_colours)
        self.class_table.names_changed.connect(self._class_renamed)
        self.image_combo.currentIndexChanged.connect(self._image_changed)
        self.labels_combo.currentIndexChanged.connect(self._labels_changed)
        self.train_button.clicked.connect(self.start_training)
        self.stop_button.clicked.connect(self.stop_training)
        self.new_model_button.clicked.connect(self._forget_model)
        self.save_button.clicked.connect(self._save_clicked)
        self.load_button.clicked.connect(self._load_clicked)
        self.apply_button.clicked.connect(self._apply_clicked)
        self._update_buttons()

    # -- the viewer's layers -------------------------------------------------------------
    def _connect_viewer(self) -> None:
        events = self.viewer.layers.events
        events.inserted.connect(self._refresh_layer_choices)
        events.removed.connect(self._layer_removed)
        events.moved.connect(self._refresh_layer_choices)
        self.viewer.dims.events.current_step.connect(self._send_focus)
        self.viewer.dims.events.ndisplay.connect(self._send_focus)
        self.viewer.dims.events.order.connect(self._send_focus)
        for layer in self.viewer.layers:
            layer.events.name.connect(self._refresh_layer_choices)

    def _disconnect_viewer(self) -> None:
        with contextlib.suppress(Exception):
            events = self.viewer.layers.events
            events.inserted.disconnect(self._refresh_layer_choices)
            events.removed.disconnect(self._layer_removed)
            events.moved.disconnect(self._refresh_layer_choices)
            for event in (self.viewer.dims.events.current_step, self.viewer.dims.events.ndisplay,
                          self.viewer.dims.events.order):
                event.disconnect(self._send_focus)
            for layer in self.viewer.layers:
                layer.events.name.disconnect(self._refresh_layer_choices)
        self._watch_labels(None)

    def _refresh_layer_choices(self, event=None) -> None:
        from napari.layers import Image, Labels

        if event is not None and getattr(event, "type", "") == "inserted":
            event.value.events.name.connect(self._refresh_layer_choices)
        image, labels, target = self.image_layer, self.labels_layer, self._apply_target()
        images = [layer for layer in self.viewer.layers if isinstance(layer, Image) and not self._is_output(layer)]
        labels_layers = [layer for layer in self.viewer.layers if isinstance(layer, Labels)
                         and not self._is_output(layer)]
        self._fill(self.image_combo, self._image_choices, images, image)
        self._fill(self.labels_combo, self._labels_choices, labels_layers, labels)
        self._fill(self.apply_combo, self._apply_choices, images, target)
        self._update_buttons()

    def _fill(self, combo: QComboBox, choices: list, layers: list, keep) -> None:
        combo.blockSignals(True)
        combo.clear()
        for layer in layers:
            combo.addItem(layer.name)
        choices[:] = layers
        combo.setCurrentIndex(layers.index(keep) if keep in layers else (0 if layers else -1))
        combo.blockSignals(False)
        if combo is self.image_combo and (keep not in layers):
            self._image_changed()
        if combo is self.labels_combo and (keep not in layers):
            self._labels_changed()

    def _is_output(self, layer) -> bool:
        return any(layer is out.prediction or layer is out.probabilities or layer is out.uncertainty
                   for out in self._outputs.values())

    def _layer_removed(self, event) -> None:
        layer = event.value
        with contextlib.suppress(Exception):
            layer.events.name.disconnect(self._refresh_layer_choices)
        if self._session is not None and layer in (self._session_layers or ()):
            self.stop_training()
            notify("warning", f"training stopped: the layer {layer.name} was removed")
        for job, image in list(self._jobs.items()):
            if image is layer:
                job.stop()
        self._outputs.pop(id(layer), None)
        self._refresh_layer_choices()

    @staticmethod
    def _chosen(combo: QComboBox, choices: list):
        index = combo.currentIndex()
        return choices[index] if 0 <= index < len(choices) else None

    def _choose(self, combo: QComboBox, choices: list, layer, kind: str) -> None:
        layer = _unwrap(layer)
        self._refresh_layer_choices()  # refills ``choices`` in place
        if layer not in choices:
            raise ValueError(f"{getattr(layer, 'name', layer)!r} is not {kind} layer of this viewer")
        combo.setCurrentIndex(choices.index(layer))

    @property
    def image_layer(self):
        """The image to segment (settable to an image layer of the viewer)."""
        return self._chosen(self.image_combo, self._image_choices)

    @image_layer.setter
    def image_layer(self, layer) -> None:
        self._choose(self.image_combo, self._image_choices, layer, "an image")

    @property
    def labels_layer(self):
        """The labels painted on the image (settable to a labels layer of the viewer)."""
        return self._chosen(self.labels_combo, self._labels_choices)

    @labels_layer.setter
    def labels_layer(self, layer) -> None:
        self._choose(self.labels_combo, self._labels_choices, layer, "a labels")

    def _apply_target(self):
        return self._chosen(self.apply_combo, self._apply_choices)

    def _predicted_outputs(self) -> Optional[_layers.OutputLayers]:
        outputs = self._outputs.get(id(self.image_layer))
        return outputs if outputs is not None and outputs.predicted else None

    @property
    def prediction_layer(self):
        """The prediction labels layer of the current image (None until the first prediction)."""
        outputs = self._predicted_outputs()
        return outputs.prediction if outputs is not None else None

    @property
    def probability_layer(self):
        outputs = self._predicted_outputs()
        return outputs.probabilities if outputs is not None else None

    @property
    def uncertainty_layer(self):
        outputs = self._predicted_outputs()
        return outputs.uncertainty if outputs is not None else None

    def _image_changed(self, *_) -> None:
        image = self.image_layer
        if image is not None:
            with contextlib.suppress(GeosegError):  # an unusable layer is reported on Train
                self.design.set_mode(_layers.layer_mode(image))
        self._update_buttons()
        self._prepare_outputs_soon()

    def _labels_changed(self, *_) -> None:
        self._watch_labels(self.labels_layer)
        self.class_table.fill(self.labels_layer, self.image_layer)
        self._update_buttons()
        self._prepare_outputs_soon()

    def _prepare_outputs_soon(self) -> None:
        """Create the chosen image's output layers, empty, one event-loop turn from now.

        napari builds a new layer's visuals on the GUI thread, half a second for a labels
        layer, so they are made when an image and its labels are chosen rather than when
        Train is pressed or the first prediction arrives.
        """
        if not self._outputs_pending:
            self._outputs_pending = True
            QTimer.singleShot(0, self._prepare_outputs)

    def _prepare_outputs(self) -> None:
        self._outputs_pending = False
        image, labels = self.image_layer, self.labels_layer
        if self._closed or image is None or labels is None or image not in self.viewer.layers:
            return
        with contextlib.suppress(GeosegError):  # an image the engine cannot use: Train says why
            if tuple(labels.data.shape) == tuple(_layers.labels_shape(image)):  # labels of this image
                self._make_outputs(image)

    def _make_outputs(self, image) -> None:
        """The prediction layer of ``image`` now, the uncertainty layer one event-loop turn
        later (each pause is one layer's, not both together); existing ones are kept."""
        outputs = self._outputs_for(image)
        outputs.prepare(colormap=self._colormap() if self.class_table.count() else None, uncertainty=False)
        if self.uncertainty_check.isChecked():
            QTimer.singleShot(0, lambda: self._prepare_uncertainty(outputs))
        self._keep_labels_on_top()

    def _watch_labels(self, layer) -> None:
        """Follow strokes on ``layer`` (paint, data replaced, undo and other refreshes)."""
        if self._watched is not None:
            with contextlib.suppress(Exception):
                for event in (self._watched.events.paint, self._watched.events.data, self._watched.events.set_data):
                    event.disconnect(self._labels_edited)
                self._watched.events.selected_label.disconnect(self._selected_label_changed)
        self._watched = layer
        if layer is not None:
            for event in (layer.events.paint, layer.events.data, layer.events.set_data):
                event.connect(self._labels_edited)
            layer.events.selected_label.connect(self._selected_label_changed)

    @user_errors("making a labels layer")
    def _new_labels_clicked(self, *_) -> None:
        self.add_labels_layer()

    def add_labels_layer(self):
        """Add an empty labels layer of the right shape for the image and select it."""
        image = self.image_layer
        if image is None:
            raise GeosegError("no image layer: open an image or a sample first")
        kwargs = _layers.new_labels_layer_kwargs(image)
        layer = self.viewer.add_labels(np.zeros(_layers.labels_shape(image), np.uint8), **kwargs)
        layer.mode = "paint"
        layer.selected_label = 1
        self.labels_layer = layer
        return layer

    # -- classes and design ------------------------------------------------------------------
    def class_names(self) -> dict[int, str]:
        """Label value -> class name, as in the table."""
        return self.class_table.class_names()

    def _class_picked(self, value: int) -> None:
        if self.labels_layer is not None:
            self.labels_layer.selected_label = value

    def _selected_label_changed(self, event=None) -> None:
        value = int(self.labels_layer.selected_label) if self.labels_layer is not None else 0
        self.class_table.ensure_class(value)

    def _class_renamed(self) -> None:
        if self._session is not None:
            self._session.class_names = self.class_names()

    def _colormap(self):
        """The class colours of the table, for the labels and the prediction alike."""
        return self.class_table.colormap()

    def _apply_colours(self) -> None:
        colormap = self._colormap()
        if self.labels_layer is not None:
            self.labels_layer.colormap = colormap
        for outputs in self._outputs.values():
            if outputs.prediction is not None and outputs.prediction in self.viewer.layers:
                outputs.prediction.colormap = colormap

    def preset(self) -> Preset:
        """The chosen :class:`~napari_geoseg.train.Preset` (custom depths and ranks checked)."""
        return self.design.preset()

    # -- training ------------------------------------------------------------------------
    @property
    def is_training(self) -> bool:
        """True from :meth:`start_training` until training is stopped, ends or fails."""
        return self._session is not None and not self._session.done

    @property
    def model(self):
        """The current model: the newest one predicted with while training, else the last one."""
        if self._session is not None and self._session.latest_model() is not None:
            return self._session.latest_model()
        return self._model

    @user_errors("starting training")
    def start_training(self) -> bool:
        """Train on the labels layer (continuing the current model if it fits); True if started."""
        image, labels_layer = self.image_layer, self.labels_layer
        if image is None:
            raise GeosegError("no image layer: open an image or a sample first")
        if labels_layer is None:
            raise GeosegError("no labels layer: press New next to Labels and paint at least two classes")
        if self._session is not None:
            self.stop_training()
        mode = _layers.layer_mode(image)
        engine_image = _layers.engine_image(image)
        labels = _layers.engine_labels(labels_layer, image)
        preset = self.preset()
        model = self._continuable_model(preset, mode, engine_image)
        session = LiveSession(engine_image, labels, preset=preset, iterations=self.iterations_spin.value(),
                              block=self.block_spin.value(), device=self.design.device(), model=model,
                              class_names=self.class_names(), mode=mode, live=self.live_check.isChecked(),
                              threads=default_threads(), ordered_units=self._ordered_units(mode),
                              chunk=_layers.PREDICTION_CHUNK if _layers.disk_backed(image) else None)
        with contextlib.suppress(Exception):  # an unusual view: predict everything first
            session.set_focus(_layers.focus_point(self.viewer, image))
        self._session, self._session_layers = session, (image, labels_layer)
        self._last_session = session
        self._make_outputs(image)  # normally there already, made when the layers were chosen
        self._handed = labels
        self.labels_generation, self.shown_generation = 0, -1
        self._started = time.perf_counter()
        self.plot.clear()
        self._threads.append(session)
        # Let napari draw the new layers first: a thread starting at once would compete
        # with that drawing for Python's GIL and lengthen the pause.
        QTimer.singleShot(START_DELAY_MS, session.start)
        self._poll_timer.start()
        self.status_label.setText("starting: preparing the image and the labels...")
        self._update_buttons()
        return True

    def _ordered_units(self, mode: str) -> bool:
        """Whether predictions keep the units' order: asked for, and the image is a volume."""
        return self.ordered_check.isChecked() and mode == "volume"

    def _continuable_model(self, preset, mode: str, engine_image):
        """The current model if training can continue it on this image with this preset."""
        model = self.model
        if model is None:
            return None
        same = (model.preset.name == preset.name and model.preset.depths == preset.depths
                and model.preset.ranks == preset.ranks and model.layout.mode == mode
                and (mode != "volume" or model.layout.flattened == preset.flatten))
        if not same:
            return None
        try:
            from ..train import Predictor

            Predictor(model).check_image(tuple(engine_image.shape))
        except GeosegError:
            return None
        return model

    def stop_training(self) -> None:
        """Stop training after the current iteration (returns at once; the thread ends soon)."""
        session = self._session
        if session is None:
            return
        self._debounce.stop()
        session.stop()
        self._model = session.latest_model() or self._model
        self._session = None
        self._session_layers = None
        self.status_label.setText(self.status_label.text() + " - stopped")
        self._update_buttons()

    def _forget_model(self) -> None:
        if self.is_training:
            notify("warning", "stop training before starting a new model")
            return
        self._model = None
        self._model_source = ""
        self._update_model_label()

    def _labels_edited(self, event=None) -> None:
        if self._session is not None and self.live_check.isChecked():
            self._debounce.start()

    def _hand_labels(self) -> None:
        """Strokes have been quiet: give the training thread a fresh copy if they changed anything."""
        session = self._session
        if session is None or self._session_layers is None:
            return
        image, labels_layer = self._session_layers
        try:
            view = _layers.engine_labels(labels_layer, image, copy=False)
        except GeosegError as err:
            notify("warning", str(err))
            return
        if self._handed is not None and np.array_equal(view, self._handed):
            return  # a refresh or a change of slice, not a stroke
        data = self._handed = np.array(view, order="C", copy=True)
        self.labels_generation = session.update_labels(data)
        self.labels_handed.emit(self.labels_generation)
        self.status_label.setText(self.status_label.text() + " - new strokes: continuing training")

    def _send_focus(self, event=None) -> None:
        if self._session is not None and self._session_layers is not None:
            with contextlib.suppress(Exception):
                self._session.set_focus(_layers.focus_point(self.viewer, self._session_layers[0]))

    # -- what the threads report ---------------------------------------------------------
    def _poll(self) -> None:
        if self._to_refresh:
            layer = self._to_refresh.pop(0)
            if layer in self.viewer.layers:
                layer.refresh()
        for thread in list(self._threads):
            for item in thread.poll():
                try:
                    self._handle(thread, item)
                except Exception as err:  # never let a display problem escape into Qt
                    logger.debug("showing a result failed", exc_info=True)
                    notify("error", f"showing the result failed: {type(err).__name__}: {err}")
            self._show_progress(thread)
            if thread.done:
                for item in thread.poll():
                    self._handle(thread, item)
                self._threads.remove(thread)
                self._close_progress(thread)
        if not self._threads and not self._to_refresh:
            self._poll_timer.stop()
        if self._session is not None:
            self._update_elapsed()

    def _handle(self, thread, item) -> None:
        current = thread is self._session
        if isinstance(item, Message):
            if current or isinstance(thread, PredictionJob) or item.level == "error":
                notify(item.level, add_hint(item.text, item.option, HINTS))
        elif isinstance(item, Finished):
            self._finished(thread, item)
        elif isinstance(item, TrainingUpdate) and current:
            self._show_training(item)
        elif isinstance(item, PredictionUpdate):
            if isinstance(thread, PredictionJob):
                image = self._jobs.get(thread)
                if item.complete:
                    self._jobs.pop(thread, None)
                if image is not None and image in self.viewer.layers:
                    self._show_prediction(image, item)
                    if item.complete:
                        self.status_label.setText(f"applied the model to {image.name}")
            elif current and item.generation >= thread.generation:  # older generations are stale
                self._show_prediction(self._session_layers[0], item)
                self.shown_generation = item.generation
                if self.model_label.text() == "none yet" or item.complete:
                    self._update_model_label()  # the model predicted with can be saved now
                    self._update_buttons()
                self.prediction_shown.emit(item.generation)
                if item.final:
                    self.status_label.setText(self._progress_text + " - done; paint more to continue"
                                              if self.live_check.isChecked() else self._progress_text + " - done")


    def _show_training(self, update: TrainingUpdate) -> None:
        progress = update.progress
        accuracy = "-" if progress.validation_accuracy is None else f"{progress.validation_accuracy:.1%}"
        self._progress_text = (f"iteration {progress.iteration}/{progress.iterations}   loss {progress.loss:.3f}   "
                               f"validation accuracy {accuracy}")
        self._update_elapsed()
        self.plot.add(update.step, progress.loss, progress.validation_accuracy)

    def _update_elapsed(self) -> None:
        if self._progress_text:
            elapsed = int(time.perf_counter() - self._started)
            self.status_label.setText(f"{self._progress_text}   elapsed {elapsed // 60}:{elapsed % 60:02d}")

    def _outputs_for(self, image) -> _layers.OutputLayers:
        outputs = self._outputs.get(id(image))
        if outputs is None:
            outputs = self._outputs[id(image)] = _layers.OutputLayers(self.viewer, image)
        return outputs

    def _prepare_uncertainty(self, outputs: _layers.OutputLayers) -> None:
        if not self._closed and outputs.image_layer in self.viewer.layers:
            outputs.prepare(uncertainty=True)
            self._keep_labels_on_top()

    def _keep_labels_on_top(self) -> None:
        """Keep painting on the user's labels, above the outputs."""
        self._refresh_layer_choices()
        labels = self.labels_layer
        if labels is not None and labels in self.viewer.layers:
            index = self.viewer.layers.index(labels)
            if index != len(self.viewer.layers) - 1:
                self.viewer.layers.move(index, len(self.viewer.layers))
            self.viewer.layers.selection.active = labels

    def _show_prediction(self, image, update: PredictionUpdate) -> None:
        outputs = self._outputs_for(image)
        colormap = self._colormap() if image is self.image_layer and self.class_table.count() else None
        was_new = outputs.prediction is None or outputs.prediction not in self.viewer.layers
        written = outputs.show(update.prediction, update.region, colormap=colormap,
                               probabilities=self.probabilities_check.isChecked(),
                               uncertainty=self.uncertainty_check.isChecked())
        # Refreshing a layer costs napari ~30 ms: the prediction now, the others one per
        # poll, so that the GUI never pauses for all of them at once.
        written[0].refresh()
        for layer in written[1:]:
            if layer not in self._to_refresh:
                self._to_refresh.append(layer)
        if was_new:
            self._keep_labels_on_top()
        if update.masked and update.final:
            notify("warning", f"{update.masked} voxels have NaN or Inf samples: predicted as 0")

    def _finished(self, thread, item: Finished) -> None:
        self._jobs.pop(thread, None)
        if isinstance(thread, LiveSession):
            if thread is self._session:
                self._model = thread.latest_model() or self._model
                self._session = None
                self._session_layers = None
                if item.reason == "done":
                    self.status_label.setText(self._progress_text + " - done")
            elif thread is self._last_session and self._session is None and thread.latest_model() is not None:
                self._model = thread.latest_model()  # the weights of its last iteration
            self._update_model_label()
        self._update_buttons()

    def _show_progress(self, thread) -> None:
        """napari's progress bar for whole-image predictions of several blocks."""
        state = thread.prediction_progress
        bar = self._progress_bars.get(thread)
        if state is None or (state[1] < 4 and not isinstance(thread, PredictionJob)):
            if bar is not None:
                self._close_progress(thread)
            return
        if bar is None:
            from napari.utils import progress

            bar = self._progress_bars[thread] = progress(total=max(state[1], 1), desc="predicting")
        if state[1]:
            bar.total = state[1]
            bar.n = state[0]
            bar.refresh()

    def _close_progress(self, thread) -> None:
        bar = self._progress_bars.pop(thread, None)
        if bar is not None:
            bar.close()

    # -- models ----------------------------------------------------------------------------
    def _update_model_label(self) -> None:
        model = self.model
        if model is None:
            self.model_label.setText("none yet")
            return
        names = ", ".join(rename_classes(model, self.class_names()).class_names)
        source = f" ({self._model_source})" if self._model_source else ""
        self.model_label.setText(f"{model.preset.name}, {model.layout.mode}, {model.n_classes} classes: "
                                 f"{names}{source}")

    @user_errors("saving the model")
    def save_model(self, path, overwrite: bool = False) -> Optional[Path]:
        """Write the current model (with the class names of the table) to ``path``."""
        model = self.model
        if model is None:
            raise GeosegError("no model to save: train one first (or load one)")
        model = rename_classes(model, self.class_names())
        transform = _layers._info(self.image_layer).get("transform") if self.image_layer is not None else None
        if transform is not None and model.transform is None:  # where the survey it was trained on lies
            model.transform = transform
        saved = model.save(path, overwrite=overwrite)
        notify("info", f"saved the model to {saved}")
        return saved

    @user_errors("loading the model")
    def load_model(self, path):
        """Read a model file; the next Train continues it, and Apply uses it."""
        from ..train import Model

        if self.is_training:
            raise GeosegError("stop training before loading a model")
        model = Model.load(path)
        self._model, self._model_source = model, Path(path).name
        self.class_table.set_names(dict(zip(model.class_ids, model.class_names)))
        # The model file, not its preset, says which depth channel it was trained with.
        self.design.select_preset(model.preset, flatten=model.layout.flattened if model.layout.mode == "volume"
                                  else None)
        self._update_model_label()
        self._update_buttons()
        return model

    @user_errors("applying the model")
    def apply_model(self, layer=None) -> bool:
        """Predict ``layer`` (default: the "Apply to" choice) with the current model, in the background."""
        layer = _unwrap(layer) if layer is not None else self._apply_target()
        model = self.model
        if model is None:
            raise GeosegError("no model to apply: train one first (or load one)")
        if layer is None:
            raise GeosegError("no image layer to apply the model to")
        mode = _layers.layer_mode(layer)
        if mode != model.layout.mode:
            raise GeosegError(f"{layer.name}: a {mode} image, but the model was trained on {model.layout.mode} "
                              f"images; pick another layer or model")
        job = PredictionJob(model, _layers.engine_image(layer), device=self.design.device(),
                            threads=default_threads(), ordered_units=self._ordered_units(mode),
                            chunk=_layers.PREDICTION_CHUNK if _layers.disk_backed(layer) else None)
        self._jobs[job] = layer
        self._threads.append(job)
        job.start()
        self._poll_timer.start()
        self.status_label.setText(f"applying the model to {layer.name}...")
        return True

    def _save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save model", "model.pt", "napari-geoseg model (*.pt)")
        if path:
            # The dialog has asked about replacing an existing file.
            self.save_model(path, overwrite=True)

    def _load_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load model", "", "napari-geoseg model (*.pt);;all files (*)")
        if path:
            self.load_model(path)

    def _apply_clicked(self) -> None:
        self.apply_model()

    def _update_buttons(self) -> None:
        training = self._session is not None
        ready = self.image_layer is not None and self.labels_layer is not None
        self.train_button.setEnabled(ready and not training)
        self.stop_button.setEnabled(training)
        self.new_model_button.setEnabled(not training)
        self.load_button.setEnabled(not training)
        self.new_labels_button.setEnabled(self.image_layer is not None)
        self.save_button.setEnabled(self.model is not None)
        self.apply_button.setEnabled(self.model is not None and self._apply_target() is not None)
        for widget in (self.image_combo, self.labels_combo, self.live_check):
            widget.setEnabled(not training)
        self.design.set_editable(not training)

    # -- closing ---------------------------------------------------------------------------
    def close_session(self) -> None:
        """Stop everything and wait (bounded) for the threads; the widget is unusable after."""
        if self._closed:
            return
        self._closed = True
        self._debounce.stop()
        self._poll_timer.stop()
        self._session = None
        _shutdown(self._threads, self._warm_up)
        for thread in list(self._progress_bars):
            self._close_progress(thread)
        self._disconnect_viewer()

    def closeEvent(self, event) -> None:
        self.close_session()
        super().closeEvent(event)

    def event(self, event) -> bool:
        # Removed from its dock (the dock's close button, or the viewer closing): stop.
        if event.type() == QEvent.Type.ParentChange:
            # getattr: Qt may send this while QWidget.__init__ runs, before __init__ sets it.
            if self.parent() is None and getattr(self, "_was_docked", False):
                self.close_session()
            elif self.parent() is not None:
                self._was_docked = True
        return super().event(event)
