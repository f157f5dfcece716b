"""Rebuild ``news_corpus.jsonl``, the offline (title, body) corpus of week 4, with the crawler.

The course crawls Korean news sites.  Offline, the same crawler
(``dlcourse.crawler``) reads real Korean pages from four Debian documentation
packages, served on 127.0.0.1 by this script:

* ``debian-faq-ko``: the Debian GNU/Linux FAQ in Korean — every section is a
  question (the title) and its answer (the body);
* ``gimp-help-ko``: the GIMP user manual in Korean — every section of a page
  is a heading (the title) and its text (the body); many pages of the manual
  are still in English and are left out (see ``keep``);
* ``gnome-user-docs``: the GNOME desktop help and the GNOME system
  administrator's guide in Korean.  They are Mallard XML (``*.page``), not
  HTML: this script turns every page into a small HTML page first
  (``mallard_to_html``), then the crawler reads it like any other site — the
  page's title and its text before the first section are one pair, every
  section's title and text another;
* ``libreoffice-help-ko``: the LibreOffice help in Korean — every page is its
  ``<h1>`` (the title) and its text (the body).  Most reference pages are only
  partly translated; pages with an English title (the Basic function
  reference: "Sgn Function") are left out, and a body needs more Korean than
  elsewhere (``MIN_BODY_SYLLABLES``).

The HTML packages have no page that links to every page (their tables of
contents are JavaScript or nested), so the script writes one list page per
package (``index.html``, links in file-name order) and the crawler starts
there, as it would on a news site's list page.

Run by hand, never by the labs (needs Debian's ``apt-get`` and ``dpkg-deb``):

    python data/make_news_corpus.py              # apt-get download, extract, serve, crawl
    python data/make_news_corpus.py --debs DIR   # .deb files downloaded before

It writes ``news_corpus.jsonl`` next to this file and refreshes ``SHA256SUMS``
(``make_bundles.write_checksums``).  With the same four packages (the .deb
sha256s in ``PACKAGES``) the output is byte-for-byte the same.
"""
import argparse
import collections
import functools
import hashlib
import html
import http.server
import json
import pathlib
import re
import subprocess
import sys
import tempfile
import threading
import unicodedata
import xml.etree.ElementTree as ElementTree

DATA_DIR = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(DATA_DIR.parent))
sys.path.insert(0, str(DATA_DIR))

from make_bundles import write_checksums  # noqa: E402

from dlcourse import crawler  # noqa: E402

OUTPUT = DATA_DIR / "news_corpus.jsonl"

# package → (built-in site profile, the package's version this corpus was made from, sha256 of the .deb)
PACKAGES = {
    "debian-faq-ko": ("debian_faq_ko", "11.1",
                      "1e010227c0e7497b836e195beedcda60f3e9b8856f19f211cbbdc5e91b4a5d7a"),
    "gimp-help-ko": ("gimp_help_ko", "2.10.34-2",
                     "c8094280b19d858cc32b6d9278d7d6126bf41c05f6fcc45d2c07ee41b68f750b"),
    "gnome-user-docs": ("gnome_help_ko", "43.0-2",
                        "0d635a840747958ca84da778b40d341f1155603851f922c9a171f5a181d6a39f"),
    "libreoffice-help-ko": ("libreoffice_help_ko", "4:7.4.7-1+deb12u14",
                            "7ef2d854e9ed58e6bf861cfa9fa2579555233f9df874baf327fcb07ccd190669"),
}

# The body is cut after this many characters (whole paragraphs): the model reads the first 100
# syllables, and the bundle stays small.  The two first packages keep the cap they were built with.
MAX_BODY_CHARACTERS = {"debian-faq-ko": 2000, "gimp-help-ko": 2000,
                       "gnome-user-docs": 800, "libreoffice-help-ko": 800}
# A pair needs this many Hangul syllables in its body (after the English paragraphs are dropped).
# Many LibreOffice pages are only partly translated: what is left of them under 50 syllables is
# often a menu path ("도구 - 언어 - 하이픈 넣기를 선택합니다.") or one sentence out of many.
MIN_BODY_SYLLABLES = {"debian-faq-ko": 30, "gimp-help-ko": 30,
                      "gnome-user-docs": 30, "libreoffice-help-ko": 50}
MIN_TITLE_SYLLABLES = 2
# A title that heads this many pairs of one package is a generic heading — a dialog tab or a
# section name ("일반", "옵션", "소개") — not the title of its text: those pairs are dropped.
GENERIC_TITLE_PAIRS = 3

# Section numbers in the headings: "1.1. ", "17장. ", "부 II. ", "A.3. ", "3장."
SECTION_NUMBER = re.compile(r"^\s*(?:부\s+[IVXLC]+\.|\d+\s*장\.|[A-Z](?:\.\d+)*\.|(?:\d+\.)+\d*)\s*")
HANGUL_SYLLABLE = re.compile("[가-힣]")
LATIN_LETTER = re.compile("[A-Za-z]")


def download(packages, folder):
    """``apt-get download`` the packages (the pinned versions if the archive still has them) into
    ``folder``; returns their .deb paths."""
    pinned = [f"{package}={PACKAGES[package][1]}" for package in packages]
    if subprocess.run(["apt-get", "download", *pinned], cwd=folder).returncode != 0:
        print("note: the pinned versions are not all in the archive any more (they stay on "
              "https://snapshot.debian.org/); downloading the current ones, the output will differ")
        subprocess.run(["apt-get", "download", *packages], cwd=folder, check=True)
    return find_debs(folder)


def find_debs(folder):
    debs = {}
    for package in PACKAGES:
        found = sorted(pathlib.Path(folder).glob(f"{package}_*.deb"))
        if not found:
            sys.exit(f"{folder}: no {package}_*.deb")
        debs[package] = found[-1]
    return debs


def check_version(package, deb):
    expected = PACKAGES[package][2]
    actual = hashlib.sha256(pathlib.Path(deb).read_bytes()).hexdigest()
    if actual != expected:
        print(f"note: {deb.name} is not the .deb the shipped corpus was made from "
              f"(sha256 {actual[:12]}…, expected {expected[:12]}…); the output will differ")


def extract(deb, root):
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(root):
    """A static web server for ``root`` on 127.0.0.1 (a free port), in a daemon thread."""
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---------------------------------------------------------------------------
# Mallard (GNOME help) → minimal HTML, and the list pages the crawler starts from
# ---------------------------------------------------------------------------

MALLARD = "{http://projectmallard.org/1.0/}"
MALLARD_IF = "{http://projectmallard.org/if/1.0/}"
# What Yelp shows by default: the GNOME (not classic) desktop in a browser-like viewer.
CONDITIONS_MET = {"platform:gnome", "target:html"}
NOT_SHOWN = {"info", "title", "subtitle", "desc", "links", "comment", "media", "credit"}
INLINE_JOINERS = {"keyseq": "+", "guiseq": " ▸ "}


def _name(element):
    """The local name of a Mallard element, ``"if:…"`` for a conditional, ``None`` for anything else."""
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag.startswith(MALLARD):
        return tag[len(MALLARD):]
    if tag.startswith(MALLARD_IF):
        return "if:" + tag[len(MALLARD_IF):]
    return None


def _condition_holds(test):
    """A Mallard conditional test: comma-separated alternatives of space-separated tokens, ``!`` negates."""
    if test is None:
        return True
    return any(all((token[1:] not in CONDITIONS_MET) if token.startswith("!") else (token in CONDITIONS_MET)
                   for token in alternative.split())
               for alternative in test.split(","))


def _shown(element):
    return _condition_holds(element.get(MALLARD_IF + "test"))


def _title_of(element, titles):
    title = next((child for child in element if _name(child) == "title"
                  and child.get("type") in (None, "main")), None)
    return " ".join(_inline(title, titles).split()) if title is not None else ""


def _inline(element, titles):
    """The text of an inline element (without its tail), as Yelp shows it."""
    name = _name(element)
    if name is None or name in NOT_SHOWN - {"title"} or not _shown(element):
        return ""
    if name in INLINE_JOINERS:
        parts = [_inline(child, titles) for child in element]
        return INLINE_JOINERS[name].join(part.strip() for part in parts if part.strip())
    text = element.text or ""
    for child in element:
        text += _inline(child, titles) + (child.tail or "")
    if name == "link" and not text.strip():  # an empty link shows the title of the page it names
        xref = element.get("xref", "")
        text = titles.get(xref) or titles.get(xref.split("#")[0]) or element.get("href", "")
    return text


def _paragraph(text, tag="p", attributes=""):
    text = " ".join(text.split())
    return f"<{tag}{attributes}>{html.escape(text, quote=False)}</{tag}>" if text else ""


def _choose(element):
    """The branch of an ``if:choose`` that is shown: the first true ``if:when``, else the rest."""
    for child in element:
        if _name(child) == "if:when" and _condition_holds(child.get("test")):
            return list(child)
    rest = [child for child in element if _name(child) not in ("if:when", "if:else")]
    otherwise = [grandchild for child in element if _name(child) == "if:else" for grandchild in child]
    return otherwise + rest


def _blocks(children, titles, depth, out):
    """HTML for a sequence of Mallard block elements, appended to ``out``."""
    for child in children:
        name = _name(child)
        if name is None or name in NOT_SHOWN or not _shown(child):
            continue
        if name == "p":
            out.append(_paragraph(_inline(child, titles)))
        elif name in ("screen", "code", "synopsis") and not any(_name(c) == "p" for c in child):
            out.append(f"<pre>{html.escape(_inline(child, titles).strip(), quote=False)}</pre>")
        elif name == "section":
            section_id = html.escape(child.get("id") or f"section-{len(out)}")
            heading = f"h{min(depth + 1, 6)}"
            out.append(f'<div class="section" id="{section_id}">')
            out.append(_paragraph(_title_of(child, titles), heading, ' class="title"'))
            _blocks(list(child), titles, depth + 1, out)
            out.append("</div>")
        elif name in ("list", "steps"):
            out.append("<ol>" if name == "steps" else "<ul>")
            for item in child:
                if _name(item) == "item" and _shown(item):
                    out.append("<li>")
                    _item(item, titles, depth, out)
                    out.append("</li>")
            out.append("</ol>" if name == "steps" else "</ul>")
        elif name == "terms":
            out.append("<dl>")
            for item in child:
                if _name(item) == "item" and _shown(item):
                    out.extend(_paragraph(_inline(title, titles), "dt")
                               for title in item if _name(title) == "title")
                    out.append("<dd>")
                    _item(item, titles, depth, out)
                    out.append("</dd>")
            out.append("</dl>")
        elif name in ("table", "thead", "tbody", "tfoot", "tr", "td", "th"):
            tag = {"thead": "tbody", "tfoot": "tbody"}.get(name, name)
            out.append(f"<{tag}>")
            if name in ("td", "th"):
                _item(child, titles, depth, out)
            else:
                _blocks(list(child), titles, depth, out)
            out.append(f"</{tag}>")
        elif name == "if:choose":
            _blocks(_choose(child), titles, depth, out)
        else:  # note, example, figure, listing, quote, if:if, item, … : a box of blocks
            out.append("<div>")
            if _title_of(child, titles):
                out.append(_paragraph(_title_of(child, titles)))
            _item(child, titles, depth, out)
            out.append("</div>")


def _item(element, titles, depth, out):
    """A container's blocks; text written straight into it (``<item>text</item>``) is a paragraph."""
    if (element.text or "").strip():
        out.append(_paragraph(element.text))
    _blocks(list(element), titles, depth, out)


def mallard_titles(pages):
    """``{"page-id": title, "page-id#section-id": title}`` for every page of a guide (for empty links)."""
    titles = {}
    for page in pages:
        titles[page.get("id")] = _title_of(page, {})
        for section in page.iter(MALLARD + "section"):
            if section.get("id"):
                titles[f"{page.get('id')}#{section.get('id')}"] = _title_of(section, {})
    return titles


def mallard_to_html(page, titles):
    """A Mallard ``<page>`` element as a small HTML page: ``div.page`` with an ``h1``, then its
    paragraphs, lists and tables, each ``<section>`` a nested ``div.section`` with its heading.
    The ``<info>`` block (links, credits, the one-line description) is left out, as Yelp leaves it
    out of the page it shows."""
    titles = {**titles, **{"#" + key.split("#", 1)[1]: value for key, value in titles.items()
                           if key.startswith(f"{page.get('id')}#")}}
    title = _title_of(page, titles)
    out = [f'<div class="page" id="{html.escape(page.get("id") or "page")}">',
           _paragraph(title, "h1", ' class="title"')]
    _blocks(list(page), titles, 1, out)
    out.append("</div>")
    return ('<!DOCTYPE html>\n<html lang="ko"><head><meta charset="utf-8">'
            f"<title>{html.escape(title, quote=False)}</title></head><body>\n"
            + "\n".join(part for part in out if part) + "\n</body></html>\n")


def convert_mallard(folder):
    """Write ``X.page.html`` next to every ``X.page`` under ``folder`` (one guide per sub-folder)."""
    for guide in sorted(path for path in pathlib.Path(folder).iterdir() if path.is_dir()):
        sources = sorted(guide.glob("*.page"))
        pages = [ElementTree.parse(source).getroot() for source in sources]
        titles = mallard_titles(pages)
        for source, page in zip(sources, pages):
            source.with_name(source.name + ".html").write_text(mallard_to_html(page, titles),
                                                               encoding="utf-8", newline="\n")


def write_list_page(folder, pattern):
    """``folder/index.html``: one link per file matching ``pattern`` under ``folder``, sorted by path."""
    folder = pathlib.Path(folder)
    links = [path.relative_to(folder).as_posix() for path in sorted(folder.glob(pattern))]
    (folder / "index.html").write_text(
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>index</title></head><body><ul>\n'
        + "".join(f'<li><a href="{html.escape(link)}">{html.escape(link)}</a></li>\n' for link in links)
        + "</ul></body></html>\n", encoding="utf-8", newline="\n")


def prepare(package, share):
    """Make the pages of ``package`` (extracted under ``share`` = ``…/usr/share``) crawlable."""
    if package == "gnome-user-docs":
        convert_mallard(share / "help" / "ko")
        write_list_page(share / "help" / "ko", "*/*.page.html")
    elif package == "libreoffice-help-ko":
        write_list_page(share / "libreoffice" / "help" / "ko", "text/**/*.html")


# ---------------------------------------------------------------------------
# From crawled rows to corpus pairs
# ---------------------------------------------------------------------------

def strip_section_number(title):
    return SECTION_NUMBER.sub("", title).strip()


def normalise(text):
    return unicodedata.normalize("NFC", text.replace("\xa0", " "))


def shorten(body, limit=MAX_BODY_CHARACTERS["debian-faq-ko"]):
    """The first paragraphs of ``body`` that fit in ``limit`` characters (at least one, cut)."""
    kept, length = [], 0
    for paragraph in body.split("\n"):
        if kept and length + len(paragraph) + 1 > limit:
            break
        kept.append(paragraph)
        length += len(paragraph) + 1
    return "\n".join(kept)[:limit]


def korean_share(text):
    """Hangul syllables as a fraction of the letters (Hangul + Latin) of ``text``."""
    hangul, latin = len(HANGUL_SYLLABLE.findall(text)), len(LATIN_LETTER.findall(text))
    return hangul / (hangul + latin) if hangul + latin else 0.0


def korean_paragraphs(body):
    """The paragraphs of ``body`` that are Korean: the GIMP manual is partly translated, and an
    English paragraph left in a Korean section would teach the model nothing about Korean titles."""
    return "\n".join(paragraph for paragraph in body.split("\n") if korean_share(paragraph) >= 0.25)


def keep(title, body, source=None):
    """A pair is kept when both halves are Korean: the title has at least two Hangul syllables
    and the (Korean paragraphs of the) body at least 30 (``MIN_BODY_SYLLABLES`` of ``source``)."""
    minimum = MIN_BODY_SYLLABLES.get(source, 30)
    return (len(HANGUL_SYLLABLE.findall(title)) >= MIN_TITLE_SYLLABLES
            and len(HANGUL_SYLLABLE.findall(body)) >= minimum)


def to_pair(row, package, server_url):
    """A crawled row as a corpus row: the URL becomes the page's path inside its package
    (a converted Mallard page ``X.page.html`` is named by its source, ``X.page``)."""
    path = re.sub(r"\.page\.html(?=#|$)", ".page", row["url"][len(server_url):])
    return {"source": package, "url": f"{package}:/usr/share{path}",
            "title": strip_section_number(normalise(row["title"])),
            "body": shorten(korean_paragraphs(normalise(row["body"])), MAX_BODY_CHARACTERS[package])}


def crawl_package(package, root, work_dir):
    profile_name = PACKAGES[package][0]
    server = serve(root)
    server_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        profile = crawler.load_profile(profile_name, base_url=server_url)
        output = pathlib.Path(work_dir) / f"{package}.jsonl"
        report = crawler.Crawler(profile, output, delay=0.0, timeout=10.0).crawl(pages=1)
        print(f"{package}: {report.saved} sections crawled, {len(report.failed)} failed")
        return [to_pair(row, package, server_url) for row in crawler.read_articles(output)]
    finally:
        server.shutdown()


def select_pairs(pairs, source, seen=None):
    """The crawled pairs of one package that go into the corpus, in crawl order: the Korean ones
    (``keep``), each (title, body) once (``seen`` is shared between packages), one pair per title
    on a page (the first), and no pair whose title is generic (``GENERIC_TITLE_PAIRS``)."""
    seen = set() if seen is None else seen
    kept = []
    for pair in pairs:
        keys = [("pair", pair["title"], pair["body"]), ("page", pair["url"].split("#")[0], pair["title"])]
        if keep(pair["title"], pair["body"], source) and not any(key in seen for key in keys):
            seen.update(keys)
            kept.append(pair)
    uses = collections.Counter(pair["title"] for pair in kept)
    return [pair for pair in kept if uses[pair["title"]] < GENERIC_TITLE_PAIRS]


def build_corpus(debs, work_dir):
    pairs, seen = [], set()
    for package, deb in debs.items():
        check_version(package, deb)
        root = pathlib.Path(work_dir) / package
        extract(deb, root)
        prepare(package, root / "usr" / "share")
        pairs += select_pairs(crawl_package(package, root / "usr" / "share", work_dir), package, seen)
    return sorted(pairs, key=lambda pair: pair["url"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debs", help="a folder with the .deb files (default: apt-get download)")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as work_dir:
        debs = find_debs(arguments.debs) if arguments.debs else download(PACKAGES, work_dir)
        pairs = build_corpus(debs, work_dir)
    with OUTPUT.open("w", encoding="utf-8", newline="\n") as output:
        for pair in pairs:
            output.write(json.dumps(pair, ensure_ascii=False) + "\n")
    counts = {package: sum(pair["source"] == package for pair in pairs) for package in PACKAGES}
    print(f"wrote {OUTPUT.name}: {len(pairs)} pairs {counts}, {OUTPUT.stat().st_size} bytes")
    write_checksums()


if __name__ == "__main__":
    main()
