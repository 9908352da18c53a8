"""caseextract: evidence-backed structured extraction from clinical case reports."""

__version__ = "0.1.0"
