"""The flattened depth channel: dips, their integration, and its use in training and prediction."""

import numpy as np
import pytest

from napari_geoseg.data import synthetic_seismic
from napari_geoseg.data.synthetic import _relative_geologic_time
from napari_geoseg.train import Model, Predictor, Trainer, flattening
from napari_geoseg.train.flattening import FlattenedDepth, integrate_dips, local_dips
from napari_geoseg.train.layout import Layout, build_features
from napari_geoseg.train.presets import get_preset


def _folded(shape=(40, 48, 64), seed=0):
    """Layers ``sin(2 pi tau / 9)`` whose depositional time ``tau = z - fold(a, b)``."""
    a, b, z = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    fold = 6 * np.sin(2 * np.pi * a / shape[0]) * np.cos(np.pi * b / shape[1]) + 0.1 * b
    rng = np.random.default_rng(seed)
    volume = np.sin(2 * np.pi * (z - fold) / 9) + 0.1 * rng.standard_normal(shape)
    return volume.astype(np.float32), fold, z - fold


def test_dips_of_planar_layers():
    a, b, z = np.meshgrid(*[np.arange(n, dtype=float) for n in (32, 32, 48)], indexing="ij")
    volume = np.sin(2 * np.pi * (z - 0.4 * a + 0.25 * b) / 10)
    dip_a, dip_b = local_dips(volume)
    inside = np.s_[8:-8, 8:-8, 8:-8]
    np.testing.assert_allclose(np.median(dip_a[inside]), 0.4, atol=0.02)
    np.testing.assert_allclose(np.median(dip_b[inside]), -0.25, atol=0.02)


def test_integrating_exact_dips_recovers_the_shift():
    shape = (24, 20, 8)
    a, b, _ = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    shift = 0.02 * (a - 10) ** 2 + 0.3 * b
    # Dips as the differences between neighbouring traces, centred on each trace.
    dip_a = np.gradient(shift, axis=0)
    dip_b = np.gradient(shift, axis=1)
    solved = integrate_dips(dip_a, dip_b)
    expected = shift - shift.mean(axis=(0, 1), keepdims=True)
    np.testing.assert_allclose(solved.mean(axis=(0, 1)), 0, atol=1e-9)
    assert np.abs(solved - expected).max() < 0.05 * np.ptp(expected)


def test_flattened_depth_follows_the_layers():
    volume, fold, tau = _folded()
    flat = FlattenedDepth.of(volume)
    depth = flat.samples((slice(None),) * 3)
    inside = np.s_[4:-4, 4:-4, 8:-8]
    # Along a layer the flattened depth hardly varies; the plain depth varies with the fold.
    error = (depth - tau)[inside]
    plain = (np.arange(volume.shape[2]) - tau)[inside]
    assert np.std(error) < 0.25 * np.std(plain)
    position = flat.position()
    assert position.shape == volume.shape and position.dtype == np.float32
    np.testing.assert_allclose(position.mean(axis=(0, 1)), np.linspace(-1, 1, volume.shape[2]), atol=1e-5)


def test_boxes_agree_with_the_whole_and_large_volumes_are_decimated():
    volume, _, tau = _folded()
    flat = FlattenedDepth.of(volume)
    box = (slice(5, 17), slice(30, 48), slice(10, 40))
    np.testing.assert_allclose(flat.position(box), flat.position()[box], atol=1e-6)
    # Tiles of dips agree with the whole volume's.
    tiled = FlattenedDepth.of(volume, tile_voxels=60 * 60 * 64)
    np.testing.assert_allclose(tiled.shift, flat.shift, atol=1e-3)
    coarse = FlattenedDepth.of(volume, max_voxels=volume.size // 8, tile_voxels=60 * 60 * 64)
    assert coarse.step == 3 and coarse.shift.shape == (14, 16, 64)
    depth = coarse.samples((slice(None),) * 3)
    assert depth.shape == volume.shape
    inside = np.s_[4:-4, 4:-4, 8:-8]
    assert np.std((depth - tau)[inside]) < 0.3 * np.std((np.arange(64) - tau)[inside])


@pytest.mark.parametrize("parts", [2, 3, 7])
def test_threaded_gaussian_filters_equal_scipy_exactly(parts):
    from concurrent.futures import ThreadPoolExecutor

    from scipy import ndimage

    volume = np.random.default_rng(0).standard_normal((17, 29, 23)).astype(np.float32)
    with ThreadPoolExecutor(2) as pool:
        for sigma, order in ((1.0, (0, 0, 1)), (1.0, (1, 0, 0)), (1.0, (0, 1, 0)), (4.0, (0, 0, 0))):
            threaded = flattening._gaussian(volume, sigma, order, pool, parts)
            assert threaded.dtype == np.float32
            np.testing.assert_array_equal(threaded, ndimage.gaussian_filter(volume, sigma, order=order))


def test_the_flattened_depth_does_not_depend_on_the_threads():
    volume, _, _ = _folded()
    one = FlattenedDepth.of(volume, max_voxels=volume.size // 4, tile_voxels=60 * 60 * 64, threads=1)
    three = FlattenedDepth.of(volume, max_voxels=volume.size // 4, tile_voxels=60 * 60 * 64, threads=3)
    np.testing.assert_array_equal(three.shift, one.shift)


def test_flattening_the_synthetic_sample_beats_the_plain_depth():
    volume = synthetic_seismic((48, 48, 48), seed=1)
    tau = _relative_geologic_time((48, 48, 48), np.random.default_rng(1))
    depth = FlattenedDepth.of(volume.image).samples((slice(None),) * 3)
    assert np.std(depth - tau) < 0.6 * np.std(np.arange(48) - tau)


def test_nan_traces_do_not_spoil_the_flattening():
    volume, _, _ = _folded()
    volume[10:12] = np.nan
    position = FlattenedDepth.of(volume).position()
    assert np.isfinite(position).all()


def test_trainer_and_predictor_use_the_flattened_depth(tmp_path, monkeypatch):
    volume = synthetic_seismic((24, 24, 32), seed=1)
    trainer = Trainer(volume.image, volume.labels, preset="fast", iterations=2, block=16, seed=0)
    assert trainer.model.layout.flattened
    expected = FlattenedDepth.of(volume.image, trainer.model.center, trainer.model.scale).position()
    np.testing.assert_allclose(trainer.features[1], expected, atol=1e-6)
    model = trainer.train()
    path = model.save(tmp_path / "flat.pt")
    assert Model.load(path).layout.flattened
    calls = []
    original = flattening.FlattenedDepth.of.__func__

    def counting(cls, *args, **kwargs):
        calls.append(1)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(flattening.FlattenedDepth, "of", classmethod(counting))
    own = Predictor(model, flips=False).predict(volume.image)
    assert len(calls) == 1  # the predictor flattens the image once, for all its blocks
    reused = Predictor(model, flips=False).predict(volume.image, flattened_depth=trainer.flattened_depth)
    assert len(calls) == 1
    np.testing.assert_allclose(own.probabilities, reused.probabilities, atol=1e-6)


def test_a_trainer_reuses_a_given_flattened_depth(monkeypatch):
    volume = synthetic_seismic((24, 24, 32), seed=1)
    first = Trainer(volume.image, volume.labels, preset="fast", iterations=1, block=16)
    calls = []
    original = flattening.FlattenedDepth.of.__func__
    monkeypatch.setattr(flattening.FlattenedDepth, "of",
                        classmethod(lambda cls, *a, **k: calls.append(1) or original(cls, *a, **k)))
    again = Trainer(volume.image, volume.labels, preset="fast", iterations=1, block=16,
                    flattened_depth=first.flattened_depth)
    assert not calls and again.flattened_depth is first.flattened_depth
    np.testing.assert_array_equal(again.features, first.features)
    other = synthetic_seismic((24, 24, 16), seed=1)
    with pytest.raises(ValueError, match="flattened depth of shape"):
        Trainer(other.image, other.labels, preset="fast", iterations=1, block=16,
                flattened_depth=first.flattened_depth)


def test_preset_without_flattening_keeps_the_plain_depth():
    volume = synthetic_seismic((24, 24, 32), seed=1)
    preset = get_preset("fast", flatten=False)
    trainer = Trainer(volume.image, volume.labels, preset=preset, iterations=1, block=16)
    assert not trainer.model.layout.flattened and trainer.flattened_depth is None
    np.testing.assert_allclose(trainer.features[1, 3, 5], np.linspace(-1, 1, 32), atol=1e-6)


def test_models_written_before_flattening_load_with_the_plain_depth(tmp_path):
    volume = synthetic_seismic((24, 24, 32), seed=1)
    model = Trainer(volume.image, volume.labels, preset=get_preset("fast", flatten=False), iterations=1,
                    block=16).train()
    blob = model.to_dict()
    del blob["flattened"]
    del blob["preset"]["flatten"]
    import torch

    torch.save(blob, tmp_path / "old.pt")
    loaded = Model.load(tmp_path / "old.pt")
    assert not loaded.layout.flattened
    # Continuing an old model keeps its plain depth.
    trainer = Trainer(volume.image, volume.labels, model=loaded, iterations=1, block=16)
    assert not trainer.layout.flattened
    np.testing.assert_allclose(trainer.features[1, 0, 0], np.linspace(-1, 1, 32), atol=1e-6)


def test_build_features_checks_the_position_shape():
    layout = Layout.for_image("volume", (4, 4, 4))
    with pytest.raises(ValueError, match="position"):
        build_features(np.zeros((4, 4, 4), np.float32), layout, np.zeros(1), np.ones(1), 4,
                       position=np.zeros((4, 4, 3), np.float32))


@pytest.mark.parametrize("grid, step", [((7, 5, 9), 3), ((4, 6, 5), 2), ((1, 3, 4), 5)])
def test_coarse_shift_is_interpolated_as_trilinear_sampling_would(grid, step):
    # Between the centres of the groups of traces the shift is linear in both lateral
    # axes; the depth falls on the grid's samples. Same as scipy's map_coordinates.
    from scipy import ndimage

    rng = np.random.default_rng(0)
    shift = rng.standard_normal(grid).astype(np.float32)
    full = (grid[0] * step - 1, grid[1] * step - 2, grid[2])
    box = (slice(1, full[0]), slice(0, full[1] - 1), slice(1, grid[2]))
    got = FlattenedDepth(shift, step, full).samples(box)
    (a0, a1), (b0, b1), (v0, v1) = ((s.start, s.stop) for s in box)
    middle = (step - 1) / 2
    depth = np.arange(v0, v1, dtype=np.float32)
    coordinates = np.meshgrid((np.arange(a0, a1) - middle) / step, (np.arange(b0, b1) - middle) / step, depth,
                              indexing="ij")
    expected = depth - ndimage.map_coordinates(shift, coordinates, order=1, mode="nearest")
    np.testing.assert_allclose(got, expected, atol=1e-5)
