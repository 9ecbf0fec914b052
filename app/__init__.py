"""Rimay: an open IVR and SMS hotline backend."""
