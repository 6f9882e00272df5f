"""`structbench` (also `python -m structbench`): list what is registered, calibrate, run sweeps."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from structbench.run import signals
from structbench.run.benchmark import RESULTS_DIR, backend_status as _backend_status, op_params
from structbench.cli.arg_types import (available_device, comma_list, nonnegative_float, positive_float, probability,
                             shape_spec, shard_spec)

# The bench modules (numpy, pandas, the registry...) are imported inside the commands:
# main() installs its signal handlers first, so a Ctrl-C during startup is a clean exit.


LIST_COLUMNS = 120


def _text_table(rows: list[dict], width: int = LIST_COLUMNS, indent: str = "  ") -> str:
    """Left-aligned columns; the last column wrapped so that every line fits ``width``."""
    import textwrap

    if not rows:
        return ""
    names = list(rows[0])
    widths = [max(len(n), *(len(str(r[n])) for r in rows)) for n in names[:-1]]
    lead = len(indent) + sum(w + 2 for w in widths)
    last = max(20, width - lead)

    def line(values):
        head = indent + "".join(f"{str(v):<{w}}  " for v, w in zip(values[:-1], widths))
        wrapped = textwrap.wrap(str(values[-1]), last, break_on_hyphens=False) or [""]
        return "\n".join([head + wrapped[0], *(" " * lead + more for more in wrapped[1:])]).rstrip()

    return "\n".join([line(names), *(line([r[n] for n in names]) for r in rows)])


def _md_table(rows: list[dict]) -> str:
    names = list(rows[0])
    cell = lambda v: str(v).replace("|", "\\|")  # noqa: E731
    return "\n".join(["| " + " | ".join(names) + " |", "|" + " --- |" * len(names),
                      *("| " + " | ".join(cell(r[n]) for n in names) + " |" for r in rows)])


def _impl_rows(registry, op) -> list[dict]:
    return [{"impl": i.name, "kind": i.kind, "source": i.source, "backend": i.backend, "dtypes": ",".join(i.dtypes),
             "note": i.note} for i in registry.impls(op.name)]


OP_HELP = ("only these ops (comma list, repeatable): names, a glob ('toeplitz_*'), or WHO:GROUP, WHO a family "
           "(dense, sparse, toeplitz, lowrank, ...) or a forward op, GROUP forward, backward, input-grad, param-grad, "
           "update or all: --op toeplitz:backward is every transposed product and parameter gradient of the "
           "Toeplitz family, --op lora_mv:backward those of one forward op (`structbench list` shows the groups)")


def _op_groups(registry) -> list[dict]:
    """Per family and pass: its ops, and the --op group that picks them (`list`'s last table)."""
    rows = []
    for family in registry.families():
        ops = [op for op in registry.ops() if op.family == family]
        for training_pass in dict.fromkeys(op.training_pass for op in ops):
            rows.append({"--op": f"{family}:{training_pass}", "ops": " ".join(
                op.name + (f" (of {op.backward_of})" if op.backward_of else "")
                for op in ops if op.training_pass == training_pass)})
        if any(op.backward_of for op in ops):
            rows.append({"--op": f"{family}:backward", "ops": "the input-grad, param-grad and update ops above"})
    return rows


def cmd_list(args: argparse.Namespace) -> int:
    import csv
    import textwrap

    from structbench.run.profiles import PROFILES
    from structbench.core.registry import default_registry

    registry = default_registry()
    backends = sorted({i.backend for i in registry.impls()})
    if args.format == "csv":
        columns = ["op", "params", "family", "pass", "backward_of", "summary", "impl", "kind", "source", "backend",
                   "dtypes", "note"]
        writer = csv.DictWriter(sys.stdout, columns, lineterminator="\n")
        writer.writeheader()
        for op in registry.ops():
            for row in _impl_rows(registry, op):
                writer.writerow({"op": op.name, "params": " ".join(op_params(op)), "family": op.family,
                                 "pass": op.training_pass, "backward_of": op.backward_of or "",
                                 "summary": op.summary, **row})
        return 0
    markdown = args.format == "md"
    for op in registry.ops():
        title = f"{op.name} [{', '.join(op_params(op))}]: {op.summary}"
        print(f"## {title}\n" if markdown else textwrap.fill(title, LIST_COLUMNS, subsequent_indent="    "))
        print((_md_table if markdown else _text_table)(_impl_rows(registry, op)), end="\n\n")
    status = [{"backend": b, "status": _backend_status(b)} for b in backends]
    print("## backends here\n\n" + _md_table(status) if markdown else "backends here:\n" + _text_table(status))
    profiles = [{"profile": p.name, "summary": p.summary} for p in PROFILES.values()]
    print("\n## profiles\n\n" + _md_table(profiles) if markdown else "\nprofiles:\n" + _text_table(profiles))
    groups = _op_groups(registry)
    heading = "op groups (--op FAMILY:GROUP; also FORWARD_OP:GROUP and globs)"
    print(f"\n## {heading}\n\n" + _md_table(groups) if markdown else f"\n{heading}:\n" + _text_table(groups))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from structbench.core.backends import cuda_reason
    from structbench.measure.calibrate import CALIBRATION_SECONDS, format_load, is_cached, load_or_measure

    devices = [args.device] if args.device else ["cpu"] + (["cuda"] if cuda_reason() is None else [])
    for device in devices:
        if args.force or args.fresh or not is_cached(device):
            print(f"calibrating {device} ceilings (~{CALIBRATION_SECONDS[device]} s) ...", flush=True)
        calibration = load_or_measure(device, force=args.force, fresh=args.fresh)
        peaks = ", ".join(f"{p} {v:.4g}" for p, v in calibration.peak_tflops.items())
        print(f"{device} ({calibration.device_name}, measured {calibration.measured_at}): "
              f"copy {calibration.copy_gbps:.4g} GB/s; matmul peak TFLOP/s: {peaks}")
        print(f"  measured under {format_load(calibration.load)}")
        knee, reported = calibration.cache_knee_bytes, calibration.reported_cache_bytes
        print(f"  cache knee: {f'{knee / 2**20:.0f} MiB' if knee else 'none found'} (measured); "
              f"{f'{reported / 2**20:.0f} MiB' if reported else 'none'} reported by the device")
        for note in calibration.notes:
            print(f"  {note}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from structbench.run.benchmark import RunOptions, run_benchmark

    return run_benchmark(RunOptions.from_args(args)).exit_code


def cmd_check(args: argparse.Namespace) -> int:
    from structbench.run.check import main_check

    return main_check(args)


def _prepare_check() -> None:
    from structbench.run.check import prepare

    prepare()


def cmd_merge(args: argparse.Namespace) -> int:
    from structbench.run.merge import merge

    result = merge(args.out, args.csv, keep_duplicates=args.keep_duplicates)
    kept = f", {result.duplicates} duplicate case(s) kept" if result.duplicates else ""
    print(f"merged {result.rows} rows and {result.runs} run records from {result.files} CSVs into {args.out}{kept}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from structbench.analysis.compare import compare_impls, compare_runs, render

    threshold = args.threshold / 100
    if args.impl_a or args.impl_b:
        if not (args.impl_a and args.impl_b and len(args.csv) == 1):
            raise ValueError("--impl-a and --impl-b go together, with one CSV")
        result = compare_impls(args.csv[0], args.impl_a, args.impl_b, threshold=threshold, alpha=args.alpha)
        title = f"{args.impl_b} vs {args.impl_a} (ratio = {args.impl_b} time / {args.impl_a} time)"
        failed = args.fail_if_slower and len(result.regressions)  # two impls: a report, not a gate
    else:
        if len(args.csv) != 2:
            raise ValueError("compare needs BASE.csv NEW.csv (or one CSV with --impl-a/--impl-b)")
        result = compare_runs(*args.csv, threshold=threshold, alpha=args.alpha)
        title = f"{args.csv[1]} vs {args.csv[0]} (ratio = new time / base time)"
        failed = len(result.regressions)
    if result.table.empty:  # a CI gate must not pass while comparing nothing
        raise ValueError(f"{' and '.join(str(c) for c in args.csv)}: no case in common ({len(result.only_base)} "
                         f"only in the base, {len(result.only_new)} only in the new): nothing to compare")
    text = render(result, title=title, fmt=args.format, only_changes=args.only_changes, threshold=threshold,
                  alpha=args.alpha)
    _write_stdout(text)
    return 1 if failed else 0


def _write_stdout(text: str) -> None:
    """Print, and stay quiet when the reader went away (`compare ... | head`)."""
    import os

    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def newest_csv(directory: Path = RESULTS_DIR) -> Path:
    candidates = sorted(directory.glob("*.csv"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise ValueError(f"no results CSV in {directory}: run `make bench` first")
    return candidates[-1]


def cmd_report(args: argparse.Namespace) -> int:
    from structbench.analysis.report import write_report

    sources = [Path(p) for p in args.csv] if args.csv else [newest_csv()]
    source = sources[0]
    out = Path(args.out) if args.out else source.with_name(f"report-{source.stem}")
    try:
        path = write_report(sources, out)
    except OSError as exc:  # an unwritable --out: one line, like bad input
        print(f"structbench: cannot write the report to {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"report of {', '.join(map(str, sources))} -> {path} (and report.html, figures) ")
    print(path.read_text().split("\n## ")[0])  # the verdict table
    return 0


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; every option's default shown when it has one."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=min(100, max(60, _terminal_columns())))

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        shown = action.default is not None and action.default is not False and action.default != [] \
            and action.default != argparse.SUPPRESS
        if "%(default)" not in help_text and shown and action.option_strings:
            help_text += " (default: %(default)s)"
        return help_text


def _terminal_columns() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


def _choices_text() -> str:
    """Ops with their params and implementations, dtypes and profiles, for `run --help`."""
    import textwrap

    from structbench.core.dtypes import BENCH_DTYPES
    from structbench.run.profiles import PROFILES
    from structbench.core.registry import default_registry

    registry = default_registry()
    lines = ["ops [shape params] and their implementations (--op, --shape, --impl):"]
    for op in registry.ops():
        lines += textwrap.wrap(f"{op.name} [{', '.join(op_params(op))}]: "
                               + ", ".join(i.name for i in registry.impls(op.name)), 96,
                               initial_indent="  ", subsequent_indent="      ", break_on_hyphens=False)
    lines.append(f"dtypes (--dtype): {', '.join(BENCH_DTYPES)}")
    lines.append("profiles (--profile):")
    lines += [f"  {p.name}: {p.summary}" for p in PROFILES.values()]
    return "\n".join(lines)


RUN_EXAMPLES = """examples:
  structbench run --profile smoke --out results/smoke.csv
  structbench run --op dense_mv --impl numpy,torch-cpu --dtype fp32 --out results/mine.csv
  structbench run --op dense_mv --shape m=4096,n=11008 --dtype fp16 --impl triton,torch
  structbench run --op lowrank_mv --shape m=2048,n=2048,r=16 --shape m=4096,n=4096,r=64
  structbench run --op csr_mv --shape m=4096,n=4096,density=0.01,dist=powerlaw --impl scipy
  structbench run --op toeplitz:backward --dtype fp32   # a family's transposed products and gradients
  structbench run --op dense_mv --impl numpy,torch-cpu --dtype fp32 --out results/mine.csv --resume

Ctrl-C (or SIGTERM) stops at once with exit 130 (143), keeping every finished row;
--resume then runs the cases the CSV lacks (with the same settings, or --force)."""


class _Parser(argparse.ArgumentParser):
    """A parser whose description may end in text made only when --help is shown (the
    registry's ops and impls): parsing a command line imports nothing heavy."""

    def __init__(self, *args, describe=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._describe = describe

    def format_help(self) -> str:
        if self._describe is not None:
            self.description = f"{self.description}\n\n{self._describe()}"
            self._describe = None
        return super().format_help()


def _profile_name(text: str) -> str:
    from structbench.run.profiles import PROFILES

    if text not in PROFILES:
        raise argparse.ArgumentTypeError(f"unknown profile {text!r}; known: {', '.join(PROFILES)}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="structbench", description=__doc__, formatter_class=_Formatter,
                     epilog="`structbench COMMAND --help` shows each command's options and examples.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name: str, summary: str, description: str, epilog: str, describe=None) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=f"{summary}.\n\n{description}", epilog=epilog,
                              formatter_class=_Formatter, describe=describe)

    listing = command("list", "ops, implementations, dtypes, and which backends run here",
                      "One table per op (its shape parameters in brackets): every implementation, ours or a\n"
                      "baseline, its backend and dtypes; then whether each backend runs on this machine.",
                      "examples:\n  structbench list\n  structbench list --format md > IMPLEMENTATIONS.md\n"
                      "  structbench list --format csv")
    listing.add_argument("--format", choices=["text", "md", "csv"], default="text", help="output format")
    listing.set_defaults(func=cmd_list)

    calibrate = command("calibrate", "measure copy bandwidth and matmul peaks (cached per device)",
                        "The ceilings pct_of_bw and pct_of_peak are held against, measured once per device and\n"
                        "software versions and cached in results/calibration/ (cpu ~10 s, cuda ~20 s).",
                        "examples:\n  structbench calibrate\n  structbench calibrate --device cpu --force")
    calibrate.add_argument("--device", type=available_device, metavar="{cpu,cuda}",
                           help="only this device (cuda needs a GPU here); default: every device here")
    calibrate.add_argument("--force", action="store_true", help="measure again even if cached (a measurement far "
                           "below the cached one is refused: the machine was loaded)")
    calibrate.add_argument("--fresh", action="store_true", help="measure again and cache the result even if it is "
                           "far below the cached one (new hardware, a real change)")
    calibrate.set_defaults(func=cmd_calibrate)

    run = command("run", "run a sweep and append rows to a CSV",
                  "Cases of a profile (or ad-hoc --shape cases), each verified against the float64 reference,\n"
                  "then timed; one CSV row per case, written as it is measured.", RUN_EXAMPLES, _choices_text)
    run.add_argument("--op", action="extend", type=comma_list, metavar="OP[,OP]",
                     help=OP_HELP)
    run.add_argument("--impl", action="extend", type=comma_list, metavar="IMPL[,IMPL]",
                     help="only these implementations (comma list, repeatable)")
    run.add_argument("--dtype", action="extend", type=comma_list, metavar="DTYPE[,DTYPE]",
                     help="only these dtypes: fp32, fp16, bf16, int8 (comma list, repeatable)")
    run.add_argument("--shape", action="append", type=shape_spec, metavar="NAME=V[,NAME=V]",
                     help="ad-hoc case(s) of the --op ops instead of the profile's shapes, e.g. m=4096,n=11008 "
                          "or m=2048,n=2048,r=16 (repeatable)")
    from structbench.run.profiles import PROFILES  # names only: every profile --profile takes

    run.add_argument("--profile", type=_profile_name, metavar="{" + ",".join(PROFILES) + "}",
                     help="the sweep (listed above); default: quick with a GPU, cpu without")
    run.add_argument("--out", metavar="CSV", help="CSV to write (default: results/<profile>-<time>.csv)")
    run.add_argument("--resume", action="store_true", help="only the cases --out has no row for")
    run.add_argument("--append", action="store_true", help="allow an --out that has rows: add another run")
    run.add_argument("--force", action="store_true", help="--resume even if the settings differ from the CSV's")
    run.add_argument("--seed", type=int, default=0, help="base seed of the inputs")
    run.add_argument("--warm-cache", action="store_true", help="do not flush L2 between repetitions")
    run.add_argument("--cuda-graph-below-us", type=nonnegative_float, default=0.0, metavar="US",
                     help="time calls faster than US microseconds in CUDA-graph mode (e.g. 20; 0: never)")
    run.add_argument("--timeout", type=positive_float, default=300.0, metavar="S",
                     help="seconds (> 0) per case before it is an error row")
    run.add_argument("--no-isolate", action="store_true",
                     help="run cases in this process: a crash ends the sweep, --timeout does not apply")
    run.add_argument("--no-calibrate", action="store_true", help="skip the roofline ceilings (pct_of_* empty)")
    run.add_argument("--strict", action="store_true", help="exit 1 if any case ends in error")
    run.add_argument("--deadline", type=positive_float, metavar="SECONDS",
                     help="start no case after SECONDS (the one running finishes); cases run claims first")
    run.add_argument("--shard", type=shard_spec, metavar="I/N",
                     help="run shard I (0-based) of N of the planned cases, e.g. 0/8 (structbench/run/shard.py; "
                          "N jobs cover every case once; `structbench merge` joins their CSVs)")
    run.add_argument("--devices", metavar="all|0,2,5",
                     help="one worker per GPU (all, or indices), cases dealt from one shared queue")
    run.add_argument("--plan", action="store_true",
                     help="print the cases, compiles, input sets and estimated time per phase; run nothing")
    run.set_defaults(func=cmd_run)

    checking = command("check", "the correctness gate alone: every test shape, no timing (exit 1 on a failure)",
                       "Each chosen implementation (ours, the baselines, a --suite's) on every test shape of its op\n"
                       "(odd, tiny, several blocks wide, empty dimensions; or --shape), each dtype: seeded random\n"
                       "inputs, the output poisoned first, the result held against the float64 reference (int8:\n"
                       "exact). One line per failing case, then a table. Exit 0 all pass, 1 any fails, 2 usage.\n"
                       "Without a GPU, Triton kernels run on the CPU interpreter (TRITON_INTERPRET=1).",
                       "examples:\n  structbench check --suite mine.py --op dense_mv --impl mine --dtype fp32\n"
                       "  structbench check --op dense_mv --impl triton --dtype fp16\n"
                       "  structbench check --suite mine.py --op dense_mv --impl mine --shape m=4096,n=11008",
                       _choices_text)
    checking.add_argument("--op", action="extend", type=comma_list, metavar="OP[,OP]",
                          help=OP_HELP)
    checking.add_argument("--impl", action="extend", type=comma_list, metavar="IMPL[,IMPL]",
                          help="only these implementations (comma list, repeatable)")
    checking.add_argument("--dtype", action="extend", type=comma_list, metavar="DTYPE[,DTYPE]",
                          help="only these dtypes: fp32, fp16, bf16, int8 (comma list, repeatable)")
    checking.add_argument("--shape", action="append", type=shape_spec, metavar="NAME=V[,NAME=V]",
                          help="check these shapes of the --op ops instead of their test shapes (repeatable)")
    checking.add_argument("--seed", type=int, default=0, help="base seed of the inputs")
    checking.add_argument("--timeout", type=positive_float, default=60.0, metavar="S",
                          help="seconds (> 0) a case may take before it is an error (a kernel looping in Python)")
    checking.set_defaults(func=cmd_check, prepare=_prepare_check)

    compare = command("compare", "compare two runs (or two impls of one run); exit 1 on regression",
                      "Matches rows by case; a change needs a ratio beyond --threshold and significance\n"
                      "(Mann-Whitney U at --alpha on the raw samples). Exit 1 on a regression (significantly\n"
                      "slower, or ok -> error/timeout/skipped), 2 on unusable input.",
                      "examples:\n  structbench compare results/BASE.csv results/NEW.csv --threshold 5\n"
                      "  structbench compare results/X.csv --impl-a torch --impl-b triton --format md")
    compare.add_argument("csv", nargs="+", help="BASE.csv NEW.csv, or one CSV with --impl-a/--impl-b")
    compare.add_argument("--threshold", type=nonnegative_float, default=5.0, metavar="PCT",
                         help="percent change (>= 0) that counts")
    compare.add_argument("--alpha", type=probability, default=0.01,
                         help="significance level of the rank test, between 0 and 1")
    compare.add_argument("--format", choices=["text", "md", "csv"], default="text", help="output format")
    compare.add_argument("--impl-a", help="base implementation, within one run")
    compare.add_argument("--impl-b", help="implementation compared with --impl-a")
    compare.add_argument("--only-changes", action="store_true",
                         help="list regressions and improvements only; summarise the rest in one line")
    compare.add_argument("--fail-if-slower", action="store_true",
                         help="with --impl-a/--impl-b: exit 1 when impl-b is significantly slower (default: exit 0)")
    compare.set_defaults(func=cmd_compare)

    merging = command("merge", "join results CSVs (shards, machines) into one, with their sidecars",
                      "Headers must agree; the same case twice on the same device is refused unless\n"
                      "--keep-duplicates (the same case on two devices is kept: that is a cross-device run).",
                      "examples:\n  structbench merge results/full-all.csv results/full-shard-*-of-8.csv\n"
                      "  structbench report results/full-all.csv")
    merging.add_argument("out", metavar="OUT.csv", help="the merged CSV to write (must not exist)")
    merging.add_argument("csv", nargs="+", metavar="IN.csv", help="CSVs to join")
    merging.add_argument("--keep-duplicates", action="store_true", help="keep a case measured twice on one device")
    merging.set_defaults(func=cmd_merge)

    report = command("report", "claims C1-C7 with figures and verdicts, from one results CSV",
                     "Writes report.md, report.html and a PNG + SVG per figure, from the CSV only.",
                     "examples:\n  structbench report\n  structbench report results/X.csv --out /tmp/report\n"
                     "  structbench report results/h100.csv results/h200.csv --out /tmp/h100-vs-h200")
    report.add_argument("csv", nargs="*", help="results CSV(s) (default: the newest in results/); several CSVs "
                                               "(e.g. one per GPU model) add each device's claims and the "
                                               "devices side by side")
    report.add_argument("--out", help="output directory (default: results/report-<csv name>/)")
    report.set_defaults(func=cmd_report)
    from structbench.inspect import facts as bench_inspect  # stdlib-only at import: parsing stays light

    bench_inspect.add_parser(sub)
    for name in ("list", "check", "run", "inspect"):
        sub.choices[name].add_argument(
            "--suite", action="append", metavar="FILE.py|MODULE",
            help="also load the kernels (and ops) this user suite registers: a Python file or an importable "
                 "module (repeatable; also STRUCTBENCH_SUITES and the structbench.suites entry points)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The CLI. Called without argv (the command line), it keeps ignoring Ctrl-C once the
    work is done, so a late one cannot break the interpreter's exit; called with argv (a
    program, a test), it restores the caller's signal handlers."""
    as_command = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    previous = signals.install()
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv
        from structbench.core import suites

        if getattr(args, "prepare", None):  # before a suite is imported (check: the Triton interpreter)
            args.prepare()
        with suites.using(getattr(args, "suite", None)):  # exported: workers load the same suites
            if getattr(args, "op", None) and args.command in ("run", "check"):  # groups and globs -> op names
                from structbench.core.registry import default_registry

                args.op = default_registry().select_ops(args.op)
            return args.func(args)
    except ValueError as exc:  # bad --op/--dtype/--out and the like
        print(f"structbench: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the benchmark worker could not start
        print(f"structbench: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `structbench list | head`: the reader left, as asked; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except signals.Interrupted as stop:  # before any case ran (imports, planning, --out checks)
        signals.ignore()
        print("\nstructbench: interrupted before any case ran", file=sys.stderr)
        return stop.exit_code
    finally:
        if as_command:
            signals.ignore()
        else:
            signals.restore(previous)
