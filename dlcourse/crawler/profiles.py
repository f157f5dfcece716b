"""Site profiles: which pages to fetch and which parts of a page are the title, the body and the date.

A site's layout is data, not code: a small JSON or YAML file of CSS
selectors (``SiteProfile``), checked when it is loaded so that a typo is one
line naming the file and the field, not an empty crawl an hour later.  The
built-in profiles live in ``dlcourse/site_profiles/`` (``PROFILE_DIR``).
"""
import dataclasses
import json
import pathlib
import re
from urllib.parse import urljoin, urlsplit

import soupsieve
import yaml

from dlcourse.crawler.decoding import _codec_name
from dlcourse.crawler.errors import CrawlError

# dlcourse/site_profiles/*.json, shipped as package data of dlcourse (setup.cfg), not of this package.
PROFILE_DIR = pathlib.Path(__file__).resolve().parent.parent / "site_profiles"
PROFILE_SUFFIXES = (".json", ".yaml", ".yml")


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
