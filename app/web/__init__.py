"""The case managers' web view: server-rendered pages, staff sessions, CSRF and security headers."""
