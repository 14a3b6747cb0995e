"""Analysis: fit compute–performance and entropy–performance laws to runs, predict asymptotes."""
