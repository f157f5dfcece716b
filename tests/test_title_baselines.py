"""The two title baselines: lead words and the nearest training neighbour."""
import pytest

from dlcourse import title_baselines

TRAIN_BODIES = ["서울 날씨가 맑고 기온이 올라 따뜻한 봄 날씨를 보였다",
                "국회에서 내년도 예산안 처리를 두고 여야가 대립했다",
                "프로야구 개막전에서 두산이 연장 끝에 승리했다"]
TRAIN_TITLES = ["서울 맑고 따뜻한 봄 날씨", "예산안 두고 여야 대립", "두산 개막전 승리"]


def test_lead_takes_the_first_words():
    bodies = ["정부가 오늘 새 정책을 발표했다.", "짧은\n\n본문", ""]
    assert title_baselines.lead_titles(bodies, 3) == ["정부가 오늘 새", "짧은 본문", ""]
    assert title_baselines.lead_titles(bodies, 1) == ["정부가", "짧은", ""]
    with pytest.raises(ValueError):
        title_baselines.lead_titles(bodies, 0)


def test_lead_length_is_the_median_training_title_length():
    assert title_baselines.lead_length(["가 나 다", "가 나", "가 나 다 라 마"]) == 3
    assert title_baselines.lead_length(["가", "가 나 다 라"]) == 3  # median 2.5, rounded up
    assert title_baselines.lead_length(["", "가"]) == 1  # median 0.5 → 1, and never 0
    assert title_baselines.lead_length(TRAIN_TITLES) == 4
    with pytest.raises(ValueError):
        title_baselines.lead_length([])


def test_nearest_neighbour_picks_the_closest_training_body():
    test_bodies = ["내일도 서울 날씨는 맑고 기온이 올라 따뜻하겠다",
                   "두산이 프로야구 개막전 승리",
                   "여야가 국회 예산안 처리에 합의했다"]
    assert title_baselines.nearest_neighbour_titles(TRAIN_BODIES, TRAIN_TITLES, test_bodies) == [
        TRAIN_TITLES[0], TRAIN_TITLES[2], TRAIN_TITLES[1]]
    assert title_baselines.nearest_neighbour_titles(TRAIN_BODIES, TRAIN_TITLES, []) == []


def test_nearest_neighbour_ties_go_to_the_lowest_index():
    bodies = [TRAIN_BODIES[1], TRAIN_BODIES[0], TRAIN_BODIES[0]]
    titles = ["예산", "첫째", "둘째"]
    assert title_baselines.nearest_neighbour_titles(bodies, titles, [TRAIN_BODIES[0]]) == ["첫째"]
    # An empty body is similar to nothing (every similarity is 0): the first title wins.
    assert title_baselines.nearest_neighbour_titles(bodies, titles, [""]) == ["예산"]


def test_the_vectorizer_never_sees_the_test_bodies(monkeypatch):
    fitted_on, instances = [], []

    class RecordingVectorizer(title_baselines.TfidfVectorizer):
        def fit(self, raw_documents, y=None):
            fitted_on.append(list(raw_documents))
            instances.append(self)
            return super().fit(raw_documents, y)

        def fit_transform(self, raw_documents, y=None):
            fitted_on.append(list(raw_documents))
            instances.append(self)
            return super().fit_transform(raw_documents, y)

    monkeypatch.setattr(title_baselines, "TfidfVectorizer", RecordingVectorizer)
    test_bodies = ["쀍쀍 서울 날씨", "뷁 예산안"]  # 쀍 and 뷁 occur in the test bodies only
    titles = title_baselines.nearest_neighbour_titles(TRAIN_BODIES, TRAIN_TITLES, test_bodies)
    assert titles == [TRAIN_TITLES[0], TRAIN_TITLES[1]]
    assert fitted_on and all(documents == TRAIN_BODIES for documents in fitted_on)
    vocabulary = instances[-1].vocabulary_
    assert "서울" in " ".join(vocabulary)
    assert not any("쀍" in ngram or "뷁" in ngram for ngram in vocabulary)
