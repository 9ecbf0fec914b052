"""Reply contacts: a caller's number, encrypted, kept only for the purposes they consented to."""
