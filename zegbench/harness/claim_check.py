"""The paper's claims (``reports.paper_claims``), checked against the registries before any verdict.

A claim's arms must name registered methods with keys their class (or training) accepts, and its
suite must exist: one error line naming the claims file if not, before anything is trained.
"""
from __future__ import annotations

from pathlib import Path

from zegbench.config_dirs import config_names
from zegbench.engine.config import schema_for_class
from zegbench.engine.resolve import TRAIN_KEYS
from zegbench.engine.speed import speed_baseline_of
from zegbench.errors import ZegbenchError
from zegbench.methods import list_methods, method_class, method_config
from zegbench.reports.paper_claims import Claim, read_claims


def load_claims(folder: Path | None = None) -> list[Claim]:
    """Every claim of the claims files in ``folder`` (default: the shipped ones), checked; ids unique."""
    claims = []
    for path, claim in read_claims(folder):
        check_claim_names(claim, str(path))
        claims.append(claim)
    return claims


def check_claim_names(claim: Claim, where: str) -> None:
    """Arms name registered methods with keys they accept; the suite exists; one clear line if not."""
    known = list_methods()
    for side in ("arm", "baseline"):
        arm = getattr(claim, side)
        if claim.is_speed and arm.set:
            raise ZegbenchError(f"{where}: claim '{claim.id}' {side}.set: speed records are of a method's default "
                                f"config; a speed claim's arms take no overrides")
        if claim.is_speed and arm.method not in known and arm.method in {speed_baseline_of(m) for m in known}:
            continue  # a speed baseline's record (ZegCLIP's bare CLIP image encoder)
        if arm.method not in known:
            raise ZegbenchError(f"{where}: claim '{claim.id}' {side}: unknown variant {arm.method!r}; "
                                f"known: {', '.join(known)}")
        accepted = set(schema_for_class(method_class(method_config(arm.method)["class"])).model_fields) | TRAIN_KEYS
        for key in arm.set:
            if key not in accepted:
                raise ZegbenchError(f"{where}: claim '{claim.id}' {side}.set: unknown key {key!r} for {arm.method}")
    suites = config_names("suites")
    if claim.suite not in suites:
        known = ", ".join(suites)
        raise ZegbenchError(f"{where}: claim '{claim.id}': unknown suite {claim.suite!r}; known: {known}")
