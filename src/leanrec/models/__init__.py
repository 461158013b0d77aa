"""leanrec.models."""
