"""Partner API keys: issued and revoked by operators, checked on every `/api/v1` request."""
