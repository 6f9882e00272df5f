"""The bottom layer: registry (Op, Impl), dtypes, inputs, backends, cases, verification."""
