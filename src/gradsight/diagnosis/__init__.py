"""Diagnosis: named pathologies with their evidence, and the remedies that address them."""

from gradsight.diagnosis.finding import (
    FINDING_KINDS,
    REMEDIES,
    Finding,
    Findings,
    Remedy,
    load_findings,
    save_findings,
)
from gradsight.diagnosis.rules import RULES, diagnose

__all__ = [
    "FINDING_KINDS",
    "REMEDIES",
    "RULES",
    "Finding",
    "Findings",
    "Remedy",
    "diagnose",
    "load_findings",
    "save_findings",
]
