"""The news crawler against a real HTTP server on 127.0.0.1 (no other network).

The server lives in the test process and logs every request, so the tests
can check what the crawler did *not* do as well: fetch a URL robots.txt
forbids, ask again for an article it already has, or hurry.
"""
import http.server
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest

from dlcourse import cli, crawler
from dlcourse.crawler import (
    Crawler,
    CrawlError,
    SiteProfile,
    clean_text,
    decode_html,
    extract_articles,
    find_article_links,
    load_profile,
    read_articles,
)
from dlcourse.data import DataError

REPO = pathlib.Path(__file__).resolve().parent.parent
PROG = "python -m labs.news_seq2seq crawl"


# ---------------------------------------------------------------------------
# An in-memory web site on 127.0.0.1
# ---------------------------------------------------------------------------

class Site:
    """Routes ``path → (status, headers, body)`` or ``path → callable(site) → that``; logs requests."""

    def __init__(self, routes):
        self.routes = routes
        self.log = []  # (path, time.monotonic(), User-Agent)
        self.sent = {}  # path → bytes of a Stream body written before the client hung up
        self.lock = threading.Lock()
        self.url = None

    def hits(self, path):
        return sum(1 for logged, _, _ in self.log if logged == path)

    def paths(self):
        return [path for path, _, _ in self.log]


class Stream:
    """A body of ``total`` bytes (one article page), sent piece by piece until it ends or the client hangs up.

    The handler adds no Content-Length: the route's headers say what they
    like (the truth, nothing, or a lie).  ``chunked`` frames the pieces as
    chunked transfer encoding.  ``site.sent[path]`` counts the bytes the
    client let through.
    """
    PIECE = 64 * 1024

    def __init__(self, total, chunked=False):
        self.total, self.chunked = total, chunked

    def send(self, stream, site, path):
        head = "<html><body><h1 class='title'>끝없는 기사</h1><div class='content'><p>".encode()
        filler = ("가나다 라마바사. " * (self.PIECE // 24)).encode()  # plain words: cheap to parse, if read
        site.sent[path] = 0
        count, rest = divmod(self.total - len(head), len(filler))
        for piece in filter(None, [head] + [filler] * count + [b" " * rest]):  # exactly ``total`` bytes
            stream.write(b"%x\r\n%s\r\n" % (len(piece), piece) if self.chunked else piece)
            site.sent[path] += len(piece)
        if self.chunked:
            stream.write(b"0\r\n\r\n")


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that timed out and hung up is expected here


def make_handler(site):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            with site.lock:
                site.log.append((self.path, time.monotonic(), self.headers.get("User-Agent")))
            route = site.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"not found"))
            status, headers, body = route(site) if callable(route) else route
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if not isinstance(body, Stream):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if isinstance(body, Stream):
                    body.send(self.wfile, site, self.path)
                else:
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    return Handler


def start_site(routes):
    """A site on a free port of 127.0.0.1 (``site.url``), served by a daemon thread."""
    site = Site(routes)
    site.server = QuietServer(("127.0.0.1", 0), make_handler(site))
    threading.Thread(target=site.server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    site.url = f"http://127.0.0.1:{site.server.server_address[1]}"
    return site


def stop_site(site):
    site.server.shutdown()
    site.server.server_close()


@pytest.fixture
def serve():
    """``serve(routes)`` starts a site; all are stopped after the test."""
    sites = []

    def start(routes):
        sites.append(start_site(routes))
        return sites[-1]

    yield start
    for site in sites:
        stop_site(site)


def html(status=200, text="", charset="utf-8", content_type="text/html"):
    """A route answering ``text`` encoded in ``charset``; the header declares it only if asked."""
    return (status, {"Content-Type": content_type}, text.encode(charset))


def page(title, paragraphs, date="2024-05-01", meta=""):
    body = "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
    return (f"<html><head>{meta}<title>테스트 뉴스</title></head><body>"
            f"<div class='menu'><a href='/'>홈</a></div>"
            f"<h1 class='title'>{title}</h1><span class='date'>{date}</span>"
            f"<div class='content'>{body}</div></body></html>")


def list_page(*hrefs):
    links = "".join(f"<li><a href='{href}'>기사</a></li>" for href in hrefs)
    return f"<html><body><ul class='news'>{links}</ul><a href='/news/999'>광고</a></body></html>"


NEWS_PROFILE = {
    "name": "testnews",
    "base_url": "http://example.invalid",
    "list_url": "/list?page={page}",
    "article_links": "ul.news a",
    "article_url_pattern": r"/(?:news|private)/\d+",
    "title": "h1.title",
    "body": "div.content",
    "date": "span.date",
}


def news_profile(site, **changes):
    return SiteProfile.from_dict({**NEWS_PROFILE, **changes}).with_base_url(site.url)


ROBOTS = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n")

# cp949-only syllables ('뷁', '똠', '햏', '쌰'): an EUC-KR decoder would fail on them.
EUCKR_ARTICLES = {
    "/news/1": ("뷁 해킹 그룹, 공공기관 서버 공격", ["똠방각하 해킹 그룹이 공공기관 서버를 공격했다.",
                                           "보안 업계는 햏 수준의 대응이 필요하다고 밝혔다."]),
    "/news/2": ("똠 랜섬웨어 주의보 발령", ["새로운 랜섬웨어가 기업 내부망을 노리고 있다.",
                                    "쌰 전문가들은 백업을 권고했다."]),
    "/news/3": ("햏 피싱 메일 급증", ["택배 조회를 가장한 피싱 메일이 급증했다고 보안업체가 밝혔다.",
                               "뷁 메일의 링크를 누르면 악성코드가 설치되며 금융 정보를 빼낸다.",
                               "전문가들은 출처가 불분명한 메일의 첨부파일을 열지 말라고 당부했다."]),
}
UTF8_ARTICLE = ("클라우드 보안 가이드 발표", ["정부가 클라우드 보안 가이드를 발표했다.",
                                      "가이드는 접근 통제와 암호화를 다룬다."])


def euckr_routes():
    (t1, p1), (t2, p2), (t3, p3) = (EUCKR_ARTICLES[f"/news/{n}"] for n in (1, 2, 3))
    meta = '<meta http-equiv="Content-Type" content="text/html; charset=euc-kr">'
    return {
        # the charset only in the HTTP header
        "/news/1": html(text=page(t1, p1), charset="cp949", content_type="text/html; charset=euc-kr"),
        # only in <meta>
        "/news/2": html(text=page(t2, p2, meta=meta), charset="cp949"),
        # declared nowhere
        "/news/3": html(text=page(t3, p3), charset="cp949"),
    }


def test_the_test_pages_really_need_cp949():
    # A strict EUC-KR decoder cannot read these bytes; CP949 can.
    for title, paragraphs in EUCKR_ARTICLES.values():
        raw = (title + "".join(paragraphs)).encode("cp949")
        with pytest.raises(UnicodeDecodeError):
            raw.decode("euc_kr")


# ---------------------------------------------------------------------------
# A whole crawl: encodings, robots.txt, retries, timeouts, 404, broken pages
# ---------------------------------------------------------------------------

def flaky(statuses):
    """A route that answers the given statuses in turn (then the last one for ever)."""
    calls = []

    def respond(site):
        calls.append(1)
        status = statuses[min(len(calls), len(statuses)) - 1]
        if status != 200:
            return html(status, "busy")
        return html(text=page("재시도 끝에 받은 기사", ["세 번째 요청에서 받은 본문이다."]),
                    content_type="text/html; charset=utf-8")
    return respond


def slow(site):
    time.sleep(2.0)
    return html(text=page("느린 기사", ["너무 늦게 오는 본문."]), content_type="text/html; charset=utf-8")


def news_routes():
    utf8 = "text/html; charset=utf-8"
    return {
        "/robots.txt": ROBOTS,
        "/list?page=1": html(text=list_page("/news/1?ref=list", "/news/1", "/news/2", "/news/3",
                                            "/news/4", "/news/5#top"), content_type=utf8),
        "/list?page=2": html(text=list_page("/news/6", "/news/7", "/news/8", "/news/9", "/news/10",
                                            "/news/11", "/private/1", "/news/1"), content_type=utf8),
        **euckr_routes(),
        "/news/4": html(text=page(UTF8_ARTICLE[0], UTF8_ARTICLE[1] + [
            "[보안뉴스 홍길동 기자] 관련 문의는 gildong@example.com 으로.",
            "▲ 가이드 표지",
            "&lt;저작권자ⓒ 보안뉴스 무단전재-재배포금지&gt;"]), content_type=utf8),
        "/news/5": flaky([429, 500, 200]),
        "/news/6": slow,
        # /news/7 is missing: 404
        "/news/8": html(text="<html><body><div class='content'><p>제목 없는 <b>기사<p>닫히지 않은 태그",
                        content_type=utf8),
        "/news/9": html(text="<html><h1 class='title'>깨진 HTML 기사</h1><div class='content'><p>첫 문단"
                             "<p>둘째 <b>굵게<p>셋째 문단</span></div><div", content_type=utf8),
        "/news/10": html(text=page("본문 없는 기사", []), content_type=utf8),
        "/news/11": (500, {"Content-Type": "text/plain"}, b"down"),
        "/private/1": html(text=page("비밀", ["보이면 안 된다."]), content_type=utf8),
    }


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    """One crawl of the news site (shared by the tests that read its results): ``(site, out, report)``."""
    site = start_site(news_routes())
    out = tmp_path_factory.mktemp("crawl") / "articles.jsonl"
    report = Crawler(news_profile(site), out, delay=0, timeout=0.5, retries=2, backoff=0.01,
                     progress=False).crawl(pages=2)
    yield site, out, report
    stop_site(site)


def by_path(rows, site):
    return {row["url"][len(site.url):]: row for row in rows}


def test_crawl_saves_every_good_article_once_with_korean_text_intact(crawled):
    site, out, report = crawled
    rows = by_path(read_articles(out), site)
    assert sorted(rows) == ["/news/1", "/news/2", "/news/3", "/news/4", "/news/5", "/news/9"]
    assert report.saved == 6 and report.skipped == 0 and report.list_pages == 2
    for path, (title, paragraphs) in EUCKR_ARTICLES.items():
        assert rows[path]["title"] == title
        assert rows[path]["body"] == "\n".join(paragraphs)
    assert "\ufffd" not in out.read_text(encoding="utf-8")
    assert rows["/news/1"]["date"] == "2024-05-01" and rows["/news/1"]["site"] == "testnews"
    assert list(rows["/news/1"]) == ["url", "site", "title", "body", "date"]


def test_crawl_cleans_bylines_captions_and_copyright(crawled):
    site, out, _ = crawled
    row = by_path(read_articles(out), site)["/news/4"]
    assert row["body"] == "\n".join(UTF8_ARTICLE[1] + ["관련 문의는 으로."])


def test_output_lines_are_plain_utf8_json(crawled):
    _, out, _ = crawled
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 7
    assert "뷁".encode() in out.read_bytes()  # ensure_ascii=False: readable, not \\uXXXX
    for line in lines[:-1]:
        assert isinstance(json.loads(line.decode("utf-8")), dict)


def test_robots_txt_is_read_once_and_obeyed(crawled):
    site, _, report = crawled
    assert site.hits("/robots.txt") == 1
    assert report.robots_blocked == [f"{site.url}/private/1"]
    assert not [path for path in site.paths() if path.startswith("/private")]


def test_every_request_names_the_crawler(crawled):
    site, _, _ = crawled
    assert {agent for _, _, agent in site.log} == {crawler.DEFAULT_USER_AGENT}
    assert crawler.DEFAULT_USER_AGENT.startswith("dlcourse-crawler/")


def test_429_and_500_are_retried_until_the_page_comes(crawled):
    site, out, _ = crawled
    assert site.hits("/news/5") == 3
    assert by_path(read_articles(out), site)["/news/5"]["title"] == "재시도 끝에 받은 기사"


def test_failures_are_recorded_and_the_crawl_goes_on(crawled):
    site, out, report = crawled
    failed = {failure["url"][len(site.url):]: failure for failure in report.failed}
    assert sorted(failed) == ["/news/10", "/news/11", "/news/6", "/news/7", "/news/8"]
    assert failed["/news/6"]["reason"] == "timeout after 3 tries" and failed["/news/6"]["tries"] == 3
    assert failed["/news/7"] == {"url": f"{site.url}/news/7", "reason": "HTTP 404", "tries": 1}
    assert site.hits("/news/7") == 1
    assert failed["/news/11"]["reason"] == "HTTP 500 after 3 tries" and site.hits("/news/11") == 3
    assert failed["/news/8"]["reason"] == "no title"
    assert failed["/news/10"]["reason"] == "no body"
    # the pages after the slow one were still crawled
    assert site.paths().index("/news/9") > site.paths().index("/news/6")
    side_file = out.with_name("articles.failed.jsonl")
    assert [json.loads(line) for line in side_file.read_text(encoding="utf-8").splitlines()] == report.failed


def test_malformed_html_still_gives_its_text(crawled):
    site, out, _ = crawled
    row = by_path(read_articles(out), site)["/news/9"]
    assert row["title"] == "깨진 HTML 기사"
    assert row["body"] == "첫 문단\n둘째 굵게\n셋째 문단"


def test_list_links_are_canonical_and_unique():
    profile = SiteProfile.from_dict(NEWS_PROFILE).with_base_url("http://127.0.0.1:8123")
    text = list_page("/news/1?ref=list", "/news/2#comments", "/news/1", "/about", "/news/2",
                     "https://elsewhere.example/news/3")
    links = find_article_links(text, "http://127.0.0.1:8123/list?page=1", profile)
    assert links == [f"http://127.0.0.1:8123/news/{n}" for n in (1, 2, 3)]


# ---------------------------------------------------------------------------
# Politeness
# ---------------------------------------------------------------------------

def test_requests_to_one_host_are_delay_apart(serve, tmp_path):
    site = serve({"/list?page=1": html(text=list_page("/news/1", "/news/2", "/news/3")),
                  **euckr_routes()})  # no robots.txt: 404, everything allowed
    Crawler(news_profile(site), tmp_path / "out.jsonl", delay=0.3, progress=False).crawl()
    times = [moment for _, moment, _ in site.log]
    assert site.paths()[:2] == ["/robots.txt", "/list?page=1"] and len(times) == 5
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    # The crawler spaces the *starts* of its requests; the server sees arrivals, each after a latency
    # that a loaded machine stretches by up to ~0.1 s.  Jitter moves one gap but not the whole span.
    assert times[-1] - times[0] >= 4 * 0.3 - 0.1, gaps
    assert min(gaps) >= 0.15, gaps  # without the delay: milliseconds


def test_crawl_delay_in_robots_txt_slows_the_crawler_down(serve, tmp_path):
    site = serve({"/robots.txt": (200, {}, b"User-agent: *\nCrawl-delay: 1\n"),
                  "/list?page=1": html(text=list_page("/news/1")), **euckr_routes()})
    report = Crawler(news_profile(site), tmp_path / "out.jsonl", delay=0, progress=False).crawl()
    times = [moment for _, moment, _ in site.log]
    assert report.saved == 1 and len(times) == 3
    # The crawler spaces the starts of its requests 1 s apart; the server sees them arrive after a
    # latency that varies by up to ~0.1 s on a loaded machine (0.978 s seen in CI), and without the
    # Crawl-delay (delay=0) they would arrive milliseconds apart.
    assert times[-1] - times[0] >= 2 * 1.0 - 0.1
    assert min(later - earlier for earlier, later in zip(times, times[1:])) >= 0.75


@pytest.mark.parametrize("status, allowed", [(404, True), (403, False), (503, False)])
def test_robots_txt_status_decides(serve, tmp_path, status, allowed):
    site = serve({"/robots.txt": (status, {}, b"no"),
                  "/list?page=1": html(text=list_page("/news/1")), **euckr_routes()})
    report = Crawler(news_profile(site), tmp_path / "out.jsonl", delay=0, retries=1, backoff=0.01,
                     progress=False).crawl()
    assert ("/list?page=1" in site.paths()) is allowed
    assert report.saved == (1 if allowed else 0)
    if not allowed:
        assert report.robots_blocked == [f"{site.url}/list?page=1"]
    unavailable = [failure for failure in report.failed if failure["url"].endswith("/robots.txt")]
    assert bool(unavailable) is (status == 503)  # a server error is written down; 403 is an answer
    assert site.hits("/robots.txt") == (2 if status == 503 else 1)


# ---------------------------------------------------------------------------
# Resuming: nothing lost, nothing twice
# ---------------------------------------------------------------------------

def test_a_second_run_skips_what_is_saved_without_fetching_it(serve, tmp_path):
    site = serve({"/list?page=1": html(text=list_page("/news/1", "/news/2", "/news/3")),
                  **euckr_routes()})
    out = tmp_path / "out.jsonl"
    first = Crawler(news_profile(site), out, delay=0, progress=False, max_articles=2).crawl()
    second = Crawler(news_profile(site), out, delay=0, progress=False).crawl()
    assert (first.saved, second.saved, second.skipped) == (2, 1, 2)
    assert [site.hits(f"/news/{n}") for n in (1, 2, 3)] == [1, 1, 1]
    assert [row["url"] for row in read_articles(out)] == [f"{site.url}/news/{n}" for n in (1, 2, 3)]


def test_a_torn_last_line_is_repaired_on_the_next_run(serve, tmp_path, capsys):
    site = serve({"/list?page=1": html(text=list_page("/news/1", "/news/2", "/news/3")),
                  **euckr_routes()})
    out = tmp_path / "out.jsonl"
    Crawler(news_profile(site), out, delay=0, progress=False, max_articles=1).crawl()
    with open(out, "ab") as stream:  # what a kill in the middle of a write would leave
        stream.write(f'{{"url": "{site.url}/news/2", "site": "testnews", "title": "똠'.encode())
    assert [row["url"] for row in read_articles(out)] == [f"{site.url}/news/1"]
    report = Crawler(news_profile(site), out, delay=0, progress=False).crawl()
    assert "torn last line" in capsys.readouterr().err
    rows = read_articles(out)
    assert [row["url"] for row in rows] == [f"{site.url}/news/{n}" for n in (1, 2, 3)]
    assert rows[1]["title"] == EUCKR_ARTICLES["/news/2"][0]
    assert report.saved == 2 and report.skipped == 1
    assert out.read_bytes().endswith(b"\n")
    assert all(json.loads(line) for line in out.read_text(encoding="utf-8").splitlines())


def test_a_bad_line_before_the_end_is_an_error_not_a_repair(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"url": "a"}\nnot json\n{"url": "b"}\n', encoding="utf-8")
    with pytest.raises(CrawlError, match=r"out\.jsonl: line 2 is not valid JSON"):
        read_articles(out)
    with pytest.raises(CrawlError, match="line 2"):
        Crawler(SiteProfile.from_dict(NEWS_PROFILE), out, progress=False).crawl()
    assert out.read_text(encoding="utf-8").count("\n") == 3  # left as it was


SLOW_ARTICLES = 12


def slow_article(number):
    def respond(site):
        time.sleep(0.1)
        return html(text=page(f"기사 {number}번 뷁", [f"본문 {number} 첫 문단.", f"본문 {number} 둘째 문단."]),
                    charset="cp949", content_type="text/html; charset=euc-kr")
    return respond


def test_killing_the_crawler_and_running_it_again_loses_nothing(serve, tmp_path):
    hrefs = [f"/news/{number}" for number in range(1, SLOW_ARTICLES + 1)]
    site = serve({"/robots.txt": ROBOTS, "/list?page=1": html(text=list_page(*hrefs)),
                  **{href: slow_article(number) for number, href in enumerate(hrefs, start=1)}})
    profile_file = tmp_path / "testnews.json"
    profile_file.write_text(json.dumps(NEWS_PROFILE), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "dlcourse.crawler", "--profile", str(profile_file),
               "--base-url", site.url, "--delay", "0", "--out", str(out), "--quiet"]
    environment = {**os.environ, "PYTHONPATH": str(REPO)}

    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    saved_before = len(read_articles(out))
    assert 3 <= saved_before < SLOW_ARTICLES  # the kill landed in the middle of the crawl

    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert f"saved {SLOW_ARTICLES - saved_before} new articles" in finished.stdout
    rows = read_articles(out)
    urls = [row["url"] for row in rows]
    assert sorted(urls) == sorted(f"{site.url}{href}" for href in hrefs)
    assert len(urls) == len(set(urls)) == SLOW_ARTICLES
    for row in rows:
        number = int(row["url"].rsplit("/", 1)[1])
        assert row["title"] == f"기사 {number}번 뷁"
        assert row["body"] == f"본문 {number} 첫 문단.\n본문 {number} 둘째 문단."


# ---------------------------------------------------------------------------
# One crawl per output file
# ---------------------------------------------------------------------------

def start_slow_crawl(site, tmp_path, out):
    """``python -m dlcourse.crawler`` on ``site`` in a child process, returned once it has saved an article."""
    profile_file = tmp_path / "testnews.json"
    profile_file.write_text(json.dumps(NEWS_PROFILE), encoding="utf-8")
    command = [sys.executable, "-m", "dlcourse.crawler", "--profile", str(profile_file),
               "--base-url", site.url, "--delay", "0", "--out", str(out), "--quiet"]
    process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(REPO)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 1:
            return process
        time.sleep(0.02)
    process.kill()
    process.wait(timeout=30)
    raise AssertionError("the first crawl did not get going")


def slow_site(serve, count=SLOW_ARTICLES):
    hrefs = [f"/news/{number}" for number in range(1, count + 1)]
    return serve({"/robots.txt": ROBOTS, "/list?page=1": html(text=list_page(*hrefs)),
                  **{href: slow_article(number) for number, href in enumerate(hrefs, start=1)}}), hrefs


def test_a_second_crawl_to_the_same_file_stops_at_once_with_exit_2(serve, tmp_path, capsys):
    site, hrefs = slow_site(serve)
    out = tmp_path / "out.jsonl"
    first = start_slow_crawl(site, tmp_path, out)
    try:
        started = time.monotonic()
        code = crawler.main(["--profile", str(tmp_path / "testnews.json"),
                             "--base-url", site.url, "--delay", "0", "--out", str(out), "--quiet",
                             "--user-agent", "second-crawl"])
        assert time.monotonic() - started < 5
        assert first.poll() is None, "the first crawl ended before the second one started"
    finally:
        first.wait(timeout=60)
    err = capsys.readouterr().err
    assert first.returncode == 0 and code == 2 and err.count("\n") == 1
    assert err.startswith(f"{PROG}: error: {out}: another crawl is writing this file")
    assert "second-crawl" not in {agent for _, _, agent in site.log}  # it asked the server nothing
    urls = [row["url"] for row in read_articles(out)]
    assert sorted(urls) == sorted(f"{site.url}{href}" for href in hrefs)  # the first's file, untouched


def test_a_killed_crawl_leaves_no_stale_lock(serve, tmp_path):
    site, hrefs = slow_site(serve)
    out = tmp_path / "out.jsonl"
    first = start_slow_crawl(site, tmp_path, out)
    try:
        with pytest.raises(CrawlError, match="another crawl is writing this file") as caught:
            Crawler(news_profile(site), out, delay=0, progress=False).crawl()
        assert isinstance(caught.value, crawler.OutputInUseError)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    saved_before = len(read_articles(out))
    report = Crawler(news_profile(site), out, delay=0, progress=False).crawl()
    assert report.saved == SLOW_ARTICLES - saved_before
    assert sorted(row["url"] for row in read_articles(out)) == sorted(f"{site.url}{href}" for href in hrefs)


def test_one_process_cannot_open_one_output_twice(tmp_path):
    out = tmp_path / "out.jsonl"
    with crawler.ArticleFile(out):
        with pytest.raises(crawler.OutputInUseError, match=r"out\.jsonl: another crawl"):
            with crawler.ArticleFile(out):
                pass
    with crawler.ArticleFile(out) as output:  # released when the first one closed
        output.append({"url": "http://h/1", "title": "t", "body": "b"})
    assert [row["url"] for row in read_articles(out)] == ["http://h/1"]


# ---------------------------------------------------------------------------
# Bounded answers: a huge or endless body is not read into memory
# ---------------------------------------------------------------------------

HUGE = 20 * 2**20
SMALL_CAP = 64 * 1024


@pytest.mark.parametrize("headers, stream", [
    ({"Content-Length": str(HUGE)}, Stream(HUGE)),  # says how big it is: not read at all
    ({}, Stream(HUGE)),  # says nothing, ends when the server hangs up
    ({"Content-Length": "100", "Transfer-Encoding": "chunked"}, Stream(HUGE, chunked=True)),  # lies
], ids=["declared", "undeclared", "lying"])
def test_a_page_larger_than_max_page_bytes_is_skipped_unread(serve, tmp_path, headers, stream):
    site = serve({"/list?page=1": html(text=list_page("/news/1", "/news/2")),
                  "/news/1": (200, {"Content-Type": "text/html; charset=utf-8", **headers}, stream),
                  "/news/2": html(text=page(UTF8_ARTICLE[0], UTF8_ARTICLE[1]))})
    out = tmp_path / "out.jsonl"
    started = time.monotonic()
    report = Crawler(news_profile(site), out, delay=0, progress=False, max_page_bytes=SMALL_CAP).crawl()
    assert time.monotonic() - started < 20
    assert report.failed == [{"url": f"{site.url}/news/1", "tries": 1,
                              "reason": f"larger than {SMALL_CAP} bytes (max_page_bytes); not read"}]
    assert [row["title"] for row in read_articles(out)] == [UTF8_ARTICLE[0]]  # a small page still comes
    # The kernel's socket buffers take a few MB before the server sees the hang-up; the crawler took 64 KB.
    assert settled(site.sent, "/news/1") < HUGE / 2


def settled(counts, key, timeout=10.0):
    """``counts[key]`` once it stops growing (a server thread notices a hang-up only when its buffers fill)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline and counts[key] != last:
        last = counts[key]
        time.sleep(0.3)
    return counts[key]


def test_max_page_bytes_on_the_command_line(capsys):
    assert crawler.parser.parse_args(["--profile", "boannews", "--out", "x.jsonl"]).max_page_bytes == \
        crawler.DEFAULT_MAX_PAGE_BYTES
    assert crawler.main(["--profile", "boannews", "--out", "x.jsonl", "--max-page-bytes", "0"]) == 2
    assert "--max-page-bytes" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# Redirects: every hop asks its own host's robots.txt
# ---------------------------------------------------------------------------

def test_a_redirect_to_another_host_obeys_that_hosts_robots_txt(serve, tmp_path):
    other = serve({"/robots.txt": (200, {}, b"User-agent: *\nDisallow: /private/\nCrawl-delay: 1\n"),
                   "/private/1": html(text=page("비밀", ["보이면 안 된다."])),
                   "/news/2": html(text=page(UTF8_ARTICLE[0], UTF8_ARTICLE[1]))})
    site = serve({"/robots.txt": (200, {}, b"User-agent: *\nAllow: /\n"),
                  "/list?page=1": html(text=list_page("/news/1", "/news/2")),
                  "/news/1": (302, {"Location": f"{other.url}/private/1"}, b""),
                  "/news/2": (301, {"Location": f"{other.url}/news/2"}, b"")})
    out = tmp_path / "out.jsonl"
    report = Crawler(news_profile(site), out, delay=0, progress=False).crawl()
    assert "/private/1" not in other.paths()
    assert report.failed == [{"url": f"{site.url}/news/1", "tries": 1,
                              "reason": f"redirected to {other.url}/private/1, which its robots.txt disallows"}]
    assert report.robots_blocked == []
    (row,) = read_articles(out)
    assert (row["url"], row["title"]) == (f"{site.url}/news/2", UTF8_ARTICLE[0])
    assert other.paths() == ["/robots.txt", "/news/2"]  # its robots.txt read once, when first needed
    times = [moment for _, moment, _ in other.log]
    assert times[1] - times[0] >= 0.9  # and its Crawl-delay obeyed


def test_redirects_are_followed_a_bounded_number_of_times(serve, tmp_path):
    site = serve({"/list?page=1": html(text=list_page("/news/1")),
                  "/news/1": (302, {"Location": "/news/1"}, b"")})
    report = Crawler(news_profile(site), tmp_path / "out.jsonl", delay=0, progress=False).crawl()
    assert report.failed == [{"url": f"{site.url}/news/1", "tries": crawler.MAX_REDIRECTS + 1,
                              "reason": f"more than {crawler.MAX_REDIRECTS} redirects"}]


# ---------------------------------------------------------------------------
# Several articles on one page (``item``)
# ---------------------------------------------------------------------------

DIGEST = """<html><body>
<div class="story" id="s1"><h2>첫째 소식</h2><p>첫째 본문.</p></div>
<div class="story"><h2>둘째 소식</h2><p>둘째 본문.</p>
  <div class="story" id="s3"><h2>셋째 소식</h2><p>셋째 본문.</p></div>
</div>
<div class="story"><p>제목 없는 덩어리.</p></div>
<div class="story"><h2><a id="s4"></a>넷째 소식</h2><p>넷째 본문.</p></div>
</body></html>"""
ITEM_PROFILE = {**NEWS_PROFILE, "item": "div.story", "title": "h2", "body": "p", "remove": ["div.story"]}


def test_each_item_is_an_article_with_its_own_url():
    rows = extract_articles(DIGEST, "http://h/digest#top", SiteProfile.from_dict(ITEM_PROFILE))
    assert [(row["url"], row["title"], row["body"]) for row in rows] == [
        ("http://h/digest#s1", "첫째 소식", "첫째 본문."),
        ("http://h/digest#s3", "둘째 소식", "둘째 본문."),  # its first id is its child's…
        ("http://h/digest#item-2", "셋째 소식", "셋째 본문."),  # …so the child cannot have it too
        ("http://h/digest#s4", "넷째 소식", "넷째 본문."),
    ]


def test_item_pages_are_fetched_again_and_only_missing_items_written(serve, tmp_path):
    site = serve({"/list?page=1": html(text=list_page("/news/1")), "/news/1": html(text=DIGEST)})
    out = tmp_path / "out.jsonl"
    profile = SiteProfile.from_dict(ITEM_PROFILE).with_base_url(site.url)
    first = Crawler(profile, out, delay=0, progress=False, max_articles=2).crawl()
    second = Crawler(profile, out, delay=0, progress=False).crawl()
    assert (first.saved, second.saved, second.skipped) == (2, 2, 2)
    assert site.hits("/news/1") == 2
    titles = [row["title"] for row in read_articles(out)]
    assert titles == ["첫째 소식", "둘째 소식", "셋째 소식", "넷째 소식"]


# ---------------------------------------------------------------------------
# Encodings
# ---------------------------------------------------------------------------

KOREAN_PAGE = ("<html><body><h1>뷁 해킹</h1><p>똠방각하 보안 취약점이 발견되어 햏 관리자들이 "
               "긴급 패치를 배포했다. 쌰 공격자는 아직 잡히지 않았다.</p></body></html>")


@pytest.mark.parametrize("header", ["euc-kr", "EUC-KR", "ks_c_5601-1987", "x-windows-949", "cp949"])
def test_every_euc_kr_label_is_read_as_cp949(header):
    assert decode_html(KOREAN_PAGE.encode("cp949"), header) == (KOREAN_PAGE, "cp949")


def test_meta_charset_is_used_without_a_header():
    text = '<meta charset="euc-kr">' + KOREAN_PAGE
    assert decode_html(text.encode("cp949"), None) == (text, "cp949")


@pytest.mark.parametrize("header", [None, "utf-8", "iso-8859-1"])
def test_undeclared_or_wrongly_declared_korean_is_detected(header):
    assert decode_html(KOREAN_PAGE.encode("cp949"), header) == (KOREAN_PAGE, "cp949")


def test_utf8_pages_stay_utf8():
    assert decode_html(KOREAN_PAGE.encode("utf-8"), None) == (KOREAN_PAGE, "utf-8")
    assert decode_html(b"\xef\xbb\xbf" + KOREAN_PAGE.encode("utf-8"), "euc-kr") == (KOREAN_PAGE, "utf-8")


def test_a_real_latin1_page_is_not_read_as_korean():
    assert decode_html("<p>café crème</p>".encode("latin-1"), "iso-8859-1") == ("<p>café crème</p>", "cp1252")


# ---------------------------------------------------------------------------
# clean_text, one rule at a time
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("raw, clean", [
    ("[홍길동 기자] 정부가 대책을 내놨다.", "정부가 대책을 내놨다."),
    ("[보안뉴스 홍길동 기자] 해킹이 늘었다.", "해킹이 늘었다."),
    ("홍길동 기자 = 해킹이 늘었다.", "해킹이 늘었다."),
    ("(서울=연합뉴스) 홍길동 기자 = 해킹이 늘었다.", "해킹이 늘었다."),
    ("문의: gildong@boannews.com 으로", "문의: 으로"),
    ("본문이다.\n▲ 기자회견 모습\n△ 발표 자료\n끝.", "본문이다.\n끝."),
    ("보안 점검 현장 [사진=보안뉴스]", "보안 점검 현장"),
    ("점검 현장(사진=연합뉴스)", "점검 현장"),
    ("<사진=게티이미지뱅크>\n본문", "본문"),
    ("본문\nⓒ 보안뉴스\nCopyright © Boannews. All rights reserved.", "본문"),
    ("본문\n<저작권자 보안뉴스 무단전재 및 재배포 금지>", "본문"),
    ("  여러   칸\t띄어쓰기  \n\n\n\n다음   문단 ", "여러 칸 띄어쓰기\n다음 문단"),
    ("줄\u2028나눔", "줄\n나눔"),
    ("저작권(Copyright) 분쟁이 늘었다.", "저작권(Copyright) 분쟁이 늘었다."),  # a sentence, not a notice
])
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean


def test_clean_text_composes_hangul_jamo():
    assert clean_text("\u1112\u1161\u11ab") == "한"  # NFD (macOS) → NFC


# ---------------------------------------------------------------------------
# Profiles
# ---------------------------------------------------------------------------

def test_builtin_profiles_load():
    assert {"boannews", "generic"} <= set(crawler.builtin_profiles())
    boannews = load_profile("boannews")
    assert boannews.base_url == "https://www.boannews.com"
    assert boannews.list_page_urls(2) == [
        "https://www.boannews.com/media/t_list.asp?Page=1&kind=",
        "https://www.boannews.com/media/t_list.asp?Page=2&kind="]
    assert load_profile("generic").list_page_urls(3) == ["https://example.com/"]
    assert SiteProfile.from_dict(boannews.to_dict()) == boannews
    json.dumps(boannews.to_dict())


BOANNEWS_LIST = """<html><body>
<div class="news_list"><a href="/media/view.asp?idx=12&page=1&kind=3"><img src="x.jpg"></a>
  <a href="/media/view.asp?idx=12&page=1&kind=3"><span class="news_txt">기사 하나</span></a></div>
<div class="news_list"><a href="https://www.boannews.com/media/view.asp?idx=13&kind=1#reply">둘</a></div>
<div class="news_list"><a href="/media/list.asp?kind=1">섹션</a> <a href="javascript:void(0)">x</a></div>
<div class="side"><a href="/media/view.asp?idx=99">많이 본 기사</a></div>
</body></html>"""


def test_boannews_links_are_canonicalised():
    profile = load_profile("boannews")
    links = find_article_links(BOANNEWS_LIST, profile.list_page_urls(1)[0], profile)
    assert links == ["https://www.boannews.com/media/view.asp?idx=12",
                     "https://www.boannews.com/media/view.asp?idx=13"]
    mirror = load_profile("boannews", base_url="http://127.0.0.1:8123")
    assert find_article_links(BOANNEWS_LIST, mirror.list_page_urls(1)[0], mirror) == [
        "http://127.0.0.1:8123/media/view.asp?idx=12", "http://127.0.0.1:8123/media/view.asp?idx=13"]


def test_boannews_article_page():
    raw = ("<html><head><meta charset='euc-kr'><script>var 뷁 = 1;</script></head><body>"
           "<div id='news_title02'><h1>뷁 악성코드 유포 주의</h1></div>"
           "<div id='news_util01'>입력 : 2024-05-01 10:00</div>"
           "<div id='news_content'>[보안뉴스 홍길동 기자] 악성코드가 유포되고 있다.<br><br>"
           "<img src='a.jpg'><br>▲ 악성코드 유포 화면[사진=보안뉴스]<br>"
           "이용자는 주의해야 한다.<br>gildong@boannews.com<br>"
           "&lt;저작권자: 보안뉴스(www.boannews.com) 무단전재-재배포금지&gt;</div></body></html>")
    text, encoding = decode_html(raw.encode("cp949"), None)
    (row,) = extract_articles(text, "https://www.boannews.com/media/view.asp?idx=12",
                              load_profile("boannews"))
    assert encoding == "cp949"
    assert row == {"url": "https://www.boannews.com/media/view.asp?idx=12", "site": "boannews",
                   "title": "뷁 악성코드 유포 주의", "body": "악성코드가 유포되고 있다.\n이용자는 주의해야 한다.",
                   "date": "입력 : 2024-05-01 10:00"}


def test_generic_profile_tries_selectors_in_the_order_written():
    generic = load_profile("generic")
    # <title> comes first in the document, but h1 is written before title in the profile
    no_og = ("<html><head><title>사이트 이름 | 기사</title></head><body><nav>메뉴</nav>"
             "<main><h1>기사 제목</h1><article><h1>기사 제목</h1><p>기사 본문.</p>"
             "<figure><img><figcaption>사진 설명</figcaption></figure></article>"
             "<p>관련 기사 목록</p></main><footer>회사 소개</footer></body></html>")
    (row,) = extract_articles(no_og, "https://example.com/a", generic)
    assert row["title"] == "기사 제목"
    assert row["body"] == "기사 본문."  # article before main, even though main comes first

    with_og = no_og.replace("<title>", "<meta property='og:title' content='오픈그래프 제목'><title>")
    assert extract_articles(with_og, "https://example.com/a", generic)[0]["title"] == "오픈그래프 제목"

    bare = "<html><body><nav>메뉴</nav><h1>맨 제목</h1><p>맨 본문.</p><footer>끝</footer></body></html>"
    (row,) = extract_articles(bare, "https://example.com/b", generic)
    assert (row["title"], row["body"]) == ("맨 제목", "맨 본문.")


def test_selector_lists_split_on_top_level_commas_only():
    parts = crawler._split_selector_list("a, b:is(c, d), [x='1,2'], e")
    assert parts == ["a", "b:is(c, d)", "[x='1,2']", "e"]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name, text, message", [
    ("bad.json", '{"name": "x",', r"bad\.json: not valid JSON \(line 1"),
    ("unknown.json", json.dumps({**NEWS_PROFILE, "titel": "h1"}), r"unknown\.json: unknown field 'titel'"),
    ("missing.json", json.dumps({"name": "x"}), r"missing\.json: missing field 'base_url'"),
    ("selector.json", json.dumps({**NEWS_PROFILE, "body": "div..content"}),
     r"selector\.json: field 'body': bad CSS selector 'div\.\.content'"),
    ("regex.json", json.dumps({**NEWS_PROFILE, "article_url_pattern": "(news"}),
     r"regex\.json: field 'article_url_pattern': bad regular expression"),
    ("type.json", json.dumps({**NEWS_PROFILE, "remove": "nav"}), r"type\.json: field 'remove'"),
    ("url.json", json.dumps({**NEWS_PROFILE, "base_url": "example.com"}), r"url\.json: field 'base_url'"),
    ("bad.yaml", "name: [x\n", r"bad\.yaml: not valid YAML"),
    ("list.yml", "- a\n- b\n", r"list\.yml: expected a mapping"),
])
def test_bad_profiles_are_one_line_errors_naming_the_file(tmp_path, name, text, message):
    with pytest.raises(CrawlError, match=message) as caught:
        load_profile(write(tmp_path, name, text))
    assert "\n" not in str(caught.value) and isinstance(caught.value, DataError)


def test_missing_profiles(tmp_path):
    with pytest.raises(CrawlError, match=r"nowhere\.json: profile file is missing"):
        load_profile(tmp_path / "nowhere.json")
    with pytest.raises(CrawlError, match="neither a built-in profile"):
        load_profile("no_such_site")


def test_yaml_profiles_load(tmp_path):
    text = "".join(f"{key}: '{value}'\n" for key, value in NEWS_PROFILE.items()) + "remove: [nav]\n"
    profile = load_profile(write(tmp_path, "site.yaml", text), base_url="http://127.0.0.1:9")
    assert profile.remove == ("nav",) and profile.title == "h1.title"
    assert profile.list_page_urls(1) == ["http://127.0.0.1:9/list?page=1"]


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("arguments", [
    ["--profile", "boannews", "--out", "x.jsonl", "--bogus"],
    ["--profile", "boannews", "--out", "x.jsonl", "--pages", "0"],
    ["--profile", "boannews", "--out", "x.jsonl", "--delay", "-1"],
    ["--profile", "boannews", "--out", "x.jsonl", "--retries", "many"],
    ["--profile", "boannews", "--out", "x.jsonl", "--base-url", "localhost:8000"],
    ["--profile", "boannews", "--out", "x.csv"],
    ["--out", "x.jsonl"],
])
def test_bad_flags_exit_2_with_one_line(capsys, tmp_path, arguments):
    assert crawler.main(arguments) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{PROG}: error:") and err.count("\n") == 1
    assert not (tmp_path / "x.jsonl").exists()


def test_a_missing_profile_file_exits_1_with_one_line(capsys, tmp_path):
    assert crawler.main(["--profile", str(tmp_path / "mine.yaml"), "--out", str(tmp_path / "o.jsonl")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{PROG}: error:") and "mine.yaml" in err and err.count("\n") == 1


def test_the_parser_is_the_course_parser():
    assert isinstance(crawler.parser, cli.OneLineParser)
    assert crawler.parser.prog == PROG
