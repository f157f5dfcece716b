"""Week 5: R-CNN and Fast R-CNN side by side on the same scenes: mAP, training time, latency per stage.

Each method is one run of the lab (``python -m labs.rcnn --method rcnn|fast``)
in its own process and run directory: a finished run is read back from its
metrics.json, an interrupted one resumes from its last epoch.  Both runs see
the same scenes (the same ``--seed``), proposals and test images; the lab
scores each with and without its box regression in one pass and times every
stage of detection per test image.

    .venv/bin/python benchmarks/rcnn_vs_fast_rcnn.py --out runs/rcnn_vs_fast
    .venv/bin/python benchmarks/rcnn_vs_fast_rcnn.py --out runs/rcnn_vs_fast_300 -- \\
        --train-scenes 300 --validation-scenes 50 --test-scenes 100

Each method runs at its own defaults: R-CNN's backbone from scratch, Fast
R-CNN's first trained on MNIST's digits (``--weights digits``, which R-CNN
can take too: ``-- --weights digits``).  Arguments after ``--`` go to both runs.  Writes in ``--out``: ``table.md``
(mAP@0.5 and @0.75 on every detection above 0.05, without the regression,
and of the detections above the lab's score threshold alone; recall, training
seconds, milliseconds per stage, and how many times faster Fast R-CNN's CNN
part ("features" + "heads") and whole detector are than R-CNN's "crops" +
"classification" and whole detector) and ``latency.png``.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import time

from matplotlib.figure import Figure

ROOT = pathlib.Path(__file__).resolve().parent.parent
METHODS = {"rcnn": "R-CNN (a CNN per warped proposal)", "fast": "Fast R-CNN (the CNN once per image)"}
# The stages of each method's detector whose time is the CNN's (the rest is proposals and NMS).
CNN_STAGES = {"rcnn": ("crops", "classification"), "fast": ("features", "heads")}
BACKBONES = {"none": "from scratch", "digits": "digit-pretrained"}
NAN = float("nan")  # a run from before the lab reported the mAP above its threshold


def run_method(method, out_dir, extra_arguments):
    """One lab run (or its finished metrics.json): its metrics."""
    run_dir = out_dir / method
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.exists():
        command = [sys.executable, "-m", "labs.rcnn", "--method", method, *extra_arguments,
                   "--out", str(run_dir), "--verbose", "2"]
        print(f"[{time.strftime('%H:%M:%S')}] {method}: {' '.join(command[2:])}", flush=True)
        subprocess.run(command, cwd=ROOT, check=True)
    return json.loads(metrics_path.read_text())


def cnn_ms(method, metrics):
    return sum(metrics["latency_ms"][stage] for stage in CNN_STAGES[method])


def format_table(results):
    lines = ["| method | backbone | mAP@0.5 | mAP@0.75 | without regression (0.5 / 0.75) | "
             "above the threshold (0.5 / 0.75) | recall@0.5 | training s | ms per image (stages) | "
             "CNN part ms | total ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for method, metrics in results.items():
        latency = metrics["latency_ms"]
        stages = ", ".join(f"{stage} {value:.1f}" for stage, value in latency.items() if stage != "total")
        # A run from before --weights digits trained from scratch.
        lines.append(f"| {METHODS[method]} | {BACKBONES.get(metrics.get('weights', 'none'), metrics.get('weights'))} | "
                     f"{metrics['map50']:.3f} | {metrics['map75']:.3f} | "
                     f"{metrics['map50_no_regression']:.3f} / {metrics['map75_no_regression']:.3f} | "
                     f"{metrics.get('map50_shown', NAN):.3f} / {metrics.get('map75_shown', NAN):.3f} | "
                     f"{metrics['recall50']:.3f} | {metrics['wall_seconds']:.0f} | {stages} | "
                     f"{cnn_ms(method, metrics):.1f} | {latency['total']:.1f} |")
    if set(results) == set(METHODS):
        rcnn, fast = results["rcnn"], results["fast"]
        lines += ["", f"Fast R-CNN's CNN part is {cnn_ms('rcnn', rcnn) / cnn_ms('fast', fast):.1f}× faster "
                      f"than R-CNN's, the whole detector (with selective search) "
                      f"{rcnn['latency_ms']['total'] / fast['latency_ms']['total']:.1f}× faster; "
                      f"{rcnn['test_images']} test images, {rcnn['train_images']} training images."]
    return "\n".join(lines) + "\n"


def plot_latency(results, path):
    """Milliseconds per test image, stage by stage, one bar per method, with its mAP@0.5."""
    figure = Figure(figsize=(8, 3.0))
    axes = figure.add_subplot()
    colours = {"proposals": "#999999", "crops": "#f2a65a", "classification": "#d1495b",
               "features": "#5b8fd1", "heads": "#2e4a87", "nms": "#66a182"}
    for row, metrics in enumerate(results.values()):
        left = 0.0
        for stage, value in metrics["latency_ms"].items():
            if stage == "total":
                continue
            axes.barh(row, value, left=left, color=colours.get(stage, "#cccccc"),
                      label=stage if stage not in axes.get_legend_handles_labels()[1] else None)
            left += value
        axes.text(left, row, f"  {left:.0f} ms, mAP@0.5 {metrics['map50']:.2f}", va="center", fontsize=9)
    axes.set_yticks(range(len(results)), [METHODS[method].split(" (")[0] for method in results])
    axes.set_xlabel("milliseconds per test image")
    axes.set_xlim(0, 1.45 * max(metrics["latency_ms"]["total"] for metrics in results.values()))
    axes.legend(fontsize=8, ncols=6, loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False)
    axes.set_title("detection time by stage")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return figure


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--out", default="runs/rcnn_vs_fast")
    arguments, extra_arguments = parser.parse_known_args()
    extra_arguments = [argument for argument in extra_arguments if argument != "--"]
    out_dir = pathlib.Path(arguments.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {method: run_method(method, out_dir, extra_arguments) for method in arguments.methods}
    table = format_table(results)
    (out_dir / "table.md").write_text(table, encoding="utf-8")
    plot_latency(results, out_dir / "latency.png")
    print(table + f"→ {out_dir / 'table.md'}, {out_dir / 'latency.png'}")


if __name__ == "__main__":
    main()
