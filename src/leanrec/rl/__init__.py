"""leanrec.rl."""
