"""The journeys as the dashboard shows them: reloaded when their files change, problems kept.

Unlike the workers' `LiveCatalog`, which refuses to start on an invalid folder,
the dashboard keeps the problems: a folder with problems still shows its last
good catalog (if any) beside every `file:line:col: message`, so "journeys with
validation problems" is on the overview rather than a dead page.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from automation.definitions.catalog import Catalog, check_catalog, folder_stamp


@dataclass
class CatalogView:
    journeys_dir: Path
    templates_dir: Path
    catalog: Catalog | None = None
    problems: list[str] = field(default_factory=list)
    _seen: tuple[tuple[str, int, int], ...] | None = None
    _looked: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self, max_age_s: float = 0.0) -> tuple[Catalog | None, list[str]]:
        """The latest good catalog and the problems of the folder as it is now.

        With `max_age_s`, as it was when last looked at if that is more recent: a look
        stats every file (milliseconds), too much for each tracking API request.
        """
        with self._lock:
            if self._looked is not None and time.monotonic() - self._looked < max_age_s:
                return self.catalog, list(self.problems)
        seen = folder_stamp(self.journeys_dir, self.templates_dir)
        with self._lock:
            self._looked = time.monotonic()
            if seen != self._seen:
                catalog, problems = check_catalog(self.journeys_dir, self.templates_dir)
                self.catalog = catalog or self.catalog
                self.problems = problems
                self._seen = seen
            return self.catalog, list(self.problems)
