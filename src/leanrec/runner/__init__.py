"""leanrec.runner."""
