"""Progress lines with an ETA for long steps, on stderr whether or not it is a terminal.

tqdm draws nothing when stderr is a pipe or a CI log, so a 10-minute search looked hung.
`Progress` prints one plain line every few seconds instead ("quantize: calibrate 120/702
tensors, 35 s, about 2 min left in this step"), to its own copy of fd 2: TensorFlow steps
point fd 2 at /dev/null while they run (srjs.tf.quiet_fds). A heartbeat thread repeats the
line while one long unit of work (a forward pass of a big model) runs.
"""
from __future__ import annotations

import os
import threading
import time
from typing import TextIO

EVERY_S = 5.0  # seconds between lines


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Counts work in one phase at a time and prints a line at most every `every_s` seconds.

    desc: the command ("quantize"); phase(name, total, unit) starts a phase of `total` units
    (the ETA extrapolates its rate); update(n) counts n done. Disabled: prints nothing.
    """

    def __init__(self, desc: str, *, enabled: bool = True, every_s: float = EVERY_S,
                 stream: TextIO | None = None, clock=time.monotonic, heartbeat: bool = True):
        self.desc, self.enabled, self.every_s, self.clock = desc, enabled, every_s, clock
        self._own = stream is None and enabled
        self.stream = stream if stream is not None or not enabled else os.fdopen(os.dup(2), "w")
        self.start = clock()
        self.name, self.total, self.unit, self.done = "", 0, "", 0
        self._phase_start = self._last = self.start
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat = None
        if enabled and heartbeat:
            self._beat = threading.Thread(target=self._heartbeat, name="srjs-progress", daemon=True)
            self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.every_s / 2):
            self._print()

    def phase(self, name: str, total: int, unit: str = "steps") -> None:
        self.name, self.total, self.unit, self.done = name, max(0, int(total)), unit, 0
        self._phase_start = self.clock()
        self._print(force=True)

    def update(self, n: int = 1) -> None:
        self.done += n
        self._print(force=self.done >= self.total > 0)

    def line(self) -> str:
        now = self.clock()
        text = f"{self.desc}: {self.name} {self.done}/{self.total} {self.unit}, {_duration(now - self.start)}"
        if 0 < self.done < self.total:
            left = (now - self._phase_start) / self.done * (self.total - self.done)
            text += f", about {_duration(left)} left in this step"
        return text

    def _print(self, force: bool = False) -> None:
        with self._lock:
            if not self.enabled or not self.name:
                return
            now = self.clock()
            if force or now - self._last >= self.every_s:
                self._last = now
                print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self._own and self.stream is not None:
            self.stream.close()
            self.stream = None
            self.enabled = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
