"""Layer 5: benchmarks: the in-process runner, the layer suites and the benchdnn/DeepBench shape files."""
