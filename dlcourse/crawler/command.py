"""The command line: ``python -m labs.news_seq2seq crawl`` (and ``python -m dlcourse.crawler``).

Flags map one to one onto ``Crawler``'s arguments; errors are one line
(``dlcourse.cli``): exit code 1 when the profile or the crawl fails, 2 for a
bad flag — or when another crawl is writing ``--out`` already.
"""
import argparse

from dlcourse import cli
from dlcourse.crawler.crawl import Crawler
from dlcourse.crawler.errors import OutputInUseError
from dlcourse.crawler.fetcher import DEFAULT_MAX_PAGE_BYTES, DEFAULT_USER_AGENT
from dlcourse.crawler.profiles import _is_http_url, builtin_profiles, load_profile


def _http_url(text):
    if not _is_http_url(text):
        raise argparse.ArgumentTypeError(f"expected http://host[:port] or https://host, got {text!r}")
    return text


parser = cli.OneLineParser(
    prog="python -m labs.news_seq2seq crawl",
    description="Crawl news articles (title, body) into a JSON Lines file, politely and resumably.",
    formatter_class=argparse.ArgumentDefaultsHelpFormatter)
parser.add_argument("--profile", required=True,
                    help=f"a built-in site profile ({', '.join(builtin_profiles())}) "
                         f"or a .json/.yaml profile file")
parser.add_argument("--pages", type=cli.positive_int, default=1, help="list pages to read")
parser.add_argument("--out", required=True,
                    help="output .jsonl file; run the same command again to resume")
parser.add_argument("--base-url", type=_http_url, default=None,
                    help="crawl another host with the profile (a mirror, a test server; "
                         "needed with the generic profile)")
parser.add_argument("--delay", type=cli.non_negative_float, default=1.0,
                    help="seconds between requests to one host (0 only for your own test server)")
parser.add_argument("--timeout", type=cli.positive_float, default=10.0,
                    help="connect and read timeout in seconds")
parser.add_argument("--retries", type=cli.non_negative_int, default=3,
                    help="extra tries after a timeout, a connection error, HTTP 429 or 5xx")
parser.add_argument("--max-articles", type=cli.positive_int, default=None,
                    help="stop after this many new articles (None: no limit)")
parser.add_argument("--max-page-bytes", type=cli.positive_int, default=DEFAULT_MAX_PAGE_BYTES,
                    help="a page (or robots.txt) larger than this is skipped unread and listed as failed")
parser.add_argument("--user-agent", default=DEFAULT_USER_AGENT, help="the User-Agent header sent")
parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(config):
    """Crawl as ``config`` (the parser's namespace) says and print one summary line; returns the ``CrawlReport``."""
    if not config.out.lower().endswith(".jsonl"):
        raise cli.UsageError(f"--out must name a .jsonl file, got {config.out!r}")
    if not config.user_agent.strip():
        raise cli.UsageError("--user-agent must not be empty")
    profile = load_profile(config.profile, base_url=config.base_url)
    crawler = Crawler(profile, config.out, delay=config.delay, timeout=config.timeout,
                      retries=config.retries, user_agent=config.user_agent,
                      progress=not config.quiet, max_articles=config.max_articles,
                      max_page_bytes=config.max_page_bytes)
    try:
        report = crawler.crawl(pages=config.pages)
    except OutputInUseError as error:  # nothing was done: like a bad --out, exit code 2
        raise cli.UsageError(str(error)) from None
    failed_note = f" (see {crawler.failed_path})" if report.failed else ""
    print(f"saved {report.saved} new articles, skipped {report.skipped} already saved, "
          f"{len(report.failed)} failed{failed_note}, {len(report.robots_blocked)} blocked by "
          f"robots.txt → {crawler.out_path}")
    return report


def main(argv=None):
    """``python -m labs.news_seq2seq crawl [flags]``; exit code 0, 1 (crawl or profile failed),
    2 (a bad flag, or another crawl is writing ``--out``)."""
    return cli.main(parser, run, argv)

