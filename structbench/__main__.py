"""`python -m structbench` and the `structbench` command: a Ctrl-C or SIGTERM while the CLI is
still being imported is a clean exit too (structbench.cli.main.main handles them from then on)."""

import sys

from structbench.run import signals


def main() -> int:
    signals.install()
    # Before numpy/torch load: this process's BLAS pools as every worker's (`--no-isolate`
    # and `calibrate` measure here); structbench.measure.env.configure_cpu_threads says why.
    from structbench.measure.env import configure_cpu_threads

    configure_cpu_threads()
    try:
        from structbench.cli.main import main as cli_main
    except signals.Interrupted as stop:
        signals.ignore()
        print("\nstructbench: interrupted before any case ran", file=sys.stderr)
        return stop.exit_code
    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
