"""A real screenshot of napari segmenting an irregular survey from the tops of four wells.

Opens the SEG-Y example with missing traces (``shared/data/seismic/
ex1_missing_traces_75x71x26.segy``: 75 inlines x 71 crosslines x 26 samples at 4 ms)
with the plugin's reader, docks the "Interactive segmentation" widget, makes a labels
layer, writes a tops CSV of four wells in map coordinates (three units, 'upper',
'middle' and 'lower', whose tops vary a little from well to well) into a temporary
folder and loads it into the widget's Wells section. It then trains with the widget's
defaults for a while (``--seconds``, default 60), shows the inline section through two
of the wells and saves the whole window (canvas, layer list and widget) to
``docs/images/wells.png``. Run from the repository root under a display, e.g.
``xvfb-run -a python benchmarks/screenshot_wells.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import _common
from responsiveness import run_until

REPO = Path(__file__).resolve().parents[1]
SEGY = Path(__file__).resolve().parents[2] / "shared" / "data" / "seismic" / "ex1_missing_traces_75x71x26.segy"
OUT = REPO / "docs" / "images" / "wells.png"

#: Wells as (name, inline, crossline, top of 'middle' in ms, top of 'lower' in ms);
#: 'upper' starts at 0 ms. W1 and W2 share inline 11426, the section of the shot.
#: The amplitudes of this survey barely change down a trace (26 samples, no strong
#: reflector), so the tops are plausible times chosen by hand, not picked reflectors.
WELLS = (("W1", 11426, 2472, 36.0, 68.0),
         ("W2", 11426, 2552, 44.0, 76.0),
         ("W3", 11382, 2512, 40.0, 72.0),
         ("W4", 11472, 2522, 40.0, 64.0))
SECTION_INLINE = 11426


def write_tops(path: Path, volume) -> Path:
    """The tops CSV of :data:`WELLS` in map coordinates (``well,x,y,depth,unit``)."""
    import numpy as np

    lines = ["well,x,y,depth,unit"]
    for name, inline, crossline, middle, lower in WELLS:
        x, y = volume.geometry.lines_to_xy(np.array([inline]), np.array([crossline]))
        for depth, unit in ((0.0, "upper"), (middle, "middle"), (lower, "lower")):
            lines.append(f"{name},{x[0]:.3f},{y[0]:.3f},{depth:g},{unit}")
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="training time before the shot (default 60)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--size", type=int, nargs=2, default=(1500, 1200), metavar=("WIDTH", "HEIGHT"),
                        help="window size (default 1500 1200: the widget with its Wells section needs ~1000 px "
                             "of height and is squeezed in a 950 px window)")
    args = parser.parse_args(argv)
    if not SEGY.is_file():
        print(f"screenshot_wells: the example survey {SEGY} is missing; put the SEG-Y examples in "
              f"shared/data/seismic next to the repository", file=sys.stderr)
        return 1
    _common.ensure_package()
    import napari
    import numpy as np

    from napari_geoseg.io import read_volume

    volume = read_volume(SEGY)
    section = int(np.flatnonzero(np.asarray(volume.geometry.inlines) == SECTION_INLINE)[0])

    viewer = napari.Viewer(show=True, title="napari-geoseg: wells to a segmented survey")
    viewer.window.resize(*args.size)
    viewer.open(str(SEGY), plugin="napari-geoseg")
    image = viewer.layers[-1]
    _, widget = viewer.window.add_plugin_dock_widget("napari-geoseg", "Interactive segmentation")
    widget.image_layer = image
    widget.add_labels_layer()
    with tempfile.TemporaryDirectory() as folder:
        tops = write_tops(Path(folder) / "tops.csv", volume)
        widget.wells.load_tops(tops)
        widget.wells.radius_spin.setValue(1)
        if not run_until(lambda: not widget.wells.busy, 60):
            print("screenshot_wells: the wells were not placed within 60 s", file=sys.stderr)
    print(f"wells: {widget.wells.status.text()}")
    viewer.dims.set_current_step(0, section)
    run_until(lambda: False, 2)
    widget.start_training()
    started = time.perf_counter()
    run_until(lambda: False, args.seconds)

    viewer.dims.set_current_step(0, section)
    if widget.uncertainty_layer is not None:
        widget.uncertainty_layer.visible = False  # the prediction over the section reads better alone
    shown = [layer.name for layer in viewer.layers if layer.visible]
    wells_layer = next((layer for layer in viewer.layers if layer.name == f"{image.name} wells"), None)
    if wells_layer is None:
        print(f"screenshot_wells: no '{image.name} wells' layer", file=sys.stderr)
    else:
        wells_layer.visible = True
        index = viewer.layers.index(wells_layer)
        viewer.layers.move(index, len(viewer.layers))  # the holes and their names above everything
    if widget.prediction_layer is None:
        print("screenshot_wells: no prediction layer yet", file=sys.stderr)
    else:
        widget.prediction_layer.visible = True
    viewer.layers.selection.active = widget.labels_layer
    widget.labels_layer.mode = "pan_zoom"  # no brush circle on the canvas
    viewer.reset_view()  # the whole section: napari keeps the camera of the first layer's first slice
    # The warning toast about the dead traces' NaN samples would hide part of the canvas
    # (the same as clicking its close button; the warning stays in napari's log).
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.close()
    run_until(lambda: False, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    window = viewer.window._qt_window
    print(f"window {window.width()}x{window.height()}, widget minimum {widget.minimumSizeHint().height()} px high, "
          f"screen {window.screen().size().width()}x{window.screen().size().height()}")
    viewer.screenshot(str(args.out), canvas_only=False, flash=False)
    print(f"wrote {args.out} after {time.perf_counter() - started:.0f} s of training: "
          f"{widget.status_label.text()}; layers shown: {shown}")
    widget.stop_training()
    run_until(lambda: not widget._threads, 60)
    # The widget's warm-up thread (a tiny training run started when it opens) can still
    # be inside torch on a busy machine; the widget joins it for at most 10 s when it
    # closes, and a thread left in torch at exit aborts the process. Wait for it here.
    warm_up = getattr(widget, "_warm_up", None)
    if warm_up is not None and not run_until(lambda: not warm_up.is_alive(), 120):
        print("screenshot_wells: the widget's warm-up thread is still running", file=sys.stderr)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
