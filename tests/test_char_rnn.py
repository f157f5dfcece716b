"""Week 3 Char-RNN lab: bits per character by hand, baselines by hand, sampling, the CLI end to end."""
import json
import math
import unicodedata

import numpy as np
import pytest

from dlcourse import hangul
from labs import char_rnn
from tests.conftest import REPO, read_metrics, run_lab
from tests.test_labs import history_epochs
from tests.test_resume import kill_when, logged_epochs

PRIME = "대한민국"


def is_clean_text(text):
    return (unicodedata.normalize("NFC", text) == text
            and not any("\u1100" <= char <= "\u11ff" for char in text))


# --- the loss in bits per character, by hand ---------------------------------------

def test_uniform_model_over_four_tokens_costs_two_bits_per_token():
    """'가가가' at the jamo level: 6 tokens ᄀ ᅡ ᄀ ᅡ ᄀ ᅡ for 3 characters.

    A model that gives each of its 4 ids probability 1/4 pays log2 4 = 2 bits
    per token, 12 bits in all: 12 / 3 = 4 bits per character.
    """
    text = "가가가"
    vocabulary = hangul.Vocabulary.from_text(text, "jamo")
    assert vocabulary.size == 4  # <pad>, <unk>, ᄀ, ᅡ
    model = char_rnn.build_model(vocabulary.size, embedding_dim=3, layers=1, units=3)
    output = model.get_layer("next_token")
    output.set_weights([np.zeros_like(weight) for weight in output.get_weights()])
    model.compile(loss=char_rnn.LOSS)
    windows = char_rnn.make_windows(vocabulary.encode(text), seq_length=2, batch_size=2)
    assert char_rnn.model_bits_per_char(model, windows, text, "jamo") == pytest.approx(4.0, abs=1e-5)
    # The same loss per token on syllable tokens is 2 bits per character.
    assert char_rnn.bits_per_char(math.log(4), text, "syllable") == pytest.approx(2.0)


def test_ngram_baselines_by_hand():
    # Syllable level, add-one: train 'aab', validation 'ab'; ids <pad>=0 <unk>=1 a=2 b=3.
    # Both models spread probability over the 3 ids that are not <pad>.
    # unigram p(b) = (1 + 1) / (3 + 3) = 1/3;  bigram p(b | a) = (1 + 1) / (2 + 3) = 2/5.
    vocabulary = hangul.Vocabulary.from_text("aab", "syllable")
    result = char_rnn.baseline_bits_per_char(vocabulary.encode("aab"), vocabulary.encode("ab"),
                                             vocabulary.size, "ab", "syllable", add_k=1)
    assert result["unigram_bits_per_char"] == pytest.approx(math.log2(3))
    assert result["bigram_bits_per_char"] == pytest.approx(math.log2(5 / 2))

    # Jamo level: train '가가나' = ᄀ ᅡ ᄀ ᅡ ᄂ ᅡ (ids ᄀ ᄂ ᅡ, 4 non-<pad> ids); validation '가' = ᄀ ᅡ,
    # one target ᅡ for one character of two tokens.
    # unigram p(ᅡ) = (3 + 1) / (6 + 4) = 2/5;  bigram p(ᅡ | ᄀ) = (2 + 1) / (2 + 4) = 1/2.
    vocabulary = hangul.Vocabulary.from_text("가가나", "jamo")
    result = char_rnn.baseline_bits_per_char(vocabulary.encode("가가나"), vocabulary.encode("가"),
                                             vocabulary.size, "가", "jamo", add_k=1)
    assert result["unigram_bits_per_char"] == pytest.approx(2 * math.log2(5 / 2))
    assert result["bigram_bits_per_char"] == pytest.approx(2 * 1.0)


def test_windows_are_inputs_and_next_token_targets():
    batches = list(char_rnn.make_windows(np.arange(12), seq_length=5, batch_size=4))
    assert len(batches) == 1
    inputs, targets = (tensor.numpy() for tensor in batches[0])
    assert inputs.tolist() == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert targets.tolist() == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]


def test_windows_split_evenly_between_replicas():
    # 7 windows of 3 tokens, 2 replicas: 6 windows in batches of 4 and 2 (never an odd batch).
    batches = list(char_rnn.make_windows(np.arange(22), seq_length=3, batch_size=5, replicas=2))
    assert [len(inputs) for inputs, _ in batches] == [4, 2]


def test_sampling_respects_top_k_and_never_draws_special_tokens():
    rng = np.random.default_rng(0)
    probabilities = np.array([0.5, 0.3, 0.05, 0.1, 0.05])  # <pad> and <unk> most likely
    assert {char_rnn.sample_token(probabilities, 1.0, top_k=1, rng=rng) for _ in range(50)} == {3}
    draws = {char_rnn.sample_token(probabilities, 1.2, rng=rng) for _ in range(300)}
    assert draws == {2, 3, 4}


# --- the lab end to end, as a user runs it ------------------------------------------

def check_finished_run(run_dir, result, level, last_epoch):
    """What a finished char-RNN run leaves: metrics against both baselines, the vocabulary of its
    level, the checkpoint and figures, and samples at three temperatures."""
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = read_metrics(run_dir)
    assert metrics["level"] == level
    for key in ("val_bits_per_char", "unigram_bits_per_char", "bigram_bits_per_char"):
        assert 0 < metrics[key] < 20, key
    assert metrics["sample"].startswith(PRIME) and is_clean_text(metrics["sample"])
    assert hangul.Vocabulary.load(run_dir / "vocabulary.json").level == level
    for name in ("checkpoints/best.keras", "curves.png", "bits_per_char.png", "history.csv"):
        assert (run_dir / name).is_file(), name
    samples = (run_dir / "samples" / f"epoch_{last_epoch:03d}.txt").read_text(encoding="utf-8")
    assert [line for line in samples.splitlines() if line.startswith("## ")] == [
        "## temperature 0.5", "## temperature 1.0", "## temperature 1.2"]
    assert is_clean_text(samples)
    assert "bigram" in result.stdout and "bits per character" in result.stdout
    return metrics


def check_generates(run_dir, capsys, length=40):
    """``python -m labs.char_rnn generate`` in the test's process (``char_rnn.main``, as ``python -m``
    calls it)."""
    capsys.readouterr()
    assert char_rnn.main(["generate", "--run", str(run_dir), "--prime", PRIME, "--length", str(length),
                          "--temperature", "0.8", "--top-k", "10", "--seed", "3"]) == 0
    text = capsys.readouterr().out[:-1]  # print() adds one newline
    assert text.startswith(PRIME) and is_clean_text(text)
    assert len(text) == len(PRIME) + length  # --length counts characters at both levels


def test_jamo_smoke_train_then_generate(tmp_path, capsys):
    """Jamo level with a GRU and the course's Adam (the syllable level, an LSTM and Keras's Adam
    are the killed-and-resumed run below)."""
    run_dir = tmp_path / "run"
    result = run_lab("labs.char_rnn", "--smoke", "--epochs", 2, "--level", "jamo", "--cell", "gru",
                     "--optimizer", "custom_adam", "--sample-length", 30, "--out", run_dir)
    check_finished_run(run_dir, result, "jamo", last_epoch=2)
    check_generates(run_dir, capsys)


def test_killed_run_resumes_then_generates(tmp_path, capsys):
    run_dir, epochs = tmp_path / "run", 5
    arguments = ["--smoke", "--batch-size", 4, "--sample-length", 10, "--epochs", epochs,
                 "--out", run_dir]
    kill_when("char_rnn", arguments, lambda: logged_epochs(run_dir / "history.csv") >= 2)
    before = len(history_epochs(run_dir))
    assert 2 <= before < epochs and not (run_dir / "metrics.json").exists()

    result = run_lab("labs.char_rnn", *arguments)
    metrics = check_finished_run(run_dir, result, "syllable", last_epoch=epochs)
    assert "Resuming the unfinished run" in result.stdout
    assert metrics["resumed_from_epoch"] == before
    assert history_epochs(run_dir) == list(range(epochs)) and metrics["epochs"] == epochs
    check_generates(run_dir, capsys)


# --- one-line errors ----------------------------------------------------------------

def test_non_utf8_corpus_is_one_line_and_exit_code_1(tmp_path, capsys):
    corpus = tmp_path / "euc_kr.txt"
    corpus.write_bytes("대한민국 헌법".encode("euc-kr") * 50)
    # In the test's process (char_rnn.main, as python -m calls it): the corpus is read first.
    assert char_rnn.main(["--smoke", "--corpus", str(corpus), "--out", str(tmp_path / "run")]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("python -m labs.char_rnn")
    assert "not UTF-8" in errors[0] and str(corpus) in errors[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("content, words", [
    (b"", "contains no text"),
    (b"  \n\t\n", "contains no text"),
    ("짧은 글".encode(), "too few"),
])
def test_unusable_corpus_is_one_line_and_exit_code_1(tmp_path, capsys, content, words):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(content)
    assert char_rnn.main(["--corpus", str(corpus), "--out", str(tmp_path / "run")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and words in error and str(corpus) in error


def test_generate_from_a_missing_run_dir_is_one_line(tmp_path, capsys):
    assert char_rnn.main(["generate", "--run", str(tmp_path / "nope")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no such run directory" in error
    assert char_rnn.main(["generate", "--run", str(tmp_path)]) == 1
    assert "best.keras is missing" in capsys.readouterr().err
    assert char_rnn.main(["generate"]) == 2
    assert "--run" in capsys.readouterr().err


def test_notebook_parameters_cell():
    path = REPO / "notebooks" / "week3_char_rnn.ipynb"
    notebook = json.loads(path.read_text(encoding="utf-8"))
    (cell,) = [cell for cell in notebook["cells"] if "parameters" in cell["metadata"].get("tags", [])]
    names = [line.split("=")[0].strip() for line in "".join(cell["source"]).splitlines()]
    assert names == ["SMOKE", "EPOCHS", "OPTIMIZER", "LEARNING_RATE", "OUT_DIR"]


def test_week3_runs_the_lab_and_prints_the_table(tmp_path):
    result = run_lab("labs.week3", "--smoke", "--epochs", 1, "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    table = result.stdout.split("week3: 1 lab(s)")[1]
    row = next(line for line in table.splitlines() if line.startswith("char_rnn"))
    assert "val_bits_per_char" in row
    assert str(read_metrics(tmp_path / "char_rnn")["val_bits_per_char"]) in row
