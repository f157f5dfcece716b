"""The command line: one readable line on stderr for a bad flag (exit code 2), never a traceback;
week runners that take every option of their labs; sub-commands that use a trained run."""
import argparse
import importlib
import json

import cv2
import keras
import numpy as np
import pytest

from dlcourse import cli, hangul, seq2seq
from labs import char_rnn, cnn_mnist, mlp_mnist, news_seq2seq, rcnn, softmax_mnist, week1, week3, week4


@pytest.mark.parametrize("argv, words", [
    (["--epochs", "0"], "--epochs: must be positive"),
    (["--lr", "-0.1"], "--lr: must be positive"),
    (["--batch-size", "many"], "expected a number"),
    (["--optimizer", "adamw2"], "invalid choice"),
    (["--strategy", "tpu"], "invalid choice"),
    (["--no-such-flag"], "unrecognized arguments"),
])
def test_bad_flag_is_one_line_and_exit_code_2(capsys, argv, words):
    assert softmax_mnist.main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and words in error
    assert error.startswith("python -m labs.softmax_mnist: error:")


def test_multiworker_without_tf_config_is_a_usage_error(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cnn_mnist.main(["--smoke", "--strategy", "multiworker", "--out", str(tmp_path)]) == 2
    assert "TF_CONFIG" in capsys.readouterr().err


def test_multiworker_with_a_tf_config_that_is_not_json_is_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("TF_CONFIG", "{cluster: worker}")
    assert cnn_mnist.main(["--smoke", "--strategy", "multiworker", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "TF_CONFIG is not JSON" in error
    assert not (tmp_path / "config.json").exists()


def test_week_runner_rejects_unknown_lab(capsys):
    assert week1.main(["--lab", "nope"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_help_lists_the_common_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cnn_mnist.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--epochs", "--batch-size", "--lr", "--optimizer", "--seed", "--out", "--smoke",
                 "--strategy", "--mixed-precision", "--jit", "custom_adam"):
        assert flag in text


def test_make_config_uses_parser_defaults_and_rejects_typos():
    config = cli.make_config(cnn_mnist.parser, smoke=True)
    assert config.smoke and config.epochs == 8 and config.lab == "cnn_mnist"
    with pytest.raises(cli.UsageError, match="unknown setting 'epoch'"):
        cli.make_config(cnn_mnist.parser, epoch=3)


# --- the week runners take every option of their labs ---------------------------------

@pytest.fixture
def received(monkeypatch):
    """Replace each lab's ``run`` by one that records the config it is given."""
    configs = {}

    def recorder(name, lab):
        def run(config):
            configs[name] = config
            return {lab.REFERENCE["metric"]: 0.5, "run_dir": config.out}
        return run

    for name in (*week1.LABS, *week3.LABS, *week4.LABS):
        lab = importlib.import_module(f"labs.{name}")
        monkeypatch.setattr(lab, "run", recorder(name, lab))
    return configs


def test_week_runner_passes_a_lab_option_only_to_the_labs_that_have_it(received, tmp_path):
    argv = ["--lab", "softmax_mnist", "--lab", "mlp_mnist", "--lab", "cnn_mnist", "--dropout", "0",
            "--hidden", "64", "--epochs", "2", "--seed", "0", "--out", str(tmp_path)]
    assert week1.main(argv) == 0
    assert set(received) == {"softmax_mnist", "mlp_mnist", "cnn_mnist"}
    mlp, cnn, softmax = received["mlp_mnist"], received["cnn_mnist"], received["softmax_mnist"]
    assert mlp.dropout == 0.0 and cnn.dropout == 0.0 and not hasattr(softmax, "dropout")
    assert mlp.hidden == [64] and not hasattr(cnn, "hidden") and not hasattr(softmax, "hidden")
    # The common flags reach every lab, 0 included; the rest keep each lab's own default.
    assert all(config.epochs == 2 and config.seed == 0 for config in received.values())
    assert (mlp.lr, cnn.lr, softmax.lr) == (mlp_mnist.parser.get_default("lr"),
                                            cnn_mnist.parser.get_default("lr"),
                                            softmax_mnist.parser.get_default("lr"))
    assert {name: config.out for name, config in received.items()} == {
        name: str(tmp_path / name) for name in received}


def test_week_runner_passes_switches_and_defaults_of_a_single_lab(received):
    assert week4.main(["--corpus", "articles.jsonl", "--no-copy", "--smoke"]) == 0
    config = received["news_seq2seq"]
    assert config.corpus == "articles.jsonl" and config.copy is False and config.smoke
    assert config.epochs == news_seq2seq.parser.get_default("epochs")
    assert config.units is None  # left to the chosen model's default (news_seq2seq.check_config)
    assert week3.main(["--level", "jamo"]) == 0
    assert received["char_rnn"].level == "jamo" and received["char_rnn"].cell == "lstm"


@pytest.mark.parametrize("argv, words", [
    (["--lab", "softmax_mnist", "--corpus", "x.txt"],
     ["--corpus is an option of ", "char_rnn (week3)", "news_seq2seq (week4)", "not of softmax_mnist"]),
    (["--lab", "softmax_mnist", "--dropout", "0.1"],
     ["--dropout is an option of ", "mlp_mnist (week1)", "cnn_mnist (week1)", "rcnn (week5)",
      "not of softmax_mnist"]),
    (["--level=jamo"], ["--level is an option of char_rnn (week3), not of softmax_mnist, mlp_mnist"]),
    (["--no-such-flag", "3"], ["unrecognized arguments: --no-such-flag (no lab has this option)"]),
])
def test_week_runner_refuses_an_option_of_other_labs_in_one_line(received, capsys, argv, words):
    assert week1.main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("python -m labs.week1: error: ")
    assert all(word in error for word in words), error
    assert not received, "nothing runs after a bad option"


def test_week_help_lists_each_labs_own_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        week1.main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # help is wrapped to the terminal
    for words in ("options of every lab", "--epochs", "options of several labs", "--hidden",
                  "mlp_mnist: dropout after each hidden layer (default: 0.2)",
                  "cnn_mnist: dropout rate before the softmax layer (default: 0.5)",
                  "options of stacked_autoencoder only", "--finetune-lr-factor"):
        assert words in text, words
    assert "SUPPRESS" not in text
    with pytest.raises(SystemExit):
        week4.main(["--help"])
    text = capsys.readouterr().out
    assert "options of news_seq2seq only" in text and "--corpus" in text and "--no-copy" in text


# --- shared argument types and sub-commands -------------------------------------------

@pytest.mark.parametrize("lab", [cnn_mnist, mlp_mnist, char_rnn, news_seq2seq, rcnn])
@pytest.mark.parametrize("value", ["1.5", "1", "-0.1", "half"])
def test_every_dropout_is_a_fraction(capsys, lab, value):
    assert lab.main(["--dropout", value]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--dropout" in error
    assert lab.parser.parse_args(["--dropout", "0"]).dropout == 0.0


def test_fraction_types():
    assert cli.fraction("0") == 0.0 and cli.fraction("0.999") == 0.999
    assert cli.positive_fraction("1") == 1.0
    for parse, text in ((cli.fraction, "1"), (cli.fraction, "nan"), (cli.positive_fraction, "0"),
                        (cli.positive_fraction, "1.01"), (cli.positive_fraction, "x")):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_lab_help_names_its_sub_commands(capsys):
    for lab, names in ((char_rnn, ["generate"]), (news_seq2seq, ["crawl", "predict"]), (rcnn, ["detect"])):
        with pytest.raises(SystemExit):
            lab.main(["--help"])
        text = " ".join(capsys.readouterr().out.split())  # the epilog is wrapped to the terminal
        assert all(f"python -m labs.{lab.NAME} {name} --help" in text for name in names), text


def make_run_dir(path, model, companions):
    (path / "checkpoints").mkdir(parents=True)
    model.save(path / "checkpoints" / "best.keras")
    for name, content in companions.items():
        (path / name).write_text(content, encoding="utf-8")
    return path


def test_sub_commands_refuse_a_checkpoint_of_another_run_in_one_line(tmp_path, capsys):
    tokens = keras.Input((None,), dtype="int32")
    five_outputs = keras.Model(tokens, keras.layers.Dense(5)(keras.layers.Embedding(9, 2)(tokens)))
    vocabulary = hangul.Vocabulary.from_text("가나다라마바사아자차카타", "syllable")
    run_dir = make_run_dir(tmp_path / "char_rnn", five_outputs, {})
    vocabulary.save(run_dir / "vocabulary.json")
    assert vocabulary.size != 5
    assert char_rnn.main(["generate", "--run", str(run_dir)]) == 1

    crops = keras.Input((8, 8, 3))
    three_classes = keras.Model(crops, keras.layers.Dense(3)(keras.layers.Flatten()(crops)))
    run_dir = make_run_dir(tmp_path / "rcnn", three_classes,
                           {"detector.json": json.dumps({"class_names": ["digit"]})})
    image = tmp_path / "image.png"
    cv2.imwrite(str(image), np.zeros((16, 16, 3), dtype="uint8"))
    assert rcnn.main(["detect", str(image), "--run", str(run_dir)]) == 1

    model = seq2seq.build_seq2seq(11, embedding_dim=4, units=4, layers=1, encoder_length=5, decoder_length=4)
    run_dir = make_run_dir(tmp_path / "news_seq2seq", model.training_model, {"config.json": "{}"})
    seq2seq.build_vocabulary(["가나다라마바사아자차카타"]).save(run_dir / "vocabulary.json")
    body = tmp_path / "body.txt"
    body.write_text("본문", encoding="utf-8")
    assert news_seq2seq.main(["predict", "--run", str(run_dir), "--text-file", str(body)]) == 1

    errors = capsys.readouterr().err.splitlines()
    assert [error.split(": error: ")[0] for error in errors] == [
        "python -m labs.char_rnn generate", "python -m labs.rcnn detect", "python -m labs.news_seq2seq predict"]
    for error, companion in zip(errors, ("vocabulary.json", "detector.json", "vocabulary.json"), strict=True):
        assert error.endswith(f"the checkpoint and {companion} do not belong together"), error
