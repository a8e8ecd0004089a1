"""Layer 5: the verifier (cases against the float64 reference, within the error bound), determinism,
coverage, and the mutant catalogue that measures the verifier itself.
"""
