"""leanrec.train."""
