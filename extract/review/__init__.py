"""What people look at: HTML pages of records and diffs, the cost ledger, the review web
app (``app``, ``session``, ``state``, ``decisions``) and the summary report (``summary``)."""
