"""Prompt template sets shipped with caseextract."""

from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parent
