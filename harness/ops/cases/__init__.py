"""Verification cases of every op: hand-picked tables and seeded random draws, one module per op family."""
