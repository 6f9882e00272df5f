"""argparse ``type=`` validators: a nonsense value is a usage error naming the allowed
range (exit 2, before any work), not a crash or a silently useless run later.

Shared by every subcommand (run, compare, calibrate...): ``type=positive_float`` and so on.
"""

from __future__ import annotations

import argparse
import math


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (seconds, sizes): 0, negatives, nan and inf are refused."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number > 0")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number >= 0 (a threshold in percent, a time below which something applies)."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number >= 0")
    return value


def probability(text: str) -> float:
    """A significance level: strictly between 0 and 1."""
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1 (exclusive), e.g. 0.01")
    return value


def comma_list(text: str) -> list[str]:
    """'triton,torch' -> ['triton', 'torch'] (with action='extend': repeatable too)."""
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"{text!r}: empty name in the comma list")
    return items


def _param_value(text: str) -> int | float | str:
    for convert in (int, float):
        try:
            value = convert(text)
        except ValueError:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        return value
    return text


def shape_spec(text: str) -> dict[str, int | float | str]:
    """'m=4096,n=11008' -> {'m': 4096, 'n': 11008}; also 'r=16,scale=2' or
    'density=0.01,dist=powerlaw' (numbers become int or float, the rest stay strings)."""
    params: dict[str, int | float | str] = {}
    for item in text.split(","):
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not name or not value:
            raise argparse.ArgumentTypeError(f"{text!r}: expected name=value pairs such as m=4096,n=11008")
        if name in params:
            raise argparse.ArgumentTypeError(f"{text!r}: {name} given twice")
        params[name] = _param_value(value)
    return params


def available_device(text: str) -> str:
    """'cpu', or 'cuda' when this machine has a usable CUDA GPU."""
    if text not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"invalid choice {text!r} (choose from cpu, cuda)")
    if text == "cuda":
        from structbench.core.backends import cuda_reason

        reason = cuda_reason()
        if reason:
            raise argparse.ArgumentTypeError(f"cuda: no usable GPU here ({reason}); choose cpu")
    return text


def shard_spec(text: str) -> tuple[int, int]:
    """'I/N': shard I (0-based) of N of a sweep (structbench/run/shard.py)."""
    from structbench.run.shard import parse_shard

    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--shard {text!r}: ")) from None
