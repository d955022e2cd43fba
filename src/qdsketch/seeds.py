"""Seeds derived from where they are used, never from global state."""

from __future__ import annotations

import numpy as np


def derive_seed(*key: int) -> int:
    """A 63-bit seed for ``torch.Generator.manual_seed``, a function of ``key``
    alone (numpy's SeedSequence mixes it), so the same key always gives the
    same random numbers, whatever was drawn before."""
    return int(np.random.SeedSequence(list(key)).generate_state(1, np.uint64)[0] >> 1)
