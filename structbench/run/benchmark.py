"""A whole `structbench run`: the command line's and the API's (structbench.run) one path.

RunOptions holds what the flags say (the same names as `run`'s options); run_benchmark()
checks them (names, shapes, --out), plans the cases, takes the CSV's lock, writes the run
record, resumes, shards, starts the executor (in process, one isolated worker, one per GPU
of --devices) and runs the sweep, returning the rows and the exit code.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from structbench.run import signals

RESULTS_DIR = Path(__file__).resolve().parents[2] / "results"


@dataclass
class RunOptions:
    """`structbench run`'s options, by their flag names (--no-isolate: no_isolate)."""

    op: list[str] | None = None
    impl: list[str] | None = None
    dtype: list[str] | None = None
    shape: list[dict] | None = None
    profile: str | None = None
    out: str | None = None
    resume: bool = False
    append: bool = False
    force: bool = False
    seed: int = 0
    warm_cache: bool = False
    cuda_graph_below_us: float = 0.0
    timeout: float = 300.0
    no_isolate: bool = False
    no_calibrate: bool = False
    strict: bool = False
    deadline: float | None = None
    shard: tuple[int, int] | None = None
    devices: str | None = None
    plan: bool = False
    argv: list[str] = field(default_factory=list)  # the command line, for the run record and --resume hints

    @classmethod
    def from_args(cls, args) -> RunOptions:
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})


@dataclass
class RunOutcome:
    rows: list[dict]  # the rows written by this run, in order
    cases: int  # cases planned (after --resume and --shard)
    out: Path | None
    exit_code: int


def backend_status(name: str) -> str:
    from structbench.core.backends import get_backend

    backend = get_backend(name)
    reason = backend.unavailable_reason()
    if reason:
        return f"unavailable: {reason}"
    untimeable = backend.untimeable_reason()
    return f"runs, not timed: {untimeable}" if untimeable else "available"


def op_params(op) -> list[str]:
    """Every parameter of an op's shapes, its dims first: ['m', 'n', 'r'] for lowrank_mv.
    Taken from its test shapes and every profile's shapes of it (the ones --shape takes)."""
    from structbench.run.profiles import PROFILES

    names = dict.fromkeys(op.dims)
    for shape in (*op.test_shapes, *(s for p in PROFILES.values() for s in p.shapes.get(op.name, ()))):
        names.update(dict.fromkeys(shape))
    names.update(dict.fromkeys(op.extra_params))
    return list(names)


def required_params(op) -> list[str]:
    """The params every test shape of the op has (r, scale); the others are alternatives
    (CSR: density and dist, or a named matrix)."""
    shapes = op.test_shapes or ({d: 1 for d in op.dims},)
    return [name for name in op_params(op) if all(name in shape for shape in shapes)]


def _default_out(profile: str) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return RESULTS_DIR / f"{profile}-{stamp}.csv"


def _announce_cpu_only(registry, profile) -> None:
    from structbench.core.backends import cuda_reason

    _say(f"note: no GPU here ({cuda_reason()}): running the '{profile.name}' profile, "
          f"CPU backends only ({', '.join(profile.backends)}). GPU backends left out:")
    for name in sorted({i.backend for i in registry.impls()} - set(profile.backends)):
        _say(f"  {name}: {backend_status(name)}")


def _settings(args: RunOptions, profile):
    from structbench.run.runner import SweepSettings

    policy = profile.timing
    if args.warm_cache:
        policy = dataclasses.replace(policy, flush_l2=False)
    if args.cuda_graph_below_us:
        policy = dataclasses.replace(policy, graph_below_ms=args.cuda_graph_below_us / 1e3)
    return SweepSettings(policy=policy, base_seed=args.seed, profile_name=profile.name,
                         run_id=uuid.uuid4().hex[:12], calibrate=not args.no_calibrate)


def _fingerprint(settings) -> dict:
    """What must match for rows of two sweeps to belong in one CSV (checked by --resume)."""
    record = {"profile": settings.profile_name, "seed": settings.base_seed,
              "policy": dataclasses.asdict(settings.policy)}
    return json.loads(json.dumps(record))  # as the runs sidecar will hold it


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """'seed 0 -> 1', 'policy.flush_l2 True -> False' for keys both hold (a field added
    since the old run is not a difference)."""
    found = []
    for key in old.keys() & new.keys():
        if isinstance(old[key], dict) and isinstance(new[key], dict):
            found += _differences(old[key], new[key], f"{prefix}{key}.")
        elif old[key] != new[key]:
            found.append(f"{prefix}{key} {old[key]!r} -> {new[key]!r}")
    return sorted(found)


def _check_names(registry, args: RunOptions) -> None:
    """Unknown --op / --impl / --dtype values: named, with the known ones listed."""
    from structbench.core.dtypes import get_dtype

    if args.op:  # groups and globs (toeplitz:backward, 'csr_*') as op names: the API takes them too
        args.op = registry.select_ops(args.op)
    known_ops = [op.name for op in registry.ops()]
    for name in args.op or ():
        if name not in known_ops:
            raise ValueError(f"unknown op {name!r}; known: {', '.join(known_ops)}")
    ops = args.op or known_ops
    known_impls = list(dict.fromkeys(i.name for op in ops for i in registry.impls(op)))
    for name in args.impl or ():
        if name not in known_impls:
            scope = f" for {', '.join(args.op)}" if args.op else ""
            raise ValueError(f"unknown impl {name!r}{scope}; known: {', '.join(known_impls)}")
    for name in args.dtype or ():
        get_dtype(name)


def _run_profile(args: RunOptions, registry):
    """The profile of this run: the named (or default) one, or with --shape an ad-hoc one
    holding just those shapes for the --op ops (timing rule of the named/default profile;
    any backend when --impl names the implementations)."""
    from structbench.run.profiles import CPU_BACKENDS, GPU_BACKENDS, default_profile_name, get_profile

    base = get_profile(args.profile or default_profile_name())
    if not args.shape:
        return base
    if not args.op:
        raise ValueError("--shape needs --op: the op(s) the shape is for, e.g. --op dense_mv --shape m=4096,n=11008")
    shapes = {name: tuple(_check_shape(registry.op(name), shape) for shape in args.shape) for name in args.op}
    backends = base.backends if args.profile or not args.impl else CPU_BACKENDS + GPU_BACKENDS
    return dataclasses.replace(base, name="adhoc", summary=f"--shape cases, timed as '{base.name}'",
                               backends=backends, shapes=shapes)


def _check_shape(op, shape: dict) -> dict:
    """The --shape case of op, with the dims its other parameters imply (a named matrix's
    size); a bad parameter is a ValueError naming --shape, the op and the parameter."""
    known, required = op_params(op), required_params(op)
    unknown = [name for name in shape if name not in known]
    if unknown:
        raise ValueError(f"--shape: {op.name} has no parameter {unknown[0]!r}; its parameters: {', '.join(known)}")
    try:
        shape = op.complete(shape)
    except ValueError as exc:
        raise ValueError(f"--shape: {op.name}: {exc}") from None
    missing = [name for name in required if name not in shape]
    if missing:
        raise ValueError(f"--shape: {op.name} needs {', '.join(missing)} (parameters: {', '.join(known)}); "
                         f"e.g. --shape {','.join(f'{n}=16' for n in required)}")
    try:
        op.check_params(shape)
    except ValueError as exc:
        raise ValueError(f"--shape: {exc}") from None
    return shape


def _check_out(out: Path, args: RunOptions) -> None:
    """--out before any work: writable, a results CSV, and not silently run twice."""
    from structbench.run.results import check_out_path, count_rows

    if args.resume and args.append:
        raise ValueError("--resume and --append: choose one (skip the cases present, or run them again)")
    check_out_path(out)
    rows = count_rows(out)
    if rows and not (args.resume or args.append):
        raise ValueError(f"{out} already has {rows} rows: add --resume to run only the cases it lacks, "
                         "--append to add another run of them, or choose another --out")


_echo: list[Callable[[str], None]] = []  # where run_benchmark's messages go (innermost last)


def _say(text: str = "", **print_kwargs) -> None:
    if _echo:
        _echo[-1](text)
    else:
        print(text, **print_kwargs)


def run_benchmark(options: RunOptions, echo: Callable[[str], None] | None = None) -> RunOutcome:
    """Run `structbench run` with these options: its rows (also in the CSV) and exit code.
    ``echo`` receives the messages and progress lines (None: printed, progress bar on a
    terminal). Usage errors raise ValueError (one line), before any case runs."""
    if echo is not None:
        _echo.append(echo)
    try:
        return _run(options, echo)
    finally:
        if echo is not None:
            _echo.pop()


def _run(args: RunOptions, echo) -> RunOutcome:
    from structbench.run.results import OutputLock

    if args.resume and not args.out:
        raise ValueError("--resume needs --out: the CSV whose rows are kept")
    if args.out:
        _check_out(Path(args.out), args)  # first: a bad --out costs no time
    from structbench.core.backends import cuda_reason
    from structbench.core.registry import default_registry

    deadline = time.monotonic() + args.deadline if args.deadline is not None else None
    registry = default_registry()
    _check_names(registry, args)
    profile = _run_profile(args, registry)
    if args.plan:
        return RunOutcome([], 0, None, _print_plan(registry, profile, args))
    if args.devices:  # before any work: a bad list is a usage error
        from structbench.run.multidevice import cuda_device_count, parse_devices

        if args.no_isolate:
            raise ValueError("--devices runs one isolated worker per GPU; it does not go with --no-isolate")
        parse_devices(args.devices, cuda_device_count)
    out = Path(args.out) if args.out else _default_out(profile.name)
    _check_out(out, args)
    with OutputLock(out):
        if not args.profile and not args.shape and cuda_reason():
            _announce_cpu_only(registry, profile)
        return _run_sweep(args, registry, profile, out, deadline, echo)


def _check_resume(out: Path, settings, force: bool) -> None:
    from structbench.run.results import read_runs

    previous = [run["settings"] for run in read_runs(out).values() if isinstance(run.get("settings"), dict)]
    differences = _differences(previous[-1], _fingerprint(settings)) if previous else []
    if differences and not force:
        raise ValueError(f"--resume with other settings than the last run in {out}: {'; '.join(differences)}. "
                         "Use that run's flags, or add --force to mix them")
    if differences:
        _say(f"note: --force: resuming with other settings ({'; '.join(differences)})")


def _resume_command(args: RunOptions, out: Path) -> str:
    import shlex

    argv = [a for a in args.argv if a != "--append"]
    return shlex.join(["structbench", *argv, *([] if args.out else ["--out", str(out)]),
                       *([] if args.resume else ["--resume"])])


def _past(deadline: float) -> bool:
    from structbench.run import sweep

    return sweep._now() >= deadline  # the sweep's clock (time.monotonic; a test replaces it)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _run_sweep(args: RunOptions, registry, profile, out: Path, deadline: float | None, echo) -> RunOutcome:
    from structbench.measure.env import git_sha
    from structbench.run.results import ResultWriter, done_case_keys
    from structbench.run.runner import plan
    from structbench.run.sweep import case_devices, run_sweep, summary_by_op

    cases, unavailable = plan(registry, profile, ops=args.op, impls=args.impl, dtypes=args.dtype)
    for backend, reason in sorted(unavailable.items()):
        _say(f"note: backend {backend} left out: {reason}")
    if args.shard:  # of the whole plan, before --resume: every shard computes the same partition
        from structbench.run.shard import shard_cases

        index, count = args.shard
        planned = len(cases)
        cases = shard_cases(cases, index, count)
        _say(f"shard {index}/{count}: {len(cases)} of {planned} cases")
    settings = _settings(args, profile)
    if args.resume:
        _check_resume(out, settings, args.force)
        done = done_case_keys(out)
        kept = len(cases)
        cases = [case for case in cases if case.key() not in done]
        _say(f"resume: {kept - len(cases)} cases already in {out}, {len(cases)} to run")
    if not cases:
        shapeless = [name for name in args.op or () if not profile.shapes.get(name)]
        hint = (f"; the '{profile.name}' profile has no shapes of {', '.join(shapeless)}: give them with --shape"
                if shapeless else "")
        print(f"nothing to run: no case left that matches the filters on the available backends{hint}",
              file=sys.stderr)
        return RunOutcome([], 0, out, 0 if args.resume else 2)
    settings = dataclasses.replace(settings, devices=case_devices(registry, cases))
    _say(f"profile {profile.name}: {len(cases)} cases -> {out}")
    if args.no_isolate:
        _say("note: --no-isolate: cases run in this process, so a crash (segfault, CUDA abort) ends the "
              "sweep and --timeout does not apply")
    rows: list[dict] = []
    executor = None
    interrupted: signals.Interrupted | None = None
    with ResultWriter(out) as writer:
        # The run record is written first (every run_id of the CSV has one, even after a
        # SIGKILL), then completed once the worker is up, and at the end.
        writer.write_run({"run_id": settings.run_id, "event": "start", "argv": args.argv, "pid": os.getpid(),
                          "profile": profile.name, "started": _now(), "cases": len(cases),
                          "settings": _fingerprint(settings), "policy": dataclasses.asdict(settings.policy),
                          "deadline_s": args.deadline, "git_sha": git_sha()})
        try:
            if not args.no_isolate:
                _say("starting the benchmark worker (imports torch/triton/cupy, ~5-20 s)", flush=True)
            executor = _executor(args, settings)
            writer.write_run({"run_id": settings.run_id, "event": "ready", **executor.hello})
            run_sweep(executor, cases, writer, deadline=deadline, rows=rows, echo=echo)
        except signals.Interrupted as exc:  # Ctrl-C or SIGTERM (see main): stop now, keep the rows
            interrupted = exc
        finally:
            signals.ignore()  # from here on a Ctrl-C must not break the record (main restores them)
            clocks = executor.clocks() if executor is not None else {}
            if executor is not None:
                executor.close()
            writer.write_run({"run_id": settings.run_id, "event": "end", "finished": _now(),
                              "status": "interrupted" if interrupted else "complete" if len(rows) == len(cases)
                              else "deadline" if deadline is not None and _past(deadline) else "failed",
                              "cases_done": len(rows), "clocks_end": clocks})
    if interrupted is not None:
        print(f"\ninterrupted after {len(rows)} of {len(cases)} cases; `--resume` continues: "
              f"{_resume_command(args, out)}", file=sys.stderr)
        return RunOutcome(rows, len(cases), out, interrupted.exit_code)
    counts = Counter(row["status"] for row in rows)
    _say("\n" + summary_by_op(rows))
    _say(f"\ndone: {dict(counts)} rows in {out} (all columns there; `structbench report {out}`)")
    if deadline is not None and len(rows) < len(cases):
        _say(f"deadline: {args.deadline:g} s reached; {len(cases) - len(rows)} of {len(cases)} cases left "
              f"(not started; `--resume --out {out}` runs them)")
    return RunOutcome(rows, len(cases), out, 1 if counts.get("error") and args.strict else 0)


def _executor(args: RunOptions, settings):
    """The worker(s) that run the cases: in this process, one isolated worker, or one per
    GPU of --devices."""
    from structbench.run.sweep import DEFAULT_REGISTRY, InProcessExecutor, IsolatedExecutor

    if args.no_isolate:
        return InProcessExecutor(DEFAULT_REGISTRY, settings)
    if args.devices:
        from structbench.run.multidevice import MultiDeviceExecutor, cuda_device_count, parse_devices

        devices = parse_devices(args.devices, cuda_device_count)
        _say(f"one worker per GPU: {', '.join(devices)}", flush=True)
        return MultiDeviceExecutor.start(DEFAULT_REGISTRY, settings, args.timeout, devices)
    return IsolatedExecutor(DEFAULT_REGISTRY, settings, args.timeout)


def _print_plan(registry, profile, args: RunOptions) -> int:
    """`run --plan`: the cases as a GPU machine would run them, and the estimate."""
    from structbench.core.backends import get_backend
    from structbench.run.plan import describe_plan
    from structbench.run.runner import plan

    cases, unavailable = plan(registry, profile, ops=args.op, impls=args.impl, dtypes=args.dtype,
                              assume_available=True)
    on_gpu = any(get_backend(b).device == "cuda" for b in profile.backends)
    _say(describe_plan(cases, registry, profile, unavailable, on_gpu=on_gpu))
    return 0


