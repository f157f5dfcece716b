"""dlcourse: the shared library behind the course labs.

Labs import from here; this package never imports ``labs``.
"""
import os

# TensorFlow prints several lines of start-up chatter on every import; the
# students' terminals and notebooks are easier to read without them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
