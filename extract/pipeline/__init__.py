"""Documents in, result records out.

``runner`` runs one task over many documents with failures isolated; ``outcome``
builds each document's result record; ``passes`` splits a long report or a case
series into several smaller requests and merges the answers.
"""
