"""The one short hash of a config: 8 hex digits of SHA-1 over its sorted JSON.

Run folders (``<method>-<dataset>-s<seed>-<hash>``), training identities, dataset
fingerprints and speed records are all named by it; one function keeps them one
convention, so a run's name can be recomputed from its ``config.yaml`` alone.
"""
from __future__ import annotations

import hashlib
import json


def short_hash(value) -> str:
    """8 hex digits over ``value`` as sorted-key JSON (values JSON cannot hold are written as ``str``)."""
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:8]
