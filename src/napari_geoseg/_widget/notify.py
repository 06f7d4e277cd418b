"""How the widget speaks to the user: napari notifications, in words, never tracebacks.

napari is imported when a notification is shown, not when this module is imported.
"""

from __future__ import annotations

import functools
import logging
from typing import Callable

from ..errors import GeosegError, with_hint

__all__ = ["notify", "user_errors", "HINTS"]

#: Where, in the widget, the user changes the engine setting an error is about
#: (``GeosegError.option``); the command line has its own (``cli.HINTS``).
HINTS = {
    "block": "lower Block under Network and training",
    "iterations": "set Iterations under Network and training",
    "device": "choose another Device under Network and training",
    "overwrite": "confirm replacing the file",
    "segy_bytes": "convert the file with 'geoseg convert', giving the header bytes",
    "mode": "choose another image or model",
}

logger = logging.getLogger(__name__)


def notify(level: str, text: str) -> None:
    """Show ``text`` as a napari notification.

    Parameters
    ----------
    level : str
        ``"error"``, ``"warning"``; anything else is shown as information.
    text : str
        One line for the user.
    """
    from napari.utils.notifications import show_error, show_info, show_warning

    {"error": show_error, "warning": show_warning}.get(level, show_info)(text)


def user_errors(action: str) -> Callable[[Callable], Callable]:
    """Decorator: errors of a button's action become notifications, never tracebacks.

    A :class:`~napari_geoseg.errors.GeosegError` (a user mistake) is shown as it is; any
    other exception is a bug and is shown as ``"<action> failed: <type>: <first line>"``,
    with the traceback in the debug log. The decorated method then returns None.

    Parameters
    ----------
    action : str
        What the method does, in words (``"saving the model"``).
    """

    def wrap(method: Callable) -> Callable:
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except GeosegError as err:
                notify("error", with_hint(err, HINTS))
            except Exception as err:  # a bug: say it in words; the log has the details
                logger.debug("%s failed", action, exc_info=True)
                first_line = str(err).splitlines()[0] if str(err) else ""
                notify("error", f"{action} failed: {type(err).__name__}: {first_line}")
            return None

        return run

    return wrap
