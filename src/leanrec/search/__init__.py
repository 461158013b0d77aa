"""leanrec.search."""
