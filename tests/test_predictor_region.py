"""Predictor.predict(region=...): the box on screen, with the whole image's position channel."""

import numpy as np
import pytest
import torch

from napari_geoseg.data import synthetic_seismic
from napari_geoseg.errors import InputError
from napari_geoseg.train import Prediction, Predictor, Trainer
from napari_geoseg.train import predictor as predictor_module


@pytest.fixture(scope="module")
def trained():
    volume = synthetic_seismic((24, 24, 32), seed=1)
    trainer = Trainer(volume.image, volume.labels, preset="fast", iterations=2, block=16, seed=0)
    trainer.train()
    return volume, trainer.model


def _record_features(monkeypatch):
    """Keep the network input of every block the predictor builds."""
    seen = []
    original = predictor_module.build_features

    def spy(*args, **kwargs):
        features, finite = original(*args, **kwargs)
        seen.append(features)
        return features, finite

    monkeypatch.setattr(predictor_module, "build_features", spy)
    return seen


def test_whole_region_equals_whole_prediction(trained):
    volume, model = trained
    predictor = Predictor(model, block=64)
    whole = predictor.predict(volume.image)
    boxed = predictor.predict(volume.image, region=(slice(None), slice(None), slice(None)))
    np.testing.assert_array_equal(whole.labels, boxed.labels)
    np.testing.assert_allclose(whole.probabilities, boxed.probabilities)


@pytest.mark.parametrize("region", [(slice(8, 16),), (slice(None), slice(4, 12), slice(16, 32))])
def test_region_sees_the_whole_images_features(trained, monkeypatch, region):
    volume, model = trained
    seen = _record_features(monkeypatch)
    predictor = Predictor(model, block=64)
    whole = predictor.predict(volume.image)
    boxed = predictor.predict(volume.image, region=region)
    assert len(seen) == 2  # one block each: the block covers the image
    box = tuple(region) + (slice(None),) * (3 - len(region))
    # Image and position channels of the box are those of the whole image there; in
    # particular the vertical position does not restart at -1 at the top of the box.
    np.testing.assert_allclose(seen[1], seen[0][(slice(None), *box)], atol=1e-6)
    expected_shape = volume.image[box].shape
    assert boxed.labels.shape == expected_shape
    assert boxed.probabilities.shape == (model.n_classes, *expected_shape)
    assert set(np.unique(boxed.labels)) <= set(np.unique(whole.labels)) | set(model.class_ids)


def test_region_with_blocks_smaller_than_the_region(trained):
    volume, model = trained
    predictor = Predictor(model, block=8, overlap=4)
    result = predictor.predict(volume.image, region=(slice(4, 20), slice(0, 24), slice(8, 32)))
    assert result.labels.shape == (16, 24, 24)
    np.testing.assert_allclose(result.probabilities.sum(0), 1, atol=1e-4)


def test_slabs_and_per_axis_weights_change_nothing(trained, monkeypatch):
    # Blending weights are a product of per-axis sums and labels and entropy are decided
    # a slab at a time: checked against one slab and against the sum of the block windows
    # over the voxels (the probabilities of overlapping blocks blend to a distribution).
    volume, model = trained
    predictor = Predictor(model, block=16, overlap=8, flips=False)
    box = (slice(3, 21), slice(0, 24), slice(5, 30))
    one_slab = predictor.predict(volume.image, output=box)
    monkeypatch.setattr(predictor_module, "_SLAB_VOXELS", 50)  # 1 row of 24 x 25 per slab
    slabs = predictor.predict(volume.image, output=box)
    np.testing.assert_array_equal(one_slab.labels, slabs.labels)
    np.testing.assert_array_equal(one_slab.probabilities, slabs.probabilities)
    np.testing.assert_array_equal(one_slab.uncertainty, slabs.uncertainty)
    np.testing.assert_allclose(slabs.probabilities.sum(0), 1, atol=1e-5)
    entropy = -(slabs.probabilities * np.log(slabs.probabilities)).sum(0) / np.log(model.n_classes)
    np.testing.assert_allclose(slabs.uncertainty, entropy, atol=1e-5)
    whole = predictor.predict(volume.image)
    np.testing.assert_array_equal(whole.labels[box], slabs.labels)


def test_slabs_of_rows_are_given_as_soon_as_no_block_touches_them(trained):
    volume, model = trained
    predictor = Predictor(model, block=8, overlap=4, flips=False)  # rows of blocks every 4 rows
    box = (slice(2, 23), slice(0, 24), slice(0, 32))
    # A part's probabilities are overwritten by the next slab's: copied as they come.
    slabs = [(r, Prediction(p.labels, p.probabilities.copy(), p.uncertainty))
             for r, p in predictor.predict_slabs(volume.image, output=box)]
    rows = [r for r, _ in slabs]
    assert rows[0].start == 0 and rows[-1].stop == 21 and len(slabs) > 3
    assert all(a.stop == b.start for a, b in zip(rows, rows[1:]))
    assert max(r.stop - r.start for r in rows) <= 8  # never more than a row of blocks
    whole = predictor.predict(volume.image, output=box)
    np.testing.assert_array_equal(np.concatenate([p.labels for _, p in slabs]), whole.labels)
    np.testing.assert_array_equal(np.concatenate([p.probabilities for _, p in slabs], axis=1), whole.probabilities)
    np.testing.assert_array_equal(np.concatenate([p.uncertainty for _, p in slabs]), whole.uncertainty)


def test_slabs_without_uncertainty_skip_the_entropy_only(trained):
    volume, model = trained
    predictor = Predictor(model, block=8, overlap=4, flips=False)
    with_entropy = [(r, p.labels) for r, p in predictor.predict_slabs(volume.image)]
    without = [(r, p.labels, p.uncertainty) for r, p in predictor.predict_slabs(volume.image, uncertainty=False)]
    assert all(u is None for _, _, u in without)
    assert [r for r, _ in with_entropy] == [r for r, _, _ in without]
    for (_, a), (_, b, _) in zip(with_entropy, without):
        np.testing.assert_array_equal(a, b)


def test_flips_average_the_four_flipped_passes_and_leave_the_input_as_it_was(trained):
    volume, model = trained
    predictor = Predictor(model, flips=True)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, model.net.in_channels, 16, 8, 16),
                                                                    dtype=np.float32))
    before = x.clone()
    expected = 0
    with torch.no_grad():
        averaged = predictor._probabilities(model.nets, x, model.n_classes, False)
        torch.testing.assert_close(x, before, rtol=0, atol=0)
        for net in model.nets:
            for dims in [(), (2,), (3,), (2, 3)]:
                scores = net(x.flip(dims) if dims else x)
                scores = scores.flip(dims) if dims else scores
                expected = expected + torch.softmax(scores[0, :model.n_classes], 0)
    np.testing.assert_allclose(averaged, (expected / (4 * len(model.nets))).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spatial, expected", [
    ((96, 96, 96), (96, 96, 96)),  # fits the budget whole: one block
    ((512, 512, 256), (64, 64, 256)),  # whole traces, narrower blocks
    ((512, 512, 2000), (64, 68, 236)),  # traces too long: down to the training block, then cut evenly
    ((192, 192, 96), (76, 108, 96)),  # 2 x 3 blocks, not 3 x 3 of 104 x 104
    ((40, 36, 48), (40, 36, 48)),
    ((64, 64, 256), (64, 64, 256)),  # a small volume's long traces stay whole too
    ((16, 48, 232), (16, 48, 232)),
    ((2000, 28, 500), (72, 28, 500)),  # a narrow side leaves room for whole traces
])
def test_volume_blocks_take_whole_traces_within_the_voxel_budget(trained, spatial, expected):
    _, model = trained
    block = Predictor(model).block_shape(spatial)
    assert block == expected and np.prod(block) <= predictor_module.BLOCK_VOXELS
    assert Predictor(model, block=32).block_shape(spatial) == tuple(min(32, s) for s in spatial)


def test_the_voxel_budget_is_an_option_and_larger_on_a_gpu(trained, monkeypatch):
    _, model = trained
    large = Predictor(model, block_voxels=1 << 22)
    assert large.block_shape((512, 512, 256)) == (128, 128, 256)
    assert large.block_shape((512, 512, 2000)) == (72, 72, 800)  # 3 blocks of at most 1024 samples, even
    small = Predictor(model, block_voxels=1 << 18)
    assert small.block_shape((512, 512, 256)) == (64, 64, 64)
    with pytest.raises(InputError, match="block_voxels"):
        Predictor(model, block_voxels=0)
    assert Predictor(model).block_voxels == predictor_module.BLOCK_VOXELS
    # On a CUDA device (only named here: nothing runs on it) the default budget is the GPU's.
    monkeypatch.setattr(predictor_module, "resolve_device", lambda device: torch.device("cuda", 0))
    gpu = Predictor(model, device="cuda")
    assert gpu.block_voxels == predictor_module.GPU_BLOCK_VOXELS
    assert gpu.block_shape((512, 512, 256)) == (128, 128, 256)


def test_even_tiling_computes_fewer_voxels_than_the_largest_blocks(trained):
    _, model = trained
    predictor, spatial = Predictor(model), (192, 192, 96)
    keep = tuple((0, s) for s in spatial)
    block, corners, _, _ = predictor._tiling(spatial, keep, 3)
    # The largest square block within the budget, 104 x 104 x 96, needs 3 x 3 blocks.
    square = Predictor(model, block=104)
    square_block, square_corners, _, _ = square._tiling(spatial, keep, 3)
    assert len(corners) * np.prod(block) < 0.55 * len(square_corners) * np.prod(square_block)
    covered = np.zeros(spatial, bool)
    for corner in corners:
        covered[tuple(slice(c, c + b) for c, b in zip(corner, block))] = True
    assert covered.all()


def test_side_choices_give_the_smallest_side_for_each_block_count():
    def overlap(side):
        return side // 4 // 4 * 4

    choices = predictor_module._side_choices(
        192, 4, 128, 4, lambda side: len(predictor_module._starts(192, side, side - overlap(side))))
    counts = [count for _, count in choices]
    assert len(set(counts)) == len(counts) and 1 not in counts  # 128 cannot cover 192 alone
    for side, count in choices:
        assert len(predictor_module._starts(192, side, side - overlap(side))) == count
        if side > 4:  # one step smaller needs more blocks
            smaller = side - 4
            assert len(predictor_module._starts(192, smaller, smaller - overlap(smaller))) > count
    assert dict((count, side) for side, count in choices)[2] == 108  # 84 + 108 = 192


@pytest.mark.parametrize("region, message", [
    ((slice(5, 5),), "non-empty"),
    ((slice(0, 8, 2),), "step 1"),
    ((slice(None),) * 4, "at most 3"),
])
def test_bad_regions_are_refused_in_words(trained, region, message):
    volume, model = trained
    with pytest.raises(InputError, match=message):
        Predictor(model).predict(volume.image, region=region)
