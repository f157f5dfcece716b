import numpy as np
import pytest

from dlcourse import data
from tests.conftest import run_lab


def test_mnist_bundle_is_the_full_data_set():
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.shape == (60000,) and y_test.shape == (10000,)
    # Every digit is present in both splits in roughly equal numbers.
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))
    assert np.bincount(y_train).min() > 5000 and np.bincount(y_test).min() > 850
    # The published first training labels.
    assert list(y_train[:8]) == [5, 0, 4, 1, 9, 2, 1, 3]


def test_mnist_splits_are_scaled_and_disjoint():
    splits = data.mnist_splits(flatten=True)
    assert [len(splits[name][0]) for name in ("train", "validation", "test")] == [55000, 5000, 10000]
    images, _ = splits["train"]
    assert images.shape[1] == 784 and images.dtype == np.float32
    assert 0.0 == images.min() and images.max() == 1.0
    smoke = data.mnist_splits(smoke=True)
    assert smoke["train"][0].shape == (data.SMOKE_SIZES["train"], 28, 28, 1)


def test_iris_has_three_balanced_species():
    features, labels = data.load_iris()
    assert features.shape == (150, 4) and features.dtype == np.float32
    assert np.bincount(labels).tolist() == [50, 50, 50]
    np.testing.assert_allclose(features[0], [5.1, 3.5, 1.4, 0.2])


def test_dataset_pipeline_batches_everything_once():
    features = np.arange(10, dtype="float32")[:, None]
    labels = np.arange(10)
    batches = list(data.as_dataset(features, labels, batch_size=4, shuffle=True, seed=0))
    assert [len(batch_labels) for _, batch_labels in batches] == [4, 4, 2]
    assert sorted(np.concatenate([batch_labels for _, batch_labels in batches])) == list(range(10))



@pytest.mark.parametrize("pipeline", ["tf.data", "ArrayBatches"])
def test_dict_targets_stay_row_aligned_and_are_all_shuffled(pipeline):
    """A model with two named outputs (R-CNN's class and box heads) takes a dict of targets: every
    example once, its rows together, and the whole set shuffled (not a buffer of two keys)."""
    from dlcourse import backend
    features = np.arange(64, dtype="float32")[:, None]
    targets = {"class": np.arange(64), "box": np.arange(64, dtype="float32")[:, None] * 10}
    make = data.as_dataset if pipeline == "tf.data" else backend.ArrayBatches
    batches = list(make(features, targets, 16, shuffle=True, seed=0))
    assert [len(batch_targets["class"]) for _, batch_targets in batches] == [16, 16, 16, 16]
    order = np.concatenate([np.asarray(batch_targets["class"]) for _, batch_targets in batches])
    assert sorted(order) == list(range(64))
    for batch_features, batch_targets in batches:
        np.testing.assert_array_equal(np.asarray(batch_features)[:, 0], batch_targets["class"])
        np.testing.assert_array_equal(np.asarray(batch_targets["box"])[:, 0], 10 * np.asarray(batch_targets["class"]))
    # With a shuffle buffer of len(dict) = 2 the first batch would hold only the first ~17 examples.
    assert np.asarray(batches[0][1]["class"]).max() > 20


@pytest.mark.parametrize("pipeline", ["tf.data", "ArrayBatches"])
def test_each_epoch_takes_one_variant_of_every_example(pipeline):
    """``variants``: arrays with several versions of each example (Fast R-CNN's region draws) give
    one version per example and epoch, the same one for inputs and targets, and another in
    another epoch; arrays not named keep their rows as they are."""
    from dlcourse import backend
    count, versions = 40, 5
    inputs = {"image": np.arange(count, dtype="float32")[:, None],
              "rois": (np.arange(count)[:, None] * 10 + np.arange(versions)).astype("float32")}
    targets = {"class": np.arange(count)[:, None] * 10 + np.arange(versions)}
    make = data.as_dataset if pipeline == "tf.data" else backend.ArrayBatches
    batches = make(inputs, targets, 8, shuffle=True, seed=0, variants=("rois", "class"))
    chosen = []
    for _ in range(3):
        epoch = {}
        for batch_inputs, batch_targets in batches:
            image, rois = np.asarray(batch_inputs["image"])[:, 0], np.asarray(batch_inputs["rois"])
            np.testing.assert_array_equal(rois, np.asarray(batch_targets["class"]))
            assert np.all(rois // 10 == image)           # a version of its own example
            epoch.update(zip(image.astype(int), (rois % 10).astype(int)))
        assert sorted(epoch) == list(range(count))
        chosen.append([epoch[index] for index in range(count)])
        if pipeline == "ArrayBatches":
            batches.on_epoch_end()                       # what Keras's fit calls between epochs
    assert set(np.concatenate(chosen)) == set(range(versions))
    assert chosen[0] != chosen[1] != chosen[2]


def test_variants_must_be_named_arrays_of_one_count():
    from dlcourse import backend
    inputs = {"image": np.zeros((4, 1)), "rois": np.zeros((4, 3, 2))}
    with pytest.raises(ValueError, match="not named"):
        backend.ArrayBatches(inputs, {"class": np.zeros((4, 3))}, 2, variants=("box",))
    with pytest.raises(ValueError, match="different numbers"):
        backend.ArrayBatches(inputs, {"class": np.zeros((4, 2))}, 2, variants=("rois", "class"))

def test_corrupt_bundle_names_file_and_fix(data_copy):
    bundle = data_copy / "mnist.npz"
    bundle.write_bytes(bundle.read_bytes()[:-100])
    with pytest.raises(data.DataError) as caught:
        data.load_mnist(data_dir=data_copy)
    message = str(caught.value)
    assert "mnist.npz" in message and "corrupt" in message and "git checkout" in message
    assert "\n" not in message


def test_missing_bundle_names_file(data_copy):
    (data_copy / "iris.csv").unlink()
    with pytest.raises(data.DataError, match=r"iris\.csv: file is missing"):
        data.load_iris(data_dir=data_copy)


def test_unknown_source_is_rejected():
    with pytest.raises(ValueError, match="bundled, online"):
        data.load_mnist(source="floppy")


def test_cli_reports_corrupt_bundle_in_one_line(data_copy, tmp_path):
    (data_copy / "mnist.npz").write_bytes(b"not a zip file")
    result = run_lab("labs.softmax_mnist", "--smoke", "--out", tmp_path / "run",
                     env={"DLCOURSE_DATA_DIR": str(data_copy)})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines()
                   if line.startswith("python -m labs.softmax_mnist: error:")]
    assert len(error_lines) == 1 and "mnist.npz" in error_lines[0] and "corrupt" in error_lines[0]


def test_online_source_failure_is_one_clear_line(monkeypatch):
    import keras

    def unreachable():
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", unreachable)
    with pytest.raises(data.DataError, match="could not download MNIST .*drop --data-source online"):
        data.load_mnist(source="online")


# --- (title, body) pairs: the split keeps every page on one side ----------------------------

def sectioned_corpus():
    """Twenty pages of one to six sections each (``url#fragment``), and five pairs without a URL."""
    pairs = [{"title": f"제목 {page}-{section}", "body": "본문", "url": f"doc:/help/page{page}.html#s{section}"}
             for page in range(20) for section in range(1 + page % 6)]
    return pairs + [{"title": f"제목 {index}", "body": "본문"} for index in range(5)]


def test_split_never_puts_two_sections_of_one_page_on_two_sides():
    pairs = sectioned_corpus()  # 71 pairs
    for seed in range(5):
        parts = data.split_pairs(pairs, (0.7, 0.1, 0.2), seed=seed)
        pages = [{data.page_of(pair) for pair in part} - {None} for part in parts]
        assert not (pages[0] & pages[1] or pages[0] & pages[2] or pages[1] & pages[2]), seed
        assert sorted(pair["title"] for part in parts for pair in part) == sorted(p["title"] for p in pairs)
        for part, fraction in zip(parts, (0.7, 0.1, 0.2)):  # within half of the largest page (6)
            assert abs(len(part) - fraction * len(pairs)) <= 3 + 1, (seed, [len(p) for p in parts])


def test_split_of_pages_is_seeded():
    pairs = sectioned_corpus()
    train, validation, test = data.split_pairs(pairs, (0.7, 0.1, 0.2), seed=0)
    assert data.split_pairs(pairs, (0.7, 0.1, 0.2), seed=0) == [train, validation, test]
    assert data.split_pairs(list(pairs), (0.7, 0.1, 0.2), seed=1)[2] != test
    assert data.page_of({"url": "doc:/a.html#b"}) == "doc:/a.html" and data.page_of({"title": "t"}) is None


def test_split_needs_as_many_pages_as_parts():
    two_pages = [{"title": f"{index}", "body": "본문", "url": f"doc:/page{index % 2}.html#s{index}"}
                 for index in range(10)]
    with pytest.raises(data.DataError, match="too few"):
        data.split_pairs(two_pages, (0.7, 0.1, 0.2))
    one_big_page = two_pages[:1] + [{**pair, "url": "doc:/page0.html#x"} for pair in two_pages[1:]]
    with pytest.raises(data.DataError, match="empty"):
        data.split_pairs(one_big_page + [{"title": "a", "body": "b"}, {"title": "c", "body": "d"}],
                         (0.7, 0.1, 0.2))


# --- the title corpus's rebuild script (data/make_news_corpus.py): the two newer packages ----

def corpus_script():
    import importlib.util

    from tests.conftest import REPO
    spec = importlib.util.spec_from_file_location("make_news_corpus", REPO / "data" / "make_news_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MALLARD_PAGE = """<?xml version="1.0" encoding="utf-8"?>
<page xmlns="http://projectmallard.org/1.0/" xmlns:if="http://projectmallard.org/if/1.0/"
      type="topic" id="net-wireless-connect" xml:lang="ko">
  <info><desc>인터넷에 연결합니다 — 무선으로.</desc><credit><name>그놈 문서 프로젝트</name></credit></info>
  <title>무선 네트워크 연결</title>
  <p>무선 연결이 가능한 컴퓨터라면 범위 안의 무선 네트워크에 연결할 수 있습니다.</p>
  <steps>
    <item><p><keyseq><key>Super</key><key>Tab</key></keyseq> 키를 누르고 <gui>설정</gui>을 엽니다.</p></item>
    <item><if:choose><if:when test="platform:gnome-classic"><p>클래식 화면에서는 다르게 보입니다.</p></if:when>
      <if:else><p>아이콘(<media type="image" src="x.svg"/>)이 바뀝니다.
        자세한 내용은 <link xref="net-other"/>을 봅니다.</p></if:else>
    </if:choose></item>
  </steps>
  <p if:test="platform:gnome-classic">클래식 데스크톱에서만 보이는 문단입니다.</p>
  <section id="trouble"><title>연결이 안 되면</title>
    <p>암호를 다시 입력하고, 무선 신호가 충분히 센지 확인한 다음 다시 연결을 시도해 봅니다.</p>
  </section>
</page>
"""
OTHER_PAGE = """<page xmlns="http://projectmallard.org/1.0/" id="net-other"><title>다른 네트워크</title>
<p>Only English here.</p></page>"""


def test_a_mallard_page_becomes_a_page_pair_and_a_section_pair(tmp_path):
    script = corpus_script()
    guide = tmp_path / "site" / "help" / "ko" / "gnome-help"
    guide.mkdir(parents=True)
    (guide / "net-wireless-connect.page").write_text(MALLARD_PAGE, encoding="utf-8")
    (guide / "net-other.page").write_text(OTHER_PAGE, encoding="utf-8")
    script.prepare("gnome-user-docs", tmp_path / "site")
    pairs = {pair["title"]: pair for pair in script.crawl_package("gnome-user-docs", tmp_path / "site", tmp_path)}
    page = pairs["무선 네트워크 연결"]
    assert page["url"] == "gnome-user-docs:/usr/share/help/ko/gnome-help/net-wireless-connect.page#net-wireless-connect"
    assert page["body"].split("\n") == [
        "무선 연결이 가능한 컴퓨터라면 범위 안의 무선 네트워크에 연결할 수 있습니다.",
        "Super+Tab 키를 누르고 설정을 엽니다.",
        "아이콘()이 바뀝니다. 자세한 내용은 다른 네트워크을 봅니다."]  # no desc, no classic-only text
    section = pairs["연결이 안 되면"]
    assert section["url"].endswith("net-wireless-connect.page#trouble") and "암호를 다시" in section["body"]
    assert pairs["다른 네트워크"]["body"] == ""  # an English paragraph is dropped (then the pair, by keep)


LIBREOFFICE_PAGE = """<!DOCTYPE html><html lang="ko"><head><base href="../../../../">
<meta http-equiv="Content-Type" content="text/html; charset=utf-8"><title>최적 행 높이</title></head><body>
<header><a href="ko/text/shared/05/new_help.html"><p>LibreOffice 7.4 Help</p></a></header>
<aside class="leftside"><p>Contents</p></aside>
<div id="DisplayArea"><h1 id="hd_1">최적 행 높이</h1>
<p class="paragraph">Determines the optimal row height for the selected rows.</p>
<div class="howtoget"><p class="howtogetheader">이 명령을 사용하려면...</p>
<p>서식 - 행 - 최적 높이를 선택합니다.</p></div>
<p class="paragraph">행의 가장 큰 문자와 셀 경계 사이의 추가 공백을 설정합니다.
<span class="switchinline"><span class="MAC">Command</span><span>Ctrl</span></span>+Enter 키로 적용합니다.</p>
<div class="relatedtopics"><p class="related">관련 주제</p><p><a href="ko/text/x.html">행 높이</a></p></div>
</div><footer><p>This page is: /text/scalc/01/05030200.xhp</p></footer></body></html>"""


def test_the_libreoffice_profile_reads_a_help_page_without_its_menus(tmp_path):
    script = corpus_script()
    help_dir = tmp_path / "site" / "libreoffice" / "help" / "ko"
    for path in ("text/scalc/01/05030200.html", "text/scalc/00/00000004.html", "text/shared/00/00000404.html"):
        (help_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (help_dir / path).write_text(LIBREOFFICE_PAGE, encoding="utf-8")
    script.prepare("libreoffice-help-ko", tmp_path / "site")
    pairs = script.crawl_package("libreoffice-help-ko", tmp_path / "site", tmp_path)
    assert [pair["url"] for pair in pairs] == [  # the "how to get there" pages are not articles
        "libreoffice-help-ko:/usr/share/libreoffice/help/ko/text/scalc/01/05030200.html"]
    assert pairs[0]["title"] == "최적 행 높이"
    assert pairs[0]["body"] == "행의 가장 큰 문자와 셀 경계 사이의 추가 공백을 설정합니다. Ctrl+Enter 키로 적용합니다."


def test_generic_and_repeated_titles_are_left_out():
    script = corpus_script()
    body = "이 대화 상자에서 문서의 일반 설정을 바꿀 수 있습니다. 바꾼 설정은 바로 적용됩니다."
    pairs = [{"url": f"pkg:/page{index}.html", "title": "일반", "body": body + str(index)} for index in range(3)]
    pairs += [{"url": "pkg:/guide.html#a", "title": "설정 바꾸기", "body": body},
              {"url": "pkg:/guide.html#b", "title": "설정 바꾸기", "body": body + " 다시"},  # same page and title
              {"url": "pkg:/other.html", "title": "설정 바꾸기", "body": body},  # the same pair again
              {"url": "pkg:/short.html", "title": "짧은 글", "body": "너무 짧습니다."}]
    kept = script.select_pairs(pairs, "gnome-user-docs")
    assert [pair["url"] for pair in kept] == ["pkg:/guide.html#a"]
    assert len(script.select_pairs(pairs[:2], "gnome-user-docs")) == 2  # "일반" twice is not generic yet
