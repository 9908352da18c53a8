"""The command line, above everything else: one module per command group."""

# isort: skip_file
import signal

# The order of the imports is the order of the commands in --help.
from caseextract.cli import run  # noqa: F401  (registers run, schema)
from caseextract.cli import evaluate  # noqa: F401  (registers eval)
from caseextract.cli import diff  # noqa: F401  (registers diff, show, cost)
from caseextract.cli import exchange  # noqa: F401  (registers export, import)
from caseextract.cli import compare  # noqa: F401  (registers compare)
from caseextract.cli import review  # noqa: F401  (registers review, summarize)
from caseextract.cli import batch  # noqa: F401  (registers batch submit|status|collect|cancel)
from caseextract.cli import check  # noqa: F401  (registers check)
from caseextract.cli.app import app


def main() -> None:
    try:
        app()
    finally:
        # The work is written and reported (or stopped and reported, exit 130): a Ctrl-C
        # that lands while the interpreter shuts down must not turn that exit code into
        # a death by signal.
        signal.signal(signal.SIGINT, signal.SIG_IGN)


__all__ = ["app", "main"]
