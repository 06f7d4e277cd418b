"""The ``geoseg`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
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

    parser = argparse.ArgumentParser(
        prog="geoseg", description="Segment seismic and hyperspectral volumes with fully invertible hyperbolic networks.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser("demo", help="train on a synthetic seismic volume and print the score")
    demo.add_argument("--shape", type=_shape, default=(32, 32, 64), help="volume size (default 32x32x64)")
    demo.add_argument("--iterations", type=_positive_int, default=60, help="training iterations (default 60)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        run_demo(shape=args.shape, iterations=args.iterations, seed=args.seed,
                 print=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
