"""Diagnosis: named pathologies with their evidence, and the remedies that address them."""

from gradsight.diagnosis.finding import (
    FINDING_KINDS,
    REMEDIES,
    Finding,
    Remedy,
    load_findings,
    save_findings,
)

__all__ = ["FINDING_KINDS", "REMEDIES", "Finding", "Remedy", "load_findings", "save_findings"]
