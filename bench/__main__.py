"""`python -m bench` and the `structbench` command: a Ctrl-C or SIGTERM while the CLI is
still being imported is a clean exit too (bench.cli.main handles them from then on)."""

import sys

from bench import signals


def main() -> int:
    signals.install()
    # Before numpy/torch load: this process's BLAS pools as every worker's (`--no-isolate`
    # and `calibrate` measure here); bench.env.configure_cpu_threads says why.
    from bench.env import configure_cpu_threads

    configure_cpu_threads()
    try:
        from bench.cli import main as cli_main
    except signals.Interrupted as stop:
        signals.ignore()
        print("\nstructbench: interrupted before any case ran", file=sys.stderr)
        return stop.exit_code
    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
