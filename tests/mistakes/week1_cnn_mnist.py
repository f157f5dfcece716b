"""Mistakes a student makes in week 1's convolution output-size and naive convolution exercises."""
MISTAKES = {
    "conv_output_size": {
        "off by one: valid without the +1": """
def conv_output_size(size, kernel_size, stride=1, padding="valid"):
    if padding == "valid":
        return (size - kernel_size) // stride
    return -(-size // stride)
""",
        "same rounds down (size // stride instead of the ceiling)": """
def conv_output_size(size, kernel_size, stride=1, padding="valid"):
    if padding == "valid":
        return (size - kernel_size) // stride + 1
    return size // stride
""",
        "same ignores the stride": """
def conv_output_size(size, kernel_size, stride=1, padding="valid"):
    if padding == "valid":
        return (size - kernel_size) // stride + 1
    return size
""",
        "valid ignores the stride": """
def conv_output_size(size, kernel_size, stride=1, padding="valid"):
    if padding == "valid":
        return size - kernel_size + 1
    return -(-size // stride)
""",
    },
    "conv2d_naive": {
        "true convolution (kernel flipped)": """
def conv2d_naive(images, kernel, bias):
    kernel = np.asarray(kernel)[::-1, ::-1]
    batch, height, width, _ = images.shape
    kh, kw, _, out_channels = kernel.shape
    outputs = np.zeros((batch, height - kh + 1, width - kw + 1, out_channels))
    for i in range(height - kh + 1):
        for j in range(width - kw + 1):
            outputs[:, i, j, :] = np.tensordot(images[:, i:i + kh, j:j + kw, :], kernel, axes=([1, 2, 3], [0, 1, 2]))
    return outputs + bias
""",
        "off by one: output size height - k_h": """
def conv2d_naive(images, kernel, bias):
    batch, height, width, _ = images.shape
    kh, kw, _, out_channels = kernel.shape
    outputs = np.zeros((batch, height - kh, width - kw, out_channels))
    for i in range(height - kh):
        for j in range(width - kw):
            outputs[:, i, j, :] = np.tensordot(images[:, i:i + kh, j:j + kw, :], kernel, axes=([1, 2, 3], [0, 1, 2]))
    return outputs + bias
""",
        "forgot the bias": """
def conv2d_naive(images, kernel, bias):
    batch, height, width, _ = images.shape
    kh, kw, _, out_channels = kernel.shape
    outputs = np.zeros((batch, height - kh + 1, width - kw + 1, out_channels))
    for i in range(height - kh + 1):
        for j in range(width - kw + 1):
            outputs[:, i, j, :] = np.tensordot(images[:, i:i + kh, j:j + kw, :], kernel, axes=([1, 2, 3], [0, 1, 2]))
    return outputs
""",
        "channels mixed up: kernel read as (k_h, k_w, C_out, C_in)": """
def conv2d_naive(images, kernel, bias):
    batch, height, width, _ = images.shape
    kh, kw, _, out_channels = kernel.shape
    outputs = np.zeros((batch, height - kh + 1, width - kw + 1, out_channels))
    for i in range(height - kh + 1):
        for j in range(width - kw + 1):
            outputs[:, i, j, :] = np.tensordot(images[:, i:i + kh, j:j + kw, :], kernel, axes=([1, 2, 3], [0, 1, 3]))
    return outputs + bias
""",
        "no sum over the input channels (only channel 0)": """
def conv2d_naive(images, kernel, bias):
    batch, height, width, _ = images.shape
    kh, kw, _, out_channels = kernel.shape
    outputs = np.zeros((batch, height - kh + 1, width - kw + 1, out_channels))
    for i in range(height - kh + 1):
        for j in range(width - kw + 1):
            patch = images[:, i:i + kh, j:j + kw, 0]
            outputs[:, i, j, :] = np.tensordot(patch, kernel[:, :, 0, :], axes=([1, 2], [0, 1]))
    return outputs + bias
""",
        "kernel height and width swapped": """
def conv2d_naive(images, kernel, bias):
    batch, height, width, _ = images.shape
    kernel = np.transpose(kernel, (1, 0, 2, 3))
    kh, kw, _, out_channels = kernel.shape
    outputs = np.zeros((batch, height - kh + 1, width - kw + 1, out_channels))
    for i in range(height - kh + 1):
        for j in range(width - kw + 1):
            outputs[:, i, j, :] = np.tensordot(images[:, i:i + kh, j:j + kw, :], kernel, axes=([1, 2, 3], [0, 1, 2]))
    return outputs + bias
""",
    },
}
