"""Character-level ROUGE, checked against scores worked out by hand."""
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
