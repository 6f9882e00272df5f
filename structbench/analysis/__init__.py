"""Reading CSVs: claims, report, compare, tables. Never imports ops or run."""
