"""The paper's §2.1 (Figure 3): invertibility, energy growth and stability against h.

Runs the 30-layer, four-level design of the paper's Table 3 (channels scaled down to
fit a laptop: 2 input channels, 32^3 voxels, ranks 8/16/32/32) with Glorot weights for a
range of time steps h, in float32 and float64, and compares the invertibility error of
our summed (state + velocity) recursion with the textbook three-term form
``Y_j = 2 W Y_{j-1} - W Y_{j-2} + h^2 f(W Y_{j-1})``.

    python benchmarks/diagnostics.py

writes ``results/diagnostics.json`` and ``results/diagnostics.png``.
"""

from __future__ import annotations

import argparse

import _common

_common.ensure_package()

import torch  # noqa: E402

from napari_geoseg.nn import HyperbolicNet, diagnose  # noqa: E402

STEPS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.5, 2.0)


def three_term_round_trip(net: HyperbolicNet, x: torch.Tensor) -> float:
    """Invertibility error of the textbook form, the same network and weights."""
    h2 = net.h**2
    with torch.no_grad():
        prev = cur = x
        for j, layer in enumerate(net.layers):
            prev, cur = net._to_layer(j, prev, cur)
            prev, cur = cur, 2 * cur - prev + h2 * layer(cur)
        for j in reversed(range(len(net.layers))):
            layer = net.layers[j]
            older = 2 * prev - cur + h2 * layer(prev)
            older, prev = net._from_layer(j, older, prev)
            prev, cur = older, prev
        return float((cur - x).norm() / x.norm())


def measure(h: float, dtype: torch.dtype, size: int, seed: int) -> dict:
    torch.manual_seed(seed)
    net = HyperbolicNet.symmetric(2, (2, 3, 3, 10), (8, 16, 32, 32), up_depths=(3, 3, 6),
                                  h=h, dtype=dtype)
    x = torch.randn(1, 2, size, size, size, dtype=dtype)
    report = diagnose(net, x, seed=seed)
    return {
        "h": h,
        "dtype": str(dtype).replace("torch.", ""),
        "invertibility_error": report["invertibility_error"],
        "invertibility_error_three_term": three_term_round_trip(net, x),
        "energy_growth": report["energy_growth"],
        "stability": report["stability"],
        "max_step_norm": report["max_step_norm"],
    }


def plot(rows: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for dtype, style in (("float32", "-o"), ("float64", "--s")):
        sel = [r for r in rows if r["dtype"] == dtype]
        hs = [r["h"] for r in sel]
        axes[0].semilogy(hs, [r["invertibility_error"] for r in sel], style, label=f"summed form, {dtype}")
        axes[0].semilogy(hs, [r["invertibility_error_three_term"] for r in sel], style, alpha=0.5,
                         label=f"three-term form, {dtype}")
        if dtype == "float32":
            axes[1].semilogy(hs, [r["energy_growth"] for r in sel], style)
            axes[2].semilogy(hs, [r["stability"] for r in sel], style)
    axes[0].set(title="invertibility error ||g^-1(g(X)) - X|| / ||X||", xlabel="h")
    axes[0].legend(fontsize=7)
    axes[1].set(title="energy growth ||g(X)|| / ||X||", xlabel="h")
    axes[2].set(title="stability ||g(X) - g(X + dX)|| / ||dX||", xlabel="h")
    fig.suptitle("30-layer, 4-level Table 3 design, Glorot weights, 32^3 x 2 channels")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=32, help="cube side (multiple of 8)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    for dtype in (torch.float32, torch.float64):
        for h in STEPS:
            rows.append(measure(h, dtype, args.size, args.seed))
            print(f"{dtype} h={h}: {rows[-1]['invertibility_error']:.2e}", flush=True)
    header = ["dtype", "h", "inv. error (ours)", "inv. error (3-term)", "energy growth", "stability",
              "max h*||K||"]
    table = [[r["dtype"], r["h"], f"{r['invertibility_error']:.2e}", f"{r['invertibility_error_three_term']:.2e}",
              f"{r['energy_growth']:.3g}", f"{r['stability']:.3g}", f"{r['max_step_norm']:.2f}"] for r in rows]
    print(_common.format_table(header, table))
    _common.write_json("diagnostics.json", {"rows": rows, "size": args.size, "seed": args.seed,
                                            "machine": _common.machine_info()})
    plot(rows, _common.RESULTS / "diagnostics.png")
    print(f"wrote {_common.RESULTS / 'diagnostics.json'} and diagnostics.png")


if __name__ == "__main__":
    main()
