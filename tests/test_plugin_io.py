"""The napari plugin's manifest, readers, writers, sample data and ``geoseg view``.

Headless: pytest-xvfb starts a virtual X server and ``make_napari_viewer`` gives a real
viewer. Volumes are tiny and written in ``tmp_path`` by the engine's writers or by the
format's own library.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
npe2 = pytest.importorskip("npe2")

from napari_geoseg import _sample_data, cli  # noqa: E402
from napari_geoseg._axes import to_engine  # noqa: E402
from napari_geoseg._reader import get_reader  # noqa: E402
from napari_geoseg.errors import GeosegError, InputError, OutputExistsError  # noqa: E402
from napari_geoseg.io import read_volume, write_volume  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
F3 = ROOT.parent / "shared" / "data" / "seismic" / "f3.sgy"
VOLVE = ROOT.parent / "shared" / "data" / "seismic" / "volve10-migvel-depth-sub3d.sgy"
PLUGIN = "napari-geoseg"


# ---------------------------------------------------------------------------- helpers

def _cube(shape=(5, 6, 16), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _segy(tmp_path, shape=(5, 6, 16), name="cube.sgy") -> tuple[Path, np.ndarray]:
    """A SEG-Y file with the engine's plain geometry: lines from 1, 4 ms from 0."""
    cube = _cube(shape)
    path = write_volume(tmp_path / name, cube)
    return path, cube


def _envi(tmp_path, shape=(7, 5, 4)) -> tuple[Path, np.ndarray]:
    """A band-sequential ENVI raster of (rows, cols, bands) ``shape``."""
    cube = _cube(shape, seed=1)
    rows, cols, bands = shape
    cube.transpose(2, 0, 1).astype("<f4").tofile(tmp_path / "scene.img")
    header = tmp_path / "scene.hdr"
    header.write_text("ENVI\n"
                      f"samples = {cols}\nlines = {rows}\nbands = {bands}\nheader offset = 0\n"
                      "data type = 4\ninterleave = bsq\nbyte order = 0\n"
                      "wavelength units = Nanometers\n"
                      "wavelength = {" + ", ".join(str(400 + 100 * b) for b in range(bands)) + "}\n")
    return header, cube


def _open(viewer, path):
    layers = viewer.open(str(path), plugin=PLUGIN)
    assert len(layers) == 1
    return layers[0]


def _one_line(message: str) -> bool:
    return "\n" not in message and len(message) > 0


# ---------------------------------------------------------------------------- manifest

def test_manifest_lists_every_contribution():
    manifest = npe2.PluginManifest.from_distribution(PLUGIN)
    contributions = manifest.contributions
    commands = {c.id: c.python_name for c in contributions.commands}
    assert commands == {
        "napari-geoseg.get_reader": "napari_geoseg._reader:get_reader",
        "napari-geoseg.write_labels": "napari_geoseg._writer:write_labels",
        "napari-geoseg.write_image": "napari_geoseg._writer:write_image",
        "napari-geoseg.sample_seismic": "napari_geoseg._sample_data:seismic_sample",
        "napari-geoseg.sample_seismic_truth": "napari_geoseg._sample_data:seismic_sample_with_truth",
        "napari-geoseg.sample_hyperspectral": "napari_geoseg._sample_data:hyperspectral_sample",
        "napari-geoseg.make_widget": "napari_geoseg._widget:SegmentationWidget",
    }
    [reader] = contributions.readers
    assert set(reader.filename_patterns) == {"*.sgy", "*.segy", "*.hdr", "*.mat", "*.zarr"}
    assert reader.accepts_directories
    writers = {w.command: w for w in contributions.writers}
    assert [str(t) for t in writers["napari-geoseg.write_labels"].layer_types] == ["labels"]
    assert [str(t) for t in writers["napari-geoseg.write_image"].layer_types] == ["image"]
    for writer in writers.values():
        assert set(writer.filename_extensions) == {".sgy", ".segy", ".tif", ".tiff", ".npy"}
    assert {s.key for s in contributions.sample_data} == {"seismic", "seismic_truth", "hyperspectral"}
    assert [w.display_name for w in contributions.widgets] == ["Interactive segmentation"]


def test_every_command_of_the_manifest_imports():
    manifest = npe2.PluginManifest.from_distribution(PLUGIN)
    manifest.validate_imports()  # raises if a python_name does not resolve


def test_importing_reader_writer_and_samples_does_not_import_torch():
    code = ("import sys; import napari_geoseg._reader, napari_geoseg._writer, napari_geoseg._sample_data; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False"]


# ---------------------------------------------------------------------------- readers

def test_get_reader_declines_what_napari_reads_itself(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 2)))
    (tmp_path / "folder").mkdir()
    assert get_reader(str(tmp_path / "a.npy")) is None
    assert get_reader(str(tmp_path / "folder")) is None
    assert get_reader(str(tmp_path / "a.sgy")) is not None
    (tmp_path / "brain.hdr").write_bytes(b"\x5c\x01\x00\x00" + bytes(344))  # an Analyze 7.5 header
    assert get_reader(str(tmp_path / "brain.hdr")) is None
    assert get_reader(str(_envi(tmp_path)[0])) is not None


def test_segy_opens_as_sections_with_time_down(make_napari_viewer, tmp_path):
    path, cube = _segy(tmp_path)
    layer = _open(make_napari_viewer(), path)
    # (inline, crossline, sample) on disk -> (inline, sample, crossline) in the layer.
    assert layer.data.shape == (5, 16, 6)
    np.testing.assert_array_equal(layer.data, cube.transpose(0, 2, 1))
    np.testing.assert_array_equal(to_engine(layer.data, layer.metadata), cube)
    assert tuple(layer.axis_labels) == ("inline", "time", "crossline")
    np.testing.assert_allclose(layer.scale, (1, 4, 1))      # line steps and the 4 ms interval
    np.testing.assert_allclose(layer.translate, (1, 0, 1))  # first inline, first sample, first crossline
    assert str(layer.units[1]) == "millisecond"
    info = layer.metadata["geoseg"]
    assert info["mode"] == "volume" and info["order"] == [0, 2, 1]
    assert info["source"] == str(path)
    assert info["geometry"].shape == (5, 6, 16)
    low, high = layer.contrast_limits
    assert low == -high and 0 < high <= np.abs(cube).max()
    assert layer.colormap.name == "gray"


@pytest.mark.skipif(not F3.exists(), reason="the shared F3 crop is not on this machine")
def test_real_f3_survey_keeps_its_line_numbers(make_napari_viewer):
    layer = _open(make_napari_viewer(), F3)
    assert layer.data.shape == (23, 75, 18)                  # inlines, samples, crosslines
    assert tuple(layer.translate[::2]) == (111, 875)          # first inline and crossline
    assert layer.scale[1] == 4
    engine = read_volume(F3)
    np.testing.assert_array_equal(to_engine(layer.data, layer.metadata), engine.data)


@pytest.mark.skipif(not VOLVE.exists(), reason="the shared Volve velocity cube is not on this machine")
def test_real_depth_cube_shows_depth_down_in_metres(make_napari_viewer):
    layer = _open(make_napari_viewer(), VOLVE)
    assert tuple(layer.axis_labels) == ("inline", "depth", "crossline")
    assert str(layer.units[1]) == "meter" and layer.scale[1] == 20
    low, high = layer.contrast_limits
    assert 1000 < low < high < 6000  # velocities in m/s are all positive: no symmetric limits


def test_envi_cube_opens_as_a_band_map(make_napari_viewer, tmp_path):
    header, cube = _envi(tmp_path)
    layer = _open(make_napari_viewer(), header)
    assert layer.data.shape == (4, 7, 5)                      # bands, rows, cols
    np.testing.assert_array_equal(layer.data, cube.transpose(2, 0, 1))
    np.testing.assert_array_equal(to_engine(layer.data, layer.metadata), cube)
    info = layer.metadata["geoseg"]
    assert info["mode"] == "spectral" and info["order"] == [1, 2, 0]
    np.testing.assert_allclose(info["wavelength"], [400, 500, 600, 700])
    assert tuple(layer.axis_labels) == ("band", "row", "column")
    low, high = layer.contrast_limits
    assert cube.min() <= low < high <= cube.max()             # not symmetric: reflectances


def test_mat_v5_with_several_cubes_takes_the_largest_and_says_so(make_napari_viewer, tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    big, small = _cube((6, 5, 8), seed=2).astype(np.float64), _cube((3, 3, 3), seed=3).astype(np.float64)
    path = tmp_path / "scene.mat"
    scipy_io.savemat(path, {"small": small, "cube": big, "nRow": 6.0})
    layer = _open(make_napari_viewer(), path)
    np.testing.assert_array_equal(to_engine(layer.data, layer.metadata), big)
    info = layer.metadata["geoseg"]
    assert info["mode"] == "spectral" and info["variable"] == "cube"
    assert "largest" in info["variable_note"] and "small" in info["variable_note"]


def test_mat_v73_is_read_through_hdf5(make_napari_viewer, tmp_path):
    h5py = pytest.importorskip("h5py")
    cube = _cube((4, 6, 3), seed=4)
    path = tmp_path / "scene73.mat"
    with h5py.File(path, "w", userblock_size=512) as file:
        dataset = file.create_dataset("Y", data=cube.T)  # MATLAB is column-major: HDF5 sees it reversed
        dataset.attrs["MATLAB_class"] = np.bytes_("single")
    layer = _open(make_napari_viewer(), path)
    assert layer.data.shape == (3, 4, 6)
    assert tuple(layer.axis_labels) == ("band", "row", "column")  # the file names no axes
    np.testing.assert_array_equal(to_engine(layer.data, layer.metadata), cube)


def test_zarr_store_stays_lazy(make_napari_viewer, tmp_path):
    dask_array = pytest.importorskip("dask.array")
    cube = _cube((4, 5, 8), seed=5)
    store = tmp_path / "survey.zarr"
    write_volume(store, cube, like=read_volume(_segy(tmp_path, (4, 5, 8))[0]))
    layer = _open(make_napari_viewer(), store)
    assert isinstance(layer.data, dask_array.Array)            # not loaded into memory
    assert layer.metadata["geoseg"]["mode"] == "volume"        # the axes stored with it say seismic
    np.testing.assert_array_equal(np.asarray(layer.data), cube.transpose(0, 2, 1))


def test_corrupt_segy_gives_one_line_naming_the_file(make_napari_viewer, tmp_path):
    path, _ = _segy(tmp_path)
    broken = tmp_path / "broken.sgy"
    broken.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(Exception) as caught:
        make_napari_viewer().open(str(broken), plugin=PLUGIN)
    # napari passes the reader's error on, or wraps it in a ReaderPluginError (menu and drop).
    cause = caught.value if isinstance(caught.value, InputError) else caught.value.__cause__
    assert isinstance(cause, InputError)
    assert str(broken) in str(cause) and "truncated" in str(cause) and _one_line(str(cause))


# ---------------------------------------------------------------------------- writers

def _labels_on(viewer, image_layer, value_at=((1, 2, 3), 2)):
    """A labels layer over ``image_layer``, as the widget makes it (same shape and metadata)."""
    labels = np.zeros(image_layer.data.shape, np.uint8)
    labels[value_at[0]] = value_at[1]
    labels[0] = 1
    return viewer.add_labels(labels, scale=image_layer.scale, translate=image_layer.translate,
                             metadata=image_layer.metadata, name="labels")


def test_labels_saved_as_segy_keep_the_source_geometry(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    source, _ = _segy(tmp_path, shape=(4, 5, 8))
    image = _open(viewer, source)
    labels = _labels_on(viewer, image)
    out = tmp_path / "labels.sgy"
    assert labels.save(str(out), plugin=PLUGIN) == [str(out)]
    back = read_volume(out)
    np.testing.assert_array_equal(back.data, to_engine(labels.data, labels.metadata))
    assert back.data[1, 3, 2] == 2                          # layer (1, 2, 3) is engine (1, 3, 2)
    np.testing.assert_array_equal(back.geometry.inlines, image.metadata["geoseg"]["geometry"].inlines)
    np.testing.assert_array_equal(back.geometry.crosslines, image.metadata["geoseg"]["geometry"].crosslines)


@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_labels_saved_as_tif_or_npy_are_in_engine_order(make_napari_viewer, tmp_path, suffix):
    viewer = make_napari_viewer()
    image = _open(viewer, _segy(tmp_path, shape=(4, 5, 8))[0])
    labels = _labels_on(viewer, image)
    out = tmp_path / f"labels{suffix}"
    labels.save(str(out), plugin=PLUGIN)
    back = read_volume(out)
    assert back.shape == (4, 5, 8)
    np.testing.assert_array_equal(back.data, to_engine(labels.data, labels.metadata))
    if suffix == ".tif":
        assert back.axes == ("inline", "crossline", "sample") and back.scale == (1.0, 1.0, 4.0)


def test_probabilities_are_saved_with_the_class_axis_last(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    image = _open(viewer, _segy(tmp_path, shape=(4, 5, 8))[0])
    engine = np.random.default_rng(0).random((3, 4, 5, 8)).astype(np.float32)  # (K, inline, crossline, sample)
    layer_data = engine.transpose(0, 1, 3, 2)
    probabilities = viewer.add_image(layer_data, metadata=image.metadata, name="probabilities")
    out = tmp_path / "probabilities.npy"
    probabilities.save(str(out), plugin=PLUGIN)
    np.testing.assert_array_equal(np.load(out), np.moveaxis(engine, 0, -1))


def test_cube_labels_are_saved_as_a_map(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    image = _open(viewer, _envi(tmp_path)[0])
    labels = np.zeros((7, 5), np.uint8)
    labels[2, 3] = 4
    layer = viewer.add_labels(labels, metadata=image.metadata)
    out = tmp_path / "map.tif"
    layer.save(str(out), plugin=PLUGIN)
    back = read_volume(out)
    np.testing.assert_array_equal(back.data, labels)
    assert back.axes == ("row", "column")


def test_segy_without_a_source_geometry_is_refused_in_one_line(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "seismic")
    out = tmp_path / "labels.sgy"
    with pytest.raises(GeosegError) as caught:
        viewer.layers["borehole labels"].save(str(out), plugin=PLUGIN)
    message = str(caught.value)
    assert not isinstance(caught.value, ValueError)  # napari would swallow a ValueError
    assert _one_line(message) and str(out) in message and ".tif or .npy" in message
    assert not out.exists()


def test_saving_replaces_a_chosen_file_but_never_the_source_image(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    source, _ = _segy(tmp_path, shape=(4, 5, 8))
    original = source.read_bytes()
    image = _open(viewer, source)
    labels = _labels_on(viewer, image)
    out = tmp_path / "labels.npy"
    out.write_bytes(b"old")
    labels.save(str(out), plugin=PLUGIN)  # napari's dialog asked; a script named the file
    assert np.load(out).shape == (4, 5, 8)
    with pytest.raises(OutputExistsError) as caught:
        labels.save(str(source), plugin=PLUGIN)
    assert _one_line(str(caught.value)) and "another file name" in str(caught.value)
    assert source.read_bytes() == original


# ---------------------------------------------------------------------------- sample data

def test_seismic_sample_has_image_and_borehole_labels_but_no_truth(make_napari_viewer):
    from napari_geoseg.data.samples import SEISMIC_SHAPE
    from napari_geoseg.data.synthetic import synthetic_seismic

    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "seismic")
    assert [layer.name for layer in viewer.layers] == ["synthetic seismic", "borehole labels"]
    expected = synthetic_seismic(SEISMIC_SHAPE, seed=_sample_data.SAMPLE_SEED)
    image, labels = viewer.layers
    np.testing.assert_array_equal(to_engine(image.data, image.metadata), expected.image)
    np.testing.assert_array_equal(to_engine(labels.data, labels.metadata), expected.labels)
    assert labels.metadata["geoseg"]["class_names"] == list(expected.class_names)
    assert tuple(image.axis_labels) == ("inline", "sample", "crossline")
    assert 0 < np.count_nonzero(labels.data) < 0.01 * labels.data.size  # sparse: a few wells


def test_seismic_sample_with_truth_hides_it(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "seismic_truth")
    truth = viewer.layers["true units"]
    assert not truth.visible
    assert np.count_nonzero(truth.data) == truth.data.size          # every voxel has a unit
    assert viewer.layers["borehole labels"].visible


def test_hyperspectral_sample_is_a_band_map_with_2d_labels(make_napari_viewer):
    from napari_geoseg.data.hyperspectral import synthetic_hyperspectral
    from napari_geoseg.data.samples import HYPERSPECTRAL_SHAPE

    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "hyperspectral")
    image, labels = viewer.layers
    expected = synthetic_hyperspectral(HYPERSPECTRAL_SHAPE[:2], n_bands=HYPERSPECTRAL_SHAPE[2],
                                       seed=_sample_data.SAMPLE_SEED)
    assert image.data.shape == (HYPERSPECTRAL_SHAPE[2], *HYPERSPECTRAL_SHAPE[:2])
    np.testing.assert_array_equal(to_engine(image.data, image.metadata), expected.image)
    np.testing.assert_array_equal(labels.data, expected.labels)
    assert image.metadata["geoseg"]["mode"] == labels.metadata["geoseg"]["mode"] == "spectral"


# ---------------------------------------------------------------------------- geoseg view

def test_view_with_a_missing_file_exits_2_with_one_line(tmp_path, capsys):
    assert cli.main(["view", str(tmp_path / "missing.sgy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.sgy: no such file" in err
    assert cli.main(["view", "--labels", str(tmp_path / "labels.npy")]) == 2
    assert "labels need the image" in capsys.readouterr().err


def test_view_puts_npy_labels_onto_a_segy_image(make_napari_viewer, tmp_path, monkeypatch):
    from napari_geoseg import _viewer

    monkeypatch.setattr(_viewer, "_dock_widget", lambda viewer: None)  # the widget has its own tests
    source, _ = _segy(tmp_path, shape=(4, 5, 8))
    engine_labels = np.zeros((4, 5, 8), np.uint8)
    engine_labels[2, 1, :] = 3                                 # one well
    np.save(tmp_path / "well.npy", engine_labels)
    viewer = make_napari_viewer()
    _viewer.populate_viewer(viewer, str(source), str(tmp_path / "well.npy"))
    image, labels = viewer.layers
    assert labels.data.shape == image.data.shape == (4, 8, 5)
    np.testing.assert_array_equal(labels.data[2, :, 1], 3)   # the well runs down the section
    np.testing.assert_allclose(labels.scale, image.scale)
    assert labels.metadata["geoseg"]["geometry"] is image.metadata["geoseg"]["geometry"]


def test_view_treats_a_npy_cube_with_2d_labels_as_hyperspectral(make_napari_viewer, tmp_path, monkeypatch):
    from napari_geoseg import _viewer

    monkeypatch.setattr(_viewer, "_dock_widget", lambda viewer: None)
    np.save(tmp_path / "cube.npy", _cube((6, 7, 5)))
    np.save(tmp_path / "pixels.npy", np.eye(6, 7, dtype=np.uint8))
    viewer = make_napari_viewer()
    _viewer.populate_viewer(viewer, str(tmp_path / "cube.npy"), str(tmp_path / "pixels.npy"))
    image, labels = viewer.layers
    assert image.data.shape == (5, 6, 7) and image.metadata["geoseg"]["mode"] == "spectral"
    np.testing.assert_array_equal(labels.data, np.eye(6, 7))


def test_view_refuses_labels_of_another_shape(make_napari_viewer, tmp_path, monkeypatch):
    from napari_geoseg import _viewer

    monkeypatch.setattr(_viewer, "_dock_widget", lambda viewer: None)
    source, _ = _segy(tmp_path, shape=(4, 5, 8))
    np.save(tmp_path / "other.npy", np.zeros((4, 5, 9), np.uint8))
    with pytest.raises(InputError) as caught:
        _viewer.populate_viewer(make_napari_viewer(), str(source), str(tmp_path / "other.npy"))
    assert _one_line(str(caught.value)) and "4x5x8" in str(caught.value)


def test_launch_opens_the_sample_with_the_widget_docked(make_napari_viewer, monkeypatch):
    import napari

    from napari_geoseg import _viewer

    ran = []
    monkeypatch.setattr(napari, "Viewer", lambda **kwargs: make_napari_viewer())
    monkeypatch.setattr(napari, "run", lambda: ran.append(True))  # no event loop in tests
    viewer = _viewer.launch()
    assert ran == [True]
    assert [layer.name for layer in viewer.layers] == ["synthetic seismic", "borehole labels"]
    [name] = [key for key in viewer.window.dock_widgets if _viewer.WIDGET_NAME in key]
    widget = viewer.window.dock_widgets[name]
    assert widget.image_layer is viewer.layers["synthetic seismic"]
    assert widget.labels_layer is viewer.layers["borehole labels"]


def test_view_command_passes_image_and_labels_to_launch(tmp_path, monkeypatch):
    from napari_geoseg import _viewer

    calls = []
    monkeypatch.setattr(_viewer, "launch", lambda image=None, labels=None: calls.append((image, labels)))
    source, _ = _segy(tmp_path)
    np.save(tmp_path / "labels.npy", np.zeros((5, 6, 16), np.uint8))
    assert cli.main(["view", str(source), "--labels", str(tmp_path / "labels.npy")]) == 0
    assert cli.main(["view"]) == 0
    assert calls == [(str(source), str(tmp_path / "labels.npy")), (None, None)]


def test_view_without_napari_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "napari", None)  # "import napari" now raises ImportError
    assert cli.main(["view"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "napari-geoseg[all]"' in err
