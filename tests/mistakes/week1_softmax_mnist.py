"""Mistakes a student makes in week 1's softmax and cross-entropy exercises."""
MISTAKES = {
    "softmax": {
        "no shift by the maximum (overflows on large logits)": """
def softmax(logits):
    exponentials = np.exp(logits)
    return exponentials / np.sum(exponentials, axis=-1, keepdims=True)
""",
        "normalised over the batch axis": """
def softmax(logits):
    logits = np.asarray(logits)
    exponentials = np.exp(logits - np.max(logits))
    return exponentials / np.sum(exponentials, axis=0, keepdims=True)
""",
        "sum without keepdims": """
def softmax(logits):
    logits = np.asarray(logits)
    exponentials = np.exp(logits - np.max(logits))
    return (exponentials.T / np.sum(exponentials, axis=-1)).T if logits.ndim == 1 else exponentials / np.sum(exponentials)
""",
    },
    "cross_entropy": {
        "sum instead of the batch mean": """
def cross_entropy(probabilities, labels, epsilon=1e-12):
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.sum(np.log(np.clip(picked, epsilon, 1.0))))
""",
        "no clipping (log 0 is -inf)": """
def cross_entropy(probabilities, labels, epsilon=1e-12):
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(picked)))
""",
        "probabilities[:, labels] picks an N x N matrix": """
def cross_entropy(probabilities, labels, epsilon=1e-12):
    picked = probabilities[:, labels]
    return float(-np.mean(np.log(np.clip(picked, epsilon, 1.0))))
""",
    },
}
