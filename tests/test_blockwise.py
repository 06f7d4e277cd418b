"""Chunked prediction into zarr (exact, resumable, on dask.distributed) and geoseg convert."""
import numpy as np
import pytest

from napari_geoseg.cli import main
from napari_geoseg.data import synthetic_seismic
from napari_geoseg.errors import InputError
from napari_geoseg.train import Predictor, Trainer
from napari_geoseg.train import predictor as predictor_module
from napari_geoseg.train.blockwise import DONE_FOLDER, ChunkedOutputs, ImageSource, chunk_boxes, predict_to_zarr

zarr = pytest.importorskip("zarr")


@pytest.fixture(scope="module")
def trained():
    volume = synthetic_seismic((40, 36, 48), seed=0)
    model = Trainer(volume.image, volume.labels, iterations=3, block=16).train()
    return volume, model, Predictor(model, block=16).predict(volume.image)


def test_output_boxes_put_together_equal_the_whole_prediction(trained):
    volume, model, whole = trained
    predictor = Predictor(model, block=16)
    labels = np.zeros_like(whole.labels)
    probabilities = np.zeros_like(whole.probabilities)
    for box in chunk_boxes(whole.labels.shape, (13, 20, 30)):
        part = predictor.predict(volume.image, output=box)
        labels[box], probabilities[(slice(None), *box)] = part.labels, part.probabilities
    np.testing.assert_array_equal(labels, whole.labels)
    np.testing.assert_array_equal(probabilities, whole.probabilities)  # bit for bit, not up to rounding


def test_chunked_prediction_into_zarr_and_resume(trained, tmp_path, monkeypatch):
    volume, model, whole = trained
    outputs = ChunkedOutputs(str(tmp_path / "p.zarr"), str(tmp_path / "prob.zarr"), str(tmp_path / "u.zarr"))
    summary = predict_to_zarr(model, volume.image, outputs, chunks=20, block=16)
    assert summary == {"chunks": 12, "computed": 12, "skipped": 0, "masked": 0}
    store = zarr.open_array(outputs.labels)
    assert store.chunks == (20, 20, 20)
    np.testing.assert_array_equal(store[:], whole.labels)
    np.testing.assert_array_equal(zarr.open_array(outputs.probabilities)[:], np.moveaxis(whole.probabilities, 0, -1))
    np.testing.assert_array_equal(zarr.open_array(outputs.uncertainty)[:], whole.uncertainty)
    # An interrupted run: three chunks lost with their marks; resuming redoes only them.
    done = tmp_path / "p.zarr" / DONE_FOLDER
    for index in (0, 5, 11):
        (done / str(index)).unlink()
        box = chunk_boxes(store.shape, store.chunks)[index]
        store[box] = 0
    summary = predict_to_zarr(model, volume.image, outputs, chunks=20, block=16, resume=True)
    assert summary["computed"] == 3 and summary["skipped"] == 9
    np.testing.assert_array_equal(zarr.open_array(outputs.labels)[:], whole.labels)
    # Another model's store is not continued, nor one tiled within another default block
    # budget (another device's).
    other = Trainer(volume.image, volume.labels, iterations=1, block=16, seed=5).train()
    with pytest.raises(InputError, match="cannot be resumed"):
        predict_to_zarr(other, volume.image, outputs, chunks=20, block=16, resume=True)
    monkeypatch.setattr(predictor_module, "BLOCK_VOXELS", 1 << 12)
    with pytest.raises(InputError, match="cannot be resumed"):
        predict_to_zarr(model, volume.image, outputs, chunks=20, block=16, resume=True)


def test_a_chunk_is_written_a_slab_of_zarr_chunks_at_a_time(trained, tmp_path, monkeypatch):
    from napari_geoseg.train import blockwise

    volume, model, whole = trained
    # Zarr chunks of 4 rows in prediction chunks of 20; the predictor's slabs (rows of
    # blocks every 12 rows) do not line up with them, so rows wait to be written.
    monkeypatch.setattr(blockwise, "ROWS_PER_STORE_CHUNK", 4)
    outputs = ChunkedOutputs(str(tmp_path / "p.zarr"), str(tmp_path / "prob.zarr"), str(tmp_path / "u.zarr"))
    summary = predict_to_zarr(model, volume.image, outputs, chunks=20, block=16)
    assert summary["computed"] == 12
    assert zarr.open_array(outputs.labels).chunks == (4, 20, 20)
    assert zarr.open_array(outputs.probabilities).chunks == (4, 20, 20, model.n_classes)
    np.testing.assert_array_equal(zarr.open_array(outputs.labels)[:], whole.labels)
    np.testing.assert_array_equal(zarr.open_array(outputs.probabilities)[:], np.moveaxis(whole.probabilities, 0, -1))
    np.testing.assert_array_equal(zarr.open_array(outputs.uncertainty)[:], whole.uncertainty)


def test_two_workers_write_what_one_does(trained, tmp_path):
    pytest.importorskip("distributed")
    volume, model, whole = trained
    np.save(tmp_path / "image.npy", volume.image)
    outputs = ChunkedOutputs(str(tmp_path / "p.zarr"))
    summary = predict_to_zarr(model, volume.image, outputs, source=ImageSource(str(tmp_path / "image.npy")),
                              chunks=20, block=16, workers=2)
    assert summary["computed"] == 12
    np.testing.assert_array_equal(zarr.open_array(outputs.labels)[:], whole.labels)


def test_a_killed_worker_s_chunks_are_redone(trained, tmp_path):
    distributed = pytest.importorskip("distributed")
    import os
    import signal

    volume, model, whole = trained
    np.save(tmp_path / "image.npy", volume.image)
    outputs = ChunkedOutputs(str(tmp_path / "p.zarr"))
    killed = []

    def kill_a_busy_worker(done, total):
        # After the first chunk, SIGKILL a worker that is computing one: its chunks must be
        # run again by dask (the nanny starts a new worker) and the store must be complete.
        if killed:
            return
        client = distributed.default_client()
        pids = client.run(os.getpid)
        busy = [address for address, keys in client.processing().items() if keys]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(busy[0])

    summary = predict_to_zarr(model, volume.image, outputs, source=ImageSource(str(tmp_path / "image.npy")),
                              chunks=10, block=16, workers=2, progress=kill_a_busy_worker)
    assert killed, "no worker was busy after the first chunk"
    assert summary["computed"] == summary["chunks"] == 4 * 4 * 5
    np.testing.assert_array_equal(zarr.open_array(outputs.labels)[:], whole.labels)
    assert len(list((tmp_path / "p.zarr" / DONE_FOLDER).iterdir())) == summary["chunks"]


def test_convert_round_trips_samples_and_geometry(tmp_path):
    segyio = pytest.importorskip("segyio")
    from napari_geoseg.io import read_volume

    path = tmp_path / "irregular.sgy"
    cube = np.random.default_rng(0).standard_normal((6, 5, 12)).astype(np.float32)
    positions = [(i, x) for i in range(6) for x in range(5) if (i, x) not in {(0, 0), (0, 1), (1, 0)}]
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount = 5, list(range(12)), len(positions)
    with segyio.create(str(path), spec) as file:
        file.bin.update({segyio.BinField.Interval: 2000})
        for t, (i, x) in enumerate(positions):
            file.header[t] = {segyio.TraceField.INLINE_3D: 100 + 2 * i, segyio.TraceField.CROSSLINE_3D: 300 + x,
                              segyio.TraceField.CDP_X: 5000 + 2500 * x, segyio.TraceField.CDP_Y: 9000 + 5000 * i,
                              segyio.TraceField.SourceGroupScalar: -100, segyio.TraceField.TRACE_SAMPLE_INTERVAL: 2000}
            file.trace[t] = cube[i, x]
    out = tmp_path / "survey.zarr"
    assert main(["convert", str(path), str(out), "--chunks", "4"]) == 0
    source, converted = read_volume(path), read_volume(out)
    assert zarr.open_array(str(out)).chunks == (4, 4, 4)
    np.testing.assert_array_equal(np.asarray(converted.data), np.asarray(source.data))
    assert np.isnan(np.asarray(converted.data)[0, 0]).all()
    assert (converted.scale, converted.translate, converted.units) == (source.scale, source.translate, source.units)
    g, h = converted.geometry, source.geometry
    assert g.n_missing == 3 and g.domain == h.domain and list(g.inlines) == list(h.inlines)
    np.testing.assert_allclose(g.transform, h.transform)
    assert main(["convert", str(path), str(out)]) == 2  # exists


def test_predict_to_zarr_from_the_command_line(trained, tmp_path, capsys):
    volume, model, whole = trained
    np.save(tmp_path / "image.npy", volume.image)
    model.save(tmp_path / "m.pt")
    args = ["predict", "--model", str(tmp_path / "m.pt"), "--image", str(tmp_path / "image.npy"),
            "--out", str(tmp_path / "p.zarr"), "--chunks", "24"]
    assert main(args) == 0
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "p.zarr"))[:],
                                  Predictor(model).predict(volume.image).labels)
    assert main(args) == 2 and "already exists" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0 and "8 already done" in capsys.readouterr().out
    assert main(args[:-4] + ["--out", str(tmp_path / "p.npy"), "--workers", "2"]) == 2
    assert "name the output .zarr" in capsys.readouterr().err


def test_an_mdio_like_store_opens_its_amplitudes_with_coordinates(tmp_path):
    from napari_geoseg.io import read_volume

    root = zarr.open_group(str(tmp_path / "survey.mdio"), mode="w")
    amplitude = root.create_array("amplitude", shape=(4, 3, 5), dtype="float32", chunks=(2, 3, 5),
                                  dimension_names=("inline", "crossline", "time"))
    amplitude[:] = np.arange(60, dtype=np.float32).reshape(4, 3, 5)
    for name, values in (("inline", [10, 12, 14, 16]), ("crossline", [100, 101, 102]),
                         ("time", [0, 4, 8, 12, 16])):
        array = root.create_array(name, shape=(len(values),), dtype="int32", dimension_names=(name,))
        array[:] = values
    store = tmp_path / "survey.zarr"  # read_volume knows stores by their suffix
    (tmp_path / "survey.mdio").rename(store)
    volume = read_volume(store)
    assert volume.axes == ("inline", "crossline", "time")
    assert volume.scale == (2.0, 1.0, 4.0) and volume.translate == (10.0, 100.0, 0.0)
    np.testing.assert_array_equal(np.asarray(volume.data), np.arange(60).reshape(4, 3, 5))
