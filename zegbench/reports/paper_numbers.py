"""The paper's published numbers (``paper_numbers.yaml``): results per dataset and setting, and efficiency rows."""
from __future__ import annotations

from pathlib import Path

import yaml

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.yaml")


def paper_numbers() -> dict:
    """``{"results": ..., "efficiency": ..., "ablation_directions": ...}`` as the YAML file holds them."""
    return yaml.safe_load(PAPER_NUMBERS.read_text())
