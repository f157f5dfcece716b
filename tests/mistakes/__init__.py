"""Wrong but plausible answers to each notebook's exercises (see tests/test_exercise_mistakes.py)."""
