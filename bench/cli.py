"""`structbench` (also `python -m bench`): list what is registered, calibrate, run sweeps."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
import uuid
from collections import Counter
from pathlib import Path

import pandas as pd

from bench import inspect as bench_inspect
from bench.backends import cuda_reason, get_backend
from bench.profiles import PROFILES, default_profile_name, get_profile
from bench.registry import default_registry
from bench.results import ResultWriter, done_case_keys
from bench.runner import SweepSettings, plan

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
        print(table.to_string(index=False, justify="left"), end="\n\n")
    backends = sorted({i.backend for i in registry.impls()})
    print("backends here:")
    print(pd.DataFrame([{"backend": b, "status": _backend_status(b)} for b in backends]).to_string(index=False))
    print("\nprofiles: " + ", ".join(f"{p.name} ({p.summary})" for p in PROFILES.values()))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from bench.calibrate import load_or_measure

    devices = [args.device] if args.device else ["cpu"] + (["cuda"] if cuda_reason() is None else [])
    for device in devices:
        calibration = load_or_measure(device, force=args.force)
        peaks = ", ".join(f"{p} {v:.4g}" for p, v in calibration.peak_tflops.items())
        print(f"{device} ({calibration.device_name}, measured {calibration.measured_at}): "
              f"copy {calibration.copy_gbps:.4g} GB/s; matmul peak TFLOP/s: {peaks}")
    return 0


def _default_out(profile: str) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return RESULTS_DIR / f"{profile}-{stamp}.csv"


def _announce_cpu_only(registry, profile) -> None:
    print(f"note: no GPU here ({cuda_reason()}): running the '{profile.name}' profile, "
          f"CPU backends only ({', '.join(profile.backends)}). GPU backends left out:")
    for name in sorted({i.backend for i in registry.impls()} - set(profile.backends)):
        print(f"  {name}: {_backend_status(name)}")


def _settings(args: argparse.Namespace, profile) -> SweepSettings:
    policy = profile.timing
    if args.warm_cache:
        policy = dataclasses.replace(policy, flush_l2=False)
    if args.cuda_graph_below_us:
        policy = dataclasses.replace(policy, graph_below_ms=args.cuda_graph_below_us / 1e3)
    return SweepSettings(policy=policy, base_seed=args.seed, profile_name=profile.name,
                         run_id=uuid.uuid4().hex[:12], calibrate=not args.no_calibrate)


def cmd_run(args: argparse.Namespace) -> int:
    from bench.sweep import DEFAULT_REGISTRY, InProcessExecutor, IsolatedExecutor, run_sweep, summary_table

    registry = default_registry()
    profile = get_profile(args.profile or default_profile_name())
    if not args.profile and cuda_reason():
        _announce_cpu_only(registry, profile)
    cases, unavailable = plan(registry, profile, ops=args.op, impls=args.impl, dtypes=args.dtype)
    for backend, reason in sorted(unavailable.items()):
        print(f"note: backend {backend} left out: {reason}")
    if args.resume and not args.out:
        raise ValueError("--resume needs --out: the CSV whose rows are kept")
    out = Path(args.out) if args.out else _default_out(profile.name)
    if args.resume:
        done = done_case_keys(out)
        kept = len(cases)
        cases = [case for case in cases if case.key() not in done]
        print(f"resume: {kept - len(cases)} cases already in {out}, {len(cases)} to run")
    if not cases:
        print("nothing to run: no case left that matches the filters on the available backends", file=sys.stderr)
        return 0 if args.resume else 2
    settings = _settings(args, profile)
    print(f"profile {profile.name}: {len(cases)} cases -> {out}")
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    executor = (InProcessExecutor(DEFAULT_REGISTRY, settings) if args.no_isolate
                else IsolatedExecutor(DEFAULT_REGISTRY, settings, args.timeout))
    rows: list[dict] = []
    try:
        with ResultWriter(out) as writer:
            try:
                rows = run_sweep(executor, cases, writer)
            finally:
                writer.write_run({"run_id": settings.run_id, "argv": sys.argv, "profile": profile.name,
                                  "started": started, "cases": len(cases),
                                  "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                                  "policy": dataclasses.asdict(settings.policy), **executor.hello,
                                  "clocks_end": executor.clocks()})
    except KeyboardInterrupt:
        print(f"\ninterrupted: the rows measured so far are in {out}", file=sys.stderr)
        return 130
    finally:
        executor.close()
    counts = Counter(row["status"] for row in rows)
    print("\n" + summary_table(rows))
    print(f"\ndone: {dict(counts)} rows in {out}")
    return 1 if counts.get("error") and args.strict else 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare import compare_impls, compare_runs
    from bench.formatting import to_markdown, to_text

    threshold = args.threshold / 100
    if args.impl_a or args.impl_b:
        if not (args.impl_a and args.impl_b and len(args.csv) == 1):
            raise ValueError("--impl-a and --impl-b go together, with one CSV")
        result = compare_impls(args.csv[0], args.impl_a, args.impl_b, threshold=threshold, alpha=args.alpha)
        title = f"{args.impl_b} vs {args.impl_a} (ratio = {args.impl_b} time / {args.impl_a} time)"
    else:
        if len(args.csv) != 2:
            raise ValueError("compare needs BASE.csv NEW.csv (or one CSV with --impl-a/--impl-b)")
        result = compare_runs(*args.csv, threshold=threshold, alpha=args.alpha)
        title = f"{args.csv[1]} vs {args.csv[0]} (ratio = new time / base time)"
    if args.format == "csv":
        print(result.table.to_csv(index=False), end="")
    else:
        render = to_markdown if args.format == "md" else to_text
        print(f"# {title}\n")
        for warning in result.warnings:
            print(f"warning: {warning}")
        print(render(result.table) if len(result.table) else "no matching ok rows")
        print("\ngeometric mean of ratios:\n" + (render(result.geomean) if len(result.geomean) else "-"))
        for label, rows in (("only in base", result.only_base), ("only in new", result.only_new)):
            if len(rows):
                print(f"\n{len(rows)} case(s) {label}:\n" + render(rows))
        counts = result.table["verdict"].value_counts().to_dict()
        print(f"\nverdicts: {counts}; threshold {args.threshold:g}%, alpha {args.alpha:g}")
    return 1 if len(result.regressions) else 0


def newest_csv(directory: Path = RESULTS_DIR) -> Path:
    candidates = sorted(directory.glob("*.csv"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise ValueError(f"no results CSV in {directory}: run `make bench` first")
    return candidates[-1]


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report import write_report

    source = Path(args.csv) if args.csv else newest_csv()
    out = Path(args.out) if args.out else source.with_name(f"report-{source.stem}")
    path = write_report(source, out)
    print(f"report of {source} -> {path} (and report.html, figures) ")
    print(path.read_text().split("\n## ")[0])  # the verdict table
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="structbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="ops, implementations, dtypes, and which backends run here").set_defaults(
        func=cmd_list)
    calibrate = sub.add_parser("calibrate", help="measure copy bandwidth and matmul peaks (cached per device)")
    calibrate.add_argument("--device", choices=["cpu", "cuda"], help="default: every device here")
    calibrate.add_argument("--force", action="store_true", help="measure again even if cached")
    calibrate.set_defaults(func=cmd_calibrate)
    run = sub.add_parser("run", help="run a sweep and append rows to a CSV")
    run.add_argument("--op", action="append", help="only this op (repeatable)")
    run.add_argument("--impl", action="append", help="only this implementation (repeatable)")
    run.add_argument("--dtype", action="append", help="only this dtype (repeatable)")
    run.add_argument("--profile", choices=sorted(PROFILES), help="default: quick with a GPU, cpu without")
    run.add_argument("--out", help="CSV to append to (default: results/<profile>-<time>.csv)")
    run.add_argument("--resume", action="store_true", help="skip cases that already have a row in --out")
    run.add_argument("--seed", type=int, default=0, help="base seed of the inputs (default 0)")
    run.add_argument("--warm-cache", action="store_true", help="do not flush L2 between repetitions")
    run.add_argument("--cuda-graph-below-us", type=float, default=0.0, metavar="US",
                     help="time calls faster than US microseconds in CUDA-graph mode (e.g. 20)")
    run.add_argument("--timeout", type=float, default=300.0, help="seconds per case before it is an error")
    run.add_argument("--no-isolate", action="store_true", help="run cases in this process (no worker)")
    run.add_argument("--no-calibrate", action="store_true", help="skip the roofline ceilings (pct_of_* empty)")
    run.add_argument("--strict", action="store_true", help="exit 1 if any case ends in error")
    run.set_defaults(func=cmd_run)
    compare = sub.add_parser("compare", help="compare two runs (or two impls of one run); exit 1 on regression")
    compare.add_argument("csv", nargs="+", help="BASE.csv NEW.csv, or one CSV with --impl-a/--impl-b")
    compare.add_argument("--threshold", type=float, default=5.0, help="percent change that counts (default 5)")
    compare.add_argument("--alpha", type=float, default=0.01, help="significance level of the rank test")
    compare.add_argument("--format", choices=["text", "md", "csv"], default="text")
    compare.add_argument("--impl-a", help="base implementation, within one run")
    compare.add_argument("--impl-b", help="implementation compared with --impl-a")
    compare.set_defaults(func=cmd_compare)
    report = sub.add_parser("report", help="claims C1-C5 with figures and verdicts, from one results CSV")
    report.add_argument("csv", nargs="?", help="results CSV (default: the newest in results/)")
    report.add_argument("--out", help="output directory (default: results/report-<csv name>/)")
    report.set_defaults(func=cmd_report)
    bench_inspect.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:  # bad --op/--dtype/--profile names and the like
        print(f"structbench: {exc}", file=sys.stderr)
        return 2
