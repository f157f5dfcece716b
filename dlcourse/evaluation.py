"""Evaluating a trained classifier the same way in every lab: numbers, then pictures."""
import numpy as np

from dlcourse import figures


def evaluate_classifier(run, model, test_data, class_names, image_shape=None, phase=None,
                        max_mistakes=20):
    """Test loss/accuracy, plus learning curves, a confusion matrix and (for images) mistakes.

    ``test_data`` is ``(features, labels)``; figures go to the run directory
    (named after ``phase`` for a lab that trains in phases).
    Returns the metrics to report.
    """
    features, labels = test_data
    test_loss, test_accuracy = model.evaluate(features, labels, batch_size=1000, verbose=0)[:2]
    predicted = np.argmax(model.predict(features, batch_size=1000, verbose=0), axis=-1)
    figures.plot_history(run.history_path(phase), run.figure_path("curves", phase))
    figures.plot_confusion_matrix(labels, predicted, class_names,
                                  run.figure_path("confusion_matrix", phase))
    if image_shape is not None:
        wrong = np.flatnonzero(predicted != labels)[:max_mistakes]
        figures.plot_image_grid(
            features[wrong].reshape((-1, *image_shape)),
            [f"{class_names[labels[i]]}→{class_names[predicted[i]]}" for i in wrong],
            run.figure_path("misclassified", phase),
            suptitle=f"first {len(wrong)} misclassified test images (true→predicted)")
    return {"test_accuracy": round(float(test_accuracy), 5), "test_loss": round(float(test_loss), 5)}
