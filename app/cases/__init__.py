"""The two-way line: questions callers leave, and the answers case managers give."""
