"""Read the lines a running process appends to a file, without waiting for more."""

from __future__ import annotations

from pathlib import Path


class LineReader:
    """Reads the complete lines appended to a file since the last read; a partial last line waits for the next.

    The file is opened anew on every read, so the writer may create it late
    and nothing here holds it open (Windows would refuse to delete it).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def read(self, final: bool = False) -> list[str]:
        """New complete lines (without their line ends); with ``final``, also an unterminated last line."""
        try:
            with open(self.path, "rb") as stream:
                stream.seek(self._offset)
                data = stream.read()
        except FileNotFoundError:
            data = b""
        self._offset += len(data)
        chunks = (self._partial + data).split(b"\n")
        self._partial = chunks.pop()
        if final and self._partial:
            chunks.append(self._partial)
            self._partial = b""
        # Decoded per whole line, so that a UTF-8 character split across two reads is never torn.
        return [chunk.decode("utf-8", "replace").rstrip("\r") for chunk in chunks]
