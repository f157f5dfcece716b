"""Mistakes a student makes in week 2's back-propagation, momentum and Adam exercises."""

_BACKWARD_PROP = '''
def backward_prop(X, labels, W1, b1, W2, b2):
    N = X.shape[0]
    Z1 = X @ W1 + b1
    A1 = np.maximum(Z1, 0)
    Z2 = A1 @ W2 + b2
    exponentials = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
    P = exponentials / exponentials.sum(axis=1, keepdims=True)
{body}'''

_STUDENT_ADAM = '''
class StudentAdam(keras.optimizers.Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 name="student_adam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums = [self.add_variable_from_reference(variable, name="momentum")
                           for variable in var_list]
        self._velocities = [self.add_variable_from_reference(variable, name="velocity")
                            for variable in var_list]

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        learning_rate = ops.cast(learning_rate, dtype)
        index = self._get_variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]
{body}
    def get_config(self):
        config = super().get_config()
        config.update({{"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}})
        return config
'''

_MOMENTUM = '''
def momentum_update(theta, velocity, gradient, learning_rate, momentum):
{body}'''

MISTAKES = {
    "backward_prop": {
        "bias gradient not summed over the batch": _BACKWARD_PROP.format(body='''
    dZ2 = P.copy()
    dZ2[np.arange(N), labels] -= 1.0
    dZ2 /= N
    dW2 = A1.T @ dZ2
    db2 = dZ2
    dA1 = dZ2 @ W2.T
    dZ1 = dA1 * (Z1 > 0)
    dW1 = X.T @ dZ1
    db1 = dZ1
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
'''),
        "bias gradient averaged over the batch (divides by N twice)": _BACKWARD_PROP.format(body='''
    dZ2 = P.copy()
    dZ2[np.arange(N), labels] -= 1.0
    dZ2 /= N
    dW2 = A1.T @ dZ2
    db2 = dZ2.mean(axis=0)
    dA1 = dZ2 @ W2.T
    dZ1 = dA1 * (Z1 > 0)
    dW1 = X.T @ dZ1
    db1 = dZ1.mean(axis=0)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
'''),
        "sign error: one_hot - P": _BACKWARD_PROP.format(body='''
    Y = np.zeros_like(P)
    Y[np.arange(N), labels] = 1.0
    dZ2 = (Y - P) / N
    dW2 = A1.T @ dZ2
    db2 = dZ2.sum(axis=0)
    dA1 = dZ2 @ W2.T
    dZ1 = dA1 * (Z1 > 0)
    dW1 = X.T @ dZ1
    db1 = dZ1.sum(axis=0)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
'''),
        "no 1/N: the gradient of the summed loss": _BACKWARD_PROP.format(body='''
    dZ2 = P.copy()
    dZ2[np.arange(N), labels] -= 1.0
    dW2 = A1.T @ dZ2
    db2 = dZ2.sum(axis=0)
    dA1 = dZ2 @ W2.T
    dZ1 = dA1 * (Z1 > 0)
    dW1 = X.T @ dZ1
    db1 = dZ1.sum(axis=0)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
'''),
        "ReLU mask taken from A1 >= 0 (always true)": _BACKWARD_PROP.format(body='''
    dZ2 = P.copy()
    dZ2[np.arange(N), labels] -= 1.0
    dZ2 /= N
    dW2 = A1.T @ dZ2
    db2 = dZ2.sum(axis=0)
    dA1 = dZ2 @ W2.T
    dZ1 = dA1 * (A1 >= 0)
    dW1 = X.T @ dZ1
    db1 = dZ1.sum(axis=0)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
'''),
        "weight gradient transposed (dZ.T @ A)": _BACKWARD_PROP.format(body='''
    dZ2 = P.copy()
    dZ2[np.arange(N), labels] -= 1.0
    dZ2 /= N
    dW2 = dZ2.T @ A1
    db2 = dZ2.sum(axis=0)
    dA1 = dZ2 @ W2.T
    dZ1 = dA1 * (Z1 > 0)
    dW1 = dZ1.T @ X
    db1 = dZ1.sum(axis=0)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
'''),
    },
    "momentum_update": {
        "no velocity decay: v = v - lr * g": _MOMENTUM.format(body='''
    new_velocity = velocity - learning_rate * gradient
    return theta + new_velocity, new_velocity
'''),
        "sign error: v = momentum * v + lr * g": _MOMENTUM.format(body='''
    new_velocity = momentum * velocity + learning_rate * gradient
    return theta + new_velocity, new_velocity
'''),
        "theta moves by the old velocity": _MOMENTUM.format(body='''
    new_theta = theta + velocity
    new_velocity = momentum * velocity - learning_rate * gradient
    return new_theta, new_velocity
'''),
        "Nesterov's update instead of plain momentum": _MOMENTUM.format(body='''
    new_velocity = momentum * velocity - learning_rate * gradient
    return theta + momentum * new_velocity - learning_rate * gradient, new_velocity
'''),
    },
    "student_adam": {
        "no bias correction (alpha = learning rate)": _STUDENT_ADAM.format(body='''
        self.assign(m, self.beta_1 * m + (1 - self.beta_1) * gradient)
        self.assign(v, self.beta_2 * v + (1 - self.beta_2) * ops.square(gradient))
        self.assign_sub(variable, learning_rate * m / (ops.sqrt(v) + self.epsilon))
'''),
        "epsilon inside the square root": _STUDENT_ADAM.format(body='''
        step = ops.cast(self.iterations + 1, dtype)
        alpha = learning_rate * ops.sqrt(1 - ops.power(ops.cast(self.beta_2, dtype), step)) / (
            1 - ops.power(ops.cast(self.beta_1, dtype), step))
        self.assign(m, self.beta_1 * m + (1 - self.beta_1) * gradient)
        self.assign(v, self.beta_2 * v + (1 - self.beta_2) * ops.square(gradient))
        self.assign_sub(variable, alpha * m / ops.sqrt(v + self.epsilon))
'''),
        "the variable moves with the old m and v": _STUDENT_ADAM.format(body='''
        step = ops.cast(self.iterations + 1, dtype)
        alpha = learning_rate * ops.sqrt(1 - ops.power(ops.cast(self.beta_2, dtype), step)) / (
            1 - ops.power(ops.cast(self.beta_1, dtype), step))
        self.assign_sub(variable, alpha * m / (ops.sqrt(v) + self.epsilon))
        self.assign(m, self.beta_1 * m + (1 - self.beta_1) * gradient)
        self.assign(v, self.beta_2 * v + (1 - self.beta_2) * ops.square(gradient))
'''),
        "step counted from 0 (t = self.iterations)": _STUDENT_ADAM.format(body='''
        step = ops.cast(self.iterations, dtype)
        alpha = learning_rate * ops.sqrt(1 - ops.power(ops.cast(self.beta_2, dtype), step)) / (
            1 - ops.power(ops.cast(self.beta_1, dtype), step))
        self.assign(m, self.beta_1 * m + (1 - self.beta_1) * gradient)
        self.assign(v, self.beta_2 * v + (1 - self.beta_2) * ops.square(gradient))
        self.assign_sub(variable, alpha * m / (ops.sqrt(v) + self.epsilon))
'''),
        "betas written as numbers (0.9, 0.999)": _STUDENT_ADAM.format(body='''
        step = ops.cast(self.iterations + 1, dtype)
        alpha = learning_rate * ops.sqrt(1 - ops.power(0.999, step)) / (1 - ops.power(0.9, step))
        self.assign(m, 0.9 * m + 0.1 * gradient)
        self.assign(v, 0.999 * v + 0.001 * ops.square(gradient))
        self.assign_sub(variable, alpha * m / (ops.sqrt(v) + self.epsilon))
'''),
    },
}
