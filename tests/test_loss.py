import pytest
import torch
import torch.nn.functional as F

from napari_geoseg.nn import coarsen_labels, expand_channels, partial_cross_entropy


def test_matches_weighted_cross_entropy_on_labelled_voxels():
    y = torch.randn(2, 5, 4, 4, 4, dtype=torch.float64)
    labels = torch.randint(0, 4, (2, 4, 4, 4))
    weight = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    mask = labels > 0
    scores = y[:, :3].movedim(1, -1)[mask]
    target = labels[mask] - 1
    expected = (weight[target] * F.cross_entropy(scores, target, reduction="none")).sum() / weight[target].sum()
    assert partial_cross_entropy(y, labels, 3, weight=weight) == pytest.approx(expected.item(), rel=1e-12)


def test_no_labels_gives_zero_gradient():
    y = torch.randn(1, 4, 4, 4, 4, requires_grad=True)
    loss = partial_cross_entropy(y, torch.zeros(1, 4, 4, 4, dtype=torch.long), 3)
    loss.backward()
    assert loss.item() == 0 and torch.count_nonzero(y.grad) == 0


def test_only_class_channels_get_gradient():
    y = torch.randn(1, 6, 4, 4, 4, requires_grad=True)
    labels = torch.randint(1, 4, (1, 4, 4, 4))
    partial_cross_entropy(y, labels, 3).backward()
    assert torch.count_nonzero(y.grad[:, 3:]) == 0
    assert torch.count_nonzero(y.grad[:, :3]) > 0


def test_slice_loss_touches_only_that_slice():
    y = torch.randn(1, 4, 6, 6, 10, requires_grad=True)  # (rows, cols, bands)
    labels = torch.zeros(6, 6, dtype=torch.long)  # labels per pixel, no batch axis
    labels[1, 2], labels[4, 4] = 1, 2
    partial_cross_entropy(y, labels, 2, slice=(-1, 5)).backward()
    nonzero = torch.nonzero(y.grad.abs().sum(1)[0])
    assert set(nonzero[:, 2].tolist()) == {5}
    assert {tuple(r) for r in nonzero[:, :2].tolist()} == {(1, 2), (4, 4)}


@pytest.mark.parametrize(
    "labels, n_classes, message",
    [(torch.ones(1, 4, 4, 4), 2, "integer"), (torch.full((1, 4, 4, 4), 3), 2, "go up to 3"),
     (torch.ones(1, 4, 4, 5, dtype=torch.long), 2, "do not match"),
     (torch.ones(1, 4, 4, 4, dtype=torch.long), 9, "n_classes=9")],
)
def test_clear_errors(labels, n_classes, message):
    with pytest.raises(ValueError, match=message):
        partial_cross_entropy(torch.randn(1, 4, 4, 4, 4), labels, n_classes)


def test_expand_channels():
    x = torch.randn(1, 1, 8, 8, 8)
    repeated = expand_channels(x, 3)
    assert repeated.shape == (1, 3, 8, 8, 8) and torch.equal(repeated[:, 2], x[:, 0])
    coarse = expand_channels(x, 3, method="haar")
    assert coarse.shape == (1, 8, 4, 4, 4)
    assert expand_channels(x, 1) is x
    with pytest.raises(ValueError, match="method"):
        expand_channels(x, 3, method="tile")


def test_coarsen_labels_majority_of_labelled_voxels():
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, 0, 0] = 2                       # block (0, 0): one vote for class 2
    labels[0, 2:4, 2:4] = torch.tensor([[1, 1], [3, 0]])  # block (1, 1): class 1 wins
    out = coarsen_labels(labels, 1, n_classes=3)
    assert out.tolist() == [[[2, 0], [0, 1]]]
