"""Week-4 title writers compared: every model over seeds, ten held-out titles, and learning curves.

Each point is one run of the lab (``python -m labs.news_seq2seq``) in its own
process and run directory, so that an interrupted benchmark resumes where it
stopped (a finished point has metrics.json and is not trained again; an
unfinished one resumes from its last epoch).  The models:

* ``gru``          the lab's default (GRU 3 × 128 + copy, 10 epochs);
* ``gru_pretrained`` the same after one epoch of decoder pre-training as a
  Korean language model (``--pretrain-epochs 1``, transfer from week 3);
* ``transformer``  the Transformer encoder–decoder (2 blocks, d=128 + copy), 20 epochs.

The two baselines (lead, nearest neighbour) come with every run, refitted on
the same training subset.  At the full training split every model runs with
every ``--seeds``; the learning curve's smaller ``--fractions`` use the first
seed only.  Greedy or beam search is chosen by each run on its validation
split, never on the test split.

    .venv/bin/python benchmarks/news_learning_curve.py --out runs/news_models
    .venv/bin/python benchmarks/news_learning_curve.py --models gru --seeds 0 --fractions 0.5

Writes in ``--out``: ``points.json`` (every run's numbers), ``table.md``
(test ROUGE-L by character and by morpheme, mean ± standard deviation over
seeds, with the range), ``examples.md`` (the first ten test bodies, the
truth and every model's title) and ``learning_curve.png``.
"""
import argparse
import csv
import json
import pathlib
import statistics
import subprocess
import sys
import time

from matplotlib.figure import Figure

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dlcourse import figures  # noqa: E402

MODELS = {
    "gru": [],
    "gru_pretrained": ["--pretrain-epochs", "1"],
    "transformer": ["--model", "transformer", "--epochs", "20"],
}
BASELINES = ("lead", "nearest_neighbour")
UNITS = ("character", "morpheme")


def run_point(model, fraction, seed, out_dir, extra_arguments):
    """One lab run (or its finished metrics.json): the numbers this benchmark keeps."""
    run_dir = out_dir / f"{model}_f{fraction:g}_s{seed}"
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.exists():
        command = [sys.executable, "-m", "labs.news_seq2seq", *MODELS[model], *extra_arguments,
                   "--seed", str(seed), "--train-fraction", str(fraction), "--out", str(run_dir),
                   "--show", "0", "--verbose", "0"]
        print(f"[{time.strftime('%H:%M:%S')}] {model} fraction {fraction:g} seed {seed}", flush=True)
        subprocess.run(command, cwd=ROOT, check=True)
    metrics = json.loads(metrics_path.read_text())
    decoding = metrics["decoding"]
    point = {"model": model, "fraction": fraction, "seed": seed, "run_dir": run_dir.name,
             "train_pairs": metrics["train_pairs"], "decoding": decoding,
             "wall_seconds": metrics["wall_seconds"], "character": {}, "morpheme": {}}
    for unit, key in (("character", "rouge"), ("morpheme", "rouge_morpheme")):
        scores = metrics.get(key) or {}
        if scores:
            point[unit] = {"model": scores[decoding]["rougeL"],
                           **{name: scores[name]["rougeL"] for name in BASELINES}}
    return point


def summary(values):
    """``(mean, sample standard deviation, min, max)`` (deviation 0 for one value)."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), spread, min(values), max(values)


def format_table(points, models):
    full = [point for point in points if point["fraction"] == 1.0]
    rows = [("lead (first words)", [(p, "lead") for p in full if p["model"] == models[0]]),
            ("nearest neighbour (TF-IDF)", [(p, "nearest_neighbour") for p in full if p["model"] == models[0]])]
    rows += [(model, [(p, "model") for p in full if p["model"] == model]) for model in models]
    lines = ["| method | seeds | test ROUGE-L by character | by morpheme | decoding | wall s (mean) |",
             "|---|---|---|---|---|---|"]
    for name, entries in rows:
        if not entries:
            continue
        cells = []
        for unit in UNITS:
            values = [point[unit][key] for point, key in entries if point[unit]]
            if values:
                mean, spread, low, high = summary(values)
                cells.append(f"{mean:.3f} ± {spread:.3f} ({low:.3f}–{high:.3f})")
            else:
                cells.append("—")
        is_model = entries[0][1] == "model"
        decodings = ", ".join(point["decoding"] for point, _ in entries) if is_model else "—"
        wall = f"{statistics.mean(point['wall_seconds'] for point, _ in entries):.0f}" if is_model else "—"
        lines.append(f"| {name} | {len(entries)} | {cells[0]} | {cells[1]} | {decodings} | {wall} |")
    return "\n".join(lines) + "\n"


def read_predictions(run_dir, decoding):
    with open(run_dir / "predictions.tsv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows, [row[decoding] for row in rows]


def format_examples(points, models, out_dir, count=10):
    """The first ``count`` test pairs (not chosen by how well anyone did), with every model's title."""
    from labs import news_seq2seq

    config = news_seq2seq.parser.parse_args([])
    news_seq2seq.check_config(config)
    _, _, test = news_seq2seq.load_pairs(config)
    first_seed = min(point["seed"] for point in points)
    titles, baseline_rows = {}, None
    for model in models:
        point = next((p for p in points if p["model"] == model and p["fraction"] == 1.0
                      and p["seed"] == first_seed), None)
        if point:
            baseline_rows, titles[model] = read_predictions(out_dir / point["run_dir"], point["decoding"])
    lines = [f"Test pairs 1–{count} (the test split's order), seed {first_seed}; each model's title with "
             "the decoding its validation split chose.", ""]
    for index in range(min(count, len(test))):
        body = " ".join(test[index]["body"].split())[:80]
        lines += [f"**{index + 1}.** 본문: {body}…", "",
                  f"- 정답: {test[index]['title']}"]
        if baseline_rows:
            lines += [f"- lead: {baseline_rows[index]['lead']}",
                      f"- nearest neighbour: {baseline_rows[index]['nearest_neighbour']}"]
        lines += [f"- {model}: {model_titles[index]}" for model, model_titles in titles.items()]
        lines.append("")
    return "\n".join(lines)


def plot(points, models, path):
    """Test ROUGE-L by character against training pairs; full-size points are seed means with their range."""
    figure = Figure(figsize=(6.5, 4))
    axes = figure.add_subplot()
    curves = [(model, model, "model") for model in models]
    curves += [(name, models[0], name) for name in BASELINES]
    all_sizes = set()
    for (label, model, key), style in zip(curves, ("D-", "o-", "^-", "s--", "v--")):
        by_size = {}
        for point in points:
            if point["model"] == model and point["character"]:
                by_size.setdefault(point["train_pairs"], []).append(point["character"][key])
        sizes = sorted(by_size)
        if not sizes:
            continue
        all_sizes.update(sizes)
        means = [statistics.mean(by_size[size]) for size in sizes]
        lows = [mean - min(by_size[size]) for mean, size in zip(means, sizes)]
        highs = [max(by_size[size]) - mean for mean, size in zip(means, sizes)]
        axes.errorbar(sizes, means, yerr=[lows, highs], fmt=style, capsize=3, label=label)
    axes.set_xscale("log")
    axes.set_xticks(sorted(all_sizes), [str(size) for size in sorted(all_sizes)])
    axes.minorticks_off()
    axes.set_xlabel("training pairs")
    axes.set_ylabel("test ROUGE-L F1 (characters)")
    axes.set_title("week-4 title writers: learning curves (same test split)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return figures.save(figure, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.125, 0.25, 0.5],
                        help="smaller training subsets for the learning curve (first seed only)")
    parser.add_argument("--out", default="runs/news_models")
    arguments, extra_arguments = parser.parse_known_args()
    extra_arguments = [argument for argument in extra_arguments if argument != "--"]
    out_dir = pathlib.Path(arguments.out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = [(model, 1.0, seed) for seed in arguments.seeds for model in arguments.models]
    plan += [(model, fraction, arguments.seeds[0]) for fraction in sorted(arguments.fractions, reverse=True)
             if fraction != 1.0 for model in arguments.models]
    points = []
    for model, fraction, seed in plan:
        points.append(run_point(model, fraction, seed, out_dir, extra_arguments))
        (out_dir / "points.json").write_text(json.dumps(points, indent=2, ensure_ascii=False) + "\n")
        (out_dir / "table.md").write_text(format_table(points, arguments.models))
        plot(points, arguments.models, out_dir / "learning_curve.png")
    (out_dir / "examples.md").write_text(format_examples(points, arguments.models, out_dir))
    print((out_dir / "table.md").read_text())


if __name__ == "__main__":
    main()
