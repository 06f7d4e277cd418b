"""The per-voxel linear probe stacked onto a network's head (napari_geoseg.train.probe)."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_geoseg.nn import HyperbolicSegmenter
from napari_geoseg.train import Model, Predictor, Trainer, get_preset
from napari_geoseg.train import trainer as trainer_module
from napari_geoseg.train.probe import (
    add_probe,
    choose_columns,
    choose_strength,
    cross_fitted_accuracy,
    cross_validated_accuracy,
    fit_probe,
    stratified_folds,
)


def interval_classes(values, edges=(-0.5, 0.5)):
    return np.searchsorted(np.asarray(edges), values)


def test_the_probe_fits_classes_that_follow_the_value():
    rng = np.random.default_rng(0)
    values = rng.normal(size=600)
    features = torch.tensor(np.stack([values, rng.normal(size=600), np.ones(600)], 1), dtype=torch.float32)
    classes = torch.from_numpy(interval_classes(values))
    weights, bias = fit_probe(features, classes, 3)
    assert weights.shape == (3, 3) and bias.shape == (3,)
    accuracy = float(((features @ weights.T + bias).argmax(1) == classes).double().mean())
    assert accuracy > 0.98  # a middle interval too: the scores are linear, their argmax is not


def test_the_strength_is_chosen_on_held_out_voxels_and_ties_keep_the_network():
    classes = torch.tensor([0, 1, 2, 1, 0, 2])
    right = torch.nn.functional.one_hot(classes, 3).float() * 5
    wrong = torch.nn.functional.one_hot((classes + 1) % 3, 3).float()
    strength, accuracies = choose_strength([wrong], right, classes)
    assert strength > 0 and accuracies[0.0] == 0.0 and accuracies[strength] == 1.0
    # A probe that changes nothing is not added.
    strength, accuracies = choose_strength([right], torch.zeros(6, 3), classes)
    assert strength == 0.0 and set(accuracies.values()) == {1.0}


def test_cross_fitting_scores_the_probe_without_the_luck_of_its_best_strength():
    rng = torch.Generator().manual_seed(0)
    classes = torch.arange(60) % 3
    network = torch.randn(60, 3, generator=rng) + 0.8 * torch.nn.functional.one_hot(classes, 3)
    plain = float((network.argmax(1) == classes).double().mean())
    # With the network alone (strength 0 only) it is the plain accuracy.
    assert cross_fitted_accuracy([network], torch.zeros(60, 3), classes, strengths=(0.0,)) == pytest.approx(plain)
    # A probe that knows the classes is credited as much as the best strength says ...
    right = 5 * torch.nn.functional.one_hot(classes, 3).float()
    assert cross_fitted_accuracy([network], right, classes) == 1.0
    # ... a probe of noise is not: over many noise probes the best strength's accuracy
    # beats the network alone on average (0.605 against 0.583), the cross-fitted one
    # does not (0.561).
    best, fitted = [], []
    for _ in range(50):
        noise = torch.randn(60, 3, generator=rng)
        best.append(max(choose_strength([network], noise, classes)[1].values()))
        fitted.append(cross_fitted_accuracy([network], noise, classes))
    assert min(best) >= plain and np.mean(best) > plain + 0.015
    assert np.mean(fitted) < plain


def test_adding_the_probe_adds_its_scores_to_the_heads():
    torch.manual_seed(0)
    net = HyperbolicSegmenter(3, 5, width=6, depths=(1, 1), ranks=(2, 4), dim=2).double().eval()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    weights, bias = torch.randn(4, 3), torch.randn(4)
    before = net(x)
    add_probe(net, weights, bias, 0.5)
    probe = torch.einsum("kf,nfij->nkij", weights.double(), x) + bias.double()[None, :, None, None]
    torch.testing.assert_close(net(x)[:, :4], before[:, :4] + 0.5 * probe)
    torch.testing.assert_close(net(x)[:, 4:], before[:, 4:])  # the spare score channel is left alone


@pytest.fixture(scope="module")
def value_volume():
    """A smooth random volume whose three classes are intervals of its value, labelled in four columns."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(3)
    image = ndi.gaussian_filter(rng.normal(size=(24, 24, 32)), 2).astype(np.float32)
    image /= image.std()
    truth = interval_classes(image).astype(np.uint8) + 1
    labels = np.zeros_like(truth)
    for i, j in ((3, 3), (3, 18), (18, 5), (16, 19)):
        labels[i:i + 3, j:j + 3] = truth[i:i + 3, j:j + 3]
    return image, labels, truth


def test_training_stacks_the_probe_where_the_held_out_voxels_want_it(value_volume, tmp_path):
    image, labels, truth = value_volume
    preset = replace(get_preset("fast"), head=True, race=0.0)
    trainer = Trainer(image, labels, preset=preset, iterations=6, block=16, seed=0)
    model = trainer.train()
    assert trainer.probe is not None and max(trainer.probe, key=trainer.probe.get) > 0
    assert max(trainer.probe.values()) > trainer.probe[0.0]
    # Features: the value, the (flattened) depth, the mask; the probe reads no position.
    weights, _ = trainer._fitted_probe()
    assert weights.shape == (3, 3) and torch.all(weights[:, 1] == 0) and torch.any(weights[:, 0] != 0)
    predicted = Predictor(model).predict(image).labels
    unlabelled = labels == 0
    assert np.mean(predicted[unlabelled] == truth[unlabelled]) > 0.9
    # The probe lives in the head's weights: the model file keeps it.
    loaded = Model.load(model.save(tmp_path / "m.pt"))
    np.testing.assert_array_equal(Predictor(loaded).predict(image).labels, predicted)


def test_no_probe_without_a_head_or_held_out_voxels(value_volume, monkeypatch):
    image, labels, _ = value_volume
    bare = Trainer(image, labels, preset=replace(get_preset("fast"), head=False, race=0.0), iterations=2, block=16)
    bare.train()
    assert bare.probe is None
    fitted = []
    monkeypatch.setattr(trainer_module, "fit_probe", lambda *a, **k: fitted.append(1) or fit_probe(*a, **k))
    alone = Trainer(image, labels, preset=replace(get_preset("fast"), head=True, race=0.0), iterations=2, block=16,
                    validation_fraction=0.0)
    alone.train()
    assert alone.probe is None and fitted == []


def test_a_stopped_run_adds_no_probe(value_volume):
    image, labels, _ = value_volume
    trainer = Trainer(image, labels, preset=replace(get_preset("fast"), head=True, race=0.0), iterations=6, block=16)
    for event in trainer.run():
        if event.iteration == 2:
            trainer.stop()
    assert trainer.probe is None


def test_the_penalty_shrinks_the_probe_on_many_features_for_few_labels():
    rng = np.random.default_rng(1)
    classes = torch.arange(3).repeat(5)
    features = torch.tensor(rng.normal(size=(15, 200)), dtype=torch.float32)
    features[:, 0] += 2.0 * classes  # one informative feature among 200
    free, _ = fit_probe(features, classes, 3)
    penalised, _ = fit_probe(features, classes, 3, penalty=1e-2)
    assert torch.linalg.norm(penalised) < 0.5 * torch.linalg.norm(free)
    # The penalised probe still tells the labelled voxels apart, on the informative feature most.
    assert torch.equal((features @ penalised.T).argmax(1), classes)
    assert penalised[:, 0].abs().max() > penalised[:, 1:].abs().max()


def test_a_cube_with_few_labels_gets_the_penalised_probe_at_the_preset_strength(few_labels_cube, monkeypatch):
    cube, labels = few_labels_cube
    preset = replace(get_preset("fast"), spectral_members=2)
    assert preset.probe_penalty > 0 and preset.probe_penalty_for("spectral") == preset.probe_penalty
    assert preset.probe_penalty_for("volume") == 0.0  # volumes read no copies: no penalty
    fits, added = [], []
    monkeypatch.setattr(trainer_module, "fit_probe", lambda *a, **k: fits.append(k) or fit_probe(*a, **k))
    monkeypatch.setattr(trainer_module, "add_probe", lambda net, w, b, s: added.append(s) or add_probe(net, w, b, s))
    trainer = Trainer(cube, labels, preset=preset, iterations=4, block=16)
    assert trainer.layout.mode == "spectral" and len(trainer._validation_points) == 0  # 5 pixels a class
    trainer.train()
    assert fits == [{"penalty": preset.probe_penalty}]
    assert trainer.probe is None and trainer.probe_strength == preset.probe_strength
    assert added == [preset.probe_strength] * 2  # every member


def few_pixels_with_many_columns(informative: str, seed: int = 0):
    """Five voxels of each of three classes, 4 value columns and 200 copy columns of
    which only the ``informative`` ones ("values" or "copies") tell the classes apart;
    the others are noise of 10 times their spread."""
    rng = np.random.default_rng(seed)
    classes = np.repeat(np.arange(3), 5)
    features = 3 * rng.standard_normal((15, 204))
    columns = slice(0, 4) if informative == "values" else slice(4, 204)
    features[:, columns] = 2 * classes[:, None] + 0.3 * rng.standard_normal((15, columns.stop - columns.start))
    return torch.tensor(features, dtype=torch.float32), torch.from_numpy(classes)


VALUES = torch.arange(204) < 4


def test_the_folds_deal_every_class_evenly():
    classes = torch.tensor([0] * 5 + [1] * 7 + [2] * 2)
    fold = stratified_folds(classes, 5, seed=3)
    for c, count in ((0, 5), (1, 7), (2, 2)):
        per_fold = torch.bincount(fold[classes == c], minlength=5)
        assert per_fold.sum() == count and per_fold.max() - per_fold.min() <= 1


def test_cross_validation_tells_informative_columns_from_noise():
    features, classes = few_pixels_with_many_columns("values")
    assert cross_validated_accuracy(features * VALUES, classes, 3, penalty=1e-3) == 1.0
    # The noise columns are many and wide: the probe on all of them misses held-out voxels.
    assert cross_validated_accuracy(features, classes, 3, penalty=1e-3) < 0.9


@pytest.mark.parametrize("informative, expected", [("values", "values"), ("copies", "values and copies")])
def test_the_probe_reads_the_columns_that_classify_the_labelled_voxels(informative, expected):
    features, classes = few_pixels_with_many_columns(informative)
    candidates = {"values": VALUES, "values and copies": torch.ones(204, dtype=torch.bool)}
    chosen, accuracies = choose_columns(features, classes, 3, candidates, penalty=1e-3)
    assert chosen == expected and set(accuracies) == {"values", "values and copies"}
    assert accuracies[expected] > max(a for name, a in accuracies.items() if name != expected)


def test_a_tie_goes_to_the_smaller_set_of_columns():
    features, classes = few_pixels_with_many_columns("values")
    chosen, accuracies = choose_columns(features, classes, 3, {"values": VALUES, "again": VALUES}, penalty=1e-3)
    assert chosen == "values" and accuracies["values"] == accuracies["again"]


def test_a_cube_with_few_labels_chooses_what_its_probe_reads(few_labels_cube):
    cube, labels = few_labels_cube
    trainer = Trainer(cube, labels, preset=replace(get_preset("fast"), spectral_members=1), iterations=2, block=16)
    trainer.train()
    assert set(trainer.probe_features_accuracy) == {"values", "values and copies"}
    assert trainer.probe_features in trainer.probe_features_accuracy
    weights, _ = trainer._fitted_probe()
    copies = weights[:, trainer.model.in_channels:]
    if trainer.probe_features == "values":
        assert copies.abs().max() == 0  # the copies' columns were left out of the fit
    else:
        assert copies.abs().max() > 0


def test_an_unpenalised_probe_needs_held_out_voxels(value_volume):
    image, labels, _ = value_volume
    trainer = Trainer(image, labels, preset=replace(get_preset("fast"), head=True, race=0.0), iterations=2,
                      block=16, validation_fraction=0.0)
    trainer.train()
    assert trainer.probe is None and trainer.probe_strength == 0.0
