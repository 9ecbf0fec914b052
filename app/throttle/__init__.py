"""Counting recent attempts by key, in the database, so limits hold across workers."""
