"""Wells to labels: tops, deviation surveys, time-depth tables, LAS logs, and their mistakes."""
from pathlib import Path

import numpy as np
import pytest

from napari_geoseg.cli import main
from napari_geoseg.data.wells import merge_labels, minimum_curvature, read_well_labels
from napari_geoseg.errors import InputError
from napari_geoseg.io import SegyGeometry, Volume


def grid(inlines, crosslines, domain):
    """A survey geometry with map coordinates: x = 25 * inline, y = 1000 + 25 * crossline."""
    return SegyGeometry(path="survey.sgy", inlines=inlines, crosslines=crosslines, inline_byte=189,
                        crossline_byte=193, n_samples=100, sample_interval=10.0, sample_unit="m", first_sample=0.0,
                        domain=domain, transform=np.array([[25.0, 0.0, 0.0], [0.0, 25.0, 1000.0]]))


def survey(domain="depth", shape=(40, 30, 100), step=10.0, first=0.0):
    """Lines 100.. on both axes; samples every ``step`` (m or ms) from ``first``."""
    geometry = grid(np.arange(100, 100 + shape[0]), np.arange(100, 100 + shape[1]), domain)
    return Volume(np.zeros(shape, np.float32), axes=("inline", "crossline", "sample"), scale=(1, 1, step),
                  translate=(100, 100, first), geometry=geometry, source="survey.sgy")


def write(path, text):
    path.write_text(text)
    return path


def test_minimum_curvature_of_straight_and_curved_holes():
    north, east, tvd = minimum_curvature(np.array([0., 100.]), np.array([45., 45.]), np.array([90., 90.]))
    assert north[-1] == pytest.approx(0, abs=1e-9) and east[-1] == pytest.approx(100 / 2 ** 0.5)
    assert tvd[-1] == pytest.approx(100 / 2 ** 0.5)
    # A quarter circle of radius 200 m from vertical to horizontal, heading north.
    radius = 200.0
    md = np.linspace(0, np.pi / 2 * radius, 5)
    north, east, tvd = minimum_curvature(md, np.degrees(md / radius), np.zeros(5))
    assert north[-1] == pytest.approx(radius) and tvd[-1] == pytest.approx(radius) and east[-1] == pytest.approx(0)


def test_vertical_tops_label_their_units_down_to_the_next_top(tmp_path):
    tops = write(tmp_path / "tops.csv", "Well,Inline,Crossline,Depth,Unit\n"
                                        "A,110,105,100,shale\nA,110,105,300,sand\n"
                                        "B,130,120,150,sand\nB,130,120,400,salt\nB,130,120,600,shale,\n")
    drawn = read_well_labels(survey(), tops, radius=1)
    assert drawn.class_names == ["shale", "sand", "salt"]
    labels = drawn.labels
    trace = labels[10, 5]
    assert (trace[:10] == 0).all() and (trace[10:30] == 1).all() and (trace[30:] == 2).all()
    trace = labels[30, 20]
    assert (trace[15:40] == 2).all() and (trace[40:60] == 3).all() and (trace[60:] == 1).all()
    # The radius labels the 3 x 3 traces around each well and nothing else.
    assert (labels.any(axis=2).sum()) == 18 and labels[9:12, 4:7].all(axis=2).sum() == 0
    assert labels[9:12, 4:7, 50].all() and drawn.labelled == {"A": 9 * 90, "B": 9 * 85}


def test_a_bottom_ends_the_last_unit_and_class_names_fix_the_order(tmp_path):
    tops = write(tmp_path / "tops.csv", "well,x,y,depth,unit,bottom\n"
                                        "A,2750,3625,100,shale,\nA,2750,3625,300,sand,500\n")
    drawn = read_well_labels(survey(), tops, class_names=["sand", "shale", "salt"])
    trace = drawn.labels[10, 5]  # x 2750 = inline 110, y 3625 = crossline 105
    # Voxels the hole crosses: the one holding the bottom (495..505 m) too.
    assert (trace[10:30] == 2).all() and (trace[30:51] == 1).all() and (trace[51:] == 0).all()
    assert drawn.class_names == ["sand", "shale", "salt"]


def test_a_deviated_well_follows_its_survey(tmp_path):
    # Vertical to 200 m, then straight at 45 degrees towards east (increasing x = inline).
    tops = write(tmp_path / "tops.csv", "well,inline,crossline,depth,unit\nD,105,110,100,shale\nD,105,110,500,sand\n")
    deviation = write(tmp_path / "dev.csv", "well,md,inc,azi\nD,0,0,90\nD,200,0,90\nD,201,45,90\nD,1000,45,90\n")
    drawn = read_well_labels(survey(), tops, deviation=deviation)
    path = drawn.paths["D"]
    # At MD 600 m: about 399 m along the 45 degree stretch: 282 m east (11.3 inlines), 200 + 282 m deep.
    at = np.argmin(np.abs(np.arange(100, 1000.1, 0.25) - 600))
    assert path[at, 0] == pytest.approx(5 + 282.1 / 25, abs=0.1) and path[at, 1] == pytest.approx(10)
    assert path[at, 2] == pytest.approx((200 + 282.1) / 10, abs=0.1)
    labels = drawn.labels
    assert labels[5, 10, 12] == 1 and labels[5, 10, 25] == 0  # left the vertical trace below 200 m
    i, k = int(round(path[at, 0])), int(round(path[at, 2]))
    assert labels[i, 10, k] == 2


def test_time_surveys_need_a_time_depth_table_covering_the_hole(tmp_path):
    volume = survey("time", step=4.0)
    tops = write(tmp_path / "tops.csv", "well,inline,crossline,depth,unit\nD,105,110,100,shale\nD,105,110,500,sand\n")
    deviation = write(tmp_path / "dev.csv", "well,md,inc,azi\nD,0,0,0\nD,1000,0,0\n")
    with pytest.raises(InputError, match=r"tops.csv: row 2 \(well D\).*time-depth table"):
        read_well_labels(volume, tops, deviation=deviation)
    short = write(tmp_path / "short.csv", "depth,time\n0,0\n400,350\n")
    with pytest.raises(InputError, match=r"short.csv.*does not cover well D at depth 400.25"):
        read_well_labels(volume, tops, deviation=deviation, time_depth=short)
    table = write(tmp_path / "td.csv", "well,depth,time\nD,0,0\nD,2000,1000\n")  # 2000 m/s
    drawn = read_well_labels(volume, tops, deviation=deviation, time_depth=table)
    trace = drawn.labels[5, 10]
    # Tops at 100 m = 50 ms (sample 12.5) and 500 m = 250 ms (sample 62.5).
    assert (trace[:12] == 0).all() and (trace[13:62] == 1).all() and (trace[63:] == 2).all()


def test_a_las_log_labels_its_runs_of_codes(tmp_path):
    lasio = pytest.importorskip("lasio")
    las = lasio.LASFile()
    las.well["WELL"].value = "L1"
    las.well.append(lasio.HeaderItem("XCOORD", value=120 * 25.0))
    las.well.append(lasio.HeaderItem("YCOORD", value=1000 + 115 * 25.0))
    depth = np.arange(100.0, 700.0, 0.5)
    facies = np.where(depth < 300, 1, np.where(depth < 450, 3, 2)).astype(float)
    facies[(depth > 600) & (depth < 620)] = np.nan
    las.append_curve("DEPT", depth, unit="m")
    las.append_curve("FACIES", facies)
    las.write(str(tmp_path / "l1.las"))
    drawn = read_well_labels(survey(), las=[tmp_path / "l1.las"])
    assert drawn.class_names == ["1", "2", "3"]
    trace = drawn.labels[20, 15]
    assert (trace[10:30] == 1).all() and (trace[30:45] == 3).all() and (trace[45:60] == 2).all()
    assert trace[61] == 0 and trace[65] == 2 and trace[70] == 2 and trace[71] == 0  # log ends at 699.5 m


@pytest.mark.parametrize("text, message", [
    ("well,inline,depth,unit\nA,110,100,shale\n", "needs well, x, y, depth, unit or well, inline, crossline"),
    ("well,inline,crossline,depth,unit\nA,110,105,300,shale\nA,110,105,100,sand\n",
     r"row 3 \(well A\): top of sand at 100 is not below the top of shale at 300"),
    ("well,inline,crossline,depth,unit\nA,110,105,abc,shale\n", r"row 2 \(well A\): depth 'abc' is not a number"),
    ("well,inline,crossline,depth,unit\nA,170,105,100,shale\n", r"row 2 \(well A\): the well is outside the survey"),
    ("well,inline,crossline,depth,unit\nA,110,105,100,shale\nA,111,105,200,sand\n",
     r"row 3 \(well A\): the well moves"),
    ("well,inline,crossline,depth,unit\nA,110,105,100,coal\n", r"row 2 \(well A\): unit 'coal' is not among"),
    ("well,inline,crossline,depth,unit\nA,110,105,5000,shale\n", "none of its tops lies within"),
])
def test_bad_tops_name_the_file_row_and_well(tmp_path, text, message):
    tops = write(tmp_path / "tops.csv", text)
    with pytest.raises(InputError, match=message):
        read_well_labels(survey(), tops, class_names=["shale", "sand"])


def test_map_coordinates_need_a_survey_that_has_them(tmp_path):
    tops = write(tmp_path / "tops.csv", "well,x,y,depth,unit\nA,2750,3625,100,shale\n")
    volume = Volume(np.zeros((10, 10, 10), np.float32), source="plain.npy")
    with pytest.raises(InputError, match="plain.npy has none.*give the well's inline and crossline"):
        read_well_labels(volume, tops)


def test_painted_labels_win_over_wells():
    wells = np.array([[0, 1], [2, 2]])
    painted = np.array([[3, 0], [0, 1]])
    assert merge_labels(painted, wells).tolist() == [[3, 1], [2, 1]]
    assert merge_labels(None, wells) is wells


def test_geoseg_wells_and_train_from_wells(tmp_path, capsys):
    image = np.random.default_rng(0).random((20, 24, 48)).astype(np.float32)
    np.save(tmp_path / "vol.npy", image)
    tops = write(tmp_path / "tops.csv", "well,inline,crossline,depth,unit\nA,5,6,10,shale\nA,5,6,25,sand\n"
                                        "B,15,18,12,shale\nB,15,18,30,sand\n")
    out = tmp_path / "labels.npy"
    assert main(["wells", str(tops), "--image", str(tmp_path / "vol.npy"), "--out", str(out), "--radius", "1"]) == 0
    labels = np.load(out)
    assert labels.shape == image.shape and set(np.unique(labels)) == {0, 1, 2} and labels[5, 6, 30] == 2
    assert "classes 1=shale, 2=sand" in capsys.readouterr().err
    assert main(["wells", str(tops), "--image", str(tmp_path / "vol.npy"), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    painted = np.zeros(image.shape, np.int64)
    painted[0, 0, :24], painted[0, 0, 24:] = 1, 2
    np.save(tmp_path / "painted.npy", painted)
    model = tmp_path / "m.pt"
    assert main(["train", "--image", str(tmp_path / "vol.npy"), "--wells", str(tops), "--labels",
                 str(tmp_path / "painted.npy"), "--out", str(model), "--iterations", "2", "--block", "16"]) == 0
    from napari_geoseg.train import Model

    assert Model.load(model).class_names == ["shale", "sand"]
    bad = write(tmp_path / "bad.csv", "well,inline,crossline,depth,unit\nA,50,6,10,shale\n")
    assert main(["train", "--image", str(tmp_path / "vol.npy"), "--wells", str(bad), "--out",
                 str(tmp_path / "m2.pt")]) == 2
    err = capsys.readouterr().err
    assert "bad.csv: row 2 (well A): the well is outside the survey" in err and "Traceback" not in err
    assert not (tmp_path / "m2.pt").exists()
    assert main(["train", "--image", str(tmp_path / "vol.npy"), "--out", str(tmp_path / "m3.pt")]) == 2
    assert "give --labels, --wells or --las" in capsys.readouterr().err


EX1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "seismic" / "ex1_missing_traces_75x71x26.segy"


@pytest.mark.skipif(not EX1.exists(), reason="shared data not present")
def test_wells_in_map_coordinates_on_a_real_irregular_survey(tmp_path, capsys):
    from napari_geoseg.io import read_volume
    from napari_geoseg.train import Model

    volume = read_volume(EX1)
    geometry = volume.geometry
    # Two wells placed at traces given as map coordinates through the survey's CDP transform.
    x1, y1 = geometry.lines_to_xy(np.array([11392.0]), np.array([2464.0]))
    x2, y2 = geometry.lines_to_xy(np.array([11460.0]), np.array([2530.0]))
    tops = write(tmp_path / "tops.csv", "well,x,y,depth,unit\n"
                 f"W1,{x1[0]:.2f},{y1[0]:.2f},20,upper\nW1,{x1[0]:.2f},{y1[0]:.2f},48,lower\n"
                 f"W2,{x2[0]:.2f},{y2[0]:.2f},16,upper\nW2,{x2[0]:.2f},{y2[0]:.2f},52,lower\n")
    drawn = read_well_labels(volume, tops)
    i1, j1 = (11392 - 11352) // 2, (2464 - 2442) // 2
    trace = drawn.labels[i1, j1]
    assert (trace[5:12] == 1).all() and (trace[12:] == 2).all() and trace[4] == 0  # 4 ms samples from 0
    assert np.count_nonzero(drawn.labels.any(axis=2)) == 2
    model = tmp_path / "m.pt"
    assert main(["train", "--image", str(EX1), "--wells", str(tops), "--radius", "1", "--out", str(model),
                 "--iterations", "2", "--block", "16"]) == 0
    loaded = Model.load(model)
    assert loaded.class_names == ["upper", "lower"]
    np.testing.assert_allclose(loaded.transform, geometry.transform)
    # Predicted units back into SEG-Y (missing traces stay missing), then their tops as horizons.
    prediction = tmp_path / "units.sgy"
    assert main(["predict", "--model", str(model), "--image", str(EX1), "--out", str(prediction)]) == 0
    horizons = tmp_path / "horizons.csv"
    assert main(["horizons", str(prediction), "--model", str(model), "--out", str(horizons)]) == 0
    import csv

    rows = list(csv.DictReader(open(horizons)))
    assert rows and {r["horizon"] for r in rows} <= {"top upper", "top lower"}
    present = {(int(i), int(x)) for i, x in zip(*np.nonzero(geometry.present))}
    for row in rows[:: max(1, len(rows) // 50)]:
        i, j = (int(row["inline"]) - 11352) // 2, (int(row["crossline"]) - 2442) // 2
        assert (i, j) in present and 0 <= float(row["time"]) <= 100
        x, y = geometry.lines_to_xy(np.array([float(row["inline"])]), np.array([float(row["crossline"])]))
        assert float(row["x"]) == pytest.approx(x[0], abs=0.01) and float(row["y"]) == pytest.approx(y[0], abs=0.01)
