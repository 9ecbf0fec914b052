"""Pseudonyms, key derivation and phone-number masking: no number in plaintext anywhere."""
