"""Small factories shared by every block: activations, norms, initialisation."""

from __future__ import annotations

from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
NORMS: tuple[str, ...] = ("none", "batch")
INITS: tuple[str, ...] = ("he", "xavier", "default")


def choice(option: str, value: str, allowed: tuple[str, ...] | list[str]) -> str:
    """Return `value` if allowed, else raise a ValueError naming the option and the choices."""
    if value not in allowed:
        raise ValueError(f"{option} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def positive(option: str, value: int, low: int = 1) -> int:
    if not isinstance(value, int) or value < low:
        raise ValueError(f"{option} must be an integer >= {low}; got {value!r}")
    return value


def make_activation(name: str) -> nn.Module:
    return ACTIVATIONS[choice("activation", name, tuple(ACTIVATIONS))]()


def make_norm(name: str, features: int, dims: int) -> nn.Module:
    """BatchNorm over `features` channels for 1-d (vectors) or 2-d (images), or nothing."""
    if choice("norm", name, NORMS) == "none":
        return nn.Identity()
    return nn.BatchNorm1d(features) if dims == 1 else nn.BatchNorm2d(features)


def init_weights(module: nn.Module, scheme: str, activation: str = "relu") -> None:
    """Initialise every Linear/Conv weight in `module`.

    he: Kaiming normal, fan-in (He et al. 2015, "Delving deep into rectifiers");
    xavier: Glorot normal (Glorot & Bengio 2010); default: PyTorch's own
    (Kaiming uniform with a=sqrt(5)), left untouched. Biases are zeroed for he
    and xavier.
    """
    choice("init", scheme, INITS)
    if scheme == "default":
        return
    gain_name = activation if activation in ("relu", "tanh", "sigmoid") else "linear"
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if scheme == "he":
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            else:
                nn.init.xavier_normal_(m.weight, gain=nn.init.calculate_gain(gain_name))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
