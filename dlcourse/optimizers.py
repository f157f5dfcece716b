"""The course's own Adam optimizer, and the factory behind every lab's ``--optimizer`` flag.

``CustomAdam`` is written the way Keras writes its built-in optimizers
(``keras/src/optimizers/adam.py``): ``build`` makes one slot variable per
model variable, ``update_step`` updates one variable with ``keras.ops``, and
``get_config`` lists the hyper-parameters so a saved model loads back.  On
top of Keras's Adam it adds Keras 2's inverse-time ``decay``.
"""
import numbers

import keras
from keras import ops

from dlcourse.cli import OPTIMIZER_NAMES  # the names make_optimizer knows


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@keras.saving.register_keras_serializable(package="dlcourse")
class CustomAdam(keras.optimizers.Optimizer):
    """Adam (Kingma & Ba, 2015) with optional AMSGrad and inverse-time decay.

    One step, for a gradient ``g`` at step ``t = 1, 2, ...``::

        m = beta_1 * m + (1 - beta_1) * g          # 1st moment (mean)
        v = beta_2 * v + (1 - beta_2) * g**2       # 2nd moment (uncentred variance)
        v_max = max(v_max, v)                      # AMSGrad only; then v_max replaces v
        lr_t = learning_rate / (1 + decay * (t - 1))
        alpha_t = lr_t * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        variable -= alpha_t * m / (sqrt(v) + epsilon)

    Where epsilon goes.  Algorithm 1 of the paper divides the bias-corrected
    moments, ``m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - beta_1**t)``
    and ``v_hat = v / (1 - beta_2**t)``.  Keras (and this class) instead folds
    both corrections into the step size ``alpha_t`` and adds epsilon to
    ``sqrt(v)`` *before* correction: the cheaper "epsilon hat" form the paper
    gives at the end of its section 2.  The two agree exactly when the paper's
    ``eps`` equals ``epsilon / sqrt(1 - beta_2**t)``, so they differ only in how
    epsilon is scaled, which matters only where ``sqrt(v)`` is as small as epsilon.

    Args:
        learning_rate: float > 0, or a ``keras.optimizers.schedules`` schedule.
        beta_1, beta_2: decay rates of the moment estimates, in [0, 1).
        epsilon: the "epsilon hat" above, >= 0; keeps the division finite.
        amsgrad: divide by the largest ``v`` seen so far (Reddi et al., 2018),
            so a run of small gradients cannot suddenly enlarge the steps.
        decay: >= 0; the learning rate is divided by ``1 + decay * t`` where
            ``t`` is the number of steps already taken (as in Keras 2).
        weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ...:
            the options every Keras optimizer has, handled by the base class.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, decay=0.0, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name="custom_adam", **kwargs):
        if _is_number(learning_rate):
            if not learning_rate > 0:
                raise ValueError(f"learning_rate must be positive, got {learning_rate}")
            learning_rate = float(learning_rate)  # the base class rejects an int
        for beta_name, beta in (("beta_1", beta_1), ("beta_2", beta_2)):
            if _is_number(beta) and not 0 <= beta < 1:
                raise ValueError(f"{beta_name} must be in [0, 1), got {beta}")
        if not epsilon >= 0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        if not decay >= 0:
            raise ValueError(f"decay must be >= 0, got {decay}")
        super().__init__(
            learning_rate=learning_rate, name=name, weight_decay=weight_decay,
            clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm,
            use_ema=use_ema, ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad
        self.decay = decay

    def build(self, var_list):
        """Make the slots: ``m`` and ``v`` for every variable, plus ``v_max`` for AMSGrad."""
        if self.built:
            return
        super().build(var_list)
        self._momentums = [self.add_variable_from_reference(variable, name="momentum")
                           for variable in var_list]
        self._velocities = [self.add_variable_from_reference(variable, name="velocity")
                            for variable in var_list]
        if self.amsgrad:
            self._velocity_maxima = [
                self.add_variable_from_reference(variable, name="velocity_max")
                for variable in var_list]

    def update_step(self, gradient, variable, learning_rate):
        """Apply one Adam step to ``variable`` (the formulas in the class docstring)."""
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        learning_rate = ops.cast(learning_rate, dtype)
        steps_taken = ops.cast(self.iterations, dtype)
        if self.decay:  # a Python check: decay=0 adds no work to the graph
            learning_rate = learning_rate / (1.0 + self.decay * steps_taken)
        step = steps_taken + 1
        beta_1_power = ops.power(ops.cast(self.beta_1, dtype), step)
        beta_2_power = ops.power(ops.cast(self.beta_2, dtype), step)
        alpha = learning_rate * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)

        index = self._get_variable_index(variable)
        momentum = self._momentums[index]
        velocity = self._velocities[index]
        # m += (1 - beta_1) * (g - m) is m = beta_1 * m + (1 - beta_1) * g, in one update.
        self.assign_add(momentum, (gradient - momentum) * (1 - self.beta_1))
        self.assign_add(velocity, (ops.square(gradient) - velocity) * (1 - self.beta_2))
        if self.amsgrad:
            velocity_max = self._velocity_maxima[index]
            self.assign(velocity_max, ops.maximum(velocity_max, velocity))
            velocity = velocity_max
        self.assign_sub(variable, (momentum * alpha) / (ops.sqrt(velocity) + self.epsilon))

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                       "amsgrad": self.amsgrad, "decay": self.decay})
        return config


def make_optimizer(name, learning_rate, **kwargs):
    """A fresh optimizer for ``--optimizer name`` at ``learning_rate`` (a float or a schedule).

    ``kwargs`` go to the optimizer's constructor (``clipnorm=1.0``, ...);
    ``decay`` is accepted only by the custom ones, since Keras's own
    optimizers would silently ignore it.
    """
    if name not in OPTIMIZER_NAMES:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZER_NAMES)}")
    if _is_number(learning_rate):
        if not learning_rate > 0:
            raise ValueError(f"learning rate must be positive, got {learning_rate} "
                             f"(optimizer {name!r}; choices: {', '.join(OPTIMIZER_NAMES)})")
        learning_rate = float(learning_rate)
    if not name.startswith("custom_") and kwargs.pop("decay", 0):
        raise ValueError(f"decay is supported only by custom_adam and custom_amsgrad, not {name!r}")
    optimizers = keras.optimizers
    builders = {
        "sgd": lambda: optimizers.SGD(learning_rate, **kwargs),
        "momentum": lambda: optimizers.SGD(learning_rate, momentum=0.9, **kwargs),
        "nesterov": lambda: optimizers.SGD(learning_rate, momentum=0.9, nesterov=True, **kwargs),
        "adagrad": lambda: optimizers.Adagrad(learning_rate, **kwargs),
        "adadelta": lambda: optimizers.Adadelta(learning_rate, **kwargs),
        "rmsprop": lambda: optimizers.RMSprop(learning_rate, **kwargs),
        "adam": lambda: optimizers.Adam(learning_rate, **kwargs),
        "amsgrad": lambda: optimizers.Adam(learning_rate, amsgrad=True, **kwargs),
        "custom_adam": lambda: CustomAdam(learning_rate, **kwargs),
        "custom_amsgrad": lambda: CustomAdam(learning_rate, amsgrad=True, **kwargs),
    }
    return builders[name]()


def warmup_cosine(peak, total_steps, warmup_fraction=0.1):
    """Learning rate rising linearly from 0 to ``peak`` over the first 10 % of steps, then
    falling along a cosine to 0: large steps early, fine ones at the end."""
    warmup_steps = max(1, int(warmup_fraction * total_steps))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=peak, warmup_steps=warmup_steps)
