"""SEG-Y: geometry from the trace headers, time or depth, writing back, broken files."""

from pathlib import Path

import numpy as np
import pytest

segyio = pytest.importorskip("segyio")

from napari_geoseg.errors import GeosegError, InputError  # noqa: E402
from napari_geoseg.io import SegyGeometry, Volume, read_volume, write_volume  # noqa: E402
from napari_geoseg.io.segy import vertical_domain  # noqa: E402

SEISMIC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "seismic"
needs_data = pytest.mark.skipif(not SEISMIC.is_dir(), reason="shared test data not present")

INLINES = np.array([10, 12, 14])
CROSSLINES = np.array([200, 201, 202, 203])
N_SAMPLES = 7


def one_line_error(error_type, call, *args, **kwargs) -> str:
    with pytest.raises(error_type) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, GeosegError)
    return message


def make_segy(path: Path, cube: np.ndarray, *, inline_byte=189, crossline_byte=193, sample_format=1,
              interval_us=2000, delay=100, crossline_sorted=False, shuffle=False, endian="big",
              text: str | None = None, inlines=INLINES, crosslines=CROSSLINES) -> Path:
    """Write ``cube`` (inline, crossline, sample) as a small SEG-Y file with the given layout."""
    positions = [(i, j) for i in range(cube.shape[0]) for j in range(cube.shape[1])]
    if crossline_sorted:
        positions.sort(key=lambda p: (p[1], p[0]))
    if shuffle:
        positions = [positions[k] for k in np.random.default_rng(3).permutation(len(positions))]
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
        for trace, (i, j) in enumerate(positions):
            file.header[trace] = {segyio.TraceField.TRACE_SEQUENCE_LINE: trace + 1,
                                  segyio.TraceField.TRACE_SAMPLE_COUNT: cube.shape[2],
                                  segyio.TraceField.TRACE_SAMPLE_INTERVAL: interval_us,
                                  segyio.TraceField.DelayRecordingTime: delay,
                                  segyio.TraceField.CDP_X: 1000 + trace,  # something to carry over
                                  inline_byte: int(inlines[i]), crossline_byte: int(crosslines[j])}
            file.trace[trace] = cube[i, j].astype(np.float32)
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
    assert "189/193" in message and "--segy-inline-byte" in message
    assert "not the first byte" in one_line_error(InputError, read_volume, path, segy_inline_byte=7)


def test_single_inline_file(tmp_path, cube):
    volume = read_volume(make_segy(tmp_path / "line.sgy", cube[:1], inlines=INLINES[:1]))
    assert volume.shape == (1, 4, N_SAMPLES) and volume.translate[0] == 10.0


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
                       f"9/21 or 5/21; give the byte positions with --segy-inline-byte and "
                       f"--segy-crossline-byte")


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
