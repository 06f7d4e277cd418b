"""The ``geoseg`` command line: train, predict, demo, info, view.

Every user mistake ends in one line on stderr (``geoseg: error: ...``) and exit code 2;
nothing is overwritten unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from .errors import GeosegError, InputError, with_hint

__all__ = ["main", "build_parser"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _shape(text: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 16 or any(s % 4 for s in shape):
        raise argparse.ArgumentTypeError(
            f"expected three sizes like 32x32x64, each a multiple of 4 and at least 16, got {text!r}")
    return shape


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .train.presets import PRESETS

    parser = argparse.ArgumentParser(
        prog="geoseg",
        description="Segment seismic and hyperspectral volumes with fully invertible hyperbolic networks.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    segy = argparse.ArgumentParser(add_help=False)
    segy.add_argument("--segy-inline-byte", type=_positive_int, metavar="BYTE",
                      help="trace header byte of the inline number (default: 189, then alternatives)")
    segy.add_argument("--segy-crossline-byte", type=_positive_int, metavar="BYTE",
                      help="trace header byte of the crossline number (default: 193, then alternatives)")
    segy.add_argument("--segy-domain", choices=("time", "depth"),
                      help="vertical axis of a SEG-Y file (default: guessed from its headers)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default="cpu", help="cpu, cuda or mps (default cpu)")
    common.add_argument("--overwrite", action="store_true", help="replace output files that exist")

    wells = argparse.ArgumentParser(add_help=False)
    wells.add_argument("--deviation", metavar="FILE", help="deviation surveys, CSV: well, md, inc, azi (degrees); "
                                                           "wells without one are vertical")
    wells.add_argument("--time-depth", metavar="FILE",
                       help="time-depth tables for time surveys, CSV: [well,] depth, time (m, ms two-way)")
    wells.add_argument("--las", nargs="+", default=[], metavar="FILE",
                       help="LAS files whose discrete log (zone, facies) labels the well")
    wells.add_argument("--las-curve", metavar="NAME",
                       help="the LAS curve to use (default: the first named like ZONE, FACIES or LITH)")
    wells.add_argument("--radius", type=int, default=0, metavar="R",
                       help="label the (2R+1) x (2R+1) traces around each well (default 0)")

    train = commands.add_parser("train", parents=[segy, common, wells],
                                help="train a model on an image and sparse labels")
    train.add_argument("--image", required=True, help="image file (.npy .tif .sgy .zarr .mat:VAR .hdr)")
    train.add_argument("--labels", help="labels file: 0 = unlabelled, 1..K classes (with --wells: painted "
                                        "labels that win over the wells')")
    train.add_argument("--wells", metavar="TOPS", help="train from wells: unit tops, CSV: well, x, y (or inline, "
                                                      "crossline), depth, unit[, bottom]")
    train.add_argument("--out", required=True, help="model file to write")
    train.add_argument("--preset", default="fast", choices=sorted(PRESETS), help="design (default fast)")
    train.add_argument("--iterations", type=_positive_int,
                       help="training iterations (default: the preset's, up to 3 times more for volumes and "
                            "images much smaller than a training block)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--mode", choices=["volume", "spectral", "image"], help="default: from the shapes")
    train.add_argument("--block", type=_positive_int, help="training block side in voxels (default: the preset's)")
    train.add_argument("--members", type=_positive_int,
                       help="networks trained side by side and averaged (default: the preset's; fast: 3 for "
                            "hyperspectral cubes, 1 otherwise)")
    train.add_argument("--plain-depth", action="store_true",
                       help="volumes: give the network the plain depth instead of the depth flattened along the "
                            "reflectors (for units that cut across the layers)")
    train.add_argument("--class-names", help="comma-separated class names, in label order")
    train.add_argument("--continue-from", metavar="MODEL", help="continue training this model")
    train.add_argument("--save-on-interrupt", action="store_true",
                       help="on Ctrl-C, save the weights of the last iteration to --out (default: write nothing)")
    train.add_argument("--distributed", action="store_true",
                       help="one process of a group started by torchrun (torchrun --nproc-per-node N -m "
                            "napari_geoseg.cli train ... --distributed): each draws its own blocks and the "
                            "gradients are averaged (DistributedDataParallel); rank 0 writes the model")

    predict = commands.add_parser("predict", parents=[segy, common], help="apply a model to an image")
    predict.add_argument("--model", required=True, help="model file from 'geoseg train'")
    predict.add_argument("--image", required=True, help="image file")
    predict.add_argument("--out", required=True, help="predicted labels file")
    predict.add_argument("--probabilities", metavar="P", help="also write per-class probabilities (class axis last)")
    predict.add_argument("--uncertainty", metavar="U", help="also write the normalised entropy")
    predict.add_argument("--block", type=_positive_int, help="prediction block side in voxels")
    predict.add_argument("--no-flips", action="store_true",
                         help="do not average over the four flips of the lateral axes: about 4 times faster, "
                              "a little noisier")
    predict.add_argument("--ordered-units", action="store_true",
                         help="volumes: classes are units numbered from the top down; keep that order down "
                              "every trace (not for salt, intrusions, overturned or reverse-faulted units)")
    predict.add_argument("--chunks", type=_positive_int, metavar="N",
                         help="with a .zarr output: predict it in chunks of N voxels a side (default 256), each "
                              "written a slab at a time: memory in proportion to a chunk's cross-section, not the "
                              "image")
    predict.add_argument("--resume", action="store_true",
                         help="with a .zarr output: continue an interrupted run, skipping the chunks written")
    predict.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                         help="with a .zarr output: run the chunks on N local dask.distributed worker processes")
    predict.add_argument("--scheduler", metavar="ADDRESS",
                         help="with a .zarr output: run the chunks on this dask.distributed scheduler (a cluster)")

    convert = commands.add_parser("convert", parents=[segy],
                                  help="write a volume (SEG-Y, ...) into a chunked zarr store, streaming")
    convert.add_argument("image", help="the volume (.sgy .segy .npy .tif .zarr .mat:VAR .hdr)")
    convert.add_argument("out", help="the zarr store to write (.zarr)")
    convert.add_argument("--chunks", type=_positive_int, default=128, metavar="N",
                         help="chunk side in voxels (default 128)")
    convert.add_argument("--overwrite", action="store_true", help="replace the store if it exists")

    well_labels = commands.add_parser("wells", parents=[segy, wells],
                                      help="turn well tops and logs into a labels file for a survey")
    well_labels.add_argument("tops", nargs="?", help="unit tops, CSV: well, x, y (or inline, crossline), depth, "
                                                     "unit[, bottom]")
    well_labels.add_argument("--image", required=True, help="the survey (.sgy .segy .npy .tif .zarr)")
    well_labels.add_argument("--out", required=True, help="labels file to write, (inline, crossline, sample)")
    well_labels.add_argument("--class-names", help="comma-separated units in class order (default: order of "
                                                   "first appearance)")
    well_labels.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")

    horizons = commands.add_parser("horizons", parents=[segy],
                                   help="write the predicted unit boundaries as horizons (CSV, one row per trace)")
    horizons.add_argument("prediction", help="predicted labels, (inline, crossline, sample), e.g. from predict")
    horizons.add_argument("--image", help="the survey the prediction is of, for its geometry and coordinates "
                                          "(default: the prediction's own, for SEG-Y)")
    horizons.add_argument("--out", required=True, help="CSV file: horizon, inline, crossline, x, y, time|depth")
    horizons.add_argument("--model", help="model file whose class names name the horizons")
    horizons.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")

    demo = commands.add_parser("demo", help="train on the synthetic seismic sample and print the score")
    demo.add_argument("--shape", type=_shape, default=(96, 96, 96), help="volume size (default 96x96x96)")
    demo.add_argument("--iterations", type=_positive_int, help="training iterations (default: the preset's)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    info = commands.add_parser("info", parents=[segy], help="describe a volume or model file")
    info.add_argument("file")

    view = commands.add_parser("view", help="open napari with an image (default: the sample) and the widget")
    view.add_argument("image", nargs="?", help="image file (.sgy .hdr .mat[:VAR] .zarr .npy .tif)")
    view.add_argument("--labels", help="labels painted on the image: 0 = unlabelled, 1..K classes")
    return parser


class ProgressLine:
    """A progress bar on stderr: redrawn in place on a terminal, a line per tenth otherwise."""

    def __init__(self, label: str, stream=None):
        self.label, self.stream = label, stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_tenth = -1

    def update(self, done: int, total: int, text: str = "") -> None:
        fraction = done / max(total, 1)
        bar = "#" * int(24 * fraction)
        line = f"{self.label} [{bar:<24}] {done}/{total} {text}"
        if self.tty:
            self.stream.write("\r" + line.ljust(100)[:100])
            if done >= total:
                self.stream.write("\n")
        elif int(10 * fraction) > self._last_tenth or done >= total:
            self._last_tenth = int(10 * fraction)
            self.stream.write(line + "\n")
        self.stream.flush()


def _read(spec: str, args) -> "Volume":  # noqa: F821
    from .io import read_volume

    return read_volume(spec, segy_inline_byte=getattr(args, "segy_inline_byte", None),
                       segy_crossline_byte=getattr(args, "segy_crossline_byte", None),
                       segy_domain=getattr(args, "segy_domain", None))


#: How to change, on the command line, the engine setting an error is about (``GeosegError.option``).
HINTS = {
    "overwrite": "add --overwrite",
    "device": "--device",
    "block": "--block",
    "segy_bytes": "--segy-inline-byte and --segy-crossline-byte",
    "iterations": "--iterations",
    "mode": "--mode",
}


def _check_outputs(paths: Sequence[str | None], overwrite: bool) -> None:
    """Refuse before any work is done, so a long run never ends in a refused write."""
    from .io.atomic import check_outputs

    check_outputs(paths, overwrite=overwrite)


def _warn(message: str) -> None:
    print(f"geoseg: warning: {message}", file=sys.stderr, flush=True)


def _train(args) -> int:
    import numpy as np

    from .train import Model, Trainer, TrainingDiverged, get_preset
    from .train.memory import check_memory, training_bytes

    _check_outputs([args.out], args.overwrite)
    if args.labels is None and args.wells is None and not args.las:
        raise InputError("no labels: give --labels, --wells or --las")
    image = _read(args.image, args)
    labels = _read(args.labels, args) if args.labels else None
    names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
    if args.wells or args.las:
        from .data.wells import merge_labels

        drawn = _well_labels(args, image, names)
        names = names or drawn.class_names
        labels = merge_labels(np.asarray(labels.data) if labels is not None else None, drawn.labels)
    else:
        labels = labels.data  # lazy where the file allows: the trainer reads it a slab at a time
    model = Model.load(args.continue_from) if args.continue_from else None
    if model is not None and args.plain_depth and model.layout.flattened:
        raise InputError(f"{args.continue_from}: this model sees the flattened depth; continue it without "
                         f"--plain-depth or train a new model")
    device, rank = args.device, 0
    if args.distributed:
        device, rank = _join_process_group(args.device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        preset = get_preset(args.preset, flatten=False if args.plain_depth else None)
        trainer = Trainer(image.data, labels, preset=preset, mode=args.mode,
                          iterations=args.iterations, block=args.block, members=args.members, seed=args.seed,
                          device=device, model=model, class_names=names, axes=list(image.axes),
                          distributed=args.distributed)
    if rank != 0:  # the other processes of a group train and stay quiet; rank 0 reports and saves
        for _ in trainer.run():
            pass
        return 0
    for warning in caught:
        _warn(str(warning.message))
    check_memory(training_bytes(trainer), "training")
    members = len(trainer.model.nets)
    print(f"training a {trainer.layout.mode} model: "
          f"{f'{members} networks of ' if members > 1 else ''}{len(trainer.model.net.layers)} layers, "
          f"{trainer.model.net.width} channels, {trainer.n_classes} classes, block {trainer.block}, "
          f"{trainer.iterations} iterations on {trainer.device}", file=sys.stderr)
    bar = ProgressLine("train")
    last = None

    def save() -> None:
        transform = getattr(image.geometry, "transform", None)
        if transform is not None:  # the model remembers where its survey lies
            trainer.model.transform = np.asarray(transform).tolist()
        trainer.model.save(args.out, overwrite=args.overwrite)

    try:
        for last in trainer.run():
            accuracy = f"{last.validation_accuracy:.3f}" if last.validation_accuracy is not None else "-"
            bar.update(last.iteration, last.iterations, f"loss {last.loss:.4f} val {accuracy} {last.elapsed:.0f}s")
    except KeyboardInterrupt:
        done = f"after {len(trainer.history)} of {trainer.iterations} iterations"
        if args.save_on_interrupt and trainer.history:
            save()
            print(f"geoseg: interrupted {done}; saved the weights of iteration {len(trainer.history)} to "
                  f"{args.out}", file=sys.stderr)
        else:
            print(f"geoseg: interrupted {done}; nothing written (--save-on-interrupt keeps the weights)",
                  file=sys.stderr)
        return 130
    except TrainingDiverged:
        if trainer.history:  # the model holds the last good weights: keep them, and say so
            save()
            print(f"geoseg: saved the last good weights (iteration {len(trainer.history)}) to {args.out}",
                  file=sys.stderr)
        raise
    save()
    if trainer.race is not None:
        scores = ", ".join(f"{design} {score:.3f}" for design, score in trainer.race.items())
        print(f"design chosen on the held-out labels: {trainer.design} (validation accuracy {scores})",
              file=sys.stderr)
    if trainer.probe is not None:
        strength = trainer.probe_strength
        print(f"per-voxel probe added to the head at strength {strength:g} (held-out accuracy "
              f"{trainer.probe[strength]:.3f}; network alone {trainer.probe[0.0]:.3f})", file=sys.stderr)
    elif trainer.probe_strength:
        print(f"per-voxel probe added to the head at strength {trainer.probe_strength:g} "
              f"(too few labels per class to hold any out and judge it)", file=sys.stderr)
    if trainer.probe_features_accuracy:
        scores = ", ".join(f"{name} {score:.3f}" for name, score in trainer.probe_features_accuracy.items())
        print(f"the probe reads the voxels' {trainer.probe_features} (cross-validated accuracy on the labels: "
              f"{scores})", file=sys.stderr)
    if last is not None:
        accuracy = f"{last.validation_accuracy:.3f}" if last.validation_accuracy is not None else "n/a"
        print(f"saved {args.out}: loss {last.loss:.4f}, validation accuracy {accuracy}, {last.elapsed:.0f} s")
    return 0


def _join_process_group(device: str) -> tuple[str, int]:
    """Join the torch.distributed group torchrun set up; returns this process's device and rank."""
    import os

    import torch.distributed as dist

    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise InputError("--distributed runs under torchrun: torchrun --nproc-per-node N -m napari_geoseg.cli "
                         "train ... --distributed")
    cuda = device.startswith("cuda")
    dist.init_process_group("nccl" if cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", 0))
    return (f"cuda:{local}" if cuda else device), dist.get_rank()


def _well_labels(args, image, names):
    """Labels from the wells of ``args`` in ``image``; file problems get the face's hint."""
    from .data.wells import read_well_labels

    tops = getattr(args, "wells", None) or getattr(args, "tops", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drawn = read_well_labels(image, tops, deviation=args.deviation, time_depth=args.time_depth,
                                 las=args.las, las_curve=args.las_curve, radius=args.radius, class_names=names)
    for warning in caught:
        _warn(str(warning.message))
    for well, count in drawn.labelled.items():
        print(f"well {well}: {count} voxels labelled", file=sys.stderr)
    print("classes " + ", ".join(f"{k}={name}" for k, name in enumerate(drawn.class_names, start=1)),
          file=sys.stderr)
    return drawn


def _wells(args) -> int:
    from .io import write_volume

    _check_outputs([args.out], args.overwrite)
    if args.tops is None and not args.las:
        raise InputError("no wells given: give a tops file or --las")
    image = _read(args.image, args)
    names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
    drawn = _well_labels(args, image, names)
    like = image if image.geometry is not None else None
    write_volume(args.out, drawn.labels, like=like, overwrite=args.overwrite)
    print(f"wrote {args.out} {drawn.labels.shape}: {int((drawn.labels > 0).sum())} voxels labelled from "
          f"{len(drawn.labelled)} wells")
    return 0


def _horizons(args) -> int:
    import numpy as np

    from .data.horizons import write_horizons

    _check_outputs([args.out], args.overwrite)
    prediction = _read(args.prediction, args)
    survey = _read(args.image, args) if args.image else prediction
    if tuple(survey.shape[:3]) != tuple(prediction.shape):
        raise InputError(f"{args.prediction}: shape {tuple(prediction.shape)} is not that of the survey "
                         f"{args.image} {tuple(survey.shape[:3])}; give the survey the prediction was made on")
    names = None
    if args.model:
        from .train import Model

        model = Model.load(args.model)
        names = {int(value): name for value, name in zip(model.class_ids, model.class_names)}
    # Missing traces of an irregular survey read back as NaN: no unit there.
    labels = np.asarray(prediction.data)
    if labels.dtype.kind not in "iu":
        labels = np.nan_to_num(labels.astype(np.float64), nan=0.0).astype(np.int64)
    rows = write_horizons(args.out, labels, survey, names,
                          overwrite=args.overwrite)
    print(f"wrote {args.out}: {rows} rows")
    return 0


def _predict(args) -> int:
    import numpy as np

    from .io import write_volume
    from .io.formats import check_writable
    from .train import Model, Predictor
    from .train.memory import check_memory, prediction_bytes

    chunked = Path(args.out).suffix.lower() == ".zarr"
    if not chunked and (args.chunks or args.resume or args.workers > 1 or args.scheduler):
        raise InputError(f"{args.out}: --chunks, --resume, --workers and --scheduler write a zarr store; "
                         f"name the output .zarr")
    if chunked:
        return _predict_chunked(args)
    _check_outputs([args.out, args.probabilities, args.uncertainty], args.overwrite)
    model = Model.load(args.model)
    image = _read(args.image, args)
    spatial = model.layout.labels_ndim()
    check_writable(args.out, spatial, max(int(v) for v in model.class_ids))
    for extra, ndim in ((args.probabilities, spatial + 1), (args.uncertainty, spatial)):
        if extra:
            check_writable(extra, ndim)
    predictor = Predictor(model, device=args.device, block=args.block, ordered_units=args.ordered_units,
                          flips=not args.no_flips)
    predictor.check_image(tuple(image.shape), image.axes)
    check_memory(prediction_bytes(predictor, tuple(image.shape), np.dtype(image.dtype).itemsize), "prediction")
    bar = ProgressLine("predict")
    start = time.perf_counter()
    # The image is read block by block (lazily for zarr and memory-mapped .npy).
    result = predictor.predict(image.data, progress=lambda done, total: bar.update(done, total))
    if result.masked:
        _warn(f"{result.masked} voxels of {args.image} hold NaN or Inf samples and are masked out of the "
              f"prediction (label 0)")
    like = image if model.layout.mode == "volume" else None
    write_volume(args.out, result.labels, like=like, overwrite=args.overwrite)
    if args.probabilities:
        write_volume(args.probabilities, np.moveaxis(result.probabilities, 0, -1), overwrite=args.overwrite)
    if args.uncertainty:
        write_volume(args.uncertainty, result.uncertainty, like=like, overwrite=args.overwrite)
    counts = {int(k): int(v) for k, v in zip(*np.unique(result.labels, return_counts=True))}
    print(f"wrote {args.out} {result.labels.shape} in {time.perf_counter() - start:.1f} s; voxels per class {counts}")
    return 0


def _predict_chunked(args) -> int:
    import numpy as np

    from .io.attributes import ATTRIBUTE_KEY, axis_attributes
    from .train import Model
    from .train.blockwise import ChunkedOutputs, ImageSource, predict_to_zarr

    outputs = [args.out, args.probabilities, args.uncertainty]
    for extra in outputs[1:]:
        if extra and Path(extra).suffix.lower() != ".zarr":
            raise InputError(f"{extra}: with a .zarr prediction, write the probabilities and uncertainty as "
                             f".zarr stores too")
    _check_outputs(outputs, args.overwrite or args.resume)  # a resumed run continues its stores
    model = Model.load(args.model)
    image = _read(args.image, args)
    options = {k: getattr(args, f"segy_{k}") for k in ("inline_byte", "crossline_byte", "domain")
               if getattr(args, f"segy_{k}", None) is not None}
    source = ImageSource(str(args.image), {f"segy_{k}": v for k, v in options.items()})
    like = image if model.layout.mode == "volume" else None
    attributes = {ATTRIBUTE_KEY: axis_attributes(image.ndim if like is not None else 2, like)}
    bar = ProgressLine("predict")
    start = time.perf_counter()
    summary = predict_to_zarr(model, image.data, ChunkedOutputs(*outputs), source=source, chunks=args.chunks or 256,
                              resume=args.resume, workers=args.workers, scheduler=args.scheduler,
                              attributes=attributes, progress=bar.update, device=args.device, block=args.block,
                              ordered_units=args.ordered_units, flips=not args.no_flips, axes=image.axes)
    if summary["masked"]:
        _warn(f"{summary['masked']} voxels of {args.image} hold NaN or Inf samples and are masked out of the "
              f"prediction (label 0)")
    seconds = time.perf_counter() - start
    computed = summary["computed"]
    rate = np.prod(image.shape[:3]) * computed / max(summary["chunks"], 1) / max(seconds, 1e-9) / 1e6
    print(f"wrote {args.out}: {computed} chunks computed"
          + (f", {summary['skipped']} already done" if summary["skipped"] else "")
          + f" in {seconds:.1f} s" + (f" (about {rate:.2f} M voxels/s)" if computed else ""))
    return 0


def _convert(args) -> int:
    from .io.convert import convert_to_zarr

    _check_outputs([args.out], args.overwrite)
    if Path(args.out).suffix.lower() != ".zarr":
        raise InputError(f"{args.out}: convert writes a zarr store; name it .zarr")
    image = _read(args.image, args)
    bar = ProgressLine("convert")
    convert_to_zarr(image, args.out, chunks=args.chunks, overwrite=args.overwrite, progress=bar.update)
    print(f"wrote {args.out} {tuple(image.shape)} in chunks of {args.chunks}")
    return 0


def _info(args) -> int:
    import numpy as np

    path = args.file
    if Path(path).suffix.lower() in (".pt", ".geoseg", ".pth"):
        from .train import Model

        model = Model.load(path)
        print(f"{path}: napari-geoseg model (version {model.version})")
        print(f"  mode {model.layout.mode}, image channels {model.layout.image_channels}, network input "
              f"{model.in_channels} channels, states {model.net.width} channels"
              + (", bands as channels" if model.layout.bands_as_channels else "")
              + (", position: flattened depth" if model.layout.flattened else "")
              + (", data mask channel" if model.layout.mask_channel else ""))
        print("  " + ("lifting and head (the head reads the last state and the input)" if model.net.has_head
                      else "bare network (classes read from the last state)")
              + (f"; layers kept within h*||K|| <= {model.preset.step_bound:g}" if model.preset.step_bound else ""))
        print(f"  preset {model.preset.name}: depths {model.preset.depths}, ranks {model.preset.ranks}, "
              f"{len(model.net.layers)} layers, {sum(p.numel() for p in model.net.parameters())} weights"
              + (f", {len(model.nets)} member networks averaged" if len(model.nets) > 1 else ""))
        print("  classes " + ", ".join(f"{i}={n}" for i, n in zip(model.class_ids, model.class_names)))
        if model.axes:
            print(f"  trained on axes {tuple(model.axes)}")
        if model.transform is not None:
            rows = "; ".join(" ".join(f"{v:.6g}" for v in row) for row in model.transform)
            print(f"  survey transform (x, y) = A @ (inline, crossline, 1), A = [{rows}]")
        return 0
    # SEG-Y is read headers only: the samples are never loaded here. Reader warnings
    # (duplicate traces dropped) are shown as the command line's own.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        volume = _read(path, args)
    for warning in caught:
        _warn(str(warning.message))
    print(f"{path}: {volume.shape} {np.dtype(volume.dtype)}")
    for name, size, scale, unit, start in zip(volume.axes, volume.shape, volume.scale, volume.units, volume.translate):
        print(f"  {name}: {size} samples, step {scale:g} {unit}".rstrip() + f", first {start:g}")
    geometry = volume.geometry
    if geometry is None:
        return 0
    print(f"  SEG-Y: inlines {geometry.inlines[0]}..{geometry.inlines[-1]} step {geometry.inline_step} "
          f"(byte {geometry.inline_byte}), crosslines {geometry.crosslines[0]}..{geometry.crosslines[-1]} step "
          f"{geometry.crossline_step} (byte {geometry.crossline_byte}), {geometry.domain}, sample format "
          f"{geometry.sample_format}")
    n_inlines, n_crosslines, _ = geometry.shape
    print(f"  grid {n_inlines} x {n_crosslines} = {n_inlines * n_crosslines} positions: "
          f"{n_inlines * n_crosslines - geometry.n_missing} traces, {geometry.n_missing} missing (NaN)"
          + (f", {geometry.n_duplicates} duplicate traces dropped" if geometry.n_duplicates else ""))
    axes = geometry.survey_axes()
    if axes is None:
        print("  survey coordinates: none (CDP X/Y and source X/Y are zero or do not determine a map)")
        return 0
    unit = geometry.coordinate_unit
    x, y = geometry.lines_to_xy(geometry.inlines[0], geometry.crosslines[0])
    (inline_azimuth, inline_spacing), (crossline_azimuth, crossline_spacing) = axes
    print(f"  survey origin ({x:.2f}, {y:.2f}) {unit} at inline {geometry.inlines[0]}, crossline "
          f"{geometry.crosslines[0]} (bytes {geometry.coordinate_bytes[0]}/{geometry.coordinate_bytes[1]})")
    print(f"  inline numbers grow toward azimuth {inline_azimuth:.2f} deg, {inline_spacing:.2f} {unit} per step of "
          f"{geometry.inline_step}; crossline numbers toward {crossline_azimuth:.2f} deg, {crossline_spacing:.2f} "
          f"{unit} per step of {geometry.crossline_step}; "
          f"largest fit residual {geometry.transform_residual:.3g} {unit}")
    return 0


def _demo(args) -> int:
    from .demo import run_demo

    run_demo(shape=args.shape, iterations=args.iterations, seed=args.seed,
             print=lambda line: print(line, flush=True))
    return 0


def _view(args) -> int:
    from ._viewer import check_inputs, launch

    check_inputs(args.image, args.labels)  # before napari starts, which takes seconds
    launch(args.image, args.labels)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"train": _train, "predict": _predict, "info": _info, "demo": _demo, "view": _view,
                "wells": _wells, "horizons": _horizons, "convert": _convert}
    try:
        return handlers[args.command](args)
    except GeosegError as err:
        print(f"geoseg: error: {with_hint(err, HINTS)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("geoseg: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("geoseg: error: out of memory; use a smaller --block", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
