"""Memory and time to open a SEG-Y survey: headers first, samples on demand.

For each file size it writes a post-stack cube with segyio (IEEE floats, 4 s traces at
4 ms, CDP coordinates), then measures in fresh processes the peak
resident memory and the time of

- ``geoseg info FILE`` (headers only);
- opening as napari does and reading one inline section (``read_volume`` then
  ``data[i]``);
- reading the whole cube (``np.asarray(volume.data)``), for scale.

``--before PATH`` also runs the first two with the package at ``PATH`` (a ``src``
folder of an older checkout), e.g. a ``git worktree`` of the commit before the lazy
reader. Writes ``benchmarks/results/segy_open.{json,png}``.

Run: ``python benchmarks/segy_open.py [--sizes 50 200 400] [--before /tmp/old/src]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import _common

SAMPLES = 1000  # 4 ms, 4 s traces: 4 KiB of samples per trace

# Run in a child process: prints "<seconds> <peak RSS in KiB>".
CHILD = r"""
import resource, sys, time
import numpy as np
start = time.perf_counter()
what, path = sys.argv[1], sys.argv[2]
if what == "info":
    from napari_geoseg.cli import main
    import contextlib, io
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["info", path]) == 0
else:
    from napari_geoseg.io import read_volume
    volume = read_volume(path)
    if what == "section":
        section = np.asarray(volume.data[volume.shape[0] // 2])
        assert section.shape == volume.shape[1:]
    else:
        cube = np.asarray(volume.data)
        assert cube.shape == volume.shape
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

BASELINE = r"""
import resource, sys
import numpy as np, napari_geoseg.io, segyio
if sys.argv[1] == "cli":  # the command line builds its parser from the presets, which import torch
    from napari_geoseg.cli import build_parser
    build_parser()
print(0.0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def write_survey(path: Path, mib: float) -> tuple[int, int]:
    """A cube of about ``mib`` MiB of samples (a full rectangle, which the reader before
    the lazy one could open too)."""
    import numpy as np
    import segyio

    traces = int(mib * 2**20 / (SAMPLES * 4))
    side = int(traces ** 0.5)
    inlines, crosslines = np.arange(1000, 1000 + side), np.arange(2000, 2000 + side)
    positions = [(i, x) for i in inlines for x in crosslines]
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount = 5, list(range(SAMPLES)), len(positions)
    rng = np.random.default_rng(0)
    with segyio.create(str(path), spec) as file:
        file.bin.update({segyio.BinField.Interval: 4000, segyio.BinField.Samples: SAMPLES})
        for t, (i, x) in enumerate(positions):
            file.header[t] = {segyio.TraceField.INLINE_3D: int(i), segyio.TraceField.CROSSLINE_3D: int(x),
                              segyio.TraceField.CDP_X: int(400000 + 25 * (x - 2000)),
                              segyio.TraceField.CDP_Y: int(6000000 + 25 * (i - 1000)),
                              segyio.TraceField.SourceGroupScalar: 1, segyio.TraceField.TRACE_SAMPLE_INTERVAL: 4000}
            file.trace[t] = rng.standard_normal(SAMPLES).astype(np.float32)
    return side, len(positions)


def measure(code: str, args: list[str], src: str | None) -> tuple[float, float]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "child failed")
    seconds, kib = out.stdout.split()[-2:]
    return float(seconds), float(kib) / 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[50, 200, 400], help="MiB of samples")
    parser.add_argument("--before", help="a src folder of an older checkout to compare with")
    args = parser.parse_args(argv)
    _common.ensure_package()
    src = str(Path(__file__).resolve().parents[1] / "src")
    rows, results = [], []
    _, baseline = measure(BASELINE, ["io"], src)
    _, baseline_cli = measure(BASELINE, ["cli"], src)
    with tempfile.TemporaryDirectory() as folder:
        for mib in args.sizes:
            path = Path(folder) / f"survey_{int(mib)}.sgy"
            side, traces = write_survey(path, mib)
            size = path.stat().st_size / 2**20
            entry = {"file_mib": size, "grid": [side, side, SAMPLES], "traces": traces, "baseline_mib": baseline,
                     "baseline_cli_mib": baseline_cli}
            for label, code_src in (("now", src), ("before", args.before)):
                if code_src is None:
                    continue
                for what in ("info", "section", "whole") if label == "now" else ("info", "section"):
                    try:
                        seconds, peak = measure(CHILD, [what, str(path)], code_src)
                    except RuntimeError as err:
                        seconds, peak = float("nan"), float("nan")
                        entry[f"{label}_{what}_error"] = str(err)
                    entry[f"{label}_{what}_s"], entry[f"{label}_{what}_peak_mib"] = seconds, peak
                    rows.append([f"{size:.0f}", label, what, f"{seconds:.2f}", f"{peak:.0f}"])
            results.append(entry)
            path.unlink()
    print(f"imports alone: python + numpy + segyio + napari_geoseg.io {baseline:.0f} MiB; the command line "
          f"(with torch) {baseline_cli:.0f} MiB")
    print(_common.format_table(["file MiB", "code", "what", "seconds", "peak MiB"], rows))
    command = " ".join(["python benchmarks/segy_open.py", *(argv or sys.argv[1:])])
    payload = {"benchmark": "segy_open", "command": command,
               "machine": _common.machine_info(), "samples_per_trace": SAMPLES, "results": results}
    _common.write_json("segy_open.json", payload)
    plot(results)
    return 0


def plot(results) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["file_mib"] for r in results]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label, style in (("now_info", "geoseg info", "o-"), ("now_section", "open + one inline", "s-"),
                              ("now_whole", "whole cube", "^:"), ("before_info", "geoseg info, before", "o--"),
                              ("before_section", "open + one inline, before", "s--")):
        values = [r.get(f"{key}_peak_mib") for r in results]
        if all(v is not None for v in values):
            ax.plot(sizes, values, style, label=label)
    ax.plot(sizes, sizes, color="grey", lw=0.8, label="file size")
    ax.set_xlabel("SEG-Y file (MiB)")
    ax.set_ylabel("peak resident memory (MiB)")
    ax.set_title("Opening a SEG-Y survey")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = _common.RESULTS / "segy_open.png"
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
