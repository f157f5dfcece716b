"""Week 4 lab: the shipped corpus, its rebuild script, and the lab end to end (train, predict, crawl)."""
import csv
import importlib.util
import json

import pytest

from dlcourse import data, rouge, title_baselines
from dlcourse.data import DataError
from labs import news_seq2seq
from tests.conftest import REPO, read_metrics, run_lab

TINY_MODEL = ("--layers", 1, "--units", 16, "--embedding-dim", 16, "--beam-width", 2)


def load_corpus_script():
    spec = importlib.util.spec_from_file_location("make_news_corpus", REPO / "data" / "make_news_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the shipped corpus ---------------------------------------------------------------

def test_the_shipped_corpus_has_enough_korean_pairs_from_every_package():
    pairs = data.load_news_corpus()
    assert len(pairs) >= 1500
    script = load_corpus_script()
    assert {pair["source"] for pair in pairs} == set(script.PACKAGES)
    assert all(sum(pair["source"] == source for pair in pairs) >= 100 for source in script.PACKAGES)
    assert len({pair["url"] for pair in pairs}) == len(pairs)
    for pair in pairs:
        assert script.keep(pair["title"], pair["body"], pair["source"]), pair["url"]
        assert len(pair["body"]) <= script.MAX_BODY_CHARACTERS[pair["source"]]
        assert not script.SECTION_NUMBER.match(pair["title"]) or pair["title"][0].isalpha()
        assert "\ufffd" not in pair["title"] + pair["body"]  # no mojibake


def test_split_is_a_seeded_partition():
    pairs = [{"title": str(i), "body": str(i)} for i in range(50)]
    train, validation, test = data.split_pairs(pairs, (0.7, 0.1, 0.2), seed=0)
    assert (len(train), len(validation), len(test)) == (35, 5, 10)
    assert sorted(p["title"] for p in train + validation + test) == sorted(p["title"] for p in pairs)
    assert data.split_pairs(pairs, (0.7, 0.1, 0.2), seed=0)[2] == test
    assert data.split_pairs(pairs, (0.7, 0.1, 0.2), seed=1)[2] != test
    with pytest.raises(DataError, match="too few"):
        data.split_pairs(pairs[:2], (0.7, 0.1, 0.2))


@pytest.mark.parametrize("content, message", [
    ('{"title": "제목", "body": "본문"}\n{"title": "제목"\n', "line 2 is not valid JSON"),
    ('{"title": "제목", "body": "본문"}\n["a list"]\n', "line 2 is not a JSON object"),
    ('{"title": "", "body": "본문"}\n', "line 1 has no 'title' text"),
    ('\n\n', "contains no articles"),
])
def test_a_bad_article_file_names_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "articles.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as error:
        data.read_title_pairs(path)
    assert str(path) in str(error.value)


# --- the rebuild script: its rules and the site profile it crawls with -----------------

def test_section_numbers_and_english_paragraphs_are_removed():
    script = load_corpus_script()
    assert script.strip_section_number("1.1. 이 FAQ는 무엇인가요?") == "이 FAQ는 무엇인가요?"
    assert script.strip_section_number("17장. 필터") == "필터"
    assert script.strip_section_number("부 II. 김프 마법사가 되려면?") == "김프 마법사가 되려면?"
    assert script.strip_section_number("A.3. 부록") == "부록"
    assert script.strip_section_number("3D 효과") == "3D 효과"
    body = "김프는 그림을 편집하는 프로그램입니다.\nGIMP is a multi-platform tool.\ndpkg 를 씁니다."
    assert script.korean_paragraphs(body) == "김프는 그림을 편집하는 프로그램입니다.\ndpkg 를 씁니다."
    assert not script.keep("Intro", "가" * 40) and not script.keep("소개", "가" * 29)
    assert script.keep("소개", "가" * 30)


FAQ_INDEX = """<html><head><meta charset="utf-8"><title>FAQ</title></head><body>
<div class="toc"><a href="basic.ko.html">1장</a> <a href="basic.ko.html#q1">1.1</a></div></body></html>"""
FAQ_CHAPTER = """<html><head><meta charset="utf-8"><title>1장</title></head><body>
<div class="chapter"><div class="titlepage"><h1 class="title">1장. 정의</h1></div>
<div class="toc"><a href="#q1">1.1</a></div>
<div class="section"><div class="titlepage"><h2 class="title"><a id="q1"></a>1.1. 데비안은 무엇인가요?</h2></div>
<p>데비안은 자유 운영 체제입니다.</p><pre>apt 로 패키지를 설치합니다</pre>
<div class="section"><div class="titlepage"><h3 class="title"><a id="q1a"></a>1.1.1. 이름의 뜻은?</h3></div>
<p>이름은 두 사람의 이름에서 왔습니다.</p></div></div></div></body></html>"""


def test_the_faq_profile_gives_one_pair_per_section_without_its_subsections(tmp_path):
    script = load_corpus_script()
    folder = tmp_path / "site" / "doc" / "debian" / "FAQ" / "ko"
    folder.mkdir(parents=True)
    (folder / "index.ko.html").write_text(FAQ_INDEX, encoding="utf-8")
    (folder / "basic.ko.html").write_text(FAQ_CHAPTER, encoding="utf-8")
    pairs = script.crawl_package("debian-faq-ko", tmp_path / "site", tmp_path)
    by_title = {pair["title"]: pair for pair in pairs}
    assert set(by_title) == {"데비안은 무엇인가요?", "이름의 뜻은?"}
    question = by_title["데비안은 무엇인가요?"]
    assert "자유 운영 체제" in question["body"] and "apt 로 패키지를" in question["body"]
    assert "두 사람" not in question["body"]  # the sub-section is a pair of its own
    assert question["url"] == "debian-faq-ko:/usr/share/doc/debian/FAQ/ko/basic.ko.html#q1"


# --- the baselines and the metric the lab reports ----------------------------------------

def test_baselines_use_only_training_titles_and_bodies():
    train = [{"title": "김프 붓 도구", "body": "붓 도구로 그림을 그립니다"},
             {"title": "데비안 설치", "body": "데비안을 설치하는 방법입니다"}]
    test = [{"title": "?", "body": "설치하는 방법은 데비안 누리집에"}]
    predicted = news_seq2seq.baselines(train, test)
    assert predicted["nearest_neighbour"] == ["데비안 설치"]
    lead_length = title_baselines.lead_length(["김프 붓 도구", "데비안 설치"])
    assert predicted["lead"] == title_baselines.lead_titles(["설치하는 방법은 데비안 누리집에"], lead_length)


# --- the lab end to end ---------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("news") / "run"
    result = run_lab("labs.news_seq2seq", "--smoke", "--epochs", 2, "--out", run_dir, *TINY_MODEL)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result.stdout


def test_smoke_run_reports_the_model_and_both_baselines_on_the_same_split(smoke_run):
    run_dir, stdout = smoke_run
    metrics = read_metrics(run_dir)
    assert set(metrics["rouge"]) == {"lead", "nearest_neighbour", "greedy", "beam"}
    assert metrics["decoding"] in ("greedy", "beam")
    assert metrics["test_rougeL"] == metrics["rouge"][metrics["decoding"]]["rougeL"]
    # The baselines in metrics.json are the ones computed here on the lab's own test split.
    config = news_seq2seq.parser.parse_args(["--smoke"])
    train, _, test = news_seq2seq.load_pairs(config)
    assert metrics["test_pairs"] == len(test) and metrics["train_pairs"] == len(train)
    expected = rouge.corpus_rouge(news_seq2seq.baselines(train, test)["nearest_neighbour"],
                                  [pair["title"] for pair in test])
    assert metrics["rouge"]["nearest_neighbour"] == pytest.approx(expected)
    if rouge.morpheme_rouge_available():  # the korean extra, in make test's dev extra
        assert set(metrics["rouge_morpheme"]) == set(metrics["rouge"])
        assert metrics["test_rougeL_morpheme"] == metrics["rouge_morpheme"][metrics["decoding"]]["rougeL"]
        by_morpheme = rouge.corpus_rouge(news_seq2seq.baselines(train, test)["nearest_neighbour"],
                                         [pair["title"] for pair in test], unit="morpheme")
        assert metrics["rouge_morpheme"]["nearest_neighbour"] == pytest.approx(by_morpheme)
        assert "morpheme-level ROUGE" in stdout
    with open(run_dir / "predictions.tsv", encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream, delimiter="\t"))
    assert [row["truth"] for row in rows] == [pair["title"] for pair in test]
    assert "ROUGE-L" in stdout and "정답:" in stdout
    for name in ("rouge.png", "curves.png", "vocabulary.json", "checkpoints/best.keras"):
        assert (run_dir / name).is_file(), name


def predicted_title(run_dir, body, capsys, *options):
    """``python -m labs.news_seq2seq predict`` in the test's process (``news_seq2seq.main``, as
    ``python -m`` calls it): the lines it printed."""
    capsys.readouterr()
    assert news_seq2seq.main(["predict", "--run", str(run_dir), "--text-file", str(body), *options]) == 0
    return capsys.readouterr().out.strip().splitlines()


def test_predict_writes_a_title_with_a_trained_run(smoke_run, tmp_path, capsys):
    run_dir, _ = smoke_run
    body = tmp_path / "body.txt"
    body.write_text("데비안은 자유 운영 체제입니다. 패키지를 설치하는 방법을 설명합니다.", encoding="utf-8")
    for method in ("greedy", "beam"):
        # One title (may be empty when untrained).
        assert len(predicted_title(run_dir, body, capsys, "--method", method)) <= 1


def test_the_transformer_trains_decodes_and_predicts_from_its_run(tmp_path, capsys):
    run_dir = tmp_path / "run"
    result = run_lab("labs.news_seq2seq", "--smoke", "--epochs", 1, "--out", run_dir, "--model", "transformer",
                     "--layers", 1, "--units", 16, "--heads", 2, "--feed-forward-dim", 32, "--beam-width", 2)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(run_dir)
    assert metrics["model"] == "transformer" and set(metrics["rouge"]) >= {"greedy", "beam"}
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["layers"], config["units"], config["heads"]) == (1, 16, 2)
    body = tmp_path / "body.txt"
    body.write_text("데비안은 자유 운영 체제입니다.", encoding="utf-8")
    assert len(predicted_title(run_dir, body, capsys)) <= 1  # the run's checkpoint loads as a Transformer


def test_pretraining_runs_before_fine_tuning_and_lowers_the_language_model_loss(tmp_path):
    run_dir = tmp_path / "run"
    result = run_lab("labs.news_seq2seq", "--smoke", "--epochs", 1, "--pretrain-epochs", 2, "--out", run_dir,
                     *TINY_MODEL)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(run_dir)
    pretraining = metrics["pretraining"]
    assert len(pretraining["loss"]) == 2 and pretraining["loss"][1] < pretraining["loss"][0]
    assert pretraining["tokens"] > 3000  # the week-3 corpus's smoke slice is in the text
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["model"], config["pretrain_epochs"]) == ("gru", 2)


# In the test's process (``news_seq2seq.main``, as ``python -m`` calls it): a usage or data error
# is found before anything is imported that a subprocess would have to load again.

def last_error_line(capsys):
    """The one line the lab wrote to stderr."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("arguments, message", [
    (["--model", "transformer", "--pretrain-epochs", "1"], "pre-trains the GRU model only"),
    (["--model", "transformer", "--units", "30", "--heads", "4"], "must be a multiple of --heads"),
])
def test_a_model_option_that_cannot_work_is_one_line_and_exit_2(arguments, message, capsys, tmp_path):
    assert news_seq2seq.main(["--smoke", *arguments, "--out", str(tmp_path / "run")]) == 2
    assert message in last_error_line(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("arguments, message", [
    (["predict", "--run", "no/such/run", "--text-file", "README.md"], "no such run directory"),
    (["predict", "--run", "data", "--text-file", "README.md"], "not a news_seq2seq run directory"),
    (["--corpus", "no/such/file.jsonl"], "file is missing"),
])
def test_bad_input_is_one_line_and_exit_code_1(arguments, message, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert news_seq2seq.main(arguments) == 1
    assert message in last_error_line(capsys)


def test_crawl_subcommand_reports_a_bad_flag_in_one_line(capsys):
    assert news_seq2seq.main(["crawl", "--profile", "boannews", "--pages", "0", "--out", "x.jsonl"]) == 2
    assert last_error_line(capsys).startswith("python -m labs.news_seq2seq crawl: error:")


def test_bad_lab_flag_is_a_usage_error(capsys):
    assert news_seq2seq.main(["--train-fraction", "1.5"]) == 2
    assert "--train-fraction" in last_error_line(capsys)
