"""The course labs: one module per lab, ``python -m labs.<lab>``; ``python -m labs.weekN`` runs a week."""
