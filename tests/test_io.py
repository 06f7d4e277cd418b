"""Reading and writing volumes: NumPy, TIFF, zarr, MATLAB, ENVI, and the errors users see.

SEG-Y has its own file, test_io_segy.py.
"""

from pathlib import Path

import numpy as np
import pytest

from napari_geoseg.errors import GeosegError, InputError, OutputExistsError
from napari_geoseg.io import Volume, formats, read_volume, split_spec, write_volume

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HYPERSPECTRAL = DATA / "hyperspectral"
needs_data = pytest.mark.skipif(not HYPERSPECTRAL.is_dir(), reason="shared test data not present")


def one_line_error(error_type, call, *args, **kwargs) -> str:
    """Run ``call``, expect ``error_type`` with a one-line message, return the message."""
    with pytest.raises(error_type) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message and message
    assert isinstance(info.value, GeosegError)
    return message


@pytest.fixture
def cube():
    return np.random.default_rng(0).normal(size=(4, 5, 6)).astype(np.float32)


@pytest.fixture
def described(cube):
    """A volume with non-default axes, to check they survive a round trip."""
    return Volume(cube, axes=("inline", "crossline", "sample"), scale=(2.0, 1.0, 4.0),
                  translate=(100.0, 300.0, 8.0), units=("", "", "ms"))


# --- Volume ----------------------------------------------------------------------------

def test_volume_fills_defaults_per_axis(cube):
    volume = Volume(cube)
    assert volume.axes == ("axis0", "axis1", "axis2")
    assert volume.scale == (1.0, 1.0, 1.0) and volume.translate == (0.0, 0.0, 0.0)
    assert volume.units == ("", "", "") and volume.shape == (4, 5, 6) and volume.ndim == 3
    assert volume.geometry is None and volume.metadata == {}


def test_volume_rejects_descriptions_of_the_wrong_length(cube):
    with pytest.raises(ValueError, match="scale"):
        Volume(cube, scale=(1.0, 2.0))


def test_split_spec():
    assert split_spec("a/Samson.mat:Y") == (Path("a/Samson.mat"), "Y")
    assert split_spec("store.zarr:group/labels") == (Path("store.zarr"), "group/labels")
    assert split_spec("f3.sgy") == (Path("f3.sgy"), None)
    assert split_spec(r"C:\data\f3.sgy") == (Path(r"C:\data\f3.sgy"), None)


# --- round trips -------------------------------------------------------------------------

def test_npy_round_trip_is_memory_mapped(tmp_path, cube):
    path = write_volume(tmp_path / "cube.npy", cube)
    volume = read_volume(path)
    np.testing.assert_array_equal(volume.data, cube)
    assert isinstance(volume.data, np.memmap)
    assert volume.axes == ("axis0", "axis1", "axis2") and volume.scale == (1.0, 1.0, 1.0)
    assert volume.source == str(path)


@pytest.mark.parametrize("suffix", [".tif", ".tiff"])
def test_tiff_round_trip_keeps_axes_and_scale(tmp_path, described, suffix):
    path = write_volume(tmp_path / f"cube{suffix}", described.data, like=described)
    volume = read_volume(path)
    np.testing.assert_array_equal(volume.data, described.data)
    assert volume.axes == described.axes and volume.scale == described.scale
    assert volume.translate == described.translate and volume.units == described.units


def test_tiff_last_axis_of_three_is_data_not_colour(tmp_path):
    labels = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)
    volume = read_volume(write_volume(tmp_path / "labels.tif", labels))
    np.testing.assert_array_equal(volume.data, labels)
    assert volume.axes == ("axis0", "axis1", "axis2")


def test_zarr_round_trip_is_lazy_and_keeps_axes(tmp_path, described):
    import zarr

    path = write_volume(tmp_path / "cube.zarr", described.data, like=described)
    volume = read_volume(path)
    assert isinstance(volume.data.array, zarr.Array)  # not loaded on open
    np.testing.assert_array_equal(volume.data[1:3], described.data[1:3])
    np.testing.assert_array_equal(np.asarray(volume.data), described.data)
    assert volume.axes == described.axes and volume.scale == described.scale
    assert volume.translate == described.translate and volume.units == described.units


def test_like_with_other_axes_count_gives_defaults(tmp_path, described):
    section = np.ones((4, 5), np.uint8)
    volume = read_volume(write_volume(tmp_path / "section.zarr", section, like=described))
    assert volume.axes == ("axis0", "axis1") and volume.scale == (1.0, 1.0)


def test_zarr_group_array_chosen_by_name(tmp_path, cube):
    import zarr

    group = zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    group.create_group("sub")
    zarr.open_array(store=str(tmp_path / "group.zarr" / "sub" / "image"), mode="w", shape=cube.shape,
                    dtype=cube.dtype)[:] = cube
    zarr.open_array(store=str(tmp_path / "group.zarr" / "labels"), mode="w", shape=(2, 2), dtype="u1")
    volume = read_volume(f"{tmp_path / 'group.zarr'}:sub/image")
    np.testing.assert_array_equal(volume.data[:], cube)
    assert volume.metadata["variable"] == "sub/image"
    assert read_volume(tmp_path / "group.zarr", variable="labels").shape == (2, 2)
    message = one_line_error(InputError, read_volume, tmp_path / "group.zarr")
    assert "labels" in message and "sub/image" in message and ":NAME" in message
    message = one_line_error(InputError, read_volume, f"{tmp_path / 'group.zarr'}:nope")
    assert "nope" in message and "sub/image" in message


# --- MATLAB --------------------------------------------------------------------------------

def test_mat_v5_single_image_is_taken_without_a_name(tmp_path, cube):
    import scipy.io

    scipy.io.savemat(tmp_path / "scene.mat", {"cube": cube, "nRow": 4.0, "mask": cube > 0})
    volume = read_volume(tmp_path / "scene.mat")
    np.testing.assert_array_equal(volume.data, cube)
    assert volume.metadata["variable"] == "cube" and volume.axes == ("axis0", "axis1", "axis2")
    mask = read_volume(f"{tmp_path / 'scene.mat'}:mask")
    assert mask.dtype == bool and mask.data.sum() == (cube > 0).sum()


def test_mat_with_several_arrays_lists_them(tmp_path, cube):
    import scipy.io

    scipy.io.savemat(tmp_path / "scene.mat", {"image": cube, "other": cube[0]})
    message = one_line_error(InputError, read_volume, tmp_path / "scene.mat")
    assert "image (4x5x6 single)" in message and "other (5x6 single)" in message
    assert f"{tmp_path / 'scene.mat'}:NAME" in message
    np.testing.assert_array_equal(read_volume(tmp_path / "scene.mat", variable="other").data, cube[0])


def test_mat_missing_variable(tmp_path, cube):
    import scipy.io

    scipy.io.savemat(tmp_path / "scene.mat", {"image": cube})
    message = one_line_error(InputError, read_volume, f"{tmp_path / 'scene.mat'}:Y")
    assert "'Y'" in message and "image" in message


def test_mat_v73_hdf5_is_read_in_matlab_order(tmp_path, cube):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "v73.mat"
    # What MATLAB's save -v7.3 writes: a 512-byte user block, then HDF5 with the axes reversed.
    with h5py.File(path, "w", userblock_size=512) as file:
        file.create_dataset("cube", data=cube.T).attrs["MATLAB_class"] = np.bytes_("single")
        file.create_dataset("n", data=np.array([[4.0]])).attrs["MATLAB_class"] = np.bytes_("double")
    with open(path, "r+b") as file:
        file.write(b"MATLAB 7.3 MAT-file".ljust(116))
    volume = read_volume(path)
    np.testing.assert_array_equal(volume.data, cube)
    assert read_volume(path, variable="n").shape == (1, 1)


def test_corrupt_mat(tmp_path):
    (tmp_path / "broken.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 50)
    assert "broken.mat" in one_line_error(InputError, read_volume, tmp_path / "broken.mat")


@needs_data
def test_real_samson_mat():
    volume = read_volume(f"{HYPERSPECTRAL / 'Samson.mat'}:Y")
    assert volume.shape == (156, 9025) and volume.dtype == np.float64
    assert volume.metadata["variable"] == "Y"
    assert 0 <= float(volume.data.min()) and float(volume.data.max()) <= 1


@needs_data
def test_real_abu_beach_mat():
    volume = read_volume(f"{HYPERSPECTRAL / 'abu-beach-4.mat'}:data")
    assert volume.shape == (100, 100, 102)
    # the only numeric image (the other variable is a logical mask)
    assert read_volume(HYPERSPECTRAL / "abu-beach-4.mat").shape == (100, 100, 102)


@needs_data
def test_real_mat_with_several_arrays_lists_them():
    message = one_line_error(InputError, read_volume, HYPERSPECTRAL / "_EndSamson.mat")
    assert "A (3x9025 double)" in message and "M (156x3 double)" in message


# --- ENVI ------------------------------------------------------------------------------------

def write_envi(folder: Path, image: np.ndarray, interleave: str, big_endian: bool, *,
               offset: int = 0, data_suffix: str = ".img") -> Path:
    """Write (row, column, band) ``image`` as an ENVI header and binary file."""
    codes = {np.dtype("uint8"): 1, np.dtype("int16"): 2, np.dtype("float32"): 4, np.dtype("uint16"): 12,
             np.dtype("float64"): 5}
    disk = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}[interleave]
    on_disk = image.dtype.newbyteorder(">" if big_endian else "<")
    raw = np.ascontiguousarray(image.transpose(disk)).astype(on_disk)
    (folder / f"scene{data_suffix}").write_bytes(b"\x00" * offset + raw.tobytes())
    lines, samples, bands = image.shape
    wavelengths = ",\n ".join(f"{400 + 10 * b:.1f}" for b in range(bands))
    header = (f"ENVI\ndescription = {{test scene,\n  written by a test}}\n"
              f"samples = {samples}\nlines = {lines}\n"
              f"bands = {bands}\nheader offset = {offset}\nfile type = ENVI Standard\n"
              f"data type = {codes[image.dtype]}\ninterleave = {interleave}\n"
              f"byte order = {int(big_endian)}\n; a comment\nwavelength units = Nanometers\n"
              f"wavelength = {{\n {wavelengths}}}\n")
    (folder / "scene.hdr").write_text(header)
    return folder / "scene.hdr"


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "int16", "uint16"])
def test_envi_reads_every_interleave_and_byte_order(tmp_path, interleave, big_endian, dtype):
    image = (np.random.default_rng(1).uniform(0, 1000, size=(3, 4, 5))).astype(dtype)
    volume = read_volume(write_envi(tmp_path, image, interleave, big_endian, offset=16))
    assert volume.axes == ("row", "column", "band") and volume.shape == (3, 4, 5)
    np.testing.assert_array_equal(volume.data, image)
    np.testing.assert_allclose(volume.metadata["wavelength"], [400, 410, 420, 430, 440])
    assert volume.metadata["wavelength_units"] == "Nanometers"
    assert volume.metadata["interleave"] == interleave
    assert volume.metadata["header"]["description"] == "test scene, written by a test"


def test_envi_binary_without_extension(tmp_path):
    image = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    np.testing.assert_array_equal(read_volume(write_envi(tmp_path, image, "bip", False, data_suffix="")).data,
                                  image)


def test_envi_truncated_binary(tmp_path):
    header = write_envi(tmp_path, np.zeros((3, 4, 5), np.float32), "bsq", False)
    data = tmp_path / "scene.img"
    data.write_bytes(data.read_bytes()[:100])
    message = one_line_error(InputError, read_volume, header)
    assert "scene.img" in message and "100 bytes" in message and "truncated" in message


def test_envi_missing_binary_and_bad_header(tmp_path):
    header = write_envi(tmp_path, np.zeros((3, 4, 5), np.float32), "bsq", False)
    (tmp_path / "scene.img").unlink()
    assert "no data file" in one_line_error(InputError, read_volume, header)
    header.write_text("not an envi header\n")
    assert "not an ENVI header" in one_line_error(InputError, read_volume, header)
    header.write_text("ENVI\nsamples = 4\nlines = 3\ndata type = 4\n")
    assert "'bands'" in one_line_error(InputError, read_volume, header)
    header.write_text("ENVI\nsamples = 4\nlines = 3\nbands = 5\ndata type = 7\n")
    assert "data type 7" in one_line_error(InputError, read_volume, header)


# --- bad inputs ----------------------------------------------------------------------------

def test_missing_file(tmp_path):
    message = one_line_error(InputError, read_volume, tmp_path / "nothing.sgy")
    assert "nothing.sgy" in message and "no such file" in message


def test_unknown_extension_lists_supported(tmp_path):
    (tmp_path / "cube.xyz").write_bytes(b"")
    message = one_line_error(InputError, read_volume, tmp_path / "cube.xyz")
    for suffix in (".npy", ".tif", ".sgy", ".segy", ".zarr", ".mat", ".hdr"):
        assert suffix in message
    assert ".zarr" in one_line_error(InputError, write_volume, tmp_path / "out.xyz", np.zeros(3))


def test_name_on_a_format_without_names(tmp_path, cube):
    write_volume(tmp_path / "cube.npy", cube)
    assert "only .mat and .zarr" in one_line_error(InputError, read_volume, f"{tmp_path / 'cube.npy'}:x")
    assert "only .mat and .zarr" in one_line_error(InputError, read_volume, tmp_path / "cube.npy",
                                                   variable="x")


@pytest.mark.parametrize("name, content", [("cube.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran"),
                                           ("cube.tif", b"II*\x00garbage"),
                                           ("cube.zarr", b"a file, not a store")])
def test_corrupt_files(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    message = one_line_error(InputError, read_volume, tmp_path / name)
    assert name in message and "cannot read" in message


def test_npy_that_is_not_numpy(tmp_path):
    (tmp_path / "cube.npy").write_bytes(b"not numpy at all")
    assert "not a NumPy .npy file" in one_line_error(InputError, read_volume, tmp_path / "cube.npy")


def test_npy_of_python_objects(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    message = one_line_error(InputError, read_volume, tmp_path / "objects.npy")
    assert "objects.npy" in message and "cannot read" in message


def test_truncated_npy(tmp_path, cube):
    path = write_volume(tmp_path / "cube.npy", cube)
    path.write_bytes(path.read_bytes()[:-10])
    assert "cube.npy" in one_line_error(InputError, read_volume, path)


# --- writing: never a half file, never an unasked overwrite -------------------------------

@pytest.mark.parametrize("suffix", [".npy", ".tif", ".zarr", ".sgy"])
def test_existing_output_is_kept(tmp_path, cube, suffix):
    path = write_volume(tmp_path / f"out{suffix}", cube)
    before = read_volume(path).data[:]
    with pytest.raises(OutputExistsError) as info:
        write_volume(path, cube + 1)
    message = str(info.value)
    assert str(path) in message and "another name" in message and "--" not in message
    assert info.value.option == "overwrite"  # each face says how to allow it
    np.testing.assert_array_equal(read_volume(path).data[:], before)
    write_volume(path, cube + 1, overwrite=True)
    np.testing.assert_array_equal(read_volume(path).data[:], cube + 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"out{suffix}"]  # no temporary left over


@pytest.mark.parametrize("suffix", [".npy", ".zarr"])
def test_failed_write_leaves_old_file_and_no_temporary(tmp_path, cube, monkeypatch, suffix):
    path = write_volume(tmp_path / f"out{suffix}", cube)

    def failing_writer(target, data, *args):
        Path(target).mkdir() if suffix == ".zarr" else Path(target).write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(formats, "write_npy" if suffix == ".npy" else "write_zarr", failing_writer)
    message = one_line_error(GeosegError, write_volume, path, cube + 1, overwrite=True)
    assert "No space left" in message and str(path) in message
    np.testing.assert_array_equal(read_volume(path).data[:], cube)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"out{suffix}"]


def test_output_folder_must_exist(tmp_path, cube):
    message = one_line_error(InputError, write_volume, tmp_path / "missing" / "out.npy", cube)
    assert "does not exist" in message


def test_tiff_needs_two_axes(tmp_path):
    assert "TIFF" in one_line_error(InputError, write_volume, tmp_path / "line.tif", np.zeros(5))


# --- damaged and unusable files: one line naming what is wrong ---------------------------

def test_a_damaged_zarr_chunk_is_named(tmp_path):
    zarr = pytest.importorskip("zarr")
    store = tmp_path / "damaged.zarr"
    array = zarr.create_array(store=str(store), shape=(8, 8, 8), chunks=(4, 4, 4), dtype="float32")
    array[:] = np.arange(512, dtype=np.float32).reshape(8, 8, 8)
    (store / "c" / "1" / "0" / "1").write_bytes(b"not a chunk")
    volume = read_volume(store)  # opening reads no chunk
    np.testing.assert_array_equal(volume.data[:4], np.arange(256, dtype=np.float32).reshape(4, 8, 8))
    message = one_line_error(InputError, np.asarray, volume.data)
    assert message.startswith(f"{store}: chunk (1, 0, 1) cannot be read") and "damaged" in message
    assert "chunk (1, 0, 1)" in one_line_error(InputError, volume.data.__getitem__, (slice(4, 8), 1))


@pytest.mark.parametrize("values, message", [
    (np.ones((4, 4, 4), np.complex64), "complex samples"),
    (np.zeros((4, 4, 4), dtype=[("a", "f4"), ("b", "i4")]), "records with fields a, b"),
])
def test_unusable_sample_types_are_refused(tmp_path, values, message):
    np.save(tmp_path / "odd.npy", values)
    assert message in one_line_error(InputError, read_volume, tmp_path / "odd.npy")


@pytest.mark.parametrize("fields, message", [
    ("samples = -5\nlines = 4\nbands = 2", "'samples = -5' is negative"),
    ("samples = 5\nlines = 4\nbands = 2\nheader offset = -100", "'header offset = -100' is negative"),
    ("samples = 4000000000\nlines = 4000000000\nbands = 4000000000", "256000000000000000000000000000"),
])
def test_envi_headers_with_impossible_sizes(tmp_path, fields, message):
    (tmp_path / "scene.img").write_bytes(b"\0" * 160)
    (tmp_path / "scene.hdr").write_text(f"ENVI\n{fields}\ndata type = 4\n")
    assert message in one_line_error(InputError, read_volume, tmp_path / "scene.hdr")
