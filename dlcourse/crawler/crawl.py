"""The crawl itself: list pages → article links → (title, body) rows appended to the output file.

This is the only part that knows all the others: it asks the fetcher for
pages, the extraction rules for articles, and the store for what is saved
already; what went wrong goes into a ``CrawlReport`` and the side file of
failures, and the crawl goes on.
"""
import dataclasses
import pathlib
import sys

import requests
from tqdm import tqdm

from dlcourse.crawler.decoding import _codec_name, _header_charset, decode_html
from dlcourse.crawler.extraction import _extract, find_article_links
from dlcourse.crawler.fetcher import DEFAULT_MAX_PAGE_BYTES, DEFAULT_USER_AGENT, PoliteFetcher
from dlcourse.crawler.profiles import SiteProfile, load_profile
from dlcourse.crawler.store import ArticleFile, append_failure, failed_path_for


@dataclasses.dataclass
class CrawlReport:
    """What a crawl did: new articles saved, articles already in the file, and what went wrong."""
    saved: int
    skipped: int
    failed: list
    robots_blocked: list
    list_pages: int


class Crawler:
    """Crawls the list pages of a profile, then their articles, into a JSON Lines file.

    ``delay``: seconds between the starts of two requests to one host;
    ``timeout``: connect and read timeouts; ``retries``: extra tries after a
    timeout, a connection error, HTTP 429 or 5xx, ``backoff * 2**n`` seconds
    apart; ``max_articles``: stop after that many new articles;
    ``max_page_bytes``: a bigger answer is dropped unread and listed as failed.
    """

    def __init__(self, profile, out_path, *, delay=1.0, timeout=10.0, retries=3, backoff=0.5,
                 user_agent=DEFAULT_USER_AGENT, progress=True, session=None, max_articles=None,
                 max_page_bytes=DEFAULT_MAX_PAGE_BYTES):
        if delay < 0 or backoff < 0:
            raise ValueError("delay and backoff must be >= 0")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if retries < 0 or int(retries) != retries:
            raise ValueError(f"retries must be a whole number >= 0, got {retries}")
        if max_articles is not None and max_articles < 1:
            raise ValueError(f"max_articles must be at least 1 (or None), got {max_articles}")
        if isinstance(max_page_bytes, bool) or not isinstance(max_page_bytes, int) or max_page_bytes < 1:
            raise ValueError(f"max_page_bytes must be a whole number >= 1, got {max_page_bytes!r}")
        self.profile = profile if isinstance(profile, SiteProfile) else load_profile(profile)
        self.out_path = pathlib.Path(out_path)
        self.failed_path = failed_path_for(self.out_path)
        self.delay, self.timeout, self.retries, self.backoff = delay, timeout, int(retries), backoff
        self.user_agent = user_agent
        self.progress = progress
        self.session = session
        self.max_articles = max_articles
        self.max_page_bytes = max_page_bytes
        self.fetcher = PoliteFetcher(user_agent=user_agent, delay=delay, timeout=timeout, retries=retries,
                                     backoff=backoff, max_page_bytes=max_page_bytes)

    def _record_failure(self, report, url, reason, tries):
        failure = {"url": url, "reason": reason, "tries": tries}
        report.failed.append(failure)
        append_failure(self.failed_path, failure)

    def _get_page(self, url, report):
        """``(decoded HTML, tries)`` of ``url``, or ``(None, tries)``: blocked by robots.txt, or a recorded failure."""
        fetched = self.fetcher.get(url, lambda *failure: self._record_failure(report, *failure))
        if fetched.blocked:
            report.robots_blocked.append(url)
            return None, 0
        if fetched.content is None:
            self._record_failure(report, url, fetched.reason, fetched.tries)
            return None, fetched.tries
        media_type = fetched.content_type.split(";")[0].strip().lower()
        if media_type and not (media_type.startswith("text/") or "html" in media_type
                               or "xml" in media_type):
            self._record_failure(report, url, f"not an HTML page ({media_type})", fetched.tries)
            return None, fetched.tries
        if self.profile.encoding:
            return fetched.content.decode(_codec_name(self.profile.encoding), errors="replace"), fetched.tries
        return decode_html(fetched.content, _header_charset(fetched.content_type))[0], fetched.tries

    def _collect_links(self, pages, report):
        urls = {}
        for list_url in self.profile.list_page_urls(pages):
            html_text, _ = self._get_page(list_url, report)
            if html_text is None:
                continue
            report.list_pages += 1
            for url in find_article_links(html_text, list_url, self.profile):
                urls.setdefault(url, None)
        return list(urls)

    def _crawl_article(self, url, output, report):
        if not self.profile.item and url in output.saved_urls:
            report.skipped += 1
            return
        html_text, tries = self._get_page(url, report)
        if html_text is None:
            return
        rows, reason = _extract(html_text, url, self.profile)
        if not rows:
            self._record_failure(report, url, reason, tries)
        for row in rows:
            if self.max_articles is not None and report.saved >= self.max_articles:
                return
            if row["url"] in output.saved_urls:
                report.skipped += 1
                continue
            output.append(row)
            report.saved += 1

    def crawl(self, pages=1):
        """Crawl ``pages`` list pages and their articles; returns a ``CrawlReport``.

        Raises ``OutputInUseError`` (a ``CrawlError``) at once, before any
        request, if another crawl is writing the same output file.
        """
        if isinstance(pages, bool) or not isinstance(pages, int) or pages < 1:
            raise ValueError(f"pages must be a whole number >= 1, got {pages!r}")
        report = CrawlReport(saved=0, skipped=0, failed=[], robots_blocked=[], list_pages=0)
        with ArticleFile(self.out_path) as output:
            own_session = self.session is None
            self.fetcher.session = self.session if not own_session else requests.Session()
            try:
                article_urls = self._collect_links(pages, report)
                with tqdm(article_urls, desc=self.profile.name, unit="article",
                          disable=not self.progress, file=sys.stderr) as bar:
                    for url in bar:
                        if self.max_articles is not None and report.saved >= self.max_articles:
                            break
                        self._crawl_article(url, output, report)
            finally:
                if own_session:
                    self.fetcher.session.close()
                self.fetcher.session = None
        return report
