"""The `structbench` command line."""
