"""Training reads only blocks of a lazy volume, and trains as it would on the array."""
import numpy as np
import pytest

from napari_geoseg.data import synthetic_seismic
from napari_geoseg.train import Trainer, get_preset, reading
from napari_geoseg.train.memory import training_bytes

zarr = pytest.importorskip("zarr")


class Counting:
    """A lazy read-only array that records the largest read."""

    def __init__(self, data):
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim
        self.largest = 0

    def __getitem__(self, key):
        values = np.asarray(self.data[key])
        self.largest = max(self.largest, values.size)
        return values


@pytest.fixture(scope="module")
def volume():
    return synthetic_seismic((48, 40, 64), seed=2)


def weights(model):
    return [p.detach().numpy().copy() for p in model.net.parameters()]


def test_a_zarr_volume_trains_as_the_array_does(volume, tmp_path):
    store = zarr.open_array(str(tmp_path / "v.zarr"), mode="w", shape=volume.image.shape, chunks=(16, 16, 64),
                            dtype=np.float32)
    store[:] = volume.image
    labels = zarr.open_array(str(tmp_path / "l.zarr"), mode="w", shape=volume.labels.shape, chunks=(16, 16, 64),
                             dtype=np.int16)
    labels[:] = volume.labels
    lazy = Trainer(store, labels, iterations=4, block=16, seed=1).train()
    eager = Trainer(volume.image, volume.labels, iterations=4, block=16, seed=1).train()
    for a, b in zip(weights(lazy), weights(eager)):
        np.testing.assert_array_equal(a, b)


def test_a_large_volume_is_read_a_block_at_a_time(volume, monkeypatch):
    monkeypatch.setattr(reading, "SMALL_BYTES", 1024)  # as if the volume were larger than memory
    monkeypatch.setattr(reading, "SLAB_BYTES", 64 * 40 * 4)  # one inline per slab
    image, labels = Counting(volume.image), Counting(volume.labels)
    # Plain depth: the flattening reads its own tiles (whole here, the volume being small).
    trainer = Trainer(image, labels, iterations=3, block=16, preset=get_preset("fast", flatten=False))
    trainer.train()
    whole = volume.image.size
    # Slabs of one inline, training blocks of 16 x 16 traces and statistics blocks of 32 x 32.
    assert image.largest <= 32 * 32 * 64 < whole and labels.largest <= whole / 4
    assert trainer.n_train_labels + len(trainer._validation_points) == np.count_nonzero(volume.labels)
    # Memory is that of the labelled voxels and of one step, not of the volume.
    assert training_bytes(trainer) < 4 * whole * 16


def test_sampled_statistics_match_the_whole_volume(volume):
    from napari_geoseg.train.layout import Layout, robust_statistics

    layout = Layout.for_image("volume", volume.image.shape)
    center, scale = reading.sampled_statistics(volume.image, layout, blocks=16, side=16)
    whole_center, whole_scale = robust_statistics(volume.image, layout)
    assert abs(center[0] - whole_center[0]) < 0.1 * whole_scale[0] and abs(scale[0] / whole_scale[0] - 1) < 0.1


def test_chunked_arrays_are_read_by_chunk_aligned_boxes(tmp_path, monkeypatch):
    # Labels, NaN counts and the data at labelled voxels come out as from the numpy array,
    # read in boxes of whole chunks (small here, so that there are many).
    monkeypatch.setattr(reading, "SLAB_BYTES", 600)
    rng = np.random.default_rng(0)
    image = rng.standard_normal((10, 9, 8)).astype(np.float32)
    image[rng.random(image.shape) < 0.05] = np.nan
    labels = np.where(rng.random(image.shape) < 0.1, rng.integers(1, 4, image.shape), 0).astype(np.uint8)
    stored = {}
    for name, data in (("image", image), ("labels", labels)):
        stored[name] = zarr.open_array(str(tmp_path / f"{name}.zarr"), mode="w", shape=data.shape, chunks=(4, 3, 8),
                                       dtype=data.dtype)
        stored[name][:] = data
    boxes = reading._boxes(stored["image"])
    assert all(box[0].start % 4 == 0 and box[1].start % 3 == 0 for box in boxes) and len(boxes) > 4
    points, values = reading.labelled_voxels(stored["labels"])
    np.testing.assert_array_equal(points, np.argwhere(labels))  # C order, as from numpy
    np.testing.assert_array_equal(values, labels[labels > 0])
    assert reading.count_nonfinite(stored["image"]) == np.count_nonzero(np.isnan(image))
    from napari_geoseg.train.layout import Layout

    layout = Layout("volume", 3, 1)
    np.testing.assert_array_equal(reading.finite_at(stored["image"], points, layout),
                                  reading.finite_at(image, points, layout))
