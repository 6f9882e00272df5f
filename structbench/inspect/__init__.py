"""What kernels compile to (registers, spills, loads) and launcher host overhead."""
