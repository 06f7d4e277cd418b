"""A real screenshot of napari with the "Interactive segmentation" widget at work.

Opens the synthetic seismic sample (96^3, borehole labels), trains with the widget's
defaults for a while (``--seconds``, default 90), paints one stroke as a user would,
lets training pick it up, and saves the whole window (canvas, layer list and widget) to
``docs/images/widget.png``. Run from the repository root under a display, e.g.
``xvfb-run -a python benchmarks/screenshot.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import _common
from responsiveness import paint_stroke, run_until

OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "widget.png"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90, help="training time before the shot (default 90)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    _common.ensure_package()
    import napari
    import numpy as np

    viewer = napari.Viewer(show=True, title="napari-geoseg: interactive segmentation")
    viewer.window.resize(1600, 1000)
    viewer.open_sample("napari-geoseg", "seismic_truth")
    image, truth, labels = (viewer.layers[n] for n in ("synthetic seismic", "true units", "borehole labels"))
    _, widget = viewer.window.add_plugin_dock_widget("napari-geoseg", "Interactive segmentation")
    widget.image_layer, widget.labels_layer = image, labels
    inline = image.data.shape[0] // 2
    viewer.dims.set_current_step(0, inline)
    run_until(lambda: False, 2)
    widget.start_training()
    started = time.perf_counter()
    run_until(lambda: False, args.seconds / 2)
    paint_stroke(labels, np.asarray(truth.data), inline, image.data.shape[2] // 3, range(8, image.data.shape[1] - 8, 3))
    generation = widget.labels_generation
    run_until(lambda: widget.labels_generation > generation, 10)
    run_until(lambda: False, max(args.seconds - (time.perf_counter() - started), 0))
    if widget.uncertainty_layer is not None:
        widget.uncertainty_layer.visible = False  # the prediction over the section reads better alone
    viewer.layers.selection.active = labels
    run_until(lambda: False, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(args.out), canvas_only=False, flash=False)
    print(f"wrote {args.out} after {time.perf_counter() - started:.0f} s of training: {widget.status_label.text()}")
    widget.stop_training()
    run_until(lambda: not widget._threads, 60)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
