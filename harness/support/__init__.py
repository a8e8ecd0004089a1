"""Layer 0: what every layer needs and no op knows about: atomic result files and histories,
timing and thread pinning, the machine record.
"""
