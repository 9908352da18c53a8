"""Multi-pass extraction: a plan, then one fill per unit, merged into one record.

``multipass`` drives the passes; ``units`` says what one pass asks for; ``chunks``
splits text that outgrows the context; ``merge`` joins the answers; ``store`` keeps
each finished pass so a rerun resumes.
"""
