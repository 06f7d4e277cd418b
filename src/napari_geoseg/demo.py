"""Headless demo: train on the synthetic seismic sample from borehole labels and score it.

The same engine as ``geoseg train`` and ``geoseg predict`` (and the napari widget):
a :class:`~napari_geoseg.train.Trainer` on the sparse labels, a
:class:`~napari_geoseg.train.Predictor` over the whole cube, and the intersection over
union on every voxel that was never labelled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Optional

import numpy as np

__all__ = ["run_demo", "mean_iou"]


def mean_iou(prediction: np.ndarray, truth: np.ndarray, mask: np.ndarray, n_classes: int) -> list[float]:
    """Intersection over union of each class 1..n_classes on the voxels where ``mask``."""
    scores = []
    for k in range(1, n_classes + 1):
        p, t = (prediction == k) & mask, (truth == k) & mask
        union = np.count_nonzero(p | t)
        scores.append(np.count_nonzero(p & t) / union if union else float("nan"))
    return scores


def run_demo(shape: tuple[int, int, int] = (96, 96, 96), iterations: Optional[int] = None, seed: int = 0,
             preset: str = "fast", report_every: int = 10, print: Callable[[str], None] = print) -> dict:
    """Train on a synthetic volume and report the score on unlabelled voxels.

    Returns a dictionary with the per-class IoU on unlabelled voxels, their mean, the
    last loss and validation accuracy, the seconds spent, and the trained network's
    diagnostics.
    """
    from .data import synthetic_seismic
    from .nn import diagnose
    from .train import Predictor, Trainer

    volume = synthetic_seismic(shape, seed=seed)
    labelled = np.count_nonzero(volume.labels)
    print(f"synthetic seismic {shape}, {len(volume.class_names)} units, {labelled} labelled voxels "
          f"({100 * labelled / volume.labels.size:.2f}%) in {len(volume.boreholes)} boreholes")
    trainer = Trainer(volume.image, volume.labels, preset=preset, iterations=iterations, seed=seed,
                      class_names=volume.class_names)
    net = trainer.model.net
    print(f"network: {len(net.layers)} layers, {net.width} channels, "
          f"{sum(p.numel() for p in net.parameters())} weights; training blocks {trainer.block}")
    start = time.perf_counter()
    last = None
    for last in trainer.run():
        if last.iteration % report_every == 0 or last.iteration == last.iterations:
            accuracy = "-" if last.validation_accuracy is None else f"{last.validation_accuracy:.3f}"
            print(f"iteration {last.iteration:4d}/{last.iterations}  loss {last.loss:.4f}  "
                  f"validation accuracy {accuracy}  elapsed {last.elapsed:6.1f} s")
    prediction = Predictor(trainer.model).predict(volume.image)
    seconds = time.perf_counter() - start
    ious = mean_iou(prediction.labels, volume.truth, volume.labels == 0, len(volume.class_names))
    sample = trainer.features[None, :, :32, :32, :32]
    import torch

    with torch.no_grad():
        state = net.lifted(torch.from_numpy(np.ascontiguousarray(sample)))
    report = diagnose(net.net, state)
    print("IoU on unlabelled voxels: " + ", ".join(
        f"{name} {iou:.3f}" for name, iou in zip(volume.class_names, ious)) + f"; mean {np.mean(ious):.3f}")
    print(f"trained and predicted in {seconds:.1f} s; trained network: invertibility error "
          f"{report['invertibility_error']:.1e}, energy growth {report['energy_growth']:.2f}, "
          f"max h*||K|| {report['max_step_norm']:.2f}")
    return {
        "iou": ious,
        "mean_iou": float(np.mean(ious)),
        "final_loss": last.loss if last else float("nan"),
        "validation_accuracy": last.validation_accuracy if last else None,
        "seconds": seconds,
        "diagnostics": {k: v for k, v in report.items() if k != "step_norms"},
    }
