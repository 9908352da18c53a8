"""Requests out, answers in: the exact requests written to files, answers read back.

``export`` writes each document's request as the model would receive it; ``answers``
imports the answers someone (or something) wrote and records them as exchanges the
pipeline replays.
"""
