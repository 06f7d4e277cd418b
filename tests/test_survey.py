"""Survey coordinates beyond the SEG-Y reader: the model file, the napari layer metadata and
``geoseg info``."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

segyio = pytest.importorskip("segyio")

from napari_geoseg import cli  # noqa: E402
from napari_geoseg.errors import InputError  # noqa: E402
from napari_geoseg.io import read_volume  # noqa: E402
from napari_geoseg.io.segy import SegyArray  # noqa: E402
from napari_geoseg.train import Model  # noqa: E402
from napari_geoseg.train.layout import Layout  # noqa: E402
from napari_geoseg.train.presets import get_preset  # noqa: E402

AFFINE = [[3.25, 10.5, 450000.0], [-8.75, 4.0, 6800000.0]]


def tiny_model(**fields) -> Model:
    """A model of the fast design with untrained weights: enough for the file format."""
    preset, layout = get_preset("fast"), Layout("volume", 3, 1)
    net = Model.build_net(preset, layout, in_channels=2, channels=3)
    return Model(nets=[net], preset=preset, layout=layout, channels=3, in_channels=2, class_ids=[1, 2],
                 class_names=["a", "b"], center=np.zeros(1, np.float32), scale=np.ones(1, np.float32), **fields)


def survey_file(path: Path, drop=((0, 0), (0, 1)), repeat=()) -> Path:
    """A 3 x 4 x 5 cube, inlines 10..14 step 2, crosslines 200..203, CDP X/Y in centimetres."""
    positions = [(i, j) for i in range(3) for j in range(4) if (i, j) not in drop] + list(repeat)
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount = 5, list(range(5)), len(positions)
    with segyio.create(str(path), spec) as file:
        file.bin.update({segyio.BinField.Interval: 4000, segyio.BinField.Samples: 5})
        for trace, (i, j) in enumerate(positions):
            inline, crossline = 10 + 2 * i, 200 + j
            x, y = np.asarray(AFFINE) @ (inline, crossline, 1)
            file.header[trace] = {189: inline, 193: crossline, 71: -100, 181: round(x * 100),
                                  185: round(y * 100), segyio.TraceField.TRACE_SAMPLE_COUNT: 5}
            file.trace[trace] = np.full(5, trace, np.float32)
    return path


# --- the model file --------------------------------------------------------------------------

def test_model_saves_and_loads_its_transform(tmp_path):
    loaded = Model.load(tiny_model(transform=np.asarray(AFFINE)).save(tmp_path / "m.pt"))
    assert loaded.transform == AFFINE and isinstance(loaded.transform[0][0], float)
    assert Model.load(tiny_model().save(tmp_path / "plain.pt")).transform is None


def test_model_files_without_a_transform_load_with_none(tmp_path):
    path = tiny_model(transform=AFFINE).save(tmp_path / "m.pt")
    blob = torch.load(path, weights_only=True)
    del blob["transform"]  # as written before the field existed
    torch.save(blob, path)
    assert Model.load(path).transform is None


def test_a_malformed_transform_is_refused(tmp_path):
    with pytest.raises(ValueError, match="2x3"):
        tiny_model(transform=[[1.0, 2.0]])
    path = tiny_model().save(tmp_path / "m.pt")
    blob = torch.load(path, weights_only=True)
    blob["transform"] = [[1.0, 2.0, 3.0]]
    torch.save(blob, path)
    with pytest.raises(InputError, match="m.pt"):
        Model.load(path)


# --- the napari layer ------------------------------------------------------------------------

def test_layer_metadata_holds_the_transform_as_plain_lists(tmp_path):
    pytest.importorskip("dask")
    from napari_geoseg._reader import image_layer_data

    volume = read_volume(survey_file(tmp_path / "survey.sgy"))
    data, kwargs, _ = image_layer_data(volume)
    info = kwargs["metadata"]["geoseg"]
    assert json.loads(json.dumps(info["transform"])) == pytest.approx(np.asarray(AFFINE))
    assert info["geometry"] is volume.geometry
    assert type(data).__module__.startswith("dask")
    expected = np.asarray(volume.data).transpose(0, 2, 1)
    np.testing.assert_array_equal(np.asarray(data), expected)
    assert np.isnan(expected[0, :, 0]).all()


def test_layer_data_is_read_on_demand(tmp_path):
    pytest.importorskip("dask")
    from napari_geoseg._reader import image_layer_data

    volume = read_volume(survey_file(tmp_path / "survey.sgy"))
    data, _, _ = image_layer_data(volume)
    read = volume.data.traces_read  # the contrast limits read a sample
    np.asarray(data[1])
    assert volume.data.traces_read > read


# --- geoseg info -----------------------------------------------------------------------------

def test_info_shows_the_grid_the_missing_traces_and_the_survey(tmp_path, capsys, monkeypatch):
    def no_samples(*args, **kwargs):
        raise AssertionError("geoseg info read samples")

    monkeypatch.setattr(SegyArray, "_read_traces", no_samples)
    path = survey_file(tmp_path / "survey.sgy", repeat=[(2, 3)])
    assert cli.main(["info", str(path)]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "inlines 10..14 step 2 (byte 189)" in out and "crosslines 200..203 step 1 (byte 193)" in out
    assert "grid 3 x 4 = 12 positions: 10 traces, 2 missing (NaN), 1 duplicate traces dropped" in out
    x, y = np.asarray(AFFINE) @ (10, 200, 1)
    assert f"survey origin ({x:.2f}, {y:.2f}) m at inline 10, crossline 200 (bytes 181/185)" in out
    assert f"{2 * np.hypot(3.25, 8.75):.2f} m per step of 2" in out and "largest fit residual" in out
    assert "geoseg: warning:" in captured.err and "1 traces repeat" in captured.err


def test_info_without_coordinates(tmp_path, capsys):
    path = tmp_path / "plain.sgy"
    from napari_geoseg.io import write_volume

    write_volume(path, np.zeros((2, 3, 4), np.float32))
    assert cli.main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "grid 2 x 3 = 6 positions: 6 traces, 0 missing (NaN)" in out
    assert "survey coordinates: none" in out


def test_info_shows_a_models_transform(tmp_path, capsys):
    path = tiny_model(transform=AFFINE).save(tmp_path / "m.pt")
    assert cli.main(["info", str(path)]) == 0
    assert "survey transform (x, y) = A @ (inline, crossline, 1), A = [3.25 10.5 450000; " in capsys.readouterr().out
