"""Learning curve of the week-4 title writer: test ROUGE-L against the number of training pairs.

Trains ``labs.news_seq2seq`` on 25 %, 50 % and 100 % of its training split
(the validation and test splits stay the same) and plots the model's test
ROUGE-L next to the two baselines, which are refitted on the same subsets.
The question it answers: with more pairs, is the model catching up with the
baselines, or not?

    .venv/bin/python benchmarks/news_learning_curve.py --out runs/learning_curve
    .venv/bin/python benchmarks/news_learning_curve.py --fractions 0.5 1.0 -- --epochs 30 --no-copy

Everything after ``--`` is passed to the lab.  It writes ``learning_curve.json``
and ``learning_curve.png`` in ``--out``.
"""
import argparse
import json
import pathlib
import sys

from matplotlib.figure import Figure

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from dlcourse import figures  # noqa: E402
from labs import news_seq2seq  # noqa: E402

METHODS = ("lead", "nearest_neighbour", "model")


def measure(fractions, out_dir, lab_arguments):
    points = []
    for fraction in fractions:
        config = news_seq2seq.parser.parse_args(
            [*lab_arguments, "--train-fraction", str(fraction),
             "--out", str(out_dir / f"fraction_{fraction:g}")])
        metrics = news_seq2seq.run(config)
        points.append({"fraction": fraction, "train_pairs": metrics["train_pairs"],
                       "lead": metrics["rouge"]["lead"]["rougeL"],
                       "nearest_neighbour": metrics["rouge"]["nearest_neighbour"]["rougeL"],
                       "model": metrics["test_rougeL"], "decoding": metrics["decoding"],
                       "wall_seconds": metrics["wall_seconds"]})
    return points


def plot(points, path):
    figure = Figure(figsize=(5.5, 3.6))
    axes = figure.add_subplot()
    pairs = [point["train_pairs"] for point in points]
    for method, style in zip(METHODS, ("s--", "o--", "D-")):
        axes.plot(pairs, [point[method] for point in points], style, label=method)
    axes.set_xlabel("training pairs")
    axes.set_ylabel("test ROUGE-L F1 (characters)")
    axes.set_title("learning curve (same test split)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return figures.save(figure, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--out", default="runs/learning_curve")
    arguments, lab_arguments = parser.parse_known_args()
    lab_arguments = [argument for argument in lab_arguments if argument != "--"]
    out_dir = pathlib.Path(arguments.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    points = measure(arguments.fractions, out_dir, lab_arguments)
    (out_dir / "learning_curve.json").write_text(json.dumps(points, indent=2) + "\n")
    plot(points, out_dir / "learning_curve.png")
    print(f"{'pairs':>6} {'lead':>7} {'nearest':>8} {'model':>7}")
    for point in points:
        print(f"{point['train_pairs']:6d} {point['lead']:7.4f} {point['nearest_neighbour']:8.4f} "
              f"{point['model']:7.4f}")


if __name__ == "__main__":
    main()
