"""`python -m bench` and the `structbench` command: a Ctrl-C or SIGTERM while the CLI is
still being imported is a clean exit too (bench.cli.main handles them from then on)."""

import signal
import sys


def main() -> int:
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        from bench.cli import main as cli_main
    except KeyboardInterrupt:
        print("\nstructbench: interrupted before any case ran", file=sys.stderr)
        return 128 + signal.SIGINT
    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
