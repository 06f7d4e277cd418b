import numpy as np
import pytest
import torch

from napari_geoseg.data import synthetic_seismic
from napari_geoseg.errors import InputError, OutputExistsError
from napari_geoseg.train import Model, Predictor, Trainer, TrainingDiverged, infer_mode
from napari_geoseg.train.trainer import prepare_labels


@pytest.fixture(scope="module")
def volume():
    return synthetic_seismic((32, 32, 32), seed=1)


def weights(model):
    return [p.detach().clone() for p in model.net.parameters()]


def test_prepare_labels_maps_values_to_classes():
    labels, ids = prepare_labels(np.array([[0, 5], [2, 5]]))
    assert ids == [2, 5] and labels.tolist() == [[0, 2], [1, 2]]
    labels, ids = prepare_labels(np.array([[7, 5], [2, 0]]), class_ids=[2, 5])
    assert ids == [2, 5, 7] and labels.tolist() == [[3, 2], [1, 0]]


@pytest.mark.parametrize("labels, message", [
    (np.array([[0.5, 1.0]]), "non-integer"), (np.array([[0, 1, 1]]), "at least two classes"),
    (np.array([[-1, 1, 2]]), "negative"), (np.array([[True, False]]), "integers"),
])
def test_bad_labels(labels, message):
    with pytest.raises(InputError, match=message):
        prepare_labels(labels)


def test_infer_mode():
    assert infer_mode((10, 10, 10), (10, 10, 10)) == "volume"
    assert infer_mode((10, 10, 50), (10, 10)) == "spectral"
    assert infer_mode((10, 10, 3), (10, 10)) == "image"
    assert infer_mode((10, 10), (10, 10)) == "image"
    with pytest.raises(InputError, match="do not fit together"):
        infer_mode((10, 10, 10), (10, 9, 10))
    # Without labels, what the file says of the last axis decides; a survey stays a volume.
    assert infer_mode((10, 10, 10)) == "volume"
    assert infer_mode((10, 10, 10), bands=True) == "spectral"
    assert infer_mode((10, 10, 3), (10, 10), bands=True) == "spectral"  # a 3-band cube, not colours
    assert infer_mode((10, 10, 10), (10, 10), bands=False) == "volume"
    assert infer_mode((10, 10)) == "image"
    with pytest.raises(InputError, match="cube.npy: an image of 4 axes"):
        infer_mode((2, 3, 4, 5), name="cube.npy")


def test_the_reader_and_the_widget_ask_the_engine_for_the_mode():
    # One rule: the reader's and the widget's guesses are infer_mode's.
    from types import SimpleNamespace

    pytest.importorskip("qtpy")  # the widget package
    from napari_geoseg._reader import volume_mode
    from napari_geoseg._widget.layers import layer_mode
    from napari_geoseg.io import Volume

    cube = np.zeros((6, 6, 20), np.float32)
    assert volume_mode(Volume(cube, axes=("row", "col", "band"))) == "spectral"
    assert volume_mode(Volume(cube)) == "volume"
    assert volume_mode(Volume(cube), labels_ndim=2) == "spectral"
    assert volume_mode(Volume(cube[..., 0])) == "image"
    layer = SimpleNamespace(data=np.zeros((6, 6, 3)), rgb=True, metadata={}, name="photo", multiscale=False)
    assert layer_mode(layer) == "image"
    layer = SimpleNamespace(data=cube, rgb=False, metadata={}, name="stack", multiscale=False)
    assert layer_mode(layer) == "volume"
    layer.data = np.zeros((2, 3, 4, 5))
    with pytest.raises(InputError, match="stack: an image of 4 axes"):
        layer_mode(layer)


def test_training_is_deterministic(volume):
    runs = [Trainer(volume.image, volume.labels, iterations=3, block=16, seed=3).train() for _ in range(2)]
    for a, b in zip(weights(runs[0]), weights(runs[1])):
        assert torch.equal(a, b)


def test_stop_ends_between_iterations(volume):
    trainer = Trainer(volume.image, volume.labels, iterations=50, block=16, seed=3)
    events = []
    for event in trainer.run():
        events.append(event)
        trainer.stop()
    assert [e.iteration for e in events] == [1]
    reference = Trainer(volume.image, volume.labels, iterations=1, block=16, seed=3).train()
    # Same as a one-iteration run: nothing half-updated.
    for a, b in zip(weights(trainer.model), weights(reference)):
        assert torch.equal(a, b)


def test_diverging_loss_keeps_last_good_weights(volume):
    trainer = Trainer(volume.image, volume.labels, iterations=30, block=16, learning_rate=1e4, seed=0)
    with pytest.raises(TrainingDiverged, match="diverged at iteration"):
        trainer.train()
    assert trainer.history, "at least one good iteration before the divergence"
    assert all(torch.isfinite(w).all() for w in weights(trainer.model))


def test_continue_from_model_with_a_new_class(volume):
    model = Trainer(volume.image, volume.labels, iterations=2, block=16).train()
    labels = volume.labels.copy()
    labels[0, 0, :4] = 9  # a new class
    trainer = Trainer(volume.image, labels, iterations=1, block=16, model=model)
    assert trainer.model.class_ids == [1, 2, 3, 9]
    for a, b in zip(weights(trainer.model), weights(model)):
        assert torch.equal(a, b)  # starts from the given weights...
    trainer.train()
    assert not all(torch.equal(a, b) for a, b in zip(weights(trainer.model), weights(model)))


def test_validation_accuracy_is_reported(volume):
    trainer = Trainer(volume.image, volume.labels, iterations=2, block=16, validate_every=1)
    events = list(trainer.run())
    assert all(0 <= e.validation_accuracy <= 1 for e in events)


def test_blocks_agree_with_a_whole_volume_pass(volume):
    model = Trainer(volume.image, volume.labels, iterations=10, block=16).train()
    whole = Predictor(model, block=32).predict(volume.image)
    blocks = Predictor(model, block=24, overlap=8).predict(volume.image)
    assert whole.labels.shape == volume.image.shape and whole.labels.dtype == np.uint8
    top = np.sort(whole.probabilities, 0)
    confident = top[-1] - top[-2] > 0.2
    # Zero padding at block edges moves near-ties only; blending keeps the rest.
    assert np.mean((whole.labels == blocks.labels)[confident]) > 0.99
    assert np.mean(whole.labels == blocks.labels) > 0.95
    assert np.abs(whole.probabilities - blocks.probabilities).mean() < 0.02
    assert np.allclose(whole.probabilities.sum(0), 1, atol=1e-5)
    assert 0 <= whole.uncertainty.min() and whole.uncertainty.max() <= 1


def test_model_file_round_trip(volume, tmp_path):
    model = Trainer(volume.image, volume.labels, iterations=2, block=16,
                    class_names=["top", "middle", "bottom"]).train()
    path = model.save(tmp_path / "model.pt")
    loaded = Model.load(path)
    assert loaded.class_names == ["top", "middle", "bottom"] and loaded.class_ids == [1, 2, 3]
    a = Predictor(model, block=32).predict(volume.image)
    b = Predictor(loaded, block=32).predict(volume.image)
    assert np.array_equal(a.labels, b.labels)
    with pytest.raises(OutputExistsError):
        model.save(path)
    model.save(path, overwrite=True)


@pytest.mark.parametrize("content", [b"garbage", b""])
def test_corrupt_model_file(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(InputError, match="bad.pt"):
        Model.load(path)


def test_truncated_model_file(volume, tmp_path):
    path = Trainer(volume.image, volume.labels, iterations=1, block=16).train().save(tmp_path / "m.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="m.pt"):
        Model.load(path)


def test_spectral_mode_predicts_a_map():
    rng = np.random.default_rng(0)
    truth = np.zeros((16, 16), np.uint8)
    truth[:, :8], truth[:, 8:] = 1, 2
    spectra = np.stack([np.linspace(0, 1, 20), np.linspace(1, 0, 20)])
    cube = spectra[truth - 1] + 0.05 * rng.standard_normal((16, 16, 20))
    labels = np.zeros_like(truth)
    labels[::5, ::5] = truth[::5, ::5]
    trainer = Trainer(cube.astype(np.float32), labels, iterations=15, block=16)
    assert trainer.layout.mode == "spectral"
    model = trainer.train()
    result = Predictor(model).predict(cube.astype(np.float32))
    assert result.labels.shape == (16, 16) and result.probabilities.shape == (2, 16, 16)
    assert np.mean(result.labels == truth) > 0.8


def test_image_mode_and_nan_masking():
    image = np.random.default_rng(0).standard_normal((32, 32)).astype(np.float32)
    image[:, 16:] += 3
    image[5, 5] = np.nan
    labels = np.zeros((32, 32), np.uint8)
    labels[10, 2], labels[10, 30], labels[20, 3], labels[20, 29] = 1, 2, 1, 2
    with pytest.warns(UserWarning, match="1 NaN or Inf samples"):
        trainer = Trainer(image, labels, iterations=5, block=32)
    assert trainer.layout.mode == "image"
    result = Predictor(trainer.train()).predict(image)
    assert result.labels[5, 5] == 0 and np.isnan(result.uncertainty[5, 5])
    assert set(np.unique(result.labels)) <= {0, 1, 2}


def test_wrong_image_for_model(volume):
    model = Trainer(volume.image, volume.labels, iterations=1, block=16).train()
    with pytest.raises(InputError, match="1 image channel"):
        Predictor(model).predict(np.zeros((16, 16, 16, 2), np.float32))


def test_bin_bands_and_its_lazy_view():
    from napari_geoseg.train.layout import BinnedBands, band_bin_for, bin_bands

    cube = np.arange(2 * 3 * 10, dtype=np.float32).reshape(2, 3, 10)
    binned = bin_bands(cube, 4)
    # Groups 0-3, 4-7 and the shorter 8-9.
    assert binned.shape == (2, 3, 3)
    assert np.allclose(binned[..., 0], cube[..., :4].mean(-1)) and np.allclose(binned[..., 2], cube[..., 8:].mean(-1))
    lazy = BinnedBands(cube, 4)
    assert lazy.shape == (2, 3, 3) and np.array_equal(lazy[1:, :2], binned[1:, :2])
    assert np.array_equal(lazy[:, :, :], binned)
    with pytest.raises(IndexError):
        lazy[:, :, 1:]
    assert band_bin_for(156, 48) == 4 and band_bin_for(48, 48) == 1 and band_bin_for(500, 0) == 1


def test_many_bands_are_binned_in_training_prediction_and_model_files(tmp_path):
    rng = np.random.default_rng(1)
    truth = np.zeros((16, 16), np.uint8)
    truth[:8], truth[8:] = 1, 2
    spectra = np.stack([np.linspace(0, 1, 100), np.linspace(1, 0, 100)])
    cube = (spectra[truth - 1] + 0.05 * rng.standard_normal((16, 16, 100))).astype(np.float32)
    labels = np.zeros_like(truth)
    labels[::5, ::5] = truth[::5, ::5]
    trainer = Trainer(cube, labels, iterations=40, block=16)
    # The fast preset keeps at most 48 bands: 100 bands are averaged in threes (34 left).
    assert trainer.layout.band_bin == 3 and trainer.features.shape[-1] % 4 == 0
    model = Model.load(trainer.train().save(tmp_path / "cube.pt"))
    assert model.layout.band_bin == 3
    result = Predictor(model).predict(np.lib.format.open_memmap(_save(tmp_path / "cube.npy", cube), mode="r"))
    assert result.labels.shape == (16, 16)
    assert np.mean(result.labels == truth) > 0.8


def test_cubes_train_on_the_presets_spectral_blocks(volume):
    # Cubes are told apart by their spectra: the fast preset trains them on smaller
    # blocks for more iterations; volumes keep the volume settings.
    from napari_geoseg.train import get_preset

    preset = get_preset("fast")
    assert preset.spectral_block < preset.block and preset.spectral_iterations > preset.iterations
    cube = np.zeros((80, 80, 16), np.float32)
    labels = np.zeros((80, 80), np.uint8)
    labels[5, 5], labels[60, 60] = 1, 2
    trainer = Trainer(cube, labels)
    assert trainer.block == (preset.spectral_block, preset.spectral_block)  # bands are channels
    assert trainer.iterations == preset.spectral_iterations
    assert Trainer(cube, labels, block=16, iterations=7).block[:2] == (16, 16)
    on_volume = Trainer(volume.image, volume.labels, preset=get_preset("fast", block=16))
    assert on_volume.block[:2] == (16, 16) and on_volume.iterations == preset.iterations


def test_images_smaller_than_a_block_train_for_more_iterations(volume):
    # An iteration on a volume that cuts the block short sees fewer voxels; where it sees
    # less than a quarter of a full block's, the run trains until it has seen a quarter of
    # a full-block run's voxels (at most MAX_ITERATION_SCALE times the preset's iterations).
    from napari_geoseg.train import get_preset
    from napari_geoseg.train.trainer import MAX_ITERATION_SCALE, SMALL_IMAGE_VOXEL_SHARE

    preset = get_preset("fast")
    small = Trainer(volume.image, volume.labels)  # 32^3 against 64^3 blocks: 8 times fewer voxels
    assert small.block == (32, 32, 32)
    assert small.iterations == round(preset.iterations * 8 * SMALL_IMAGE_VOXEL_SHARE)
    tiny = Trainer(volume.image[:16, :16, :16], volume.labels[:16, :16, :16])  # 64 times fewer
    assert tiny.iterations == round(preset.iterations * MAX_ITERATION_SCALE)
    slab = Trainer(volume.image, volume.labels, block=48)  # 48^3 cut to 32^3: 3.4 times fewer
    assert slab.iterations == preset.iterations
    assert Trainer(volume.image, volume.labels, block=32).iterations == preset.iterations  # the block fits
    assert Trainer(volume.image, volume.labels, iterations=7).iterations == 7  # asked for: kept
    labels = np.zeros((32, 32), np.uint8)
    labels[4, 4], labels[20, 20] = 1, 2
    on_image = Trainer(volume.image[:, :, 0], labels, block=96)  # 96^2 cut to 32^2: 9 times fewer
    assert on_image.iterations == round(preset.iterations * 9 * SMALL_IMAGE_VOXEL_SHARE)


def test_ordered_units_keep_label_values_in_order_down_every_trace(volume):
    model = Trainer(volume.image, volume.labels, iterations=3, block=16).train()
    plain = Predictor(model, block=32).predict(volume.image)
    ordered = Predictor(model, block=32, ordered_units=True).predict(volume.image)
    assert np.all(np.diff(ordered.labels.astype(int), axis=-1) >= 0)
    np.testing.assert_array_equal(ordered.probabilities, plain.probabilities)
    # Label values set the order, whatever order the classes were met in: relabelled
    # so that value 1 is the bottom unit, each trace goes 3 -> 1 from the bottom up.
    flipped = np.where(volume.labels > 0, 4 - volume.labels.astype(int), 0)
    model = Trainer(volume.image, flipped, iterations=3, block=16).train()
    labels = Predictor(model, block=32, ordered_units=True).predict(volume.image).labels
    assert np.all(np.diff(labels.astype(int), axis=-1) >= 0)


def test_ordered_units_need_a_volume_model():
    cube = np.zeros((16, 16, 8), np.float32)
    labels = np.zeros((16, 16), np.uint8)
    labels[2, 2], labels[9, 9] = 1, 2
    model = Trainer(cube, labels, iterations=1, block=16).train()
    with pytest.raises(InputError, match="ordered units need a model of volumes"):
        Predictor(model, ordered_units=True)


def _save(path, array):
    np.save(path, array)
    return path


def test_flip_averaged_prediction_commutes_with_flips(volume):
    # Averaging over the lateral flips makes the prediction of a flipped volume the
    # flipped prediction (one block, sizes a multiple of the network's, so no padding).
    model = Trainer(volume.image, volume.labels, iterations=3, block=16).train()
    plain = Predictor(model, block=32).predict(volume.image)
    flipped = Predictor(model, block=32).predict(np.ascontiguousarray(volume.image[::-1]))
    assert np.allclose(flipped.probabilities[:, ::-1], plain.probabilities, atol=1e-5)
    single = Predictor(model, block=32, flips=False).predict(volume.image)
    assert not np.allclose(single.probabilities, plain.probabilities, atol=1e-5)
    assert np.allclose(single.probabilities.sum(0), 1, atol=1e-5)


def test_final_weights_average_the_second_half_of_training(volume, monkeypatch):
    import napari_geoseg.train.trainer as trainer_module

    def run(iterations):
        trainer = Trainer(volume.image, volume.labels, iterations=iterations, block=16, seed=3)
        seen = {}
        for event in trainer.run():
            seen[event.iteration] = weights(trainer.model)
        return seen

    averaged = run(4)  # iterations 3 and 4 are averaged
    monkeypatch.setattr(trainer_module, "AVERAGED_SHARE", 0.0)
    plain = run(4)
    for a, w3, w4 in zip(averaged[4], plain[3], plain[4]):
        assert torch.allclose(a, (w3 + w4) / 2, atol=1e-6)
    assert any(not torch.equal(a, w4) for a, w4 in zip(averaged[4], plain[4]))


def test_cube_blocks_are_lit_differently_in_training_only(volume):
    # Illumination jitter: a training block of a cube looks like the cube times a gain;
    # validation blocks and volumes are untouched.
    from napari_geoseg.train import get_preset
    from napari_geoseg.train.layout import build_features

    rng = np.random.default_rng(0)
    # Bands of different levels and ranges, normalised each by its own statistics.
    cube = (rng.random((32, 32, 12)) * np.linspace(1, 5, 12) + np.linspace(3, 30, 12)).astype(np.float32)
    labels = np.zeros((32, 32), np.uint8)
    labels[3, 3], labels[20, 20] = 1, 2
    assert get_preset("fast").illumination_jitter == 0  # brightness may be what tells classes apart
    trainer = Trainer(cube, labels, preset=get_preset("fast", illumination_jitter=0.3), iterations=1, members=1)
    assert trainer.layout.band_statistics
    x = torch.from_numpy(trainer.features.copy())
    expected, _ = build_features(cube * 1.25, trainer.layout, trainer.model.center, trainer.model.scale,
                                 trainer.model.feature_repeats)
    np.testing.assert_allclose(trainer._illuminate(x, 1.25).numpy(), expected, atol=1e-5)
    crop = (slice(0, 32), slice(0, 32))  # the map: the bands are channels
    plain, _ = trainer._batch(crop, "train", None)
    np.testing.assert_array_equal(plain[0].numpy(), trainer.features)
    jittered, _ = trainer._batch(crop, "train", np.random.default_rng(1))
    assert not np.allclose(np.sort(jittered[0].numpy().ravel()), np.sort(trainer.features.ravel()))
    on_volume = Trainer(volume.image, volume.labels, preset=get_preset("fast", illumination_jitter=0.3),
                        iterations=1, block=16)
    block = (slice(0, 16),) * 3
    a, _ = on_volume._batch(block, "train", np.random.default_rng(1))
    assert np.allclose(np.sort(a.numpy().ravel()), np.sort(on_volume.features[(slice(None), *block)].ravel()))


def test_cube_bands_are_normalised_each_by_its_own_statistics(tmp_path):
    # A cube whose bands differ in level and range by far more than its classes do:
    # every band comes out centred on its median with a unit robust spread, and the
    # model file keeps the per-band statistics.
    from napari_geoseg.train import Model, Predictor

    rng = np.random.default_rng(0)
    level, spread = np.linspace(1000, 9000, 10), np.linspace(10, 400, 10)
    cube = (level + spread * rng.standard_normal((24, 24, 10))).astype(np.float32)
    labels = np.zeros((24, 24), np.uint8)
    labels[2, 2], labels[12, 12] = 1, 2
    trainer = Trainer(cube, labels, iterations=2, members=1)
    model = trainer.model
    assert model.layout.band_statistics and model.center.shape == (10,)
    np.testing.assert_allclose(model.center, np.median(cube.reshape(-1, 10), 0), rtol=1e-4)
    bands = trainer.features[:10]
    np.testing.assert_allclose(np.median(bands.reshape(10, -1), 1), 0, atol=1e-3)
    q1, q3 = np.percentile(bands.reshape(10, -1), [25, 75], axis=1)
    np.testing.assert_allclose((q3 - q1) / 1.349, 1, rtol=1e-3)
    model.save(tmp_path / "m.pt")
    loaded = Model.load(tmp_path / "m.pt")
    assert loaded.layout.band_statistics
    np.testing.assert_array_equal(Predictor(loaded).predict(cube).labels, Predictor(model).predict(cube).labels)


def test_statistics_sampled_from_blocks_are_per_band_too():
    from napari_geoseg.train.layout import Layout
    from napari_geoseg.train.reading import sampled_statistics

    rng = np.random.default_rng(1)
    cube = (np.arange(6) * 100 + rng.standard_normal((64, 64, 6))).astype(np.float32)
    layout = Layout("spectral", 3, 1, bands_as_channels=True, band_statistics=True)
    center, scale = sampled_statistics(cube, layout, blocks=8, side=16)
    np.testing.assert_allclose(center, np.arange(6) * 100, atol=0.2)
    np.testing.assert_allclose(scale, 1, atol=0.2)


def test_a_new_model_names_every_class_even_with_fewer_names_given(volume):
    trainer = Trainer(volume.image, volume.labels, iterations=1, class_names=["top"])
    assert len(trainer.model.class_names) == len(trainer.model.class_ids) == 3
    assert trainer.model.class_names == ["top", "class 2", "class 3"]
