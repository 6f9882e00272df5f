"""Running sweeps: profiles, plan, sweep and its workers, results CSV, shards, merge."""
