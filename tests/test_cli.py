import subprocess
import sys

import pytest

from napari_geoseg.cli import main
from napari_geoseg.demo import mean_iou


def test_demo_trains_and_reports_a_score():
    lines = []
    from napari_geoseg.demo import run_demo

    result = run_demo(shape=(32, 32, 32), iterations=4, report_every=2, print=lines.append)
    assert any(line.startswith("iteration    4/4") for line in lines)
    assert lines[-2].startswith("IoU on unlabelled voxels")
    assert len(result["iou"]) == 3 and all(0 <= v <= 1 for v in result["iou"])
    assert result["diagnostics"]["invertibility_error"] < 1e-4


def test_geoseg_demo_command_runs():
    result = subprocess.run([sys.executable, "-m", "napari_geoseg.cli", "demo", "--shape", "32x32x32",
                             "--iterations", "2"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "IoU on unlabelled voxels" in result.stdout


def test_bad_arguments_are_one_line_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--shape", "10x10"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "expected three sizes" in err and "Traceback" not in err


def test_mean_iou():
    import numpy as np

    truth = np.array([1, 1, 2, 2])
    prediction = np.array([1, 2, 2, 2])
    mask = np.ones(4, bool)
    assert mean_iou(prediction, truth, mask, 2) == [0.5, 2 / 3]


def test_synthetic_volume_too_small_for_boreholes_is_a_clear_error():
    from napari_geoseg.data import synthetic_seismic

    with pytest.raises(ValueError, match="no room for 4 separate boreholes"):
        synthetic_seismic((8, 8, 16))
