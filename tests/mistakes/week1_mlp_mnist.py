"""Mistakes a student makes in week 1's dense-layer forward pass and ReLU backward pass."""
MISTAKES = {
    "dense_relu_forward": {
        "forgot the bias": """
def dense_relu_forward(inputs, kernel, bias):
    return np.maximum(np.asarray(inputs) @ np.asarray(kernel), 0.0)
""",
        "ReLU before adding the bias": """
def dense_relu_forward(inputs, kernel, bias):
    return np.maximum(np.asarray(inputs) @ np.asarray(kernel), 0.0) + bias
""",
        "no ReLU (a linear layer)": """
def dense_relu_forward(inputs, kernel, bias):
    return np.asarray(inputs) @ np.asarray(kernel) + bias
""",
        "kernel transposed (weights stored as (out, in))": """
def dense_relu_forward(inputs, kernel, bias):
    return np.maximum(np.asarray(inputs) @ np.asarray(kernel).T + bias, 0.0)
""",
        "np.max instead of np.maximum": """
def dense_relu_forward(inputs, kernel, bias):
    return np.max(np.asarray(inputs) @ np.asarray(kernel) + bias, 0)
""",
    },
    "relu_backward": {
        "gradient 1 at exactly 0 (z >= 0)": """
def relu_backward(upstream_gradient, pre_activation):
    return upstream_gradient * (pre_activation >= 0)
""",
        "mask taken from the upstream gradient, not the pre-activation": """
def relu_backward(upstream_gradient, pre_activation):
    return upstream_gradient * (upstream_gradient > 0)
""",
        "returns the mask without the upstream gradient": """
def relu_backward(upstream_gradient, pre_activation):
    return (pre_activation > 0).astype(float)
""",
        "ReLU applied to the upstream gradient": """
def relu_backward(upstream_gradient, pre_activation):
    return np.maximum(upstream_gradient, 0.0)
""",
    },
}
