"""Exception types shared by the engine, the backend and the command line.

The distinction matters to callers: an :class:`InputError` is the user's to fix
(exit code 2, a one-line message naming the problem), anything else is a bug in
TumorGen (exit code 1).
"""

from __future__ import annotations


class TumorGenError(Exception):
    """Base class of every error the engine raises on purpose."""


class InputError(TumorGenError, ValueError):
    """Bad input: a missing or unreadable file, a wrong shape, a bad parameter.

    The message is one line and names the offending thing (a path, a parameter).
    """

    def __init__(self, message: str) -> None:
        # Keep the one-line promise even when a library message has newlines.
        super().__init__(" ".join(str(message).split()))


class CancelledError(TumorGenError):
    """The running job was asked to stop (SIGTERM) and stopped at a step boundary."""
