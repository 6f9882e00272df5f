"""`python -m bench` and the `structbench` command: a Ctrl-C or SIGTERM while the CLI is
still being imported is a clean exit too (bench.cli.main handles them from then on)."""

import sys

from bench import signals


def main() -> int:
    signals.install()
    try:
        from bench.cli import main as cli_main
    except signals.Interrupted as stop:
        signals.ignore()
        print("\nstructbench: interrupted before any case ran", file=sys.stderr)
        return stop.exit_code
    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
