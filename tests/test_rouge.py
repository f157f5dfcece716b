"""Character- and morpheme-level ROUGE, checked against scores worked out by hand."""
import subprocess
import sys
import unicodedata

import pytest

from dlcourse import rouge


def assert_score(score, precision, recall, f1):
    assert score == pytest.approx(rouge.Score(precision, recall, f1))


def test_korean_title_with_different_spacing():
    # Whitespace is removed: prediction 대통령선거결과 (7 characters),
    # reference 대통령선거결과발표 (9 characters).
    prediction, reference = "대통령 선거 결과", "대통령선거 결과 발표"
    # ROUGE-1: all 7 predicted characters are in the reference.
    # P = 7/7, R = 7/9, F1 = 2 · 1 · 7/9 / (1 + 7/9) = 14/16.
    assert_score(rouge.rouge_n(prediction, reference, 1), 1.0, 7 / 9, 14 / 16)
    # ROUGE-2: predicted bigrams 대통 통령 령선 선거 거결 결과 (6), all in the reference,
    # which has those 6 plus 과발 발표 (8).  P = 6/6, R = 6/8, F1 = 1.5 / 1.75 = 6/7.
    assert_score(rouge.rouge_n(prediction, reference, 2), 1.0, 6 / 8, 6 / 7)
    # ROUGE-L: the whole prediction is a subsequence of the reference, LCS = 7.
    assert_score(rouge.rouge_l(prediction, reference), 1.0, 7 / 9, 14 / 16)


def test_order_matters_for_rouge_2_and_rouge_l_only():
    # 나가다라 vs 가나다라: the same four characters (ROUGE-1 = 1).
    assert_score(rouge.rouge_n("나가다라", "가나다라", 1), 1.0, 1.0, 1.0)
    # Bigrams 나가 가다 다라 vs 가나 나다 다라: only 다라 is shared, P = R = F1 = 1/3.
    assert_score(rouge.rouge_n("나가다라", "가나다라", 2), 1 / 3, 1 / 3, 1 / 3)
    # LCS: 가다라 (or 나다라), length 3 of 4: P = R = F1 = 3/4.
    assert_score(rouge.rouge_l("나가다라", "가나다라"), 0.75, 0.75, 0.75)


def test_repeated_characters_are_clipped():
    # Prediction 하하하하하 (5), reference 하하호호 (4): the reference has only two 하,
    # so only two of the five predicted 하 count.  P = 2/5, R = 2/4, F1 = 0.4 / 0.9 = 4/9.
    assert_score(rouge.rouge_n("하하하하하", "하하 호호", 1), 2 / 5, 2 / 4, 4 / 9)
    # Bigrams: four 하하 predicted, one in the reference (하하 하호 호호).
    # P = 1/4, R = 1/3, F1 = 2 · 1/12 / (7/12) = 2/7.
    assert_score(rouge.rouge_n("하하하하하", "하하 호호", 2), 1 / 4, 1 / 3, 2 / 7)
    # LCS = 하하, 2: P = 2/5, R = 2/4.
    assert_score(rouge.rouge_l("하하하하하", "하하 호호"), 2 / 5, 2 / 4, 4 / 9)


def test_empty_texts_score_zero():
    for prediction, reference in (("", "대한민국"), ("대한민국", ""), ("", ""), (" \n ", "대한")):
        assert rouge.rouge_n(prediction, reference, 1) == (0.0, 0.0, 0.0)
        assert rouge.rouge_n(prediction, reference, 2) == (0.0, 0.0, 0.0)
        assert rouge.rouge_l(prediction, reference) == (0.0, 0.0, 0.0)
    # One character has no bigram at all: ROUGE-2 is 0 even for an exact match.
    assert rouge.rouge_n("가", "가", 2).f1 == 0.0
    with pytest.raises(ValueError):
        rouge.rouge_n("가", "가", 0)


def test_decomposed_hangul_counts_as_syllables():
    assert rouge.rouge_l(unicodedata.normalize("NFD", "한국 경제"), "한국경제").f1 == 1.0


def test_corpus_rouge_is_the_mean_of_sentence_f1():
    predictions = ["대통령 선거 결과", "하하하하하"]
    references = ["대통령선거 결과 발표", "하하 호호"]
    scores = rouge.corpus_rouge(predictions, references)
    assert scores == pytest.approx({"rouge1": (14 / 16 + 4 / 9) / 2,
                                    "rouge2": (6 / 7 + 2 / 7) / 2,
                                    "rougeL": (14 / 16 + 4 / 9) / 2})
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        rouge.corpus_rouge(predictions, references[:1])
    with pytest.raises(ValueError):
        rouge.corpus_rouge([], [])


# ---- morpheme ROUGE (Kiwi, the optional package kiwipiepy) ------------------------------------
# The morphemes pinned below are the linguistically certain ones (a particle or an ending split
# from its stem); each hand computation names the morphemes it relies on.

needs_kiwi = pytest.mark.skipif(not rouge.morpheme_rouge_available(),
                                reason="morpheme ROUGE needs kiwipiepy (pip install kiwipiepy)")


def test_importing_rouge_does_not_load_the_analyser():
    code = "import sys, dlcourse.rouge; assert 'kiwipiepy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_analyser_is_one_readable_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "kiwipiepy", None)  # makes `import kiwipiepy` fail
    with pytest.raises(rouge.MorphemeAnalyserMissing, match="pip install kiwipiepy") as caught:
        rouge.analyser.__wrapped__()  # the loader itself, around the process-wide cache
    assert isinstance(caught.value, ImportError) and "\n" not in str(caught.value)
    monkeypatch.setattr(rouge.importlib.util, "find_spec", lambda name: None)
    assert rouge.morpheme_rouge_available() is False


def test_unknown_unit_is_refused():
    with pytest.raises(ValueError, match="character, morpheme"):
        rouge.rouge_n("가", "가", 1, unit="word")
    with pytest.raises(ValueError, match="character, morpheme"):
        rouge.corpus_rouge(["가"], ["가"], unit="word")


@needs_kiwi
def test_morphemes_split_particles_and_endings_and_drop_punctuation():
    assert rouge.morphemes("데비안을 설치하는 방법") == ["데비안", "을", "설치", "하", "는", "방법"]
    assert rouge.morphemes("데비안 설치 방법") == ["데비안", "설치", "방법"]
    # 발표했다: the noun 발표, the verb suffix 하, a past-tense ending, the final ending 다;
    # the full stop is dropped.
    tokens = rouge.morphemes("정부가 예산을 발표했다.")
    assert tokens[:6] == ["정부", "가", "예산", "을", "발표", "하"] and tokens[-1] == "다"
    # Brackets, commas and the ellipsis go; numbers and Latin words stay, the % sign goes.
    assert rouge.morphemes("[속보] 정부, 예산 발표…") == ["속보", "정부", "예산", "발표"]
    assert rouge.morphemes("KTX 요금 10% 인상") == ["KTX", "요금", "10", "인상"]
    for nothing in ("", "  \n", "…!? \"\""):
        assert rouge.morphemes(nothing) == []
    # Decomposed Hangul (NFD) is analysed as the syllables it spells.
    assert rouge.morphemes(unicodedata.normalize("NFD", "데비안 설치 방법")) == ["데비안", "설치", "방법"]


@needs_kiwi
def test_particles_count_as_morphemes_but_not_as_characters():
    prediction, reference = "데비안을 설치하는 방법", "데비안 설치 방법"
    # Characters: 데비안을설치하는방법 (10) against 데비안설치방법 (7), all 7 shared.
    # P = 7/10, R = 1, F1 = 1.4 / 1.7 = 14/17.  Bigrams: 9 predicted, 6 wanted, shared
    # 데비 비안 설치 방법: P = 4/9, R = 4/6, F1 = (16/27) / (10/9) = 8/15.  LCS = 7.
    assert_score(rouge.rouge_n(prediction, reference, 1), 0.7, 1.0, 14 / 17)
    assert_score(rouge.rouge_n(prediction, reference, 2), 4 / 9, 4 / 6, 8 / 15)
    assert_score(rouge.rouge_l(prediction, reference), 0.7, 1.0, 14 / 17)
    # Morphemes: 데비안 을 설치 하 는 방법 (6) against 데비안 설치 방법 (3).  The three stems are
    # shared, the particle 을 and the 하 는 of 설치하는 are units the reference lacks:
    # P = 3/6, R = 1, F1 = 2/3.  They also sit between the stems, so no morpheme bigram is
    # shared (데비안 을 ≠ 데비안 설치): ROUGE-2 = 0.  LCS = 데비안 설치 방법 = 3.
    assert_score(rouge.rouge_n(prediction, reference, 1, unit="morpheme"), 0.5, 1.0, 2 / 3)
    assert_score(rouge.rouge_n(prediction, reference, 2, unit="morpheme"), 0.0, 0.0, 0.0)
    assert_score(rouge.rouge_l(prediction, reference, unit="morpheme"), 0.5, 1.0, 2 / 3)


@needs_kiwi
def test_a_stem_fused_into_a_syllable_is_credited():
    prediction, reference = "기사를 쓴 기자", "기사를 쓰는 기자"
    # 쓴 is one syllable but two morphemes, the verb 쓰 and the adnominal ending -ㄴ.
    assert rouge.morphemes(prediction)[:3] == ["기사", "를", "쓰"]
    assert rouge.morphemes(prediction)[-1] == "기자" and len(rouge.morphemes(prediction)) == 5
    assert rouge.morphemes(reference) == ["기사", "를", "쓰", "는", "기자"]
    # Characters: 기사를쓴기자 (6) against 기사를쓰는기자 (7); 쓴 matches nothing, so 5 are
    # shared: P = 5/6, R = 5/7, F1 = 10/13.  Bigrams 기사 사를 기자 of 5 and 6: F1 = 6/11.
    assert_score(rouge.rouge_n(prediction, reference, 1), 5 / 6, 5 / 7, 10 / 13)
    assert_score(rouge.rouge_n(prediction, reference, 2), 3 / 5, 3 / 6, 6 / 11)
    # Morphemes: 4 of 5 on each side (only -ㄴ and 는 differ), F1 = 0.8 > 10/13: the stem 쓰
    # hidden inside 쓴 is credited.  Bigrams (기사 를) (를 쓰) of 4 and 4: 1/2.  LCS = 4.
    assert_score(rouge.rouge_n(prediction, reference, 1, unit="morpheme"), 0.8, 0.8, 0.8)
    assert_score(rouge.rouge_n(prediction, reference, 2, unit="morpheme"), 0.5, 0.5, 0.5)
    assert_score(rouge.rouge_l(prediction, reference, unit="morpheme"), 0.8, 0.8, 0.8)


@needs_kiwi
def test_a_shared_syllable_is_not_a_shared_morpheme():
    # 정리 해고 (lay-offs) and 정부 고용 (government employment) share the characters 정 and 고:
    # character ROUGE-1 = ROUGE-L = 2/4, but no morpheme is shared.
    prediction, reference = "정리 해고", "정부 고용"
    assert rouge.rouge_n(prediction, reference, 1).f1 == pytest.approx(0.5)
    assert rouge.rouge_l(prediction, reference).f1 == pytest.approx(0.5)
    assert rouge.corpus_rouge([prediction], [reference], unit="morpheme") == {
        "rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}


@needs_kiwi
def test_morpheme_rouge_of_identical_disjoint_and_empty_titles():
    title = "[속보] 정부가 내년 예산을 발표했다"
    assert rouge.corpus_rouge([title], [title], unit="morpheme") == pytest.approx(
        {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0})
    # Spacing does not matter to the analyser here either.
    assert rouge.rouge_l("정부가 내년 예산을 발표했다", "정부가 내년 예산을  발표 했다",
                         unit="morpheme").f1 == pytest.approx(1.0)
    assert rouge.corpus_rouge(["경제 성장"], ["축구 우승"], unit="morpheme") == {
        "rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for prediction in ("", "   ", "…!?"):
        assert rouge.corpus_rouge([prediction], [title], unit="morpheme") == {
            "rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}


@needs_kiwi
def test_morpheme_rouge_is_deterministic_and_corpus_is_the_mean():
    titles = ["데비안을 설치하는 방법", "기사를 쓴 기자", "정부가 내년 예산을 발표했다.",
              "삼성전자 3분기 영업이익 10조 돌파", "한국은행, 기준금리 0.25%p 인상"]
    first = [rouge.morphemes(title) for title in titles]
    assert [rouge.morphemes(title) for title in reversed(titles)] == first[::-1]
    predictions = ["데비안 설치 방법", "기사를 쓰는 기자"]
    scores = rouge.corpus_rouge(predictions, titles[:2], unit="morpheme")
    assert scores == rouge.corpus_rouge(predictions, titles[:2], unit="morpheme")
    # Hand scores from the two tests above (the prediction and reference swapped: F1 is symmetric).
    assert scores == pytest.approx({"rouge1": (2 / 3 + 0.8) / 2, "rouge2": (0 + 0.5) / 2,
                                    "rougeL": (2 / 3 + 0.8) / 2})
