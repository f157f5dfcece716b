"""A polite, resumable news crawler: list pages → article links → (title, body) rows in JSON Lines.

Week 4 trains a model that writes a news title from the article body, so it
needs many (title, body) pairs.  This package collects them the way a good
web citizen does:

* **polite** (``fetcher``): it reads each host's ``robots.txt`` first and
  never fetches a disallowed URL — nor one it is redirected to on another
  host whose ``robots.txt`` disallows it — sends at most one request per
  ``delay`` seconds to a host (longer if ``robots.txt`` asks for a
  ``Crawl-delay``) and says who it is in its User-Agent;
* **patient and bounded** (``fetcher``): timeouts, lost connections, HTTP 429
  and 5xx are retried with exponential backoff; a page that still fails, or
  that is larger than ``max_page_bytes`` (not read into memory), is written
  down and skipped;
* **loss-free, resumable and exclusive** (``store``, which states the file
  layout): every article is appended to the output as one line with one
  ``os.write`` followed by ``os.fsync``.  If the process is killed, running
  the same command again repairs a torn last line, skips the articles
  already saved and crawls the rest, so every article ends up in the file
  exactly once; a second crawl to the same file while one runs stops at once;
* **readable** (``decoding``, ``extraction``): Korean pages come in UTF-8 or
  in EUC-KR/CP949; the encoding is taken from the HTTP header, the page's
  ``<meta>`` or detected, so the text is never mojibake, and bylines, e-mail
  addresses, photo captions and copyright lines are cleaned away
  (``clean_text``).

What to take from which page is described by a *site profile*
(``SiteProfile``, in ``profiles``): CSS selectors in a small JSON or YAML
file.  Built-in profiles live in ``dlcourse/site_profiles/``.  ``crawl``
puts the pieces together (``Crawler``) and ``command`` is the command line:

    python -m labs.news_seq2seq crawl --profile boannews --pages 5 --out articles.jsonl

Everything a user needs is importable from here: ``from dlcourse import
crawler; crawler.Crawler(...)``.
"""
from dlcourse.crawler.command import main, parser, run
from dlcourse.crawler.crawl import Crawler, CrawlReport
from dlcourse.crawler.decoding import (
    HEADER_CHARSET,
    KOREAN_LABELS,
    META_CHARSET,
    META_SEARCH_BYTES,
    WESTERN_CODECS,
    decode_html,
)
from dlcourse.crawler.errors import CrawlError, OutputInUseError
from dlcourse.crawler.extraction import (
    ALWAYS_REMOVED,
    BLOCK_TAGS,
    CAPTIONS,
    DROP_LINE_RULES,
    REMOVE_RULES,
    SPACES,
    clean_text,
    element_text,
    extract_articles,
    find_article_links,
)
from dlcourse.crawler.fetcher import (
    DEFAULT_MAX_PAGE_BYTES,
    DEFAULT_USER_AGENT,
    MAX_REDIRECTS,
    MAX_RETRY_AFTER,
    Fetched,
    PoliteFetcher,
)
from dlcourse.crawler.profiles import (
    FIELD_NAMES,
    OPTIONAL_TEXT_FIELDS,
    PROFILE_DIR,
    PROFILE_SUFFIXES,
    REQUIRED_FIELDS,
    SiteProfile,
    builtin_profiles,
    load_profile,
)
from dlcourse.crawler.profiles import _split_selector_list as _split_selector_list  # the tests check it
from dlcourse.crawler.store import ROW_KEYS, ArticleFile, read_articles

__all__ = [
    # profiles
    "SiteProfile", "load_profile", "builtin_profiles", "PROFILE_DIR", "PROFILE_SUFFIXES", "REQUIRED_FIELDS",
    "OPTIONAL_TEXT_FIELDS", "FIELD_NAMES",
    # decoding
    "decode_html", "KOREAN_LABELS", "WESTERN_CODECS", "META_CHARSET", "HEADER_CHARSET", "META_SEARCH_BYTES",
    # extraction
    "clean_text", "element_text", "extract_articles", "find_article_links", "DROP_LINE_RULES", "REMOVE_RULES",
    "SPACES", "BLOCK_TAGS", "ALWAYS_REMOVED", "CAPTIONS",
    # fetcher
    "PoliteFetcher", "Fetched", "DEFAULT_USER_AGENT", "DEFAULT_MAX_PAGE_BYTES", "MAX_REDIRECTS",
    "MAX_RETRY_AFTER",
    # store
    "read_articles", "ArticleFile", "ROW_KEYS",
    # the crawl and its command line
    "Crawler", "CrawlReport", "CrawlError", "OutputInUseError", "parser", "run", "main",
]
