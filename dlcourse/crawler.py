"""A polite, resumable news crawler: list pages → article links → (title, body) rows in JSON Lines.

Week 4 trains a model that writes a news title from the article body, so it
needs many (title, body) pairs.  This module collects them the way a good
web citizen does:

* **polite**: it reads each host's ``robots.txt`` first and never fetches a
  disallowed URL, sends at most one request per ``delay`` seconds to a host
  (longer if ``robots.txt`` asks for a ``Crawl-delay``) and says who it is in
  its User-Agent;
* **patient**: timeouts, lost connections, HTTP 429 and 5xx are retried with
  exponential backoff; a page that still fails is written down and skipped;
* **loss-free and resumable**: every article is appended to the output as one
  line with one ``os.write`` followed by ``os.fsync``.  If the process is
  killed, running the same command again repairs a torn last line, skips the
  articles already saved and crawls the rest, so every article ends up in the
  file exactly once;
* **readable**: Korean pages come in UTF-8 or in EUC-KR/CP949; the encoding
  is taken from the HTTP header, the page's ``<meta>`` or detected, so the
  text is never mojibake, and bylines, e-mail addresses, photo captions and
  copyright lines are cleaned away (``clean_text``).

What to take from which page is described by a *site profile*
(``SiteProfile``): CSS selectors in a small JSON or YAML file.  Built-in
profiles live in ``dlcourse/site_profiles/``.

    python -m labs.news_seq2seq crawl --profile boannews --pages 5 --out articles.jsonl
"""
import argparse
import codecs
import copy
import dataclasses
import json
import os
import pathlib
import re
import sys
import time
import unicodedata
import urllib.robotparser
from urllib.parse import quote, urldefrag, urljoin, urlsplit

import charset_normalizer
import requests
import soupsieve
import urllib3
import yaml
from bs4 import BeautifulSoup, NavigableString
from bs4.builder import ParserRejectedMarkup
from bs4.element import PreformattedString
from tqdm import tqdm

from dlcourse import __version__, cli
from dlcourse.data import DataError

DEFAULT_USER_AGENT = (f"dlcourse-crawler/{__version__} "
                      "(+course lab; polite: robots.txt, 1 request/s)")
PROFILE_DIR = pathlib.Path(__file__).resolve().parent / "site_profiles"
PROFILE_SUFFIXES = (".json", ".yaml", ".yml")


class CrawlError(DataError):
    """A profile, selector or output file the crawler cannot use; the message names the file."""


# ---------------------------------------------------------------------------
# 1. Site profiles: what to fetch and which parts of a page to keep.
# ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SiteProfile:
    """Where a site's articles are and which parts of a page are the title, the body and the date.

    ``title``, ``body`` and ``date`` may be selector lists such as
    ``"meta[property='og:title'], h1, title"``.  Unlike plain CSS (where a
    list means "any of these, in document order") the crawler tries the
    selectors **in the order written** and the first one that finds some text
    wins, so a list is a list of fallbacks.  For ``body`` every element the
    winning selector matches is kept (joined with newlines; an element inside
    another match is not counted twice).  A selected ``<meta>`` element gives
    its ``content`` attribute.  ``article_links``, ``item`` and ``remove`` are
    plain CSS.

    The title (and the date) are read first; then the title's element, the
    ``remove`` selectors, ``script``/``style``/``noscript`` and photo captions
    (``<figcaption>``, ``class="...caption..."``) are taken out, and the body
    is read from what is left; a body line equal to the title is dropped too,
    so the body never gives the title away.

    With ``item``, one page holds several articles: each element that
    ``item`` matches is one article, read on its own copy (so ``remove`` may
    take nested items out of it without harming them).  Its URL is the page's
    URL + ``#`` + the first ``id`` found in the item (or ``#item-<index>``).
    """
    name: str
    base_url: str
    list_url: str
    article_links: str
    title: str
    body: str
    date: str | None = None
    item: str | None = None
    article_url_pattern: str | None = None
    remove: tuple[str, ...] = ()
    encoding: str | None = None
    first_page: int = 1

    def __post_init__(self):
        # A list from JSON/YAML becomes a tuple, so profiles stay hashable and immutable.
        object.__setattr__(self, "remove", tuple(self.remove))

    @classmethod
    def from_dict(cls, mapping, source="profile"):
        """A checked profile from a JSON/YAML mapping; a bad field raises ``CrawlError`` naming ``source``."""
        _check_profile(mapping, source)
        return cls(**mapping)

    def to_dict(self):
        """The profile as a JSON-ready dict (``from_dict(to_dict())`` gives the same profile)."""
        mapping = dataclasses.asdict(self)
        mapping["remove"] = list(self.remove)
        return mapping

    def with_base_url(self, base_url):
        """The same profile pointed at another host (a mirror, or a test server on 127.0.0.1)."""
        if not _is_http_url(base_url):
            raise CrawlError(f"base URL {base_url!r}: expected http://host or https://host")
        base_url = base_url.rstrip("/")
        list_url = self.list_url
        if list_url.startswith(self.base_url.rstrip("/") + "/"):  # an absolute list URL moves along
            list_url = base_url + list_url[len(self.base_url.rstrip("/")):]
        return dataclasses.replace(self, base_url=base_url, list_url=list_url)

    def list_page_urls(self, pages):
        """Absolute URLs of the first ``pages`` list pages (one URL if ``list_url`` has no ``{page}``)."""
        if "{page}" not in self.list_url:
            return [urljoin(self.base_url, self.list_url)]
        return [urljoin(self.base_url, self.list_url.replace("{page}", str(number)))
                for number in range(self.first_page, self.first_page + pages)]


REQUIRED_FIELDS = ("name", "base_url", "list_url", "article_links", "title", "body")
OPTIONAL_TEXT_FIELDS = ("date", "item", "article_url_pattern", "encoding")
FIELD_NAMES = tuple(field.name for field in dataclasses.fields(SiteProfile))


def _check_profile(mapping, source):
    """Raise ``CrawlError`` for the first thing in ``mapping`` that would make a bad profile."""
    def fail(message):
        raise CrawlError(f"{source}: {message}")

    if not isinstance(mapping, dict):
        fail(f"expected a mapping of profile fields, got {type(mapping).__name__}")
    unknown = sorted(set(mapping) - set(FIELD_NAMES), key=str)
    if unknown:
        fail(f"unknown field {unknown[0]!r}; known fields: {', '.join(FIELD_NAMES)}")
    missing = [name for name in REQUIRED_FIELDS if name not in mapping]
    if missing:
        fail(f"missing field {missing[0]!r} (required: {', '.join(REQUIRED_FIELDS)})")
    for name in REQUIRED_FIELDS:
        if not isinstance(mapping[name], str) or not mapping[name].strip():
            fail(f"field {name!r} must be a non-empty string")
    for name in OPTIONAL_TEXT_FIELDS:
        value = mapping.get(name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            fail(f"field {name!r} must be a non-empty string or null")
    remove = mapping.get("remove", ())
    if not isinstance(remove, (list, tuple)) or not all(isinstance(s, str) and s.strip() for s in remove):
        fail("field 'remove' must be a list of CSS selectors")
    first_page = mapping.get("first_page", 1)
    if not isinstance(first_page, int) or isinstance(first_page, bool) or first_page < 0:
        fail("field 'first_page' must be a whole number >= 0")
    if not _is_http_url(mapping["base_url"]):
        fail(f"field 'base_url' must be an http:// or https:// URL, got {mapping['base_url']!r}")

    plain_selectors = [("article_links", mapping["article_links"])]
    plain_selectors += [("item", mapping["item"])] if mapping.get("item") else []
    plain_selectors += [("remove", selector) for selector in remove]
    fallback_selectors = [(name, part) for name in ("title", "body", "date") if mapping.get(name)
                          for part in _split_selector_list(mapping[name])]
    for name, selector in plain_selectors + fallback_selectors:
        try:
            soupsieve.compile(selector)
        except Exception as error:  # soupsieve raises SelectorSyntaxError and a few others
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            fail(f"field {name!r}: bad CSS selector {selector!r} ({reason})")
    if mapping.get("article_url_pattern"):
        try:
            re.compile(mapping["article_url_pattern"])
        except re.error as error:
            fail(f"field 'article_url_pattern': bad regular expression ({error})")
    if mapping.get("encoding") and _codec_name(mapping["encoding"]) is None:
        fail(f"field 'encoding': unknown encoding {mapping['encoding']!r}")


def _is_http_url(text):
    parts = urlsplit(text) if isinstance(text, str) else None
    return bool(parts and parts.scheme in ("http", "https") and parts.netloc)


def _split_selector_list(selector):
    """``"a, b:is(c, d), e"`` → ``["a", "b:is(c, d)", "e"]``: split on commas outside (), [] and quotes."""
    parts, current, depth, quote_char = [], [], 0, None
    characters = iter(selector)
    for character in characters:
        current.append(character)
        if character == "\\":  # an escaped character is never a separator
            current.append(next(characters, ""))
        elif quote_char:
            quote_char = None if character == quote_char else quote_char
        elif character in "\"'":
            quote_char = character
        elif character in "([":
            depth += 1
        elif character in ")]":
            depth -= 1
        elif character == "," and depth == 0:
            current.pop()
            parts.append("".join(current).strip())
            current = []
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def builtin_profiles():
    """Names of the profiles shipped in ``dlcourse/site_profiles/`` (``load_profile`` takes them)."""
    return sorted(path.stem for path in PROFILE_DIR.glob("*.json"))


def load_profile(name_or_path, base_url=None):
    """A built-in profile by name (``"boannews"``) or a profile file (.json, .yaml or .yml).

    ``base_url`` points the profile at another host.  A missing file or bad
    content raises ``CrawlError`` with one line naming the file.
    """
    text = str(name_or_path)
    path = pathlib.Path(text)
    if path.suffix.lower() not in PROFILE_SUFFIXES:
        if text not in builtin_profiles():
            raise CrawlError(f"{text}: neither a built-in profile ({', '.join(builtin_profiles())}) "
                             f"nor a .json/.yaml/.yml profile file")
        path = PROFILE_DIR / f"{text}.json"
    if not path.is_file():
        raise CrawlError(f"{path}: profile file is missing" if not path.is_dir() else f"{path}: is a folder")
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CrawlError(f"{path}: not UTF-8 text") from None
    except OSError as error:
        raise CrawlError(f"{path}: cannot read ({error.strerror})") from None
    if path.suffix.lower() == ".json":
        try:
            mapping = json.loads(content)
        except json.JSONDecodeError as error:
            raise CrawlError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from None
    else:
        try:
            mapping = yaml.safe_load(content)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise CrawlError(f"{path}: not valid YAML ({where}{problem})") from None
    profile = SiteProfile.from_dict(mapping, source=str(path))
    return profile.with_base_url(base_url) if base_url else profile


# ---------------------------------------------------------------------------
# 2. Bytes → text: the encoding of a Korean page.
# ---------------------------------------------------------------------------

# EUC-KR pages routinely contain syllables only CP949 has ('똠', '햏', '뷁'),
# so every name of the EUC-KR family is read as CP949, its superset.
KOREAN_LABELS = {"euc-kr", "euc_kr", "euckr", "ks_c_5601-1987", "ks_c_5601", "ksc5601", "korean",
                 "x-windows-949", "windows-949", "ms949", "uhc", "cp949", "x-euc-kr"}
# Latin-1 / ASCII is what many misconfigured servers claim by default, so it is only a hint.
WESTERN_CODECS = {"ascii", "latin-1", "iso8859-1", "cp1252"}
META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-z0-9_.:-]+)""", re.IGNORECASE)
HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([a-z0-9_.:-]+)""", re.IGNORECASE)
META_SEARCH_BYTES = 4096


def _codec_name(label):
    """Python's name for an encoding label (``"EUC-KR"`` → ``"cp949"``), or None if unknown."""
    label = label.strip().strip("\"'").lower()
    if label in KOREAN_LABELS:
        return "cp949"
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    if name == "euc_kr":
        return "cp949"
    return "cp1252" if name in WESTERN_CODECS else name


def _decodes(content, encoding):
    try:
        return content.decode(encoding)
    except UnicodeDecodeError:
        return None


def decode_html(content, header_encoding):
    """``(text, encoding)`` of an HTML page: the header's charset, else ``<meta>``, else detection.

    A declaration is used only if the bytes really decode with it.  Without
    one, valid UTF-8 is UTF-8; otherwise charset_normalizer chooses between
    UTF-8 and CP949; as a last resort UTF-8 with replacement characters.
    """
    if content.startswith(codecs.BOM_UTF8):
        return content[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace"), "utf-8"
    meta = META_CHARSET.search(content[:META_SEARCH_BYTES])
    declared = [header_encoding, meta.group(1).decode("ascii", errors="replace") if meta else None]
    western_hint = False
    for label in declared:
        encoding = _codec_name(label) if label else None
        if encoding == "cp1252":
            western_hint = True
        elif encoding and (text := _decodes(content, encoding)) is not None:
            return text, encoding
    if (text := _decodes(content, "utf-8")) is not None:
        return text, "utf-8"
    candidates = ["utf_8", "cp949"] + (["cp1252"] if western_hint else [])
    best = charset_normalizer.from_bytes(content, cp_isolation=candidates).best()
    encoding = _codec_name(best.encoding) if best is not None else None
    if encoding:
        return content.decode(encoding, errors="replace"), encoding
    return content.decode("utf-8", errors="replace"), "utf-8"


def _header_charset(response):
    """The charset the server declared, or None (never requests' ISO-8859-1 guess for text/html)."""
    match = HEADER_CHARSET.search(response.headers.get("Content-Type", ""))
    return match.group(1) if match else None


# ---------------------------------------------------------------------------
# 3. HTML → clean text.
# ---------------------------------------------------------------------------

# A line that matches one of these is dropped whole.
DROP_LINE_RULES = [
    # photo caption: "▲ 해킹 공격 화면", "△ 기자회견 모습"
    ("caption line", re.compile(r"^[▲△]")),
    # copyright notice: "ⓒ 보안뉴스", "Copyright © Boannews", "<저작권자 © 연합뉴스>"
    ("copyright line", re.compile(r"[ⓒ©]|^\W*copyright\b", re.IGNORECASE)),
    # reuse notice: "무단전재 및 재배포 금지", "무단 전재-재배포금지"
    ("reuse notice", re.compile(r"무단\s*전재|재배포\s*금지")),
]

# Pieces of a line that are cut out (the rest of the line stays).
REMOVE_RULES = [
    # e-mail address: "gildong@boannews.com"
    ("e-mail", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    # byline in brackets: "[홍길동 기자]", "[보안뉴스 홍길동 기자]", "[워싱턴=홍길동 특파원]"
    ("bracket byline", re.compile(r"\[[^\[\]\n]{0,40}?(?:기자|특파원|통신원)\s*\]")),
    # agency byline: "(서울=연합뉴스) 홍길동 기자 =", "홍길동 기자 = "
    ("agency byline", re.compile(r"(?:\([^()\n]{1,20}=[^()\n]{1,20}\)\s*)?"
                                 r"[가-힣]{2,5}\s*(?:기자|특파원|통신원)\s*=\s*")),
    # photo credit: "[사진=보안뉴스]", "(사진=연합뉴스)", "<사진=게티이미지>"
    ("photo credit", re.compile(r"[\[(<]\s*사진\s*=[^\])>\n]*[\])>]")),
]

SPACES = re.compile(r"[^\S\n]+")  # any whitespace but the newline


def clean_text(text):
    """Paragraphs separated by ``"\\n"``: no bylines, e-mails, captions or copyright lines, no empty lines.

    Runs of spaces become one space and every line is stripped; the text is
    NFC-normalised.  Unicode line separators (U+2028, NEL…) become newlines.
    """
    lines = []
    for line in unicodedata.normalize("NFC", text).splitlines():
        line = SPACES.sub(" ", line).strip()
        if any(rule.search(line) for _, rule in DROP_LINE_RULES):
            continue
        for _, rule in REMOVE_RULES:
            line = rule.sub(" ", line)
        line = SPACES.sub(" ", line).strip()
        if line:
            lines.append(line)
    return "\n".join(lines)


# Elements that start a new line of text, as a browser shows them.
BLOCK_TAGS = {"address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div",
              "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
              "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary",
              "table", "td", "th", "tr", "ul"}
ALWAYS_REMOVED = "script, style, noscript, template"
CAPTIONS = "figcaption, [class*=caption]"


class _LineBreak(NavigableString):
    """A newline the crawler put into the tree (a source newline inside a paragraph is just a space)."""


def element_text(element):
    """The text of ``element`` with one line per block (paragraph, list item, ``<br>``…).

    Changes the element (it inserts line breaks), so use it on a tree that is
    not needed afterwards.
    """
    for tag in element.find_all(BLOCK_TAGS):
        tag.insert_before(_LineBreak("\n"))
        tag.insert_after(_LineBreak("\n"))
    pieces = []
    for node in element.descendants:
        if isinstance(node, _LineBreak):
            pieces.append("\n")
        elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
            inside_pre = "\n" in node and node.find_parent("pre") is not None
            pieces.append(str(node) if inside_pre else SPACES.sub(" ", node.replace("\n", " ")))
    return "".join(pieces)


def _first_text(scope, selector_list):
    """``(text on one line, element)`` from the first selector that finds text, or ``(None, None)``."""
    for selector in _split_selector_list(selector_list):
        element = scope.select_one(selector)
        if element is None:
            continue
        raw = element.get("content", "") if element.name == "meta" else element_text(copy.copy(element))
        text = clean_text(raw).replace("\n", " ")
        if text:
            return text, element
    return None, None


def _body_text(scope, selector_list):
    """The cleaned text of every element the first matching selector finds (outermost ones only)."""
    for selector in _split_selector_list(selector_list):
        matches = scope.select(selector)
        matched = {id(element) for element in matches}
        outermost = [element for element in matches
                     if not any(id(parent) in matched for parent in element.parents)]
        text = clean_text("\n".join(element_text(element) for element in outermost))
        if text:
            return text
    return ""


def _read_article(scope, url, profile):
    """``(row, None)`` for one article in ``scope`` (a page or an item), or ``(None, reason)``."""
    title, title_element = _first_text(scope, profile.title)
    if not title:
        return None, "no title"
    date = _first_text(scope, profile.date)[0] if profile.date else None
    doomed = [title_element] if title_element is not scope else []
    for selector in profile.remove + (CAPTIONS,):
        doomed += scope.select(selector)
    for element in doomed:
        if not element.decomposed:
            element.decompose()
    # A heading inside the body that repeats the title (og:title pages) would give the title away.
    body = "\n".join(line for line in _body_text(scope, profile.body).split("\n") if line != title)
    if not body:
        return None, "no body"
    return {"url": url, "site": profile.name, "title": title, "body": body, "date": date}, None


def _parse(html_text):
    soup = BeautifulSoup(html_text, "html.parser")
    for element in soup.select(ALWAYS_REMOVED):
        if not element.decomposed:
            element.decompose()
    return soup


def _extract(html_text, page_url, profile):
    """``(rows, reason)``: the articles of a page, and why there are none when there are none."""
    page_url = urldefrag(page_url)[0]
    try:
        soup = _parse(html_text)
        if not profile.item:
            row, reason = _read_article(soup, page_url, profile)
            return ([row], None) if row else ([], reason)
        rows, reasons, used_ids = [], [], set()
        for index, item in enumerate(soup.select(profile.item)):
            # The first id in the item names it; an id an earlier item took cannot name two.
            element_id = item.get("id") or next((tag["id"] for tag in item.find_all(id=True)), None)
            fragment = quote(element_id) if element_id and element_id not in used_ids else f"item-{index}"
            used_ids.add(element_id)
            row, reason = _read_article(copy.copy(item), f"{page_url}#{fragment}", profile)
            if row:
                rows.append(row)
            else:
                reasons.append(reason)
        return rows, None if rows else (reasons[0] if reasons else "no items")
    except (ParserRejectedMarkup, RecursionError) as error:
        return [], f"unreadable HTML ({type(error).__name__})"


def extract_articles(html_text, page_url, profile):
    """The articles of a page as rows ``{"url", "site", "title", "body", "date"}`` (title and body needed)."""
    return _extract(html_text, page_url, profile)[0]


def find_article_links(html_text, page_url, profile):
    """Canonical absolute article URLs on a list page, without repeats, in page order.

    With ``article_url_pattern`` only links it matches are kept, shortened to
    the matched text (so ``&page=1`` and the like do not make one article
    look like two); without one, only links to the profile's own host.
    """
    pattern = re.compile(profile.article_url_pattern) if profile.article_url_pattern else None
    home = urlsplit(profile.base_url).netloc
    links = {}
    for anchor in _parse(html_text).select(profile.article_links):
        href = anchor.get("href")
        if not isinstance(href, str) or not href.strip():
            continue
        url = urldefrag(urljoin(page_url, href.strip()))[0]
        if pattern:
            match = pattern.search(url)
            if not match:
                continue
            url = urldefrag(urljoin(profile.base_url, match.group(0)))[0]
        elif urlsplit(url).netloc != home:
            continue
        if urlsplit(url).scheme in ("http", "https"):
            links.setdefault(url, None)
    return list(links)


# ---------------------------------------------------------------------------
# 4. The output file: JSON Lines, appended one whole line at a time.
# ---------------------------------------------------------------------------

ROW_KEYS = ("url", "site", "title", "body", "date")


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


# ---------------------------------------------------------------------------
# 5. The crawler.
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class CrawlReport:
    """What a crawl did: new articles saved, articles already in the file, and what went wrong."""
    saved: int
    skipped: int
    failed: list
    robots_blocked: list
    list_pages: int


@dataclasses.dataclass
class _Fetched:
    response: requests.Response | None  # None when the page could not be had
    status: int | None
    reason: str | None
    tries: int


MAX_RETRY_AFTER = 60.0  # seconds; a longer Retry-After is cut to this


def _origin(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _is_timeout(error):
    # requests reports a read timeout in the middle of a body as a ConnectionError around urllib3's
    return isinstance(error, requests.Timeout) or any(
        isinstance(argument, urllib3.exceptions.TimeoutError) for argument in error.args)


def _tries(count):
    return f"{count} {'try' if count == 1 else 'tries'}"


class Crawler:
    """Crawls the list pages of a profile, then their articles, into a JSON Lines file.

    ``delay``: seconds between the starts of two requests to one host;
    ``timeout``: connect and read timeouts; ``retries``: extra tries after a
    timeout, a connection error, HTTP 429 or 5xx, ``backoff * 2**n`` seconds
    apart; ``max_articles``: stop after that many new articles.
    """

    def __init__(self, profile, out_path, *, delay=1.0, timeout=10.0, retries=3, backoff=0.5,
                 user_agent=DEFAULT_USER_AGENT, progress=True, session=None, max_articles=None):
        if delay < 0 or backoff < 0:
            raise ValueError("delay and backoff must be >= 0")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if retries < 0 or int(retries) != retries:
            raise ValueError(f"retries must be a whole number >= 0, got {retries}")
        if max_articles is not None and max_articles < 1:
            raise ValueError(f"max_articles must be at least 1 (or None), got {max_articles}")
        self.profile = profile if isinstance(profile, SiteProfile) else load_profile(profile)
        self.out_path = pathlib.Path(out_path)
        self.failed_path = self.out_path.with_name(self.out_path.stem + ".failed.jsonl")
        self.delay, self.timeout, self.retries, self.backoff = delay, timeout, int(retries), backoff
        self.user_agent = user_agent
        self.progress = progress
        self.session = session
        self.max_articles = max_articles
        self._robots = {}       # origin → RobotFileParser
        self._host_delay = {}   # origin → seconds, when robots.txt asks for more than `delay`
        self._last_start = {}   # origin → time.monotonic() of the previous request's start

    # -- HTTP --------------------------------------------------------------

    def _wait_turn(self, origin):
        """Sleep until ``delay`` seconds have passed since the last request to this host started."""
        last = self._last_start.get(origin)
        if last is not None:
            pause = last + self._host_delay.get(origin, self.delay) - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        self._last_start[origin] = time.monotonic()

    def _fetch(self, url):
        """GET ``url`` politely, retrying what may pass (timeouts, lost connections, 429, 5xx)."""
        origin = _origin(url)
        for attempt in range(1, self.retries + 2):
            self._wait_turn(origin)
            wait = self.backoff * 2 ** (attempt - 1)
            try:
                response = self.session.get(url, headers={"User-Agent": self.user_agent},
                                            timeout=(self.timeout, self.timeout))
            except requests.RequestException as error:
                if _is_timeout(error):
                    reason = "timeout"
                elif isinstance(error, requests.ConnectionError):
                    reason = "connection error"
                else:  # a bad URL, too many redirects…: trying again will not help
                    detail = " ".join(str(error).split())[:200]
                    return _Fetched(None, None, f"{type(error).__name__}: {detail}", attempt)
                status = None
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return _Fetched(response, status, None, attempt)
                reason = f"HTTP {status}"
                if status != 429 and status < 500:
                    return _Fetched(None, status, reason, attempt)
                retry_after = response.headers.get("Retry-After", "").strip()
                if retry_after.isdigit():
                    wait = max(wait, min(float(retry_after), MAX_RETRY_AFTER))
            if attempt <= self.retries:
                time.sleep(wait)
        return _Fetched(None, status, f"{reason} after {_tries(attempt)}", attempt)

    def _allowed(self, url, report):
        """Whether robots.txt lets us fetch ``url`` (read once per host)."""
        origin = _origin(url)
        if origin not in self._robots:
            self._robots[origin] = self._read_robots(origin, report)
        return self._robots[origin].can_fetch(self.user_agent, url)

    def _read_robots(self, origin, report):
        """The host's rules, as urllib.robotparser reads them; an unreachable robots.txt forbids all."""
        robots_url = origin + "/robots.txt"
        rules = urllib.robotparser.RobotFileParser(robots_url)
        fetched = self._fetch(robots_url)
        if fetched.response is not None:
            rules.parse(fetched.response.content.decode("utf-8", errors="replace").splitlines())
            crawl_delay = rules.crawl_delay(self.user_agent)
            if crawl_delay is not None and float(crawl_delay) > self.delay:
                self._host_delay[origin] = float(crawl_delay)
        elif fetched.status in (401, 403):
            rules.disallow_all = True
        elif fetched.status is not None and 400 <= fetched.status < 500 and fetched.status != 429:
            rules.allow_all = True  # no robots.txt: everything is allowed
        else:  # the server is down or refuses to say: do not crawl it
            rules.disallow_all = True
            self._record_failure(report, robots_url,
                                 f"{fetched.reason}; robots.txt unknown, {origin} not crawled",
                                 fetched.tries)
        return rules

    def _get_page(self, url, report):
        """The decoded HTML of ``url``, or None (the failure is recorded)."""
        fetched = self._fetch(url)
        if fetched.response is None:
            self._record_failure(report, url, fetched.reason, fetched.tries)
            return None, fetched.tries
        media_type = fetched.response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media_type and not (media_type.startswith("text/") or "html" in media_type
                               or "xml" in media_type):
            self._record_failure(report, url, f"not an HTML page ({media_type})", fetched.tries)
            return None, fetched.tries
        if self.profile.encoding:
            encoding = _codec_name(self.profile.encoding)
            return fetched.response.content.decode(encoding, errors="replace"), fetched.tries
        return decode_html(fetched.response.content, _header_charset(fetched.response))[0], fetched.tries

    # -- the files ---------------------------------------------------------

    def _record_failure(self, report, url, reason, tries):
        failure = {"url": url, "reason": reason, "tries": tries}
        report.failed.append(failure)
        try:
            with open(self.failed_path, "a", encoding="utf-8") as side_file:
                side_file.write(json.dumps(failure, ensure_ascii=False) + "\n")
        except OSError as error:
            raise CrawlError(f"{self.failed_path}: cannot write ({error.strerror})") from None

    def _open_output(self):
        """Repair a torn last line, return the saved URLs and an append-only file descriptor."""
        rows, good_length, torn = _scan_jsonl(self.out_path)
        try:
            self.out_path.parent.mkdir(parents=True, exist_ok=True)
            if torn:
                os.truncate(self.out_path, good_length)
                print(f"note: {self.out_path}: removed a torn last line ({torn} bytes) left by an "
                      f"interrupted run; that article is crawled again", file=sys.stderr)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
            descriptor = os.open(self.out_path, flags, 0o644)
            if self.failed_path.exists():  # the side file lists the failures of the latest run
                self.failed_path.unlink()
        except OSError as error:
            raise CrawlError(f"{error.filename or self.out_path}: cannot write "
                             f"({error.strerror})") from None
        return {row["url"] for row in rows}, descriptor

    @staticmethod
    def _append(descriptor, row):
        """Write one whole line at once and fsync it: a kill leaves at most one torn line."""
        line = _jsonl_line(row)
        while line:
            line = line[os.write(descriptor, line):]
        os.fsync(descriptor)

    # -- the crawl ---------------------------------------------------------

    def _get_allowed_page(self, url, report):
        """``_get_page`` for a URL that robots.txt allows; a disallowed one is listed, not fetched."""
        if not self._allowed(url, report):
            report.robots_blocked.append(url)
            return None, 0
        return self._get_page(url, report)

    def _collect_links(self, pages, report):
        urls = {}
        for list_url in self.profile.list_page_urls(pages):
            html_text, _ = self._get_allowed_page(list_url, report)
            if html_text is None:
                continue
            report.list_pages += 1
            for url in find_article_links(html_text, list_url, self.profile):
                urls.setdefault(url, None)
        return list(urls)

    def _crawl_article(self, url, saved_urls, descriptor, report):
        if not self.profile.item and url in saved_urls:
            report.skipped += 1
            return
        html_text, tries = self._get_allowed_page(url, report)
        if html_text is None:
            return
        rows, reason = _extract(html_text, url, self.profile)
        if not rows:
            self._record_failure(report, url, reason, tries)
        for row in rows:
            if self.max_articles is not None and report.saved >= self.max_articles:
                return
            if row["url"] in saved_urls:
                report.skipped += 1
                continue
            self._append(descriptor, row)
            saved_urls.add(row["url"])
            report.saved += 1

    def crawl(self, pages=1):
        """Crawl ``pages`` list pages and their articles; returns a ``CrawlReport``."""
        if isinstance(pages, bool) or not isinstance(pages, int) or pages < 1:
            raise ValueError(f"pages must be a whole number >= 1, got {pages!r}")
        report = CrawlReport(saved=0, skipped=0, failed=[], robots_blocked=[], list_pages=0)
        saved_urls, descriptor = self._open_output()
        own_session = self.session is None
        if own_session:
            self.session = requests.Session()
        try:
            article_urls = self._collect_links(pages, report)
            with tqdm(article_urls, desc=self.profile.name, unit="article",
                      disable=not self.progress, file=sys.stderr) as bar:
                for url in bar:
                    if self.max_articles is not None and report.saved >= self.max_articles:
                        break
                    self._crawl_article(url, saved_urls, descriptor, report)
        finally:
            os.close(descriptor)
            if own_session:
                self.session.close()
                self.session = None
        return report


# ---------------------------------------------------------------------------
# 6. The command line: python -m labs.news_seq2seq crawl (or python -m dlcourse.crawler).
# ---------------------------------------------------------------------------

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
parser.add_argument("--user-agent", default=DEFAULT_USER_AGENT, help="the User-Agent header sent")
parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(config):
    if not config.out.lower().endswith(".jsonl"):
        raise cli.UsageError(f"--out must name a .jsonl file, got {config.out!r}")
    if not config.user_agent.strip():
        raise cli.UsageError("--user-agent must not be empty")
    profile = load_profile(config.profile, base_url=config.base_url)
    crawler = Crawler(profile, config.out, delay=config.delay, timeout=config.timeout,
                      retries=config.retries, user_agent=config.user_agent,
                      progress=not config.quiet, max_articles=config.max_articles)
    report = crawler.crawl(pages=config.pages)
    failed_note = f" (see {crawler.failed_path})" if report.failed else ""
    print(f"saved {report.saved} new articles, skipped {report.skipped} already saved, "
          f"{len(report.failed)} failed{failed_note}, {len(report.robots_blocked)} blocked by "
          f"robots.txt → {crawler.out_path}")
    return report


def main(argv=None):
    """``python -m labs.news_seq2seq crawl [flags]``; exit code 0, 1 (crawl or profile failed), 2 (bad flag)."""
    return cli.main(parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
