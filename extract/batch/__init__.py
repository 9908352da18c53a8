"""The Batch API: ``submit`` uploads the requests of a run, ``collect`` downloads the
answers and writes the records. The HTTP side of the Batch API lives with the other
SDK calls in ``caseextract.llm.batchapi`` (only ``llm`` imports the SDKs).
"""
