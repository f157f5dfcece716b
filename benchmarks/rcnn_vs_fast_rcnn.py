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

Each run times its own test pass, and the two passes happen tens of minutes
apart on a machine whose speed drifts (15–20 % on a shared 2-core VM), so
the benchmark then loads both trained detectors into its own process and
times them again **in turn**, image by image, on the first ``--timed-images``
test scenes and the same proposals (median ms per stage, after one untimed
pass): the speed-up both see under the same load, in ``table.md`` and
``interleaved.json``.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import time

import numpy as np
from matplotlib.figure import Figure
from tqdm import tqdm

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # labs, for timing the trained detectors in turn
METHODS = {"rcnn": "R-CNN (a CNN per warped proposal)", "fast": "Fast R-CNN (the CNN once per image)"}
# The stages of each method's detector whose time is the CNN's (the rest is proposals and NMS).
CNN_STAGES = {"rcnn": ("crops", "classification"), "fast": ("features", "heads")}
BACKBONES = {"none": "from scratch", "digits": "digit-pretrained"}
NAN = float("nan")  # a run from before the lab reported the mAP above its threshold
TIMED_IMAGES = 60


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


def interleaved_latency(out_dir, methods, extra_arguments, count=TIMED_IMAGES):
    """Median ms per stage of each method's trained detector, the detectors taking turns on the
    same test images and proposals in this process (selective search runs once per image and is
    not timed), after one untimed pass over them."""
    from dlcourse import detection  # TensorFlow loads only once the runs are done
    from labs import rcnn

    config = rcnn.resolve_defaults(rcnn.parser.parse_args(extra_arguments))
    test_images = [image for image, _, _ in rcnn.load_scenes(config)[0]["test"][:count]]
    detectors = {method: rcnn.load_detector(out_dir / method) for method in methods}
    proposals = [detection.validate_boxes(detectors[methods[0]].propose(image))
                 for image in tqdm(test_images, desc="proposals", unit="image")]
    timings = {method: {} for method in methods}
    for timed in (False, True):
        for image, boxes in tqdm(list(zip(test_images, proposals)), desc="timing in turn" if timed else "warm-up",
                                 unit="image"):
            for method, detector in detectors.items():
                detector.detect(image, timings[method] if timed else None, proposals=boxes)
    return {"images": len(test_images),
            "latency_ms": {method: {stage: round(1000 * float(np.median(seconds)), 2)
                                    for stage, seconds in stages.items()}
                           for method, stages in timings.items()}}


def format_interleaved(interleaved):
    latency = interleaved["latency_ms"]
    rcnn, fast = (sum(latency[method][stage] for stage in CNN_STAGES[method]) for method in ("rcnn", "fast"))
    stages = "; ".join(f"{METHODS[method].split(' (')[0]}: "
                       + ", ".join(f"{stage} {value:.1f}" for stage, value in latency[method].items())
                       for method in latency)
    return (f"\nTimed in turn in one process on {interleaved['images']} test images, the same proposals "
            f"(median ms; {stages}): Fast R-CNN's CNN part {fast:.1f} ms against R-CNN's {rcnn:.1f}, "
            f"**{rcnn / fast:.1f}× faster**.\n")


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
    parser.add_argument("--timed-images", type=int, default=TIMED_IMAGES,
                        help="test scenes on which the trained detectors are timed in turn (0: not at all)")
    arguments, extra_arguments = parser.parse_known_args()
    extra_arguments = [argument for argument in extra_arguments if argument != "--"]
    out_dir = pathlib.Path(arguments.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {method: run_method(method, out_dir, extra_arguments) for method in arguments.methods}
    table = format_table(results)
    if set(results) == set(METHODS) and arguments.timed_images > 0:
        interleaved = interleaved_latency(out_dir, list(METHODS), extra_arguments, arguments.timed_images)
        (out_dir / "interleaved.json").write_text(json.dumps(interleaved, indent=2) + "\n", encoding="utf-8")
        table += format_interleaved(interleaved)
    (out_dir / "table.md").write_text(table, encoding="utf-8")
    plot_latency(results, out_dir / "latency.png")
    print(table + f"→ {out_dir / 'table.md'}, {out_dir / 'latency.png'}")


if __name__ == "__main__":
    main()
