"""The widget's Wells section in a real (headless, Xvfb) napari viewer."""
import csv

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari.utils.notifications import notification_manager
from test_widget import add_seismic

from napari_geoseg._axes import to_engine
from napari_geoseg._widget import SegmentationWidget

TOPS = "well,inline,crossline,depth,unit\nA,5,6,8,shale\nA,5,6,20,sand\nB,15,12,10,shale\nB,15,12,24,sand\n"


@pytest.fixture
def notifications_seen():
    seen = []

    def keep(notification):
        seen.append(str(notification.message))

    notification_manager.notification_ready.connect(keep)
    yield seen
    notification_manager.notification_ready.disconnect(keep)


@pytest.fixture
def panel_on(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-geoseg", "Interactive segmentation")
    _, image, _ = add_seismic(viewer, labels=False)
    widget.image_layer = image
    labels = widget.add_labels_layer()
    (tmp_path / "tops.csv").write_text(TOPS)
    yield viewer, widget, widget.wells, labels
    # No worker may outlive the test (a running thread at exit aborts the interpreter).
    from qtpy.QtCore import QThreadPool

    QThreadPool.globalInstance().waitForDone(30_000)


def engine(layer):
    return to_engine(np.asarray(layer.data), layer.metadata)


def settle(qtbot, panel):
    qtbot.waitUntil(lambda: not panel.busy, timeout=30_000)


def test_tops_become_labels_and_drawn_wells(panel_on, qtbot, tmp_path):
    viewer, widget, panel, labels = panel_on
    panel.load_tops(tmp_path / "tops.csv")
    settle(qtbot, panel)
    assert panel.table.rowCount() == 4
    data = engine(labels)
    assert (data[5, 6, :8] == 0).all() and (data[5, 6, 8:20] == 1).all() and (data[5, 6, 20:] == 2).all()
    assert (data[15, 12, 10:24] == 1).all() and data[15, 12, 30] == 2
    assert np.count_nonzero(data) == 24 + 22
    assert widget.class_names()[1] == "shale" and widget.class_names()[2] == "sand"
    wells = viewer.layers[f"{widget.image_layer.name} wells"]
    # One point per voxel along each hole (layer order: inline, sample, crossline), named at the top.
    assert len(wells.data) == 24 + 22 and [n for n in wells.properties["well"] if n] == ["A", "B"]
    assert set(map(tuple, wells.data[:24, [0, 2]].round().astype(int))) == {(5, 6)}


def test_paint_wins_and_survives_placing_again(panel_on, qtbot, tmp_path):
    viewer, widget, panel, labels = panel_on
    panel.load_tops(tmp_path / "tops.csv")
    settle(qtbot, panel)
    to_engine(labels.data, labels.metadata)[5, 6, 10] = 3  # the user paints over a well voxel
    panel.radius_spin.setValue(1)
    settle(qtbot, panel)
    data = engine(labels)
    assert data[5, 6, 10] == 3 and (data[4:7, 5:8, 12] == 1).all()
    for row in range(panel.table.rowCount() - 1, -1, -1):
        panel.table.removeRow(row)
    panel.place()
    settle(qtbot, panel)
    data = engine(labels)
    assert data[5, 6, 10] == 3 and np.count_nonzero(data) == 1
    assert not any(layer.name.endswith(" wells") for layer in viewer.layers)


def test_clicking_a_trace_adds_tops_of_the_picked_class(panel_on, qtbot):
    viewer, widget, panel, labels = panel_on
    panel.add_well_button.setChecked(True)
    labels.selected_label = 2
    widget.class_table.set_names({2: "sand"})
    # Layer order of the plugin's seismic: (inline, sample, crossline).
    panel.add_click((7, 12, 3), labels)
    labels.selected_label = 1
    panel.add_click((7, 4, 3), labels)
    settle(qtbot, panel)
    rows = panel.rows()
    assert [r[1]["well"] for r in rows] == ["W1", "W1"]
    assert [(r[1]["depth"], r[1]["unit"]) for r in rows] == [("4", "class 1"), ("12", "sand")]
    data = engine(labels)
    assert (data[7, 3, 4:12] == 1).all() and (data[7, 3, 12:] == 2).all() and data[7, 3, 3] == 0
    panel.add_well_button.setChecked(False)


def test_bad_rows_are_reported_not_raised(panel_on, qtbot, tmp_path, notifications_seen):
    viewer, widget, panel, labels = panel_on
    (tmp_path / "bad.csv").write_text("well,inline,crossline,depth,unit\nA,500,6,8,shale\n")
    panel.load_tops(tmp_path / "bad.csv")
    settle(qtbot, panel)
    qtbot.waitUntil(lambda: any("outside the survey" in n for n in notifications_seen), timeout=10_000)
    assert np.count_nonzero(engine(labels)) == 0


def test_horizons_of_the_prediction(panel_on, qtbot, tmp_path, monkeypatch):
    viewer, widget, panel, labels = panel_on
    with pytest.raises(Exception, match="no prediction yet"):
        panel.write_horizons(tmp_path / "h.csv")
    prediction = viewer.add_labels(np.zeros_like(labels.data), metadata=labels.metadata)
    to_engine(prediction.data, prediction.metadata)[..., :10] = 1
    to_engine(prediction.data, prediction.metadata)[..., 10:] = 2
    monkeypatch.setattr(SegmentationWidget, "prediction_layer", property(lambda self: prediction))
    shape = to_engine(labels.data, labels.metadata).shape
    assert panel.write_horizons(tmp_path / "h.csv") == shape[0] * shape[1]
    rows = list(csv.DictReader(open(tmp_path / "h.csv")))
    assert rows[0]["horizon"] == "top class 2" and float(rows[0]["depth"]) == 9.5


def test_wells_on_a_plain_image_layer_use_array_indices(make_napari_viewer, qtbot, tmp_path):
    # An image layer napari made itself (no geometry from this plugin's reader).
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-geoseg", "Interactive segmentation")
    widget.image_layer = viewer.add_image(np.zeros((12, 10, 16), np.float32), name="plain")
    survey = widget.wells.survey()
    assert tuple(survey.shape) == (12, 10, 16) and survey.geometry is None
    widget._warm_up.join(120)  # a torch thread still running at exit aborts the interpreter
