"""Check, in an environment where only the built wheel is installed, what napari will find.

Run by ``.ci/run`` with the clean environment's python. Fails (non-zero exit, one line
per problem) if napari's plugin engine (npe2) does not discover napari-geoseg with its
widgets, readers, writers and sample data, or if their python targets do not import.
"""

from __future__ import annotations

import importlib
import sys

import npe2


def main() -> int:
    manager = npe2.PluginManager.instance()
    manager.discover()
    manifest = manager.get_manifest("napari-geoseg")
    contributions = manifest.contributions
    found = {"widgets": len(contributions.widgets or []), "readers": len(contributions.readers or []),
             "writers": len(contributions.writers or []), "sample data": len(contributions.sample_data or [])}
    problems = [f"no {kind} contributed" for kind, count in found.items() if not count]
    for command in contributions.commands or []:
        module, _, name = (command.python_name or "").partition(":")
        try:
            target = importlib.import_module(module)
            for part in name.split("."):
                target = getattr(target, part)
        except Exception as err:  # noqa: BLE001 - report every broken target, not just the first
            problems.append(f"{command.id}: {command.python_name} does not import ({type(err).__name__}: {err})")
    import napari_geoseg

    if "site-packages" not in napari_geoseg.__file__:
        problems.append(f"napari_geoseg comes from {napari_geoseg.__file__}, not from the installed wheel")
    for problem in problems:
        print(f"check_wheel: {problem}", file=sys.stderr)
    print("check_wheel: napari-geoseg " + ", ".join(f"{count} {kind}" for kind, count in found.items())
          + f", {len(contributions.commands or [])} commands import" + ("" if not problems else " - FAILED"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
