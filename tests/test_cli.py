import subprocess
import sys

import numpy as np
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


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import numpy as np

    from napari_geoseg.data import synthetic_seismic

    folder = tmp_path_factory.mktemp("cli")
    volume = synthetic_seismic((32, 32, 32), seed=2)
    np.save(folder / "image.npy", volume.image)
    np.save(folder / "labels.npy", volume.labels)
    return folder


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "napari_geoseg.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_train_predict_info_end_to_end(files, tmp_path):
    import numpy as np

    model = tmp_path / "model.pt"
    result = run_cli("train", "--image", files / "image.npy", "--labels", files / "labels.npy", "--out", model,
                     "--iterations", "3", "--block", "16", "--class-names", "top,middle,bottom")
    assert result.returncode == 0, result.stderr
    assert "train [" in result.stderr and model.exists()
    pred, prob, unc = tmp_path / "pred.npy", tmp_path / "prob.npy", tmp_path / "unc.npy"
    result = run_cli("predict", "--model", model, "--image", files / "image.npy", "--out", pred,
                     "--probabilities", prob, "--uncertainty", unc)
    assert result.returncode == 0, result.stderr
    labels = np.load(pred)
    assert labels.shape == (32, 32, 32) and labels.dtype == np.uint8 and set(np.unique(labels)) <= {1, 2, 3}
    assert np.load(prob).shape == (32, 32, 32, 3) and np.load(unc).shape == (32, 32, 32)
    result = run_cli("info", model)
    assert result.returncode == 0 and "1=top, 2=middle, 3=bottom" in result.stdout
    assert "position: flattened depth" in result.stdout
    ordered = tmp_path / "ordered.npy"
    result = run_cli("predict", "--model", model, "--image", files / "image.npy", "--out", ordered, "--ordered-units")
    assert result.returncode == 0, result.stderr
    # Units never go back up a trace (the sample axis is the last one).
    assert np.all(np.diff(np.load(ordered).astype(int), axis=-1) >= 0)
    # Without the flip averaging: one network pass a block, as Predictor(flips=False).
    from napari_geoseg.train import Model, Predictor

    plain, chunked = tmp_path / "plain.npy", tmp_path / "plain.zarr"
    for out in (plain, chunked):
        result = run_cli("predict", "--model", model, "--image", files / "image.npy", "--out", out, "--no-flips")
        assert result.returncode == 0, result.stderr
    expected = Predictor(Model.load(model), flips=False).predict(np.load(files / "image.npy")).labels
    np.testing.assert_array_equal(np.load(plain), expected)
    import zarr

    np.testing.assert_array_equal(zarr.open_array(str(chunked), mode="r")[:], expected)


def test_plain_depth_option(files, tmp_path):
    model = tmp_path / "plain.pt"
    result = run_cli("train", "--image", files / "image.npy", "--labels", files / "labels.npy", "--out", model,
                     "--iterations", "2", "--block", "16", "--plain-depth")
    assert result.returncode == 0, result.stderr
    result = run_cli("info", model)
    assert result.returncode == 0 and "flattened" not in result.stdout
    flat = tmp_path / "flat.pt"
    assert run_cli("train", "--image", files / "image.npy", "--labels", files / "labels.npy", "--out", flat,
                   "--iterations", "1", "--block", "16").returncode == 0
    result = run_cli("train", "--image", files / "image.npy", "--labels", files / "labels.npy", "--out",
                     tmp_path / "again.pt", "--iterations", "1", "--block", "16", "--continue-from", flat,
                     "--plain-depth")
    assert result.returncode != 0 and "flattened depth" in result.stderr and "Traceback" not in result.stderr


def test_members_option_trains_several_networks(files, tmp_path):
    model = tmp_path / "two.pt"
    result = run_cli("train", "--image", files / "image.npy", "--labels", files / "labels.npy", "--out", model,
                     "--iterations", "2", "--block", "16", "--members", "2")
    assert result.returncode == 0, result.stderr
    assert "2 networks of" in result.stderr
    result = run_cli("info", model)
    assert result.returncode == 0 and "2 member networks averaged" in result.stdout
    result = run_cli("train", "--image", files / "image.npy", "--labels", files / "labels.npy",
                     "--out", tmp_path / "more.pt", "--iterations", "1", "--continue-from", model, "--members", "3")
    assert result.returncode == 2 and "2 member network(s), not 3" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "more.pt").exists()


def test_train_says_the_probe_strength_used_without_held_out_labels(few_labels_cube, tmp_path):
    cube, labels = few_labels_cube
    np.save(tmp_path / "cube.npy", cube)
    np.save(tmp_path / "labels.npy", labels)
    result = run_cli("train", "--image", tmp_path / "cube.npy", "--labels", tmp_path / "labels.npy",
                     "--out", tmp_path / "m.pt", "--mode", "spectral", "--iterations", "2", "--block", "16",
                     "--members", "1")
    assert result.returncode == 0, result.stderr
    assert "probe added to the head at strength 4 (too few labels per class" in result.stderr
    assert "the probe reads the voxels' values" in result.stderr
    assert "(cross-validated accuracy on the labels: values 1.000, values and copies " in result.stderr
    assert "validation accuracy n/a" in result.stdout


def test_bad_inputs_are_one_line_errors_and_nothing_is_overwritten(files, tmp_path):
    import numpy as np

    existing = tmp_path / "exists.pt"
    existing.write_bytes(b"keep me")
    np.save(tmp_path / "wrong_shape.npy", np.zeros((32, 32, 16), np.uint8))
    np.save(tmp_path / "float_labels.npy", np.full((32, 32, 32), 0.5, np.float32))
    np.save(tmp_path / "one_class.npy", np.ones((32, 32, 32), np.uint8))
    image, labels = files / "image.npy", files / "labels.npy"
    cases = [
        (["train", "--image", tmp_path / "missing.npy", "--labels", labels, "--out", tmp_path / "m.pt"], "missing.npy"),
        (["train", "--image", image, "--labels", labels, "--out", existing], "already exists"),
        (["train", "--image", image, "--labels", tmp_path / "wrong_shape.npy", "--out", tmp_path / "m.pt"], "do not"),
        (["train", "--image", image, "--labels", tmp_path / "float_labels.npy", "--out", tmp_path / "m.pt"],
         "non-integer"),
        (["train", "--image", image, "--labels", tmp_path / "one_class.npy", "--out", tmp_path / "m.pt"],
         "at least two classes"),
        (["predict", "--model", existing, "--image", image, "--out", tmp_path / "p.npy"], "not a napari-geoseg model"),
        (["info", tmp_path / "file.xyz"], "file.xyz"),
    ]
    for args, message in cases:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("geoseg: error:") and message in lines[0], lines
    assert existing.read_bytes() == b"keep me"
    assert not (tmp_path / "m.pt").exists()


def test_nan_samples_are_masked_with_a_warning(files, tmp_path):
    import numpy as np

    image = np.load(files / "image.npy")
    image[0, 0, :] = np.nan  # a dead trace
    np.save(tmp_path / "dead.npy", image)
    model = tmp_path / "m.pt"
    result = run_cli("train", "--image", tmp_path / "dead.npy", "--labels", files / "labels.npy", "--out", model,
                     "--iterations", "1", "--block", "16")
    assert result.returncode == 0, result.stderr
    assert "geoseg: warning: 32 NaN or Inf samples" in result.stderr
    result = run_cli("predict", "--model", model, "--image", tmp_path / "dead.npy", "--out", tmp_path / "p.npy")
    assert result.returncode == 0 and "32 voxels of" in result.stderr and "NaN or Inf" in result.stderr
    assert (np.load(tmp_path / "p.npy")[0, 0] == 0).all()


def test_segy_in_segy_out_keeps_geometry(files, tmp_path):
    import numpy as np

    from napari_geoseg.io import read_volume, write_volume

    image = np.load(files / "image.npy")
    write_volume(tmp_path / "image.sgy", image)
    model = tmp_path / "m.pt"
    result = run_cli("train", "--image", tmp_path / "image.sgy", "--labels", files / "labels.npy", "--out", model,
                     "--iterations", "1", "--block", "16")
    assert result.returncode == 0, result.stderr
    result = run_cli("predict", "--model", model, "--image", tmp_path / "image.sgy", "--out", tmp_path / "pred.sgy")
    assert result.returncode == 0, result.stderr
    source, pred = read_volume(tmp_path / "image.sgy"), read_volume(tmp_path / "pred.sgy")
    assert pred.shape == source.shape
    assert np.array_equal(pred.geometry.inlines, source.geometry.inlines)
    assert pred.geometry.sample_interval == source.geometry.sample_interval
    assert set(np.unique(np.asarray(pred.data))) <= {1.0, 2.0, 3.0}


def test_request_too_large_for_memory_is_refused(files, tmp_path, monkeypatch, capsys):
    from napari_geoseg.train import memory

    monkeypatch.setattr(memory, "available_memory", lambda: 10 * 2**20)
    code = main(["train", "--image", str(files / "image.npy"), "--labels", str(files / "labels.npy"),
                 "--out", str(tmp_path / "m.pt"), "--iterations", "1"])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "m.pt").exists()
    assert "geoseg: error: training needs about" in err and "use smaller blocks (--block)" in err


def test_segy_domain_option_sets_the_vertical_axis(files, tmp_path):
    import numpy as np

    from napari_geoseg.io import write_volume

    write_volume(tmp_path / "cube.sgy", np.load(files / "image.npy"))
    for domain, unit in (("depth", "step 4 m,"), ("time", "step 4 ms,")):
        result = run_cli("info", tmp_path / "cube.sgy", "--segy-domain", domain)
        assert result.returncode == 0, result.stderr
        assert f"), {domain}, sample format" in result.stdout and unit in result.stdout
    result = run_cli("info", tmp_path / "cube.sgy", "--segy-domain", "frequency")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def _train_args(files, out, *extra):
    return ["train", "--image", str(files / "image.npy"), "--labels", str(files / "labels.npy"), "--out", str(out),
            "--iterations", "2", "--block", "16", *map(str, extra)]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.startswith("geoseg: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_outputs_are_checked_before_any_work(files, tmp_path, monkeypatch, capsys):
    from napari_geoseg.train import Trainer

    def no_training(self):
        raise AssertionError("trained before checking the outputs")
        yield

    monkeypatch.setattr(Trainer, "run", no_training)
    assert main(_train_args(files, tmp_path / "no" / "such" / "m.pt")) == 2
    assert "does not exist" in one_error_line(capsys)
    model = tmp_path / "m.pt"
    for out, extra, message in [
        (tmp_path / "p.npy", ["--probabilities", tmp_path / "p.npy"], "given for two outputs"),
        (tmp_path / "p.npy", ["--uncertainty", tmp_path / "." / "p.npy"], "given for two outputs"),
        (tmp_path / "p.zarr", ["--probabilities", tmp_path / "p.zarr"], "given for two outputs"),
        (tmp_path / "none" / "p.npy", [], "does not exist"),
    ]:
        code = main(["predict", "--model", str(model), "--image", str(files / "image.npy"), "--out", str(out),
                     *map(str, extra)])
        assert code == 2 and message in one_error_line(capsys)
    assert not list(tmp_path.rglob("p.*"))


def test_engine_errors_get_the_command_line_s_hint(files, tmp_path, capsys):
    assert main(_train_args(files, tmp_path / "m.pt", "--device", "tpu9")) == 2
    line = one_error_line(capsys)
    assert "'tpu9': not a device" in line and line.endswith("(--device)")
    import numpy as np

    from napari_geoseg.io import write_volume

    write_volume(tmp_path / "cube.sgy", np.load(files / "image.npy"))
    assert main(["info", str(tmp_path / "cube.sgy"), "--segy-inline-byte", "7"]) == 2
    assert one_error_line(capsys).endswith("(--segy-inline-byte and --segy-crossline-byte)")


def test_ctrl_c_writes_nothing_unless_asked(files, tmp_path, monkeypatch, capsys):
    from napari_geoseg.train import Trainer

    real_run = Trainer.run

    def interrupted(self):
        for count, progress in enumerate(real_run(self), start=1):
            yield progress
            if count == 1:
                raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "run", interrupted)
    out = tmp_path / "m.pt"
    assert main(_train_args(files, out)) == 130
    assert not out.exists() and "nothing written" in capsys.readouterr().err
    assert main(_train_args(files, out, "--save-on-interrupt")) == 130
    assert out.exists() and "saved the weights of iteration 1" in capsys.readouterr().err


@pytest.mark.parametrize("top", [10**9, 10**12, 2**63 - 1])
def test_any_integer_class_id_round_trips(files, tmp_path, top, capsys):
    import numpy as np

    labels = np.load(files / "labels.npy").astype(np.int64)
    labels[labels == 3] = top
    np.save(tmp_path / "labels.npy", labels)
    model, out = tmp_path / "m.pt", tmp_path / "p.npy"
    assert main(["train", "--image", str(files / "image.npy"), "--labels", str(tmp_path / "labels.npy"),
                 "--out", str(model), "--iterations", "2", "--block", "16"]) == 0
    assert main(["predict", "--model", str(model), "--image", str(files / "image.npy"), "--out", str(out),
                 "--block", "32"]) == 0
    predicted = np.load(out)
    assert set(np.unique(predicted).tolist()) <= {1, 2, top} and top in predicted
    capsys.readouterr()
    # SEG-Y holds 32-bit floats: ids it cannot store exactly are refused, before predicting.
    assert main(["predict", "--model", str(model), "--image", str(files / "image.npy"),
                 "--out", str(tmp_path / "p.sgy"), "--block", "32"]) == 2
    assert "16777216" in one_error_line(capsys) and not (tmp_path / "p.sgy").exists()


def test_a_model_is_checked_against_the_image_it_is_applied_to(files, tmp_path, capsys):
    import numpy as np

    from napari_geoseg.io import write_volume

    rng = np.random.default_rng(0)
    cube = rng.normal(size=(24, 24, 20)).astype(np.float32)
    labels = np.zeros((24, 24), np.uint8)
    labels[2, 2], labels[20, 20] = 1, 2
    np.save(tmp_path / "cube.npy", cube)
    np.save(tmp_path / "map.npy", labels)
    model = tmp_path / "spectral.pt"
    assert main(["train", "--image", str(tmp_path / "cube.npy"), "--labels", str(tmp_path / "map.npy"),
                 "--out", str(model), "--iterations", "2", "--mode", "spectral"]) == 0
    capsys.readouterr()
    write_volume(tmp_path / "seismic.sgy", np.load(files / "image.npy")[:24, :24, :20])
    assert main(["predict", "--model", str(model), "--image", str(tmp_path / "seismic.sgy"),
                 "--out", str(tmp_path / "p.npy")]) == 2
    assert "trained on hyperspectral cubes, and the image is a volume" in one_error_line(capsys)
    assert main(["predict", "--model", str(model), "--image", str(files / "image.npy"),
                 "--out", str(tmp_path / "p.npy")]) == 2
    assert "cubes of 20 bands, and the image has 32" in one_error_line(capsys)
    assert not (tmp_path / "p.npy").exists()
    # Chunked into zarr with --overwrite: a refused run keeps the store it would replace.
    write_volume(tmp_path / "old.zarr", np.ones((4, 4, 4), np.uint8))
    assert main(["predict", "--model", str(model), "--image", str(files / "image.npy"),
                 "--out", str(tmp_path / "old.zarr"), "--overwrite"]) == 2
    assert "cubes of 20 bands" in one_error_line(capsys) and (tmp_path / "old.zarr").is_dir()
