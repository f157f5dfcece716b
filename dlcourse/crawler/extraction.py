"""HTML → clean (title, body) text: what a profile's selectors find, without the page's clutter.

The model learns to write titles from bodies, so the body must not contain
the title, bylines, e-mail addresses, photo captions or copyright notices —
the model would learn those instead.  ``clean_text`` holds the rules, one
named regular expression each; ``element_text`` keeps paragraphs apart the
way a browser shows them.
"""
import copy
import re
import unicodedata
from urllib.parse import quote, urldefrag, urljoin, urlsplit

from bs4 import BeautifulSoup, NavigableString
from bs4.builder import ParserRejectedMarkup
from bs4.element import PreformattedString

from dlcourse.crawler.profiles import _split_selector_list

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
