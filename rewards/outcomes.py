"""A thread-safe count of how a reward's calls ended, which compute_rewards logs per batch."""

from __future__ import annotations

import threading
from collections import Counter


class Outcomes(Counter):
    """Counts by outcome (timeout, syntax_error, unparseable, ...). A reward function that sets
    `fn.stats = Outcomes()` gets reward/<name>/<outcome> metrics: the batch's counts. `add` is safe
    from the threads of reward.functions[].workers."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def add(self, key: str, k: int = 1) -> None:
        with self._lock:
            self[key] += k
