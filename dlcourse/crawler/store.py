"""The crawl's output: a JSON Lines file that is appended to, resumed from, and owned by one crawl at a time.

The files of a crawl to ``--out NAME.jsonl`` (the contract every reader relies on):

* ``NAME.jsonl`` — one article per line: a JSON object with the keys ``url``,
  ``site``, ``title``, ``body``, ``date`` in that order (``ROW_KEYS``), UTF-8
  text (not ``\\u`` escapes), no timestamps, so the same crawl gives the same
  bytes.  Each line is written with one ``os.write`` and then ``os.fsync``:
  a killed crawl leaves at most one torn last line, which the next crawl
  cuts off (that article is fetched again).  A bad line *before* the last is
  an error — someone edited the file — never silently dropped.
* ``NAME.failed.jsonl`` — the failures of the latest crawl, one
  ``{"url", "reason", "tries"}`` per line; removed when a crawl starts.
* While a crawl runs it holds an exclusive lock on ``NAME.jsonl`` (``flock``;
  on Windows, where there is none, a lock on a sibling ``NAME.jsonl.lock``).
  A second crawl to the same file stops at once with ``OutputInUseError``
  instead of interleaving its lines with the first's.  The operating system
  drops the lock when the process ends, however it ends, so a killed crawl
  never blocks the next one.
"""
import json
import os
import pathlib
import sys

from dlcourse.crawler.errors import CrawlError, OutputInUseError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

ROW_KEYS = ("url", "site", "title", "body", "date")


def failed_path_for(out_path):
    """``NAME.failed.jsonl`` next to ``NAME.jsonl``."""
    out_path = pathlib.Path(out_path)
    return out_path.with_name(out_path.stem + ".failed.jsonl")


def _scan_jsonl(path):
    """``(rows, length of the good part, torn bytes at the end)`` of an output file.

    A last line without its newline, or a last line that is not JSON, is
    what an interrupted write leaves: it is torn, not an error.  A bad line
    before the last one is an error (someone edited the file).
    """
    path = pathlib.Path(path)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return [], 0, 0
    except OSError as error:
        raise CrawlError(f"{path}: cannot read ({error.strerror})") from None
    lines = content.split(b"\n")  # the last piece is whatever follows the final newline
    rows, good_length = [], 0
    for number, line in enumerate(lines[:-1], start=1):
        if line.strip():
            try:
                row = json.loads(line.decode("utf-8-sig"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                if number == len(lines) - 1 and not lines[-1]:
                    break  # the last line is torn
                raise CrawlError(f"{path}: line {number} is not valid JSON; "
                                 f"fix or delete that line and run again") from None
            if not isinstance(row, dict) or not isinstance(row.get("url"), str):
                raise CrawlError(f"{path}: line {number} is not an article row (no 'url')")
            rows.append(row)
        good_length += len(line) + 1
    return rows, good_length, len(content) - good_length


def read_articles(path):
    """The rows of a crawler output file (a torn last line is ignored)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CrawlError(f"{path}: file is missing" if not path.is_dir() else f"{path}: is a folder")
    return _scan_jsonl(path)[0]


def _jsonl_line(row):
    """One output line; keys in a fixed order and no timestamps, so a crawl is reproducible."""
    ordered = {key: row.get(key) for key in ROW_KEYS}
    return (json.dumps(ordered, ensure_ascii=False) + "\n").encode("utf-8")


def append_failure(failed_path, failure):
    """Add one ``{"url", "reason", "tries"}`` line to the side file of failures."""
    try:
        with open(failed_path, "a", encoding="utf-8") as side_file:
            side_file.write(json.dumps(failure, ensure_ascii=False) + "\n")
    except OSError as error:
        raise CrawlError(f"{failed_path}: cannot write ({error.strerror})") from None


def _in_use(path):
    return OutputInUseError(f"{path}: another crawl is writing this file; wait for it to finish "
                            f"or choose another --out")


def _lock(path, descriptor):
    """Take the crawl's exclusive lock on ``path`` (open as ``descriptor``) without waiting.

    Returns a descriptor to close with the output (Windows' lock file), or None.
    """
    if fcntl is not None:
        try:
            # flock, not lockf: its lock belongs to this open file, so even two crawls in one process exclude
            # each other, and it goes when the descriptor is closed — by os.close or by the process dying.
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _in_use(path) from None
        except OSError as error:  # a file system without locks: go on, as crawls did before locking
            print(f"note: {path}: cannot be locked ({error.strerror}); make sure no other crawl writes it",
                  file=sys.stderr)
        return None
    lock_path = path.with_name(path.name + ".lock")
    lock_descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        msvcrt.locking(lock_descriptor, msvcrt.LK_NBLCK, 1)
    except OSError:
        os.close(lock_descriptor)
        raise _in_use(path) from None
    return lock_descriptor


class ArticleFile:
    """An output file opened for one crawl: locked, repaired, and appended one whole line at a time.

    ``with ArticleFile(path) as output:`` gives ``output.saved_urls`` (the URLs
    already in the file) and ``output.append(row)``; leaving the block
    closes the file and releases the lock.
    """

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.failed_path = failed_path_for(self.path)
        self.saved_urls = set()
        self._descriptor = None
        self._lock_descriptor = None

    def __enter__(self):
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
            self._descriptor = os.open(self.path, flags, 0o644)
        except OSError as error:
            raise CrawlError(f"{error.filename or self.path}: cannot write ({error.strerror})") from None
        try:
            # Locked before anything is read or cut, so a running crawl's lines are never taken for torn ones.
            self._lock_descriptor = _lock(self.path, self._descriptor)
            rows, good_length, torn = _scan_jsonl(self.path)
            if torn:
                os.ftruncate(self._descriptor, good_length)
                print(f"note: {self.path}: removed a torn last line ({torn} bytes) left by an "
                      f"interrupted run; that article is crawled again", file=sys.stderr)
            if self.failed_path.exists():  # the side file lists the failures of the latest run
                self.failed_path.unlink()
        except OSError as error:
            self.close()
            raise CrawlError(f"{error.filename or self.path}: cannot write ({error.strerror})") from None
        except BaseException:
            self.close()
            raise
        self.saved_urls = {row["url"] for row in rows}
        return self

    def __exit__(self, *exception):
        self.close()

    def append(self, row):
        """Write one whole line at once and fsync it: a kill leaves at most one torn line."""
        line = _jsonl_line(row)
        while line:
            line = line[os.write(self._descriptor, line):]
        os.fsync(self._descriptor)
        self.saved_urls.add(row["url"])

    def close(self):
        for name in ("_descriptor", "_lock_descriptor"):
            descriptor = getattr(self, name)
            if descriptor is not None:
                setattr(self, name, None)
                os.close(descriptor)
