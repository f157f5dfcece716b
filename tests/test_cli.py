"""Bad flags and values: one readable line on stderr and exit code 2, never a traceback."""
import pytest

from dlcourse import cli
from labs import cnn_mnist, softmax_mnist, week1


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
