"""Layer 2: the backend registry (declarations, roles, cost and error models), the one dispatch
path every call takes, plug-in loading and the capability matrix.
"""
