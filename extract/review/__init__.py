"""What people look at: HTML pages of records and diffs, and the cost ledger."""
