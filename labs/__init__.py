"""The course labs: one module per lab, ``python -m labs.<lab>``; ``python -m labs.weekN`` runs a week."""
from dlcourse import cli

cli.exit_if_backend_missing()
