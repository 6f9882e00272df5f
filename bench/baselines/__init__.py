"""Library calls we compare against. Baselines, never counted as our kernels."""
