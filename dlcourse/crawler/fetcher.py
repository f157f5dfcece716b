"""The polite fetcher: robots.txt, one request per ``delay`` per host, retries, and bounded answers.

A crawler is a guest on other people's servers, and the servers are not
always friendly either.  So every GET here

* asks the host's ``robots.txt`` first (read once per host and cached; a
  ``Crawl-delay`` longer than ``delay`` is obeyed) and says who it is in its
  User-Agent;
* follows redirects itself, one hop at a time, so that a redirect to another
  host is checked against *that* host's ``robots.txt`` and paced by *its*
  delay — ``requests`` would follow it without asking;
* retries timeouts, lost connections, HTTP 429 and 5xx with exponential
  backoff (a ``Retry-After`` is honoured, up to ``MAX_RETRY_AFTER``);
* streams the body and stops reading at ``max_page_bytes``, so a huge or
  endless answer costs a few megabytes, not the machine's memory.

Nothing here writes files or raises for a bad page: the result says what
happened (``Fetched``) and the crawl decides what to record.
"""
import dataclasses
import time
import urllib.robotparser
from urllib.parse import urldefrag, urljoin, urlsplit

import requests
import urllib3

from dlcourse import __version__

DEFAULT_USER_AGENT = (f"dlcourse-crawler/{__version__} "
                      "(+course lab; polite: robots.txt, 1 request/s)")
DEFAULT_MAX_PAGE_BYTES = 5 * 2**20  # news pages are ~100 KB; an answer past this is not an article
MAX_RETRY_AFTER = 60.0  # seconds; a longer Retry-After is cut to this
MAX_REDIRECTS = 10
MAX_ROBOTS_REDIRECTS = 5  # RFC 9309 asks crawlers to follow at least five
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
CHUNK_BYTES = 64 * 1024


@dataclasses.dataclass
class Fetched:
    """What one GET (with its retries and redirects) gave."""
    url: str                 # where the answer came from: the URL asked for, or the last redirect's
    content: bytes | None    # None when the page could not be had
    content_type: str        # the Content-Type header, "" if none
    status: int | None       # the last HTTP status, None if no answer came
    reason: str | None       # why there is no content
    tries: int               # HTTP requests made, retries and redirects included
    blocked: bool = False    # robots.txt forbids the URL asked for: nothing was fetched
    location: str | None = None  # a redirect's absolute target (only between hops)


def _origin(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _is_timeout(error):
    # requests reports a read timeout in the middle of a body as a ConnectionError around urllib3's
    return isinstance(error, requests.Timeout) or any(
        isinstance(argument, urllib3.exceptions.TimeoutError) for argument in error.args)


def _tries(count):
    return f"{count} {'try' if count == 1 else 'tries'}"


def _failure(url, reason, tries, status=None):
    return Fetched(url, None, "", status, reason, tries)


class PoliteFetcher:
    """GETs pages the way ``robots.txt`` and the module docstring say; ``session`` is set by the caller.

    ``delay``: seconds between the starts of two requests to one host;
    ``timeout``: connect and read timeouts; ``retries``: extra tries after a
    timeout, a connection error, HTTP 429 or 5xx, ``backoff * 2**n`` seconds
    apart; ``max_page_bytes``: the largest body read (bigger ones are dropped).
    """

    def __init__(self, *, user_agent=DEFAULT_USER_AGENT, delay=1.0, timeout=10.0, retries=3, backoff=0.5,
                 max_page_bytes=DEFAULT_MAX_PAGE_BYTES, session=None):
        self.user_agent = user_agent
        self.delay, self.timeout, self.retries, self.backoff = delay, timeout, int(retries), backoff
        self.max_page_bytes = max_page_bytes
        self.session = session
        self._robots = {}       # origin → RobotFileParser
        self._host_delay = {}   # origin → seconds, when robots.txt asks for more than `delay`
        self._last_start = {}   # origin → time.monotonic() of the previous request's start

    def get(self, url, on_failure):
        """The page at ``url`` if robots.txt allows it and every host it is redirected to allows that.

        ``on_failure(url, reason, tries)`` is told when a host's robots.txt
        cannot be read (that host is then not crawled).
        """
        if not self.allowed(url, on_failure):
            return Fetched(url, None, "", None, "disallowed by robots.txt", 0, blocked=True)
        return self._follow(url, MAX_REDIRECTS, lambda target: self.allowed(target, on_failure))

    def allowed(self, url, on_failure):
        """Whether robots.txt lets us fetch ``url`` (read once per host)."""
        origin = _origin(url)
        if origin not in self._robots:
            self._robots[origin] = self._read_robots(origin, on_failure)
        return self._robots[origin].can_fetch(self.user_agent, url)

    # -- robots.txt --------------------------------------------------------

    def _read_robots(self, origin, on_failure):
        """The host's rules, as urllib.robotparser reads them; an unreachable robots.txt forbids all."""
        robots_url = origin + "/robots.txt"
        rules = urllib.robotparser.RobotFileParser(robots_url)
        fetched = self._follow(robots_url, MAX_ROBOTS_REDIRECTS)  # robots.txt itself is always fetchable
        if fetched.content is not None:
            rules.parse(fetched.content.decode("utf-8", errors="replace").splitlines())
            crawl_delay = rules.crawl_delay(self.user_agent)
            if crawl_delay is not None and float(crawl_delay) > self.delay:
                self._host_delay[origin] = float(crawl_delay)
        elif fetched.status in (401, 403):
            rules.disallow_all = True
        elif fetched.status is not None and 400 <= fetched.status < 500 and fetched.status != 429:
            rules.allow_all = True  # no robots.txt: everything is allowed
        else:  # the server is down, refuses to say, or says too much: do not crawl it
            rules.disallow_all = True
            on_failure(robots_url, f"{fetched.reason}; robots.txt unknown, {origin} not crawled", fetched.tries)
        return rules

    # -- HTTP --------------------------------------------------------------

    def _follow(self, url, max_redirects, allowed=None):
        """GET ``url`` and the redirects that follow, each hop a request of its own (``allowed`` vets each target)."""
        tries = 0
        for _ in range(max_redirects + 1):
            fetched = self._request(url)
            tries += fetched.tries
            if fetched.location is None:
                return dataclasses.replace(fetched, tries=tries)
            url = fetched.location
            if allowed is not None and not allowed(url):
                return _failure(url, f"redirected to {url}, which its robots.txt disallows", tries, fetched.status)
        return _failure(url, f"more than {max_redirects} redirects", tries)

    def _wait_turn(self, origin):
        """Sleep until ``delay`` seconds have passed since the last request to this host started."""
        last = self._last_start.get(origin)
        if last is not None:
            pause = last + self._host_delay.get(origin, self.delay) - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        self._last_start[origin] = time.monotonic()

    def _request(self, url):
        """One GET of ``url`` without following redirects, retrying what may pass (timeouts, lost connections,
        429, 5xx)."""
        origin = _origin(url)
        for attempt in range(1, self.retries + 2):
            self._wait_turn(origin)
            wait = self.backoff * 2 ** (attempt - 1)
            try:
                with self.session.get(url, headers={"User-Agent": self.user_agent},
                                      timeout=(self.timeout, self.timeout),
                                      allow_redirects=False, stream=True) as response:
                    status = response.status_code
                    if status in REDIRECT_STATUSES:
                        return self._redirect(url, response, attempt)
                    if 200 <= status < 300:
                        content, reason = self._read_body(response)
                        return Fetched(url, content, response.headers.get("Content-Type", ""), status, reason,
                                       attempt)
                    reason = f"HTTP {status}"
                    if status != 429 and status < 500:
                        return _failure(url, reason, attempt, status)
                    retry_after = response.headers.get("Retry-After", "").strip()
                    if retry_after.isdigit():
                        wait = max(wait, min(float(retry_after), MAX_RETRY_AFTER))
            except requests.RequestException as error:
                if _is_timeout(error):
                    reason = "timeout"
                elif isinstance(error, requests.ConnectionError):
                    reason = "connection error"
                else:  # a bad URL, a broken body…: trying again will not help
                    detail = " ".join(str(error).split())[:200]
                    return _failure(url, f"{type(error).__name__}: {detail}", attempt)
                status = None
            if attempt <= self.retries:
                time.sleep(wait)
        return _failure(url, f"{reason} after {_tries(attempt)}", attempt, status)

    @staticmethod
    def _redirect(url, response, attempt):
        """A hop to follow, or a failure if the redirect goes nowhere a crawler may go."""
        location = response.headers.get("Location", "").strip()
        if not location:
            return _failure(url, f"HTTP {response.status_code} without a Location", attempt, response.status_code)
        target = urldefrag(urljoin(url, location))[0]
        if urlsplit(target).scheme not in ("http", "https") or not urlsplit(target).netloc:
            return _failure(url, f"redirected to {target!r}, not an http(s) URL", attempt, response.status_code)
        return dataclasses.replace(_failure(url, None, attempt, response.status_code), location=target)

    def _read_body(self, response):
        """``(content, None)``, or ``(None, reason)`` once the body is past ``max_page_bytes`` (the rest unread)."""
        too_large = f"larger than {self.max_page_bytes} bytes (max_page_bytes); not read"
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > self.max_page_bytes:
            return None, too_large
        chunks, size = [], 0
        for chunk in response.iter_content(CHUNK_BYTES):
            size += len(chunk)
            if size > self.max_page_bytes:
                return None, too_large
            chunks.append(chunk)
        return b"".join(chunks), None
