"""structbench's harness: registry, backends, timing, sweeps and the CLI."""
