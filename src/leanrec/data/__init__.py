"""leanrec.data."""
