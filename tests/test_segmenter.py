"""The lifting + network + head design, the stability bound, and the inputs that feed them."""

import numpy as np
import pytest
import torch
from torch.autograd.graph import saved_tensors_hooks

from napari_geoseg.data import synthetic_seismic
from napari_geoseg.nn import HyperbolicSegmenter, StepNormBound, layer_step_norms
from napari_geoseg.train import Model, Predictor, Trainer, get_preset
from napari_geoseg.train.layout import Layout, build_features


def segmenter(dtype=torch.float64, **kwargs):
    torch.manual_seed(0)
    options = dict(width=4, depths=(1, 2), ranks=(3, 5), dim=3)
    options.update(kwargs)
    return HyperbolicSegmenter(6, 3, **options).to(dtype)


def test_head_reads_the_input_itself():
    # The head sees the input beside the last state: changing one input voxel changes
    # that voxel's scores even with the network's layers switched off (zero weights),
    # which a bare network whose state is the lifted input could also do, but here the
    # head's input columns alone carry it: zero the state's columns and it still does.
    model = segmenter()
    with torch.no_grad():
        model.head.weight[:, :model.width] = 0
    x = torch.randn(1, 6, 8, 8, 8, dtype=torch.float64)
    y = x.clone()
    y[0, 2, 3, 3, 3] += 1.0
    difference = (model(y) - model(x)).abs().sum(1)[0]
    assert difference[3, 3, 3] > 0
    difference[3, 3, 3] = 0
    assert float(difference.detach().max()) == 0.0


def test_memory_efficient_gradients_equal_autograd_through_lift_and_head():
    model = segmenter()
    x = torch.randn(1, 6, 8, 8, 8, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 4, (1, 8, 8, 8))

    def grads(memory_efficient):
        model.net.memory_efficient = memory_efficient
        loss = torch.nn.functional.cross_entropy(model(x), labels.clamp(max=2))
        return torch.autograd.grad(loss, (x, *model.parameters()))

    for a, b in zip(grads(True), grads(False)):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_states_kept_for_backward_do_not_grow_with_depth():
    # Only the last state feeds the head: the saved tensors are the same at any depth.
    def saved_bytes(depth):
        model = HyperbolicSegmenter(5, 3, width=4, depths=(depth,), ranks=(4,), dim=3)
        sizes = []
        weights = {p.data_ptr() for p in model.parameters()}

        def pack(t):
            if t.data_ptr() not in weights:  # parameters grow with depth, as they must
                sizes.append(t.untyped_storage().nbytes())
            return t

        x = torch.randn(1, 5, 16, 16, 16)
        with saved_tensors_hooks(pack, lambda t: t):
            model(x).sum().backward()
        return sum(sizes)

    assert saved_bytes(16) == saved_bytes(4)


def test_without_a_head_the_scores_are_the_last_state():
    model = HyperbolicSegmenter(4, 3, width=4, depths=(2,), ranks=(2,), dim=2, head=False)
    x = torch.randn(1, 4, 8, 8)
    assert torch.equal(model(x), model.net(x)[1][:, :3])
    with pytest.raises(ValueError, match="width must equal"):
        HyperbolicSegmenter(5, 3, width=4, depths=(2,), ranks=(2,), dim=2, head=False)


def test_step_norm_bound_projects_every_layer_onto_the_bound():
    model = segmenter(torch.float32)
    with torch.no_grad():
        for layer in model.layers:
            layer.weight.mul_(30)
    assert max(layer_step_norms(model.net)) > 4
    bound = StepNormBound(model.net, 2.0)
    for _ in range(5):
        bound()
    # Power iteration approaches the norm from below: a few calls leave it within 3 %.
    assert max(layer_step_norms(model.net, iterations=200)) <= 2.0 * 1.03
    # Layers already inside the bound are left alone.
    small = segmenter(torch.float32)
    before = [layer.weight.detach().clone() for layer in small.layers]
    StepNormBound(small.net, 100.0)()
    assert all(torch.equal(a, layer.weight) for a, layer in zip(before, small.layers))


def test_training_keeps_the_layers_within_the_bound():
    from napari_geoseg.data import synthetic_seismic

    volume = synthetic_seismic((32, 32, 32), seed=0)
    preset = get_preset("fast", learning_rate=0.05, step_bound=1.0)
    model = Trainer(volume.image, volume.labels, preset=preset, iterations=20, block=16).train()
    # The weight average of the last iterations is a mean of bounded layers.
    assert max(layer_step_norms(model.net.net, iterations=100)) <= 1.0 * 1.05
    free = Trainer(volume.image, volume.labels, preset=get_preset("fast", learning_rate=0.05, step_bound=0.0),
                   iterations=20, block=16).train()
    assert max(layer_step_norms(free.net.net, iterations=100)) > 1.0


def test_mask_channel_marks_missing_data_and_zeroes_it():
    layout = Layout("volume", 3, 1, mask_channel=True)
    image = np.arange(64, dtype=np.float32).reshape(4, 4, 4)
    image[1, 2, :] = np.nan
    features, finite = build_features(image, layout, np.zeros(1), np.ones(1))
    assert features.shape == (3, 4, 4, 4)  # value, depth, mask
    assert np.array_equal(features[2], finite.astype(np.float32))
    assert not finite[1, 2].any() and finite.sum() == 60
    assert np.all(features[0][1, 2] == 0)


def test_cube_bands_become_channels_of_a_map():
    layout = Layout("spectral", 3, 1, bands_as_channels=True, mask_channel=True)
    cube = np.random.default_rng(0).random((6, 5, 7)).astype(np.float32)
    cube[2, 3, 4] = np.nan
    features, finite = build_features(cube, layout, np.array([0.5]), np.array([2.0]))
    assert layout.network_ndim == 2 and layout.position_axis is None
    assert features.shape == (7 + 1, 6, 5) == (layout.input_channels(7), 6, 5)
    np.testing.assert_allclose(features[:7, 0, 0], (cube[0, 0] - 0.5) / 2)
    assert finite.shape == (6, 5) and not finite[2, 3] and features[7, 2, 3] == 0


def test_a_cube_model_is_a_2d_network_over_the_map(tmp_path):
    rng = np.random.default_rng(1)
    cube = rng.random((24, 24, 30)).astype(np.float32)
    cube[:, :12] += np.linspace(0, 1, 30, dtype=np.float32)  # a spectral slope on the left half
    labels = np.zeros((24, 24), np.uint8)
    labels[3:6, 3], labels[3:6, 20] = 1, 2
    trainer = Trainer(cube, labels, iterations=30, members=1, block=16)
    assert trainer.layout.bands_as_channels and trainer.model.net.dim == 2
    assert trainer.features.shape[1:] == (24, 24)
    model = trainer.train()
    loaded = Model.load(model.save(tmp_path / "cube.pt"))
    assert loaded.layout.bands_as_channels and loaded.in_channels == model.in_channels
    a = Predictor(model, flips=False).predict(cube)
    b = Predictor(loaded, flips=False).predict(cube)
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
    assert a.labels.shape == (24, 24)
    assert (a.labels[:, :12] == 1).mean() > 0.9 and (a.labels[:, 12:] == 2).mean() > 0.9


def test_cubes_get_the_head_and_volumes_the_bare_network():
    from napari_geoseg.data import synthetic_seismic

    preset = get_preset("fast")
    assert preset.head_for("spectral") and not preset.head_for("volume") and not preset.head_for("image")
    volume = synthetic_seismic((16, 16, 16), seed=0)
    bare = Trainer(volume.image, volume.labels, iterations=1, block=16).model
    assert bare.net.head is None and bare.feature_repeats == bare.channels == bare.in_channels
    cube = np.random.default_rng(0).random((16, 16, 8)).astype(np.float32)
    labels = np.zeros((16, 16), np.uint8)
    labels[2, 2], labels[9, 9] = 1, 2
    headed = Trainer(cube, labels, iterations=1, members=1).model
    assert headed.net.head is not None and headed.feature_repeats is None


@pytest.mark.parametrize("layout, n_bands, repeats", [
    (Layout("volume", 3, 1), 1, 5),
    (Layout("spectral", 3, 2, bands_as_channels=True, mask_channel=True), 3, None),
])
def test_the_feature_channel_map_follows_build_features(layout, n_bands, repeats):
    # Each image channel holds its own constant; position and mask hold other values.
    image = np.stack([np.full((4, 4, 3), 10.0 * (c + 1), np.float32) for c in range(layout.image_channels)], -1)
    image = image[..., 0] if layout.image_channels == 1 else image
    features, _ = build_features(image, layout, np.zeros(layout.image_channels), np.ones(layout.image_channels),
                                 repeats)
    sources = layout.image_channel_of_features(features.shape[0], n_bands, repeats is not None)
    for channel, k in enumerate(sources):
        values = np.unique(features[channel])
        assert (values.tolist() == [10.0 * (k + 1)]) == (k >= 0)


@pytest.mark.parametrize("dim", [2, 3])
def test_smoothed_copies_are_gaussian_local_means_and_amplitudes(dim):
    from scipy import ndimage as ndi

    from napari_geoseg.nn import SmoothedCopies

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(1, 3) + (12,) * dim))
    out = SmoothedCopies(2, (1.0, 2.0), dim).double()(x)
    assert out.shape == (1, 3 + 2 * 2 * 2) + (12,) * dim
    torch.testing.assert_close(out[:, :3], x)  # the input passes through, the third channel unsmoothed
    for k, sigma in enumerate((1.0, 2.0)):
        for c in range(2):
            image = x[0, c].numpy()
            mean = ndi.gaussian_filter(image, sigma, mode="nearest", truncate=3.0)
            amplitude = np.sqrt(ndi.gaussian_filter(image ** 2, sigma, mode="nearest", truncate=3.0))
            np.testing.assert_allclose(out[0, 3 + 4 * k + c].numpy(), mean, atol=1e-6)
            np.testing.assert_allclose(out[0, 3 + 4 * k + 2 + c].numpy(), amplitude, atol=1e-6)


@pytest.mark.parametrize("dim", [2, 3])
def test_smoothed_copies_with_edges_add_gradient_magnitude_and_laplacian(dim):
    from scipy import ndimage as ndi

    from napari_geoseg.nn import SmoothedCopies

    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(1, 2) + (10,) * dim))
    out = SmoothedCopies(1, (1.0, 2.0), dim, edges=True).double()(x)
    assert out.shape == (1, 2 + 4 * 2) + (10,) * dim
    for k, sigma in enumerate((1.0, 2.0)):
        mean = ndi.gaussian_filter(x[0, 0].numpy(), sigma, mode="nearest", truncate=3.0)
        gradient = [ndi.correlate1d(mean, [-0.5, 0.0, 0.5], axis=a, mode="nearest") for a in range(dim)]
        magnitude = np.sqrt(sum(g ** 2 for g in gradient))
        np.testing.assert_allclose(out[0, 2 + 4 * k].numpy(), mean, atol=1e-6)
        np.testing.assert_allclose(out[0, 2 + 4 * k + 2].numpy(), magnitude, atol=1e-6)
        np.testing.assert_allclose(out[0, 2 + 4 * k + 3].numpy(), ndi.laplace(mean, mode="nearest"), atol=1e-6)


def test_a_model_with_smoothed_copies_trains_saves_and_predicts(tmp_path):
    from dataclasses import replace

    volume = synthetic_seismic((16, 16, 16), seed=0)
    preset = replace(get_preset("fast"), head=True, race=0.0, smoothing=(1.0, 2.0), smoothing_modes=("volume",))
    model = Trainer(volume.image, volume.labels, preset=preset, iterations=3, block=16).train()
    # One image channel: itself, position and mask, then two copies per scale.
    assert model.net.feature_channels == 3 + 4 and model.net.head.in_channels == model.net.width + 7
    loaded = Model.load(model.save(tmp_path / "m.pt"))
    assert loaded.preset.smoothing == (1.0, 2.0)
    edged = replace(preset, smoothing_edges=True)
    with_edges = Trainer(volume.image, volume.labels, preset=edged, iterations=1, block=16).train()
    assert with_edges.net.feature_channels == 3 + 8
    assert Model.load(with_edges.save(tmp_path / "e.pt")).net.feature_channels == 3 + 8
    np.testing.assert_array_equal(Predictor(loaded).predict(volume.image).labels,
                                  Predictor(model).predict(volume.image).labels)


def test_the_fast_preset_smooths_cubes_and_images_not_volumes(tmp_path):
    from dataclasses import replace

    preset = get_preset("fast")
    assert preset.smoothing_for("spectral") == preset.smoothing_for("image") == (1.0, 2.0, 4.0, 8.0, 16.0)
    assert preset.smoothing_for("volume") == ()
    volume = synthetic_seismic((16, 16, 16), seed=0)
    headed = Trainer(volume.image, volume.labels, preset=replace(preset, head=True, race=0.0), iterations=1,
                     block=16).train()
    assert headed.net.smoothing is None  # a volume network with a head, no copies
    rng = np.random.default_rng(0)
    cube = rng.random((16, 16, 8)).astype(np.float32)
    labels = np.zeros((16, 16), np.int16)
    labels[2:4, 2:4], labels[10:12, 10:12] = 1, 2
    cube_model = Trainer(cube, labels, mode="spectral", iterations=1, members=1).train()
    assert cube_model.net.smoothing is not None and cube_model.net.smoothing.sigmas == (1.0, 2.0, 4.0, 8.0, 16.0)
    # A file written before smoothing_modes existed gave its copies to every mode.
    everywhere = replace(preset, head=True, race=0.0, smoothing_modes=("volume", "spectral", "image"))
    old = Trainer(volume.image, volume.labels, preset=everywhere, iterations=1, block=16).train()
    path = old.save(tmp_path / "m.pt")
    blob = torch.load(path, weights_only=True)
    del blob["preset"]["smoothing_modes"]
    torch.save(blob, path)
    loaded = Model.load(path)
    assert loaded.preset.smoothing_modes == everywhere.smoothing_modes and loaded.net.smoothing is not None
    np.testing.assert_array_equal(Predictor(loaded).predict(volume.image).labels,
                                  Predictor(old).predict(volume.image).labels)
