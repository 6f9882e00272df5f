"""NumPy references: float64 for float inputs, exact int64 for integer inputs."""
