"""Helpers shared by the benchmark scripts in this folder.

The scripts are run as ``python benchmarks/NAME.py`` from the repository root, so this
folder is on ``sys.path`` and ``import _common`` works without installing anything.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

#: Where every script writes its JSON, PNG and markdown output.
RESULTS = Path(__file__).resolve().parent / "results"


def ensure_package() -> None:
    """Make ``napari_geoseg`` importable, falling back to the in-tree ``src`` folder.

    The package may not be pip-installed while it is being developed; the src layout
    keeps it off ``sys.path`` by default, so add ``<repo>/src`` only when needed (an
    installed copy, if any, wins).
    """
    try:
        import napari_geoseg
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        import napari_geoseg  # noqa: F401


def sparse_labels(shape: tuple[int, ...], fraction: float, n_classes: int, seed: int = 0):
    """Random sparse labels: ``fraction`` of the voxels get a class in ``1..n_classes``.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape of the labels.
    fraction : float
        Share of labelled voxels (the rest are 0 = unlabelled).
    n_classes : int
        Number of classes K.
    seed : int
        Seed of a private generator, so labels do not depend on other random draws.

    Returns
    -------
    torch.Tensor
        ``int64`` tensor of ``shape``.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    labels = torch.zeros(shape, dtype=torch.long)
    mask = torch.rand(shape, generator=gen) < fraction
    # Guarantee at least one label: an empty mask would make the loss a constant zero.
    mask.view(-1)[0] = True
    labels[mask] = torch.randint(1, n_classes + 1, (int(mask.sum()),), generator=gen)
    return labels


def training_loss(net, x, labels, n_classes: int):
    """Forward pass and partial cross-entropy on the last state (no backward)."""
    from napari_geoseg.nn import partial_cross_entropy

    _, y = net(x)
    return partial_cross_entropy(y, labels, n_classes)


def clear_grads(net) -> None:
    """Drop parameter gradients (``None``, not zeros) so no step keeps another's buffers."""
    for p in net.parameters():
        p.grad = None


def quarter_wells(side: int) -> list[tuple[int, int]]:
    """Lateral positions of the four wells of the scale benchmarks' surveys: at a quarter
    and three quarters of a ``side x side`` survey along both axes."""
    return [(a, b) for a in (side // 4, 3 * side // 4) for b in (side // 4, 3 * side // 4)]


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process's memory (VmHWM) so that it
    sees what follows only; True on success (Linux, where ``/proc`` allows it)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def vm_hwm() -> int | None:
    """This process's peak resident memory in bytes since its start or the last
    :func:`reset_peak_rss` (``VmHWM`` of ``/proc/self/status``); None where there is none.

    Unlike ``ru_maxrss`` it is the process's own: on Linux a child's ``ru_maxrss`` starts
    from its parent's peak, which an exec carries over.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """CPU model name from ``/proc/cpuinfo`` (``platform.processor()`` is often empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: other jobs on a small machine skew timings."""
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def machine_info() -> dict[str, Any]:
    """Versions and hardware needed to interpret (and reproduce) a measurement."""
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_average": load_average(),
    }


def write_json(name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``results/name`` (pretty-printed) and return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def format_table(header: list[str], rows: list[list[Any]]) -> str:
    """Plain-text table with right-aligned columns (also valid as a markdown table)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[k]) for r in cells) for k in range(len(header))]
    lines = ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    return "\n".join(lines)


class CpuMonitor:
    """CPU seconds used by *other* processes while a block of code runs.

    On a small shared machine another job's threads compete with torch's OpenMP
    threads, and a step can take 10x longer. The system-wide busy time from
    ``/proc/stat`` minus this process's own CPU time tells how much of the machine
    somebody else used meanwhile, so contended measurements can be recognised.
    """

    _TICK = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _busy_seconds() -> float:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except OSError:
            return float("nan")
        # user nice system idle iowait irq softirq steal ...: all but idle and iowait;
        # steal (time the hypervisor gave to other guests) is lost to us as well.
        values = [int(v) for v in fields[:8]]
        return (sum(values) - values[3] - values[4]) / CpuMonitor._TICK

    def __enter__(self) -> "CpuMonitor":
        self.wall0 = time.perf_counter()
        self.cpu0 = time.process_time()
        self.busy0 = self._busy_seconds()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0
        self.others = max(0.0, self._busy_seconds() - self.busy0 - self.cpu)


def wait_for_quiet(max_wait: float, share: float = 0.25, window: float = 1.0) -> float:
    """Sleep until other processes use less than ``share`` of a core; return seconds waited.

    Called while this process is idle, so all busy time in ``/proc/stat`` is somebody
    else's. Gives up after ``max_wait`` seconds (the measurement then goes ahead and
    is flagged by :class:`CpuMonitor`).
    """
    waited = 0.0
    while max_wait > 0:
        with CpuMonitor() as mon:
            time.sleep(window)
        waited += mon.wall
        if mon.others <= share * mon.wall or waited >= max_wait:
            break
    return waited
