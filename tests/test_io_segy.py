"""SEG-Y: geometry from the trace headers, irregular outlines, samples read on demand, survey
coordinates, time or depth, writing back, broken files."""

import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

segyio = pytest.importorskip("segyio")

from napari_geoseg.errors import GeosegError, InputError  # noqa: E402
from napari_geoseg.io import SegyGeometry, Volume, read_volume, write_volume  # noqa: E402
from napari_geoseg.io.segy import SegyArray, vertical_domain, write_segy  # noqa: E402

SEISMIC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "seismic"
needs_data = pytest.mark.skipif(not SEISMIC.is_dir(), reason="shared test data not present")

INLINES = np.array([10, 12, 14])
CROSSLINES = np.array([200, 201, 202, 203])
N_SAMPLES = 7
#: A survey transform, (x, y) = A @ (inline, crossline, 1): lines about 10 m apart, rotated.
AFFINE = np.array([[3.25, 10.5, 450000.0], [-8.75, 4.0, 6800000.0]])
CORNER = ((0, 0), (0, 1), (1, 0))  # three positions dropped from a 3 x 4 grid


def cdp_in_centimetres(inline: int, crossline: int) -> dict:
    x, y = AFFINE @ (inline, crossline, 1)
    return {segyio.TraceField.SourceGroupScalar: -100, segyio.TraceField.CDP_X: round(x * 100),
            segyio.TraceField.CDP_Y: round(y * 100)}


def one_line_error(error_type, call, *args, **kwargs) -> str:
    with pytest.raises(error_type) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, GeosegError)
    return message


def make_segy(path: Path, cube: np.ndarray, *, inline_byte=189, crossline_byte=193, sample_format=1,
              interval_us=2000, delay=100, crossline_sorted=False, shuffle=False, endian="big",
              text: str | None = None, inlines=INLINES, crosslines=CROSSLINES, drop=(), repeat=(),
              fields=None) -> Path:
    """Write ``cube`` (inline, crossline, sample) as a small SEG-Y file with the given layout.

    ``drop`` lists (i, j) positions left out; ``repeat`` positions written a second time, at
    the end, with the values + 100; ``fields(inline, crossline)`` more trace header fields.
    """
    positions = [(i, j) for i in range(cube.shape[0]) for j in range(cube.shape[1])]
    if crossline_sorted:
        positions.sort(key=lambda p: (p[1], p[0]))
    if shuffle:
        positions = [positions[k] for k in np.random.default_rng(3).permutation(len(positions))]
    positions = [p for p in positions if p not in set(drop)]
    offsets = [0.0] * len(positions) + [100.0] * len(repeat)
    positions += list(repeat)
    spec = segyio.spec()
    spec.format = sample_format
    spec.samples = list(range(cube.shape[2]))
    spec.tracecount = len(positions)
    spec.endian = endian
    with segyio.create(str(path), spec) as file:
        if text is not None:
            file.text[0] = segyio.tools.create_text_header(
                {k + 1: line for k, line in enumerate(text.splitlines())})
        file.bin.update({segyio.BinField.Interval: interval_us, segyio.BinField.Samples: cube.shape[2],
                         segyio.BinField.Format: sample_format})
        for trace, ((i, j), offset) in enumerate(zip(positions, offsets)):
            header = {segyio.TraceField.TRACE_SEQUENCE_LINE: trace + 1,
                      segyio.TraceField.TRACE_SAMPLE_COUNT: cube.shape[2],
                      segyio.TraceField.TRACE_SAMPLE_INTERVAL: interval_us,
                      segyio.TraceField.DelayRecordingTime: delay,
                      segyio.TraceField.CDP_X: 1000 + trace,  # something to carry over
                      inline_byte: int(inlines[i]), crossline_byte: int(crosslines[j])}
            if fields is not None:
                header.update(fields(int(inlines[i]), int(crosslines[j])))
            file.header[trace] = header
            file.trace[trace] = (cube[i, j] + offset).astype(np.int16 if sample_format == 3 else np.float32)
    return path


@pytest.fixture
def cube():
    return np.random.default_rng(0).normal(size=(3, 4, N_SAMPLES)).astype(np.float32)


def headers(path: Path) -> list[dict]:
    with segyio.open(str(path), ignore_geometry=True) as file:
        return [dict(file.header[i]) for i in range(file.tracecount)]


# --- reading ---------------------------------------------------------------------------------

def test_read_gives_inline_crossline_sample_and_world_coordinates(tmp_path, cube):
    volume = read_volume(make_segy(tmp_path / "small.sgy", cube))
    np.testing.assert_allclose(volume.data, cube, rtol=1e-6)  # IBM float round trip
    assert volume.axes == ("inline", "crossline", "sample")
    assert volume.scale == (2.0, 1.0, 2.0) and volume.translate == (10.0, 200.0, 100.0)
    assert volume.units == ("", "", "ms")
    geometry = volume.geometry
    assert isinstance(geometry, SegyGeometry)
    np.testing.assert_array_equal(geometry.inlines, INLINES)
    np.testing.assert_array_equal(geometry.crosslines, CROSSLINES)
    assert (geometry.inline_byte, geometry.crossline_byte) == (189, 193)
    assert geometry.sample_interval == 2.0 and geometry.first_sample == 100.0
    assert geometry.sample_unit == "ms" and geometry.domain == "time" and geometry.sample_format == 1
    assert geometry.shape == cube.shape and geometry.path == str((tmp_path / "small.sgy").resolve())


@pytest.mark.parametrize("layout", [dict(crossline_sorted=True), dict(shuffle=True), dict(endian="little"),
                                    dict(sample_format=5), dict(inline_byte=9, crossline_byte=21),
                                    dict(inline_byte=5, crossline_byte=21)])
def test_read_any_trace_order_endianness_format_and_standard_bytes(tmp_path, cube, layout):
    volume = read_volume(make_segy(tmp_path / "small.sgy", cube, **layout))
    np.testing.assert_allclose(volume.data, cube, rtol=1e-6)
    np.testing.assert_array_equal(volume.geometry.inlines, INLINES)


def test_bytes_stated_in_the_textual_header_are_tried(tmp_path, cube):
    text = "Trace header locations:\nInline number      : bytes 17-20\nXline number       : bytes 13-16"
    path = make_segy(tmp_path / "hinted.sgy", cube, inline_byte=17, crossline_byte=13, text=text)
    volume = read_volume(path)
    assert (volume.geometry.inline_byte, volume.geometry.crossline_byte) == (17, 13)
    np.testing.assert_allclose(volume.data, cube, rtol=1e-6)


def test_bytes_given_by_the_user(tmp_path, cube):
    path = make_segy(tmp_path / "odd.sgy", cube, inline_byte=17, crossline_byte=13)
    volume = read_volume(path, segy_inline_byte=17, segy_crossline_byte=13)
    np.testing.assert_allclose(volume.data, cube, rtol=1e-6)
    message = one_line_error(InputError, read_volume, path, segy_inline_byte=189, segy_crossline_byte=193)
    assert "189/193" in message and "--" not in message  # the faces add their own hint
    assert "not the first byte" in one_line_error(InputError, read_volume, path, segy_inline_byte=7)


def test_single_inline_file(tmp_path, cube):
    volume = read_volume(make_segy(tmp_path / "line.sgy", cube[:1], inlines=INLINES[:1]))
    assert volume.shape == (1, 4, N_SAMPLES) and volume.translate[0] == 10.0


# --- irregular outlines ----------------------------------------------------------------------

def test_a_corner_of_missing_traces_reads_as_nan(tmp_path, cube):
    volume = read_volume(make_segy(tmp_path / "corner.sgy", cube, drop=CORNER, shuffle=True))
    assert volume.shape == cube.shape and volume.dtype == np.float32
    data = np.asarray(volume.data)
    present = np.ones(cube.shape[:2], bool)
    for position in CORNER:
        present[position] = False
    np.testing.assert_array_equal(volume.geometry.present, present)
    assert np.isnan(data[~present]).all() and volume.geometry.n_missing == 3
    np.testing.assert_allclose(data[present], cube[present], rtol=1e-6)
    assert volume.geometry.trace_index[0, 0] == -1 and volume.geometry.n_traces == 9
    np.testing.assert_array_equal(volume.geometry.inlines, INLINES)


def test_int16_with_missing_traces_becomes_float32_with_nan(tmp_path):
    cube = np.arange(3 * 4 * N_SAMPLES, dtype=np.int16).reshape(3, 4, N_SAMPLES)
    complete = read_volume(make_segy(tmp_path / "complete.sgy", cube, sample_format=3))
    assert complete.dtype == np.int16
    np.testing.assert_array_equal(complete.data, cube)
    volume = read_volume(make_segy(tmp_path / "corner.sgy", cube, sample_format=3, drop=CORNER))
    assert volume.dtype == np.float32 and np.isnan(volume.data[0, 0]).all()
    np.testing.assert_array_equal(volume.data[2], cube[2])


def test_a_missing_line_and_a_single_crossline_step(tmp_path, cube):
    # Inlines 10, 12 and 16: the grid runs 10..16 in steps of 2, inline 14 has no trace.
    volume = read_volume(make_segy(tmp_path / "gap.sgy", cube, inlines=np.array([10, 12, 16])))
    np.testing.assert_array_equal(volume.geometry.inlines, [10, 12, 14, 16])
    assert volume.scale[0] == 2.0 and volume.geometry.n_missing == 4
    assert np.isnan(volume.data[2]).all()
    np.testing.assert_allclose(volume.data[3], cube[2], rtol=1e-6)


def test_a_duplicate_trace_keeps_the_first_and_warns_once(tmp_path, cube):
    path = make_segy(tmp_path / "duplicate.sgy", cube, repeat=[(1, 2)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        volume = read_volume(path)
    assert len(caught) == 1 and "1 traces repeat" in str(caught[0].message)
    assert "duplicate.sgy" in str(caught[0].message)
    assert volume.geometry.n_duplicates == 1 and volume.geometry.n_missing == 0
    np.testing.assert_allclose(volume.data, cube, rtol=1e-6)  # not the copy, which is + 100


def test_a_plausible_grid_wins_over_a_single_line(tmp_path, cube):
    # Bytes 5/21 hold a trace counter and zero: an N x 1 "line" that the old reader took.
    path = make_segy(tmp_path / "counter.sgy", cube, drop=CORNER,
                     fields=lambda inline, crossline: {5: inline * 1000 + crossline})
    volume = read_volume(path)
    assert (volume.geometry.inline_byte, volume.geometry.crossline_byte) == (189, 193)
    assert volume.shape == cube.shape and volume.geometry.n_missing == 3


def test_an_absurdly_sparse_grid_is_no_geometry(tmp_path, cube):
    # Inlines 1, 100, 200: their step is 1, so 3 of 200 lines would hold traces.
    path = make_segy(tmp_path / "sparse.sgy", cube, inlines=np.array([1, 100, 200]))
    message = one_line_error(InputError, read_volume, path)
    assert "cannot infer the inline/crossline geometry" in message


# --- samples on demand -----------------------------------------------------------------------

def test_opening_reads_headers_only(tmp_path):
    cube = np.random.default_rng(1).normal(size=(20, 20, 2000)).astype(np.float32)  # 3.2 MB of samples
    path = make_segy(tmp_path / "big.sgy", cube, sample_format=5, inlines=np.arange(20),
                     crosslines=np.arange(20))
    tracemalloc.start()
    try:
        volume = read_volume(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < cube.nbytes / 8, peak
    assert isinstance(volume.data, SegyArray) and volume.data.traces_read == 0
    np.testing.assert_array_equal(volume.data[3], cube[3])
    assert volume.data.traces_read == 20  # one inline
    np.testing.assert_array_equal(volume.data[5, 7, 100:110], cube[5, 7, 100:110])
    assert volume.data.traces_read == 21


@pytest.mark.parametrize("key", [
    (), 1, -1, (1, 2), (1, 2, 3), (..., 4), (slice(None), 1), (None, 1), (1, None, slice(None), 2),
    (slice(2, 0, -1), slice(None, None, 3)), (slice(None, None, -1), ..., slice(1, 5, 2)),
    (slice(5, 5),), (slice(None), slice(None), slice(-3, None)), (np.int64(2), ..., None),
])
def test_lazy_indexing_matches_numpy(tmp_path, cube, key):
    volume = read_volume(make_segy(tmp_path / "corner.sgy", cube, drop=CORNER, crossline_sorted=True))
    whole = np.asarray(volume.data)
    part = volume.data[key]
    expected = whole[key]
    assert np.shape(part) == np.shape(expected)
    np.testing.assert_array_equal(part, expected)


def test_lazy_indexing_refuses_what_it_cannot_do(tmp_path, cube):
    data = read_volume(make_segy(tmp_path / "small.sgy", cube)).data
    for key in [(3,), (0, 4), (0, 0, 7), (np.array([0, 1]),), (..., ...), (0, 0, 0, 0)]:
        with pytest.raises(IndexError):
            data[key]
    assert data.astype(np.float64).dtype == np.float64 and len(data) == 3
    assert data.nbytes == cube.nbytes and data.ndim == 3


def test_a_file_changed_after_reading_is_not_read_blindly(tmp_path, cube):
    path = make_segy(tmp_path / "small.sgy", cube)
    volume = read_volume(path)
    make_segy(path, cube[:, :3], crosslines=CROSSLINES[:3])
    assert "changed" in one_line_error(InputError, lambda: volume.data[0])
    path.unlink()
    assert "small.sgy" in one_line_error(InputError, np.asarray, volume.data)


# --- survey coordinates ----------------------------------------------------------------------

def test_cdp_coordinates_give_the_survey_transform(tmp_path, cube):
    path = make_segy(tmp_path / "survey.sgy", cube, drop=CORNER, shuffle=True, fields=cdp_in_centimetres)
    geometry = read_volume(path).geometry
    np.testing.assert_allclose(geometry.transform, AFFINE, atol=1e-6)
    assert geometry.transform_residual < 0.01 and geometry.coordinate_bytes == (181, 185)
    inline, crossline = np.array([10, 13.5]), np.array([[200], [203]])
    x, y = geometry.lines_to_xy(inline, crossline)
    assert x.shape == (2, 2)
    np.testing.assert_allclose(x, AFFINE[0, 0] * inline + AFFINE[0, 1] * crossline + AFFINE[0, 2])
    back = geometry.xy_to_lines(x, y)
    np.testing.assert_allclose(back[0], np.broadcast_to(inline, (2, 2)))
    np.testing.assert_allclose(back[1], np.broadcast_to(crossline, (2, 2)))
    i, j = geometry.line_index(14, 201.5)
    assert (i, j) == (2.0, 1.5)
    assert geometry.index_lines(i, j) == (14.0, 201.5)
    (inline_azimuth, inline_spacing), (crossline_azimuth, crossline_spacing) = geometry.survey_axes()
    assert inline_spacing == pytest.approx(2 * np.hypot(3.25, -8.75))  # inline step 2
    assert crossline_spacing == pytest.approx(np.hypot(10.5, 4.0))
    assert inline_azimuth == pytest.approx(np.degrees(np.arctan2(3.25, -8.75)) % 360)


def test_source_coordinates_when_the_cdp_ones_are_zero(tmp_path, cube):
    affine = np.array([[30.0, 100.0, 450000.0], [-80.0, 40.0, 6800000.0]])

    def source_in_tens(inline, crossline):
        x, y = affine @ (inline, crossline, 1)
        return {segyio.TraceField.SourceGroupScalar: 10, segyio.TraceField.CDP_X: 0,
                segyio.TraceField.SourceX: round(x / 10), segyio.TraceField.SourceY: round(y / 10)}

    geometry = read_volume(make_segy(tmp_path / "source.sgy", cube, fields=source_in_tens)).geometry
    assert geometry.coordinate_bytes == (73, 77) and geometry.transform_residual < 1e-6
    np.testing.assert_allclose(geometry.transform, affine, atol=1e-6)


def test_no_coordinates_no_transform(tmp_path, cube):
    geometry = read_volume(make_segy(tmp_path / "small.sgy", cube, fields=lambda i, x: {181: 0})).geometry
    assert geometry.transform is None and geometry.survey_axes() is None
    assert "no usable survey coordinates" in one_line_error(InputError, geometry.lines_to_xy, 10, 200)
    # CDP X alone (a trace counter here) does not make a map either.
    assert read_volume(make_segy(tmp_path / "x-only.sgy", cube)).geometry.transform is None


def test_plain_writer_stores_a_transform_in_centimetres(tmp_path, cube):
    write_segy(tmp_path / "plain.sgy", cube, transform=AFFINE.tolist())
    back = read_volume(tmp_path / "plain.sgy")
    np.testing.assert_allclose(back.geometry.transform, AFFINE, atol=1e-6)
    assert back.geometry.transform_residual < 0.01
    first = headers(tmp_path / "plain.sgy")[0]
    assert first[segyio.TraceField.SourceGroupScalar] == -100
    assert first[segyio.TraceField.CDP_X] == round((AFFINE @ (1, 1, 1))[0] * 100)
    np.testing.assert_array_equal(back.data, cube)
    message = one_line_error(InputError, write_segy, tmp_path / "bad.sgy", cube, transform=[[1, 2], [3, 4]])
    assert "2x3" in message and not (tmp_path / "bad.sgy").exists()


def test_geometry_and_data_copy_and_pickle(tmp_path, cube):
    import copy
    import pickle

    volume = read_volume(make_segy(tmp_path / "survey.sgy", cube, drop=CORNER, fields=cdp_in_centimetres))
    for twin in (copy.deepcopy(volume), pickle.loads(pickle.dumps(volume))):
        np.testing.assert_array_equal(twin.geometry.present, volume.geometry.present)
        np.testing.assert_array_equal(twin.data, volume.data)
        np.testing.assert_allclose(twin.geometry.transform, volume.geometry.transform)


# --- time or depth ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, text, interval, expected", [
    ("cube.sgy", "", 4.0, ("time", "default")),
    ("cube.sgy", "", 20.0, ("depth", "sample interval above 16")),
    ("volve-depth-cube.sgy", "", 4.0, ("depth", "file name")),
    ("psdm_cube.sgy", "", 4.0, ("depth", "file name")),
    ("cube_twt.sgy", "", 20.0, ("time", "file name")),
    ("depth-vs-time.sgy", "", 4.0, ("time", "default")),
    ("cube.sgy", "C 5 DOMAIN: DEPTH", 4.0, ("depth", "textual header")),
    ("cube_depth.sgy", "C 5 Z UNITS = MS", 4.0, ("time", "textual header")),
    ("cube.sgy", "C 5 PSDM VOLUME", 4.0, ("depth", "textual header")),
    ("cube.sgy", "C 9 Time min: -4510.00 max: 10.00", 20.0, ("depth", "sample interval above 16")),
])
def test_vertical_domain(name, text, interval, expected):
    assert vertical_domain(name, text, interval) == expected


def test_depth_file_gets_metres_and_can_be_overridden(tmp_path, cube):
    path = make_segy(tmp_path / "velocity_depth.sgy", cube, interval_us=10000, delay=0)
    volume = read_volume(path)
    assert volume.units[2] == "m" and volume.scale[2] == 10.0 and volume.geometry.domain == "depth"
    assert read_volume(path, segy_domain="time").units[2] == "ms"


# --- writing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", [dict(), dict(crossline_sorted=True, shuffle=True)])
def test_write_like_keeps_headers_and_geometry(tmp_path, cube, layout):
    source = make_segy(tmp_path / "source.sgy", cube, **layout)
    like = read_volume(source)
    result = cube * 2 + 1
    out = write_volume(tmp_path / "result.sgy", result, like=like)
    back = read_volume(out)
    np.testing.assert_array_equal(back.data, result)
    assert back.dtype == np.float32
    for name in ("inlines", "crosslines"):
        np.testing.assert_array_equal(getattr(back.geometry, name), getattr(like.geometry, name))
    for name in ("inline_byte", "crossline_byte", "sample_interval", "first_sample", "sample_unit"):
        assert getattr(back.geometry, name) == getattr(like.geometry, name)
    assert back.scale == like.scale and back.translate == like.translate and back.units == like.units
    assert headers(out) == headers(source)  # every trace header, in the source's trace order
    with (segyio.open(str(out), ignore_geometry=True) as written,
          segyio.open(str(source), ignore_geometry=True) as src):
        assert written.bin[segyio.BinField.Format] == 5 and back.geometry.sample_format == 5
        assert bytes(written.text[0]) == bytes(src.text[0])
        assert written.bin[segyio.BinField.Interval] == src.bin[segyio.BinField.Interval]


@pytest.mark.parametrize("layout", [dict(drop=CORNER), dict(drop=CORNER, shuffle=True, repeat=[(2, 3)])])
def test_write_back_an_irregular_file(tmp_path, cube, layout):
    source = make_segy(tmp_path / "source.sgy", cube, fields=cdp_in_centimetres, **layout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the duplicate, if any
        like = read_volume(source)
        result = np.asarray(like.data) * 2 + 1  # NaN stays NaN
        out = write_volume(tmp_path / "result.sgy", result, like=like)
        back = read_volume(out)
    np.testing.assert_array_equal(back.data, result)
    np.testing.assert_array_equal(back.geometry.present, like.geometry.present)
    assert back.geometry.n_duplicates == like.geometry.n_duplicates
    np.testing.assert_allclose(back.geometry.transform, like.geometry.transform)
    assert headers(out) == headers(source)
    changed = make_segy(tmp_path / "source.sgy", cube, fields=cdp_in_centimetres)  # now complete
    assert changed == source
    assert "changed" in one_line_error(InputError, write_volume, tmp_path / "again.sgy", result, like=like)


def test_labels_are_written_as_float32(tmp_path, cube):
    like = read_volume(make_segy(tmp_path / "source.sgy", cube))
    labels = np.random.default_rng(2).integers(0, 4, size=cube.shape).astype(np.uint8)
    back = read_volume(write_volume(tmp_path / "labels.segy", labels, like=like))
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back.data, labels)


def test_write_like_needs_the_source_shape(tmp_path, cube):
    like = read_volume(make_segy(tmp_path / "source.sgy", cube))
    message = one_line_error(InputError, write_volume, tmp_path / "bad.sgy", cube[:, :2], like=like)
    assert "3x2x7" in message and "3x4x7" in message
    assert not (tmp_path / "bad.sgy").exists()


def test_write_without_like_gets_a_plain_geometry(tmp_path, cube):
    back = read_volume(write_volume(tmp_path / "plain.sgy", cube))
    np.testing.assert_array_equal(back.data, cube)
    np.testing.assert_array_equal(back.geometry.inlines, [1, 2, 3])
    np.testing.assert_array_equal(back.geometry.crosslines, [1, 2, 3, 4])
    assert back.geometry.sample_interval == 4.0 and back.geometry.first_sample == 0.0
    assert back.scale == (1.0, 1.0, 4.0)
    assert back.geometry.sample_format == 5  # IEEE float, not segyio's default IBM


def test_write_like_from_another_format_gets_a_plain_geometry(tmp_path, cube):
    like = Volume(cube, axes=("inline", "crossline", "sample"))
    back = read_volume(write_volume(tmp_path / "plain.sgy", cube, like=like))
    np.testing.assert_array_equal(back.geometry.inlines, [1, 2, 3])


# --- broken files ----------------------------------------------------------------------------

@pytest.mark.parametrize("keep", [100, 3600, 3600 + 240 + 10, -50])
def test_truncated_segy(tmp_path, cube, keep):
    whole = make_segy(tmp_path / "whole.sgy", cube).read_bytes()
    (tmp_path / "cut.sgy").write_bytes(whole[:keep])
    message = one_line_error(InputError, read_volume, tmp_path / "cut.sgy")
    assert "cut.sgy" in message and ("truncated" in message or "too short" in message)


def test_garbage_is_not_segy(tmp_path):
    (tmp_path / "noise.sgy").write_bytes(np.random.default_rng(0).bytes(5000))
    message = one_line_error(InputError, read_volume, tmp_path / "noise.sgy")
    assert "noise.sgy" in message


@pytest.mark.parametrize("numbers", ["random", "zeros"])
def test_no_regular_geometry_names_the_bytes_tried(tmp_path, cube, numbers):
    rng = np.random.default_rng(5)
    path = make_segy(tmp_path / "irregular.sgy", cube)
    with segyio.open(str(path), "r+", ignore_geometry=True) as file:
        for trace in range(file.tracecount):
            value = (lambda: int(rng.integers(1, 1000))) if numbers == "random" else (lambda: 0)
            file.header[trace] = {189: value(), 193: value(), 9: value(), 21: value(), 5: value()}
    message = one_line_error(InputError, read_volume, path)
    assert message == (f"{path}: cannot infer the inline/crossline geometry from header bytes 189/193, "
                       f"9/21 or 5/21; give the header bytes of the inline and crossline numbers")


def test_prestack_gathers_are_refused(tmp_path, cube):
    doubled = np.concatenate([cube, cube], axis=1)  # every position twice
    path = make_segy(tmp_path / "gathers.sgy", doubled, crosslines=np.concatenate([CROSSLINES, CROSSLINES]))
    assert "pre-stack" in one_line_error(InputError, read_volume, path)


def test_template_gone(tmp_path, cube):
    source = make_segy(tmp_path / "source.sgy", cube)
    like = read_volume(source)
    source.unlink()
    message = one_line_error(InputError, write_volume, tmp_path / "out.sgy", cube, like=like)
    assert "no longer exists" in message


# --- real data -------------------------------------------------------------------------------

@needs_data
def test_real_f3_int16():
    volume = read_volume(SEISMIC / "f3.sgy")
    assert volume.shape == (23, 18, 75) and volume.dtype == np.int16
    np.testing.assert_array_equal(volume.geometry.inlines, np.arange(111, 134))
    np.testing.assert_array_equal(volume.geometry.crosslines, np.arange(875, 893))
    assert volume.geometry.sample_interval == 4.0 and volume.units[2] == "ms"
    assert volume.geometry.sample_format == 3
    assert volume.scale == (1.0, 1.0, 4.0) and volume.translate == (111.0, 875.0, 4.0)


@needs_data
def test_real_f3_written_back_round_trips(tmp_path):
    like = read_volume(SEISMIC / "f3.sgy")
    out = write_volume(tmp_path / "f3-copy.sgy", like.data, like=like)
    back = read_volume(out)
    np.testing.assert_array_equal(back.data, like.data.astype(np.float32))
    assert headers(out) == headers(SEISMIC / "f3.sgy")


@needs_data
def test_real_f3_ebcdic_header():
    volume = read_volume(SEISMIC / "f3-ebcidctest.sgy")
    assert volume.shape == (2, 100, 463) and volume.units[2] == "ms"
    assert volume.geometry.first_sample == 0.0 and volume.geometry.sample_interval == 4.0
    assert "segysak" in volume.metadata["text_header"]


@needs_data
def test_real_volve_depth_in_metres():
    volume = read_volume(SEISMIC / "volve10-migvel-depth-sub3d.sgy")
    assert volume.shape == (18, 52, 226) and volume.dtype == np.float32
    assert volume.geometry.domain == "depth" and volume.units[2] == "m"
    assert volume.geometry.sample_interval == 20.0
    assert volume.geometry.first_sample + volume.geometry.sample_interval * (volume.shape[2] - 1) == 4500.0
    # the textual header names bytes 5/21; they give the same cube as the standard 189/193
    np.testing.assert_array_equal(volume.data,
                                  read_volume(SEISMIC / "volve10-migvel-depth-sub3d.sgy",
                                              segy_inline_byte=189, segy_crossline_byte=193).data)


@needs_data
def test_real_f3_cut_in_the_middle(tmp_path):
    whole = (SEISMIC / "f3.sgy").read_bytes()
    (tmp_path / "f3.sgy").write_bytes(whole[: len(whole) // 2])
    assert "truncated" in one_line_error(InputError, read_volume, tmp_path / "f3.sgy")


def real_cube(path: Path) -> np.ndarray:
    """The cube as segyio reads it, for files whose traces fill the grid in inline order."""
    with segyio.open(str(path)) as file:
        return segyio.tools.cube(file)


def copy_traces(source: Path, target: Path, order: list[int]) -> Path:
    """``source`` with only the traces ``order`` (indices, repeats allowed), headers and all."""
    with segyio.open(str(source), ignore_geometry=True) as src:
        spec = segyio.tools.metadata(src)
        spec.tracecount = len(order)
        with segyio.create(str(target), spec) as dst:
            dst.text[0] = src.text[0]
            dst.bin = src.bin
            for new, old in enumerate(order):
                dst.header[new] = src.header[old]
                dst.trace[new] = src.trace[old]
    return target


@needs_data
def test_real_ex1_missing_traces():
    volume = read_volume(SEISMIC / "ex1_missing_traces_75x71x26.segy")
    geometry = volume.geometry
    assert volume.shape == (75, 71, 26) and volume.dtype == np.float32
    np.testing.assert_array_equal(geometry.inlines, np.arange(11352, 11501, 2))
    np.testing.assert_array_equal(geometry.crosslines, np.arange(2442, 2583, 2))
    assert geometry.n_missing == 387 and geometry.n_duplicates == 0 and geometry.n_traces == 4938
    data = np.asarray(volume.data)
    assert np.isnan(data).all(axis=2).sum() == 387 and np.isfinite(data[geometry.present]).all()
    assert geometry.coordinate_bytes == (181, 185) and geometry.transform_residual < 1.0
    (_, inline_spacing), (_, crossline_spacing) = geometry.survey_axes()
    assert inline_spacing == pytest.approx(12.5, abs=0.01) and crossline_spacing == pytest.approx(12.5, abs=0.01)
    with segyio.open(str(SEISMIC / "ex1_missing_traces_75x71x26.segy"), ignore_geometry=True) as file:
        trace = 1234
        inline, crossline = file.header[trace][189], file.header[trace][193]
        x, y = (file.header[trace][b] for b in (181, 185))
        np.testing.assert_array_equal(data[(inline - 11352) // 2, (crossline - 2442) // 2], file.trace[trace])
    assert np.hypot(*np.subtract(geometry.lines_to_xy(inline, crossline), (x, y))) < 1.0


@needs_data
def test_real_ex2_complete():
    volume = read_volume(SEISMIC / "ex2_complete_3d_75x71x26.segy")
    assert volume.shape == (75, 71, 26) and volume.geometry.n_missing == 0
    assert volume.translate[:2] == (10750.0, 2600.0) and volume.scale[:2] == (2.0, 2.0)
    np.testing.assert_array_equal(volume.data, real_cube(SEISMIC / "ex2_complete_3d_75x71x26.segy"))
    assert volume.geometry.transform_residual < 1.0


@needs_data
def test_real_cube_with_dead_traces():
    volume = read_volume(SEISMIC / "cube_w_deadtraces.segy")
    assert volume.shape == (30, 41, 4) and volume.geometry.n_missing == 0
    np.testing.assert_array_equal(volume.data, real_cube(SEISMIC / "cube_w_deadtraces.segy"))
    assert volume.geometry.transform_residual < 0.1


@needs_data
def test_real_f3_samples_unchanged_and_survey():
    volume = read_volume(SEISMIC / "f3.sgy")
    np.testing.assert_array_equal(volume.data, real_cube(SEISMIC / "f3.sgy"))
    (inline_azimuth, inline_spacing), (_, crossline_spacing) = volume.geometry.survey_axes()
    assert inline_spacing == pytest.approx(25, abs=0.01) and crossline_spacing == pytest.approx(25, abs=0.01)
    assert volume.geometry.transform_residual < 0.1


@needs_data
def test_real_f3_with_a_corner_dropped_or_a_trace_repeated(tmp_path):
    whole = real_cube(SEISMIC / "f3.sgy")  # 23 x 18, inline-sorted
    corner = {i * 18 + j for i in range(5) for j in range(4)}
    dropped = copy_traces(SEISMIC / "f3.sgy", tmp_path / "corner.sgy", [t for t in range(414) if t not in corner])
    volume = read_volume(dropped)
    assert volume.shape == (23, 18, 75) and volume.dtype == np.float32 and volume.geometry.n_missing == 20
    assert np.isnan(volume.data[:5, :4]).all()
    np.testing.assert_array_equal(volume.data[5:], whole[5:])
    repeated = copy_traces(SEISMIC / "f3.sgy", tmp_path / "repeat.sgy", [*range(414), 100])
    with pytest.warns(UserWarning, match="1 traces repeat"):
        volume = read_volume(repeated)
    assert volume.dtype == np.int16 and volume.geometry.n_duplicates == 1
    np.testing.assert_array_equal(volume.data, whole)
