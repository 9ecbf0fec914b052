"""Staff accounts (case managers and admins), their web sessions and second factors."""
