"""leanrec.evaluate."""
