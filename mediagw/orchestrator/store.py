"""In-memory rendition store: ``/stream/{session_id}/{profile}/{seq}.ts``.

Like go-livepeer's memory driver it keeps the last 12 objects per directory
(``{session_id}/{profile}``); older ones are gone, so gateways must download promptly. The
number of directories is bounded too (least recently written dropped first).
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["RenditionStore"]

OBJECTS_PER_DIRECTORY = 12
MAX_DIRECTORIES = 4096


class RenditionStore:
    def __init__(
        self, per_directory: int = OBJECTS_PER_DIRECTORY, max_directories: int = MAX_DIRECTORIES
    ) -> None:
        self._per_directory = per_directory
        self._max_directories = max_directories
        self._dirs: OrderedDict[str, OrderedDict[str, bytes]] = OrderedDict()

    def put(self, directory: str, name: str, data: bytes) -> None:
        objects = self._dirs.pop(directory, None) or OrderedDict()
        self._dirs[directory] = objects  # most recently written last
        objects.pop(name, None)
        objects[name] = data
        while len(objects) > self._per_directory:
            objects.popitem(last=False)
        while len(self._dirs) > self._max_directories:
            self._dirs.popitem(last=False)

    def get(self, path: str) -> bytes | None:
        """``path`` = ``{directory}/{name}``, directory itself holding one slash."""
        directory, _, name = path.rpartition("/")
        objects = self._dirs.get(directory)
        return None if objects is None else objects.get(name)

    def __len__(self) -> int:
        return sum(len(objects) for objects in self._dirs.values())
