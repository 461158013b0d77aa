"""leanrec.embeddings."""
