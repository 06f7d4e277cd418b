import csv

import numpy as np

from napari_geoseg.cli import main
from napari_geoseg.data.horizons import unit_tops, write_horizons
from napari_geoseg.io import Volume


def layered(shape=(3, 4, 20)):
    labels = np.zeros(shape, np.uint8)
    labels[..., :5], labels[..., 5:12], labels[..., 12:] = 1, 2, 3
    labels[2, 3, 8:] = 3  # unit 3 starts higher in one trace
    labels[0, 0] = 0  # a dead trace
    labels[0, 1, :3] = 0  # data starts late: no boundary above unit 1
    return labels


def test_unit_tops_lie_between_the_samples_of_two_units():
    volume = Volume(np.zeros((3, 4, 20), np.float32), scale=(1, 1, 4), translate=(100, 200, 1000))
    tops = unit_tops(layered(), volume)
    assert len(tops[1][0]) == 0
    i, j, z = tops[2]
    assert len(i) == 11 and set(z) == {1000 + 4.5 * 4}
    i, j, z = tops[3]
    assert dict(zip(zip(i, j), z))[(2, 3)] == 1000 + 7.5 * 4 and dict(zip(zip(i, j), z))[(1, 1)] == 1000 + 11.5 * 4


def test_horizons_csv_from_the_command_line(tmp_path):
    np.save(tmp_path / "pred.npy", layered())
    assert main(["horizons", str(tmp_path / "pred.npy"), "--out", str(tmp_path / "h.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "h.csv")))
    assert len(rows) == 22 and rows[0]["horizon"] == "top class 2" and rows[0]["x"] == ""
    assert {r["depth"] for r in rows if r["horizon"] == "top class 3"} == {"11.5", "7.5"}
    assert main(["horizons", str(tmp_path / "pred.npy"), "--out", str(tmp_path / "h.csv")]) == 2


def test_horizons_carry_map_coordinates(tmp_path):
    class Grid:
        inlines, crosslines, domain, transform = np.arange(10, 13), np.arange(5, 9), "time", "affine"

        def lines_to_xy(self, inline, crossline):
            return np.asarray(inline) * 25.0, np.asarray(crossline) * 12.5

    volume = Volume(np.zeros((3, 4, 20), np.float32), scale=(1, 1, 2), translate=(10, 5, 0), geometry=Grid())
    write_horizons(tmp_path / "h.csv", layered(), volume, ["a", "b", "c"])
    rows = list(csv.DictReader(open(tmp_path / "h.csv")))
    first = rows[0]
    assert first["horizon"] == "top b" and "time" in first
    assert float(first["x"]) == 25.0 * float(first["inline"]) and float(first["y"]) == 12.5 * float(first["crossline"])
