"""The crawler's errors: one line each, naming the file at fault, so the command line can print them as they are.

They are ``DataError``s, so a lab's command line turns them into one line
and exit code 1 like any other missing or broken input.
"""
from dlcourse.data import DataError


class CrawlError(DataError):
    """A profile, selector or output file the crawler cannot use; the message names the file."""


class OutputInUseError(CrawlError):
    """Another crawl holds the output file: two writers would interleave and duplicate articles."""
