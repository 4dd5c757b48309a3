"""Differential tests: the clone and a real redis-server answer the same commands byte for byte."""
