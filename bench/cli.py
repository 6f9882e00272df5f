"""`structbench` (also `python -m bench`): list what is registered, run sweeps."""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import pandas as pd

from bench.backends import cuda_reason, get_backend
from bench.profiles import PROFILES, default_profile_name, get_profile
from bench.registry import default_registry
from bench.results import ResultWriter
from bench.runner import plan, run_sweep

RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"


def _backend_status(name: str) -> str:
    backend = get_backend(name)
    reason = backend.unavailable_reason()
    if reason:
        return f"unavailable: {reason}"
    untimeable = backend.untimeable_reason()
    return f"runs, not timed: {untimeable}" if untimeable else "available"


def cmd_list(args: argparse.Namespace) -> int:
    registry = default_registry()
    for op in registry.ops():
        print(f"{op.name}: {op.summary}  [shape: {', '.join(op.dims)}]")
        table = pd.DataFrame([
            {"impl": i.name, "kind": i.kind, "backend": i.backend, "dtypes": ",".join(i.dtypes), "note": i.note}
            for i in registry.impls(op.name)
        ])
        print(table.to_string(index=False), end="\n\n")
    backends = sorted({i.backend for i in registry.impls()})
    print("backends here:")
    print(pd.DataFrame([{"backend": b, "status": _backend_status(b)} for b in backends]).to_string(index=False))
    print("\nprofiles: " + ", ".join(f"{p.name} ({p.summary})" for p in PROFILES.values()))
    return 0


def _default_out(profile: str) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return RESULTS_DIR / f"{profile}-{stamp}.csv"


def cmd_run(args: argparse.Namespace) -> int:
    registry = default_registry()
    profile = get_profile(args.profile or default_profile_name())
    if not args.profile and cuda_reason():
        print(f"note: no GPU here ({cuda_reason()}): running the '{profile.name}' profile, "
              f"CPU backends only ({', '.join(profile.backends)}). GPU backends left out:")
        for name in sorted({i.backend for i in registry.impls()} - set(profile.backends)):
            print(f"  {name}: {_backend_status(name)}")
    cases, unavailable = plan(registry, profile, ops=args.op, impls=args.impl, dtypes=args.dtype)
    for backend, reason in sorted(unavailable.items()):
        print(f"note: backend {backend} left out: {reason}")
    if not cases:
        print("nothing to run: no case matches the filters on the available backends", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else _default_out(profile.name)
    print(f"profile {profile.name}: {len(cases)} cases -> {out}")
    with ResultWriter(out) as writer:
        counts = run_sweep(registry, cases, writer, profile.timing, base_seed=args.seed, profile_name=profile.name)
    print(f"done: {dict(counts)} rows in {out}")
    return 1 if counts.get("error") and args.strict else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="structbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="ops, implementations, dtypes, and which backends run here").set_defaults(
        func=cmd_list)
    run = sub.add_parser("run", help="run a sweep and append rows to a CSV")
    run.add_argument("--op", action="append", help="only this op (repeatable)")
    run.add_argument("--impl", action="append", help="only this implementation (repeatable)")
    run.add_argument("--dtype", action="append", help="only this dtype (repeatable)")
    run.add_argument("--profile", choices=sorted(PROFILES), help="default: quick with a GPU, cpu without")
    run.add_argument("--out", help="CSV to append to (default: results/<profile>-<time>.csv)")
    run.add_argument("--seed", type=int, default=0, help="base seed of the inputs (default 0)")
    run.add_argument("--strict", action="store_true", help="exit 1 if any case ends in error")
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:  # bad --op/--dtype/--profile names and the like
        print(f"structbench: {exc}", file=sys.stderr)
        return 2
