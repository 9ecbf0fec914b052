"""FLOIP Flow Results: survey answers as Flow Results packages, by file export and JSON:API."""
