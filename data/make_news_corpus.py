"""Rebuild ``news_corpus.jsonl``, the offline (title, body) corpus of week 4, with the crawler.

The course crawls Korean news sites.  Offline, the same crawler
(``dlcourse.crawler``) reads real Korean HTML pages from two Debian
documentation packages, served on 127.0.0.1 by this script:

* ``debian-faq-ko``: the Debian GNU/Linux FAQ in Korean — every section is a
  question (the title) and its answer (the body);
* ``gimp-help-ko``: the GIMP user manual in Korean — every section of a page
  is a heading (the title) and its text (the body); many pages of the manual
  are still in English and are left out (see ``keep``).

Run by hand, never by the labs (needs Debian's ``apt-get`` and ``dpkg-deb``):

    python data/make_news_corpus.py              # apt-get download, extract, serve, crawl
    python data/make_news_corpus.py --debs DIR   # .deb files downloaded before

It writes ``news_corpus.jsonl`` next to this file and refreshes ``SHA256SUMS``
(``make_bundles.write_checksums``).  With the same two packages the output is
byte-for-byte the same.
"""
import argparse
import functools
import hashlib
import http.server
import json
import pathlib
import re
import subprocess
import sys
import tempfile
import threading
import unicodedata

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
}

MAX_BODY_CHARACTERS = 2000  # keeps the bundle small; the model reads the first 100 tokens

# Section numbers in the headings: "1.1. ", "17장. ", "부 II. ", "A.3. ", "3장."
SECTION_NUMBER = re.compile(r"^\s*(?:부\s+[IVXLC]+\.|\d+\s*장\.|[A-Z](?:\.\d+)*\.|(?:\d+\.)+\d*)\s*")
HANGUL_SYLLABLE = re.compile("[가-힣]")
LATIN_LETTER = re.compile("[A-Za-z]")


def download(packages, folder):
    """``apt-get download`` the packages into ``folder``; returns their .deb paths."""
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


def strip_section_number(title):
    return SECTION_NUMBER.sub("", title).strip()


def normalise(text):
    return unicodedata.normalize("NFC", text.replace("\xa0", " "))


def shorten(body, limit=MAX_BODY_CHARACTERS):
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


def keep(title, body):
    """A pair is kept when both halves are Korean: the title has at least two Hangul syllables
    and the (Korean paragraphs of the) body at least 30."""
    return len(HANGUL_SYLLABLE.findall(title)) >= 2 and len(HANGUL_SYLLABLE.findall(body)) >= 30


def to_pair(row, package, server_url):
    """A crawled row as a corpus row: the URL becomes the page's path inside its package."""
    path = row["url"][len(server_url):]
    return {"source": package, "url": f"{package}:/usr/share{path}",
            "title": strip_section_number(normalise(row["title"])),
            "body": shorten(korean_paragraphs(normalise(row["body"])))}


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


def build_corpus(debs, work_dir):
    pairs, seen = [], set()
    for package, deb in debs.items():
        check_version(package, deb)
        root = pathlib.Path(work_dir) / package
        extract(deb, root)
        for pair in crawl_package(package, root / "usr" / "share", work_dir):
            key = (pair["title"], pair["body"])
            if keep(pair["title"], pair["body"]) and key not in seen:
                seen.add(key)
                pairs.append(pair)
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
    print(f"wrote {OUTPUT.name}: {len(pairs)} pairs {counts}")
    write_checksums()


if __name__ == "__main__":
    main()
