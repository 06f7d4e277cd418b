"""The "Interactive segmentation" widget in a real (headless, Xvfb) napari viewer.

Tiny volumes and small training blocks keep every test to seconds; run with
``OMP_NUM_THREADS=1``. The widget is driven through its scripting API, as the
responsiveness benchmark and users' scripts do.
"""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari.utils.notifications import notification_manager

from napari_geoseg._axes import to_engine, to_layer
from napari_geoseg._reader import image_layer_data, labels_layer_data
from napari_geoseg.data import synthetic_seismic
from napari_geoseg.io import Volume

ENGINE_SHAPE = (24, 20, 32)  # (inline, crossline, sample): not a cube, so a wrong permutation shows
TIMEOUT = 120_000  # ms; a shared 2-core machine can be slow


def add_seismic(viewer, shape=ENGINE_SHAPE, seed=0, name="seismic", labels=True):
    """Layers as the plugin's reader makes them: sections with time down."""
    volume = synthetic_seismic(shape, seed=seed)
    image = image_layer_data(Volume(volume.image, axes=("inline", "crossline", "sample")), mode="volume", name=name)
    image_layer = viewer.add_image(image[0], **image[1])
    labels_layer = None
    if labels:
        data, kwargs, _ = labels_layer_data(volume.labels, image, f"{name} labels")
        labels_layer = viewer.add_labels(np.array(data), **kwargs)
    return volume, image_layer, labels_layer


@pytest.fixture
def notifications():
    seen = []
    notification_manager.notification_ready.connect(seen.append)
    yield seen
    notification_manager.notification_ready.disconnect(seen.append)


@pytest.fixture
def widget_on(make_napari_viewer):
    def make(iterations=1000, block=16, **kwargs):
        viewer = make_napari_viewer(**kwargs)
        _, widget = viewer.window.add_plugin_dock_widget("napari-geoseg", "Interactive segmentation")
        widget.iterations_spin.setValue(iterations)
        widget.block_spin.setValue(block)
        return viewer, widget

    return make


def texts(notes, severity=None):
    return [str(n.message) for n in notes if severity is None or str(n.severity) == severity]


def wait_for_threads(qtbot, widget):
    qtbot.waitUntil(lambda: not widget._threads, timeout=TIMEOUT)


def test_importing_the_widget_module_does_not_import_torch():
    code = "import sys, napari_geoseg._widget; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False"]


def test_output_layers_are_made_when_the_layers_are_chosen_not_on_train(widget_on, qtbot):
    # Adding a layer pauses napari for its visuals: the prediction and uncertainty layers
    # are made, empty, once an image and labels are chosen, so Train adds none.
    viewer, widget = widget_on()
    _, image, labels = add_seismic(viewer)
    widget.image_layer, widget.labels_layer = image, labels
    qtbot.waitUntil(lambda: len(viewer.layers) == 4, timeout=10_000)
    names = [layer.name for layer in viewer.layers]
    assert names == ["seismic", "seismic prediction", "seismic uncertainty", "seismic labels"]
    assert viewer.layers.selection.active is labels  # painting goes on where it was
    assert widget.prediction_layer is None  # nothing predicted yet
    assert widget.image_layer is image and widget.labels_layer is labels
    assert widget.start_training()
    assert [layer.name for layer in viewer.layers] == names
    qtbot.waitUntil(lambda: widget.prediction_layer is viewer.layers["seismic prediction"], timeout=TIMEOUT)
    widget.stop_training()
    wait_for_threads(qtbot, widget)


def test_the_whole_loop(widget_on, qtbot, tmp_path, notifications, capfd):
    viewer, widget = widget_on()
    volume, image, labels = add_seismic(viewer)
    _, other, _ = add_seismic(viewer, shape=(16, 24, 24), seed=5, name="other survey", labels=False)
    before = labels.data.copy()
    widget.image_layer, widget.labels_layer = image, labels
    widget.probabilities_check.setChecked(True)
    viewer.dims.set_current_step(0, 10)  # inline 10 on screen

    assert widget.start_training()
    assert widget.is_training
    qtbot.waitUntil(lambda: widget.prediction_layer is not None, timeout=TIMEOUT)
    prediction = widget.prediction_layer
    assert prediction.data.shape == image.data.shape  # (inline, sample, crossline) like the image
    assert prediction.metadata["geoseg"]["order"] == image.metadata["geoseg"]["order"]
    qtbot.waitUntil(lambda: widget.shown_generation == 0 and len(np.unique(prediction.data[10])) >= 2,
                    timeout=TIMEOUT)
    # The section on screen first, then everything.
    qtbot.waitUntil(lambda: np.count_nonzero(prediction.data == 0) == 0, timeout=TIMEOUT)
    assert len(np.unique(prediction.data)) >= 2
    assert widget.probability_layer.data.shape == (3, *image.data.shape)
    assert widget.uncertainty_layer.data.shape == image.data.shape
    # The model predicted with can be saved while training goes on.
    assert widget.save_button.isEnabled()
    assert widget.save_model(tmp_path / "while training.pt").is_file()

    # A stroke, as a user makes it: the next prediction comes from the labels with it.
    truth = to_layer(volume.truth, image.metadata)
    labels.selected_label = int(truth[5, 3, 3])
    labels.brush_size = 3
    labels.paint((5, 3, 3), labels.selected_label)
    stroke = labels.data.copy()
    qtbot.waitUntil(lambda: widget.labels_generation == 1, timeout=10_000)
    qtbot.waitUntil(lambda: widget.shown_generation >= 1, timeout=TIMEOUT)
    assert widget.prediction_layer is prediction  # updated in place, not added again

    widget.stop_training()
    assert not widget.is_training
    wait_for_threads(qtbot, widget)
    np.testing.assert_array_equal(labels.data, stroke)  # the user's labels, untouched by training
    assert np.count_nonzero(stroke != before) > 0

    path = widget.save_model(tmp_path / "model.pt")
    assert path is not None and path.is_file()
    assert widget.load_model(path) is not None
    assert widget.model.class_ids == [1, 2, 3]

    assert widget.apply_model(other)
    qtbot.waitUntil(lambda: "other survey prediction" in viewer.layers, timeout=TIMEOUT)
    applied = viewer.layers["other survey prediction"]
    assert applied.data.shape == other.data.shape
    assert set(np.unique(applied.data)) <= {1, 2, 3}
    wait_for_threads(qtbot, widget)
    assert not texts(notifications, "error")
    assert "Traceback" not in capfd.readouterr().err


def test_start_and_stop_ten_times_quickly(widget_on, qtbot, notifications):
    viewer, widget = widget_on()
    _, image, labels = add_seismic(viewer)
    before = labels.data.copy()
    widget.image_layer, widget.labels_layer = image, labels
    for _ in range(10):
        assert widget.start_training()
        qtbot.wait(20)
        widget.stop_training()
        assert not widget.is_training
    wait_for_threads(qtbot, widget)
    assert widget.train_button.isEnabled() and not widget.stop_button.isEnabled()
    np.testing.assert_array_equal(labels.data, before)
    assert not texts(notifications, "error")
    # and it still trains afterwards
    assert widget.start_training()
    qtbot.waitUntil(lambda: widget.prediction_layer is not None, timeout=TIMEOUT)
    widget.stop_training()
    wait_for_threads(qtbot, widget)


def test_closing_the_viewer_while_training_stops_the_thread(widget_on, qtbot, capfd):
    viewer, widget = widget_on()
    _, image, labels = add_seismic(viewer)
    widget.image_layer, widget.labels_layer = image, labels
    widget.start_training()
    session = widget._session
    qtbot.waitUntil(lambda: "iteration" in widget.status_label.text(), timeout=TIMEOUT)
    viewer.close()
    assert session.join(30)
    assert not session.is_alive
    assert "Traceback" not in capfd.readouterr().err


def test_closing_the_viewer_right_away_ends_the_warm_up_thread(widget_on):
    # A thread still inside torch at interpreter exit aborts the process, so closing
    # waits for the warm-up that the widget starts when it opens.
    viewer, widget = widget_on()
    warm_up = widget._warm_up
    viewer.close()
    assert not warm_up.is_alive()


def test_closing_the_widget_stops_training(widget_on, qtbot):
    viewer, widget = widget_on()
    _, image, labels = add_seismic(viewer)
    widget.image_layer, widget.labels_layer = image, labels
    widget.start_training()
    session = widget._session
    viewer.window.remove_dock_widget(widget)
    assert session.join(30)
    assert not widget._threads or all(not t.is_alive for t in widget._threads)


def test_errors_reach_the_user_as_notifications(widget_on, qtbot, tmp_path, notifications, capfd):
    viewer, widget = widget_on()
    _, image, labels = add_seismic(viewer)
    widget.image_layer = image
    # one class only
    one_class = viewer.add_labels(np.where(labels.data > 0, 1, 0).astype(np.uint8), name="one class",
                                  metadata=labels.metadata)
    before = one_class.data.copy()
    widget.labels_layer = one_class
    assert widget.start_training()
    qtbot.waitUntil(lambda: any("label at least two classes" in t for t in texts(notifications, "error")),
                    timeout=TIMEOUT)
    qtbot.waitUntil(lambda: not widget.is_training, timeout=TIMEOUT)
    np.testing.assert_array_equal(one_class.data, before)
    # labels of another shape
    viewer.add_labels(np.zeros((5, 5, 5), np.uint8), name="wrong shape")
    widget.labels_layer = viewer.layers["wrong shape"]
    assert widget.start_training() is None
    assert any("do not fit the image" in t for t in texts(notifications, "error"))
    # a file that is not a model; saving over an existing file
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    assert widget.load_model(junk) is None
    assert any("not a napari-geoseg model file" in t for t in texts(notifications, "error"))
    assert widget.save_model(tmp_path / "none.pt") is None
    assert any("no model to save" in t for t in texts(notifications, "error"))
    # a bad custom design
    widget.preset_combo.setCurrentIndex(widget.preset_combo.findData("custom"))
    widget.ranks_edit.setText("4, 8")
    widget.labels_layer = labels
    assert widget.start_training() is None
    assert any("3 depths but 2 ranks" in t for t in texts(notifications, "error"))
    # An engine error about a setting gets the widget's hint, never a command-line flag.
    from napari_geoseg.train.session import Message

    widget._handle(widget._last_session, Message("error", "block must be positive, got -4", "block"))
    assert "block must be positive, got -4 (lower Block under Network and training)" in texts(notifications)
    assert not any(" --" in t for t in texts(notifications))
    assert "Traceback" not in capfd.readouterr().err


def test_ordered_units_box_reaches_the_training_session(widget_on, qtbot):
    viewer, widget = widget_on()
    _, image, labels = add_seismic(viewer)
    widget.image_layer, widget.labels_layer = image, labels
    assert not widget.ordered_check.isChecked()
    widget.ordered_check.setChecked(True)
    widget.start_training()
    assert widget._session.ordered_units
    widget.stop_training()
    wait_for_threads(qtbot, widget)


def test_depth_box_reaches_the_training_session_and_follows_loaded_models(widget_on, qtbot, tmp_path):
    from napari_geoseg.data import synthetic_seismic
    from napari_geoseg.train import Trainer, get_preset

    viewer, widget = widget_on()
    _, image, labels = add_seismic(viewer)
    widget.image_layer, widget.labels_layer = image, labels
    assert widget.flatten_check.isChecked() and widget.preset().flatten
    widget.flatten_check.setChecked(False)
    assert widget.preset().name == "fast" and not widget.preset().flatten
    widget.start_training()
    assert not widget._session.preset.flatten
    widget.stop_training()
    wait_for_threads(qtbot, widget)
    # A loaded model ticks the box as it was trained, and keeps its preset's name.
    volume = synthetic_seismic((16, 16, 16), n_boreholes=2, seed=0)
    for flatten in (True, False):
        model = Trainer(volume.image, volume.labels, preset=get_preset("fast", flatten=flatten), iterations=1,
                        block=16).train()
        path = model.save(tmp_path / f"flatten_{flatten}.pt")
        widget.flatten_check.setChecked(not flatten)
        widget.load_model(path)
        assert widget.flatten_check.isChecked() == flatten
        assert widget.preset_combo.currentData() == "fast"


def test_new_labels_layer_fits_the_image(widget_on):
    viewer, widget = widget_on()
    _, image, _ = add_seismic(viewer, labels=False)
    widget.image_layer = image
    layer = widget.add_labels_layer()
    assert layer.data.shape == image.data.shape
    assert widget.labels_layer is layer
    assert layer.metadata["geoseg"]["order"] == image.metadata["geoseg"]["order"]
    np.testing.assert_array_equal(to_engine(layer.data, layer.metadata).shape, ENGINE_SHAPE)


def test_large_images_get_outputs_on_disk_predicted_in_chunks(widget_on, qtbot, notifications, monkeypatch):
    zarr = pytest.importorskip("zarr")
    from napari_geoseg._widget import layers as _layers
    from napari_geoseg.train import Predictor

    # "Large" made small: above 4096 label voxels, chunks of 16.
    monkeypatch.setattr(_layers, "DISK_BACKED_VOXELS", 4096)
    monkeypatch.setattr(_layers, "PREDICTION_CHUNK", 16)
    viewer, widget = widget_on(iterations=3)
    _, image, labels = add_seismic(viewer)
    widget.image_layer, widget.labels_layer = image, labels
    widget.live_check.setChecked(False)
    widget.uncertainty_check.setChecked(True)
    widget.start_training()
    qtbot.waitUntil(lambda: not widget.is_training and not widget._threads, timeout=TIMEOUT)
    assert not texts(notifications, "error")
    prediction = widget.prediction_layer
    assert isinstance(prediction.data, zarr.Array) and prediction.data.shape == image.data.shape
    folder = widget._outputs_for(image).folder
    assert folder is not None and (folder / "prediction.zarr").is_dir()
    assert isinstance(viewer.layers["seismic uncertainty"].data, zarr.Array)
    # Chunk by chunk, the same labels as one whole-image prediction with flips.
    whole = Predictor(widget.model, flips=True).predict(to_engine(np.asarray(image.data), image.metadata))
    np.testing.assert_array_equal(to_engine(prediction.data[:], image.metadata), whole.labels)
    # Apply to another large image: also on disk, and complete.
    _, other, _ = add_seismic(viewer, seed=4, name="other", labels=False)
    assert widget.apply_model(other)
    qtbot.waitUntil(lambda: not widget._threads, timeout=TIMEOUT)
    applied = viewer.layers["other prediction"]
    assert isinstance(applied.data, zarr.Array)
    expected = Predictor(widget.model).predict(to_engine(np.asarray(other.data), other.metadata)).labels
    np.testing.assert_array_equal(to_engine(applied.data[:], other.metadata), expected)


def test_hyperspectral_cube_gives_a_map(widget_on, qtbot, notifications):
    viewer, widget = widget_on(iterations=3)
    viewer.open_sample("napari-geoseg", "hyperspectral")
    image, labels = viewer.layers["synthetic hyperspectral"], viewer.layers["pixel labels"]
    widget.image_layer, widget.labels_layer = image, labels
    widget.live_check.setChecked(False)
    widget.start_training()
    qtbot.waitUntil(lambda: not widget.is_training and not widget._threads, timeout=TIMEOUT)
    assert not texts(notifications, "error")
    assert widget.prediction_layer.data.shape == labels.data.shape  # (rows, cols)
    assert widget.model.layout.mode == "spectral"
    assert widget.class_names()[1] == image.metadata["geoseg"]["class_names"][0]


def test_live_defaults_halve_the_block_and_keep_the_work():
    from napari_geoseg.train import PRESETS
    from napari_geoseg.train.presets import live_defaults

    for preset in PRESETS.values():
        block, iterations = live_defaults(preset)
        assert block % 8 == 0 and 16 <= block <= preset.block
        assert iterations * block**3 == pytest.approx(preset.iterations * preset.block**3, rel=0.05)
        if preset.spectral_block:  # cubes keep the preset's own (already small) cube settings
            assert live_defaults(preset, "spectral") == (preset.spectral_block, preset.spectral_iterations)
        else:
            assert live_defaults(preset, "spectral") == (block, iterations)


def test_choosing_a_cube_proposes_the_cube_settings_unless_the_user_changed_them(make_napari_viewer):
    from napari_geoseg.train import PRESETS
    from napari_geoseg.train.presets import live_defaults

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-geoseg", "Interactive segmentation")
    _, seismic, _ = add_seismic(viewer)
    viewer.open_sample("napari-geoseg", "hyperspectral")
    cube = viewer.layers["synthetic hyperspectral"]

    def shown():
        return widget.block_spin.value(), widget.iterations_spin.value()

    preset = PRESETS["fast"]
    widget.image_layer = seismic
    assert shown() == live_defaults(preset, "volume")
    widget.image_layer = cube
    assert shown() == live_defaults(preset, "spectral") == (preset.spectral_block, preset.spectral_iterations)
    widget.image_layer = seismic
    assert shown() == live_defaults(preset, "volume")
    widget.block_spin.setValue(24)  # the user's choice stays
    widget.image_layer = cube
    assert shown() == (24, live_defaults(preset, "volume")[1])


def test_the_widget_is_narrow_with_only_the_data_section_open(widget_on):
    # On a 1600 x 1000 screen napari's layer panel and this widget must leave the canvas
    # most of the width: the widget asks for at most 320 px, and folded sections.
    from superqt import QCollapsible

    viewer, widget = widget_on()
    add_seismic(viewer, name="a survey with a rather long layer name for a combo box")
    assert widget.minimumSizeHint().width() <= 320
    sections = {s.text(): s.isExpanded() for s in widget.findChildren(QCollapsible)}
    assert sections == {"Data": True, "Wells": False, "Network and training": False, "Model": False}
    assert widget.preset_combo.currentText() == "fast"  # the description is its tooltip
    assert "minutes" in widget.preset_combo.toolTip()


def test_devices_are_listed_once_the_warm_up_has_imported_torch(widget_on, qtbot):
    # Finding the GPUs imports torch: the warm-up thread does it, and the widget fills in
    # the device box when it is done, keeping what the user chose.
    from napari_geoseg.train.devices import available_devices

    viewer, widget = widget_on()
    qtbot.waitUntil(lambda: widget._warm_up.devices is not None, timeout=TIMEOUT)
    expected = available_devices()
    qtbot.waitUntil(lambda: [widget.device_combo.itemText(i) for i in range(widget.device_combo.count())]
                    == expected, timeout=10_000)
    assert widget.design.device() == "cpu"
    widget._warm_up.join(120)
