"""A per-voxel linear classifier stacked onto a trained network's head.

A network with a head (:class:`~napari_geoseg.nn.HyperbolicSegmenter`) scores a voxel
as ``head([Y, X])``, linear in its input features ``X``. Trained by Adam from a random
start for a few hundred steps, the weights on ``X`` stay small, so where the classes
follow a voxel's own value (velocity intervals, porosity ranges) the network leans on
its states and generalises poorly away from the labels, while a random forest on the
raw values is nearly perfect. The *probe* is the linear classifier of the labelled
voxels' features (their values, not their position) fitted to convergence; it is added to the head's weights on ``X``
with a strength chosen on the held-out labelled voxels (0 keeps the network as
trained), so the model is still one network and one head, and prediction, model files
and memory are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["fit_probe", "stratified_folds", "cross_validated_accuracy", "choose_columns", "choose_strength",
           "best_strength", "cross_fitted_correct", "cross_fitted_accuracy", "add_probe", "PROBE_STRENGTHS", "CV_FOLDS"]

#: Strengths tried for the probe, the network alone (0) first: ties keep the weaker.
PROBE_STRENGTHS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)

#: Folds of the labelled voxels for :func:`cross_validated_accuracy`.
CV_FOLDS = 5


def fit_probe(features: torch.Tensor, classes: torch.Tensor, n_classes: int,
              weight: Optional[torch.Tensor] = None, steps: int = 100,
              penalty: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression of ``classes`` on ``features``.

    Parameters
    ----------
    features : Tensor
        ``(N, F)`` input features of the labelled voxels.
    classes : Tensor
        ``(N,)`` class indices ``0..n_classes - 1``.
    n_classes : int
    weight : Tensor, optional
        ``(n_classes,)`` class weights of the loss (the trainer's, for rare classes).
    steps : int
        L-BFGS iterations. Without a penalty the fixed budget of steps keeps the
        weights finite on separable data.
    penalty : float
        Weight of the squared norm of the weights (not the bias) added to the mean
        cross-entropy. 0: none, and on classes that a voxel's value separates the fit
        is sharp. With many features for a few labelled voxels (a cube's bands and
        their smoothed copies) every unpenalised fit separates the labels, and the
        one L-BFGS stops at rests on whichever features it grew first.

    Returns
    -------
    weights, bias : Tensor
        ``(n_classes, F)`` and ``(n_classes,)``: the scores are ``features @ weights.T + bias``.
    """
    features = features.detach().double()
    classes = classes.detach().long()
    w = torch.zeros(n_classes, features.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    weight = weight.detach().double() if weight is not None else None
    optimizer = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(features @ w.T + b, classes, weight=weight)
        if penalty:
            loss = loss + penalty * (w * w).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach().float(), b.detach().float()


def stratified_folds(classes: torch.Tensor, folds: int, seed: int = 0) -> torch.Tensor:
    """Fold index ``0..folds - 1`` of each labelled voxel, each class dealt evenly over
    the folds in a random order (a class with fewer voxels than folds misses some)."""
    rng = torch.Generator().manual_seed(seed)
    fold = torch.empty(len(classes), dtype=torch.long)
    for c in torch.unique(classes):
        index = torch.nonzero(classes == c)[:, 0]
        index = index[torch.randperm(len(index), generator=rng)]
        fold[index] = torch.arange(len(index)) % folds
    return fold


def cross_validated_accuracy(features: torch.Tensor, classes: torch.Tensor, n_classes: int,
                             weight: Optional[torch.Tensor] = None, penalty: float = 0.0,
                             folds: int = CV_FOLDS, seed: int = 0) -> float:
    """Mean over the classes of the share of their voxels that :func:`fit_probe`, fitted
    on the other folds, classifies right (each voxel predicted once, from the fold it is
    not in).

    Parameters
    ----------
    features, classes, n_classes, weight, penalty
        As for :func:`fit_probe`.
    folds : int
        Folds of the labelled voxels, each class dealt evenly over them
        (with 5 labelled voxels a class, each fold holds one of each).
    seed : int
        Seed of the order in which each class's voxels are dealt.
    """
    fold = stratified_folds(classes, folds, seed)
    predicted = torch.empty_like(classes)
    for k in range(folds):
        test = fold == k
        if not test.any():
            continue
        w, b = fit_probe(features[~test], classes[~test], n_classes, weight, penalty=penalty)
        predicted[test] = (features[test] @ w.T + b).argmax(1)
    recalls = [(predicted[classes == c] == c).double().mean() for c in torch.unique(classes)]
    return float(torch.stack(recalls).mean())


def choose_columns(features: torch.Tensor, classes: torch.Tensor, n_classes: int,
                   candidates: dict[str, torch.Tensor], weight: Optional[torch.Tensor] = None,
                   penalty: float = 0.0, seed: int = 0) -> tuple[str, dict[str, float]]:
    """The set of feature columns a probe classifies the labelled voxels best from, by
    :func:`cross_validated_accuracy`.

    Parameters
    ----------
    features, classes, n_classes, weight, penalty
        As for :func:`fit_probe`.
    candidates : dict
        Name: ``(F,)`` boolean mask of the columns the probe may read, smallest set
        first: ties go to the earlier (a probe with fewer features for the same labels
        is the safer guess).

    Returns
    -------
    name, accuracies : str, dict
        The chosen candidate and the cross-validated accuracy of each.
    """
    accuracies = {name: cross_validated_accuracy(features * columns.to(features), classes, n_classes, weight,
                                                 penalty, seed=seed)
                  for name, columns in candidates.items()}
    # max keeps the first of equals: ties go to the earlier candidate.
    return max(accuracies, key=accuracies.get), accuracies


def choose_strength(member_logits: Sequence[torch.Tensor], probe_logits: torch.Tensor, classes: torch.Tensor,
                    strengths: Sequence[float] = PROBE_STRENGTHS) -> tuple[float, dict[float, float]]:
    """The strength whose stacked model is most accurate on held-out voxels.

    Parameters
    ----------
    member_logits : sequence of Tensor
        ``(N, K)`` class scores of each member network at the held-out voxels.
    probe_logits : Tensor
        ``(N, K)`` scores of the probe there.
    classes : Tensor
        ``(N,)`` their classes ``0..K - 1``.

    Returns
    -------
    strength, accuracies : float, dict
        The chosen strength (the smallest of the most accurate) and the accuracy of each.
    """
    accuracies = {float(strength): float((_stacked_classes(member_logits, probe_logits, strength) == classes)
                                         .double().mean())
                  for strength in strengths}
    return best_strength(accuracies), accuracies


def _stacked_classes(member_logits: Sequence[torch.Tensor], probe_logits: torch.Tensor,
                     strength: float) -> torch.Tensor:
    """The class of the members' averaged probabilities with the probe added at ``strength``."""
    return sum(torch.softmax(logits + strength * probe_logits, 1) for logits in member_logits).argmax(1)


def cross_fitted_correct(member_logits: Sequence[torch.Tensor], probe_logits: torch.Tensor, classes: torch.Tensor,
                         strengths: Sequence[float] = PROBE_STRENGTHS, folds: int = CV_FOLDS,
                         seed: int = 0) -> torch.Tensor:
    """Whether the stacked model classifies each held-out voxel right, each fold scored
    at the strength :func:`choose_strength` picks on the other folds.

    The best of :func:`choose_strength`'s accuracies is the largest of several noisy
    estimates taken on the voxels it was chosen on, so it overrates a model with a probe
    against one without (whose single strength is 0); this estimate does not.

    Parameters
    ----------
    member_logits, probe_logits, classes, strengths
        As for :func:`choose_strength`.
    folds, seed
        As for :func:`stratified_folds`.

    Returns
    -------
    Tensor
        ``(N,)`` booleans, in the order of ``classes``.
    """
    fold = stratified_folds(classes, folds, seed)
    correct = torch.zeros(len(classes), dtype=torch.bool)
    for k in range(folds):
        test = fold == k
        if not test.any():
            continue
        if test.all():
            strength = strengths[0]  # nothing left to choose on
        else:
            strength, _ = choose_strength([logits[~test] for logits in member_logits], probe_logits[~test],
                                          classes[~test], strengths)
        predicted = _stacked_classes([logits[test] for logits in member_logits], probe_logits[test], strength)
        correct[test] = predicted == classes[test]
    return correct


def cross_fitted_accuracy(member_logits: Sequence[torch.Tensor], probe_logits: torch.Tensor, classes: torch.Tensor,
                          strengths: Sequence[float] = PROBE_STRENGTHS, folds: int = CV_FOLDS,
                          seed: int = 0) -> float:
    """The share of the held-out voxels that :func:`cross_fitted_correct` finds right."""
    return float(cross_fitted_correct(member_logits, probe_logits, classes, strengths, folds, seed)
                 .double().mean())


def best_strength(accuracies: dict[float, float]) -> float:
    """The smallest of the most accurate strengths of ``accuracies`` (strength: accuracy)."""
    return max(accuracies, key=lambda strength: (accuracies[strength], -strength))


@torch.no_grad()
def add_probe(net: torch.nn.Module, weights: torch.Tensor, bias: torch.Tensor, strength: float) -> None:
    """Add ``strength`` times the probe to the head of ``net`` (its weights on the input
    features and its bias; the head reads ``[Y, X]``, so those are its last columns)."""
    head = net.head
    n_classes, n_features = weights.shape
    columns = head.weight.shape[1]
    flat = head.weight.view(head.weight.shape[0], columns)
    flat[:n_classes, columns - n_features:] += strength * weights.to(flat)
    head.bias[:n_classes] += strength * bias.to(head.bias)
