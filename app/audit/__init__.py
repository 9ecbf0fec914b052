"""An append-only record of what staff saw and changed."""
