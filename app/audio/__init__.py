"""Audio for flow prompts: recorded and generated files, their build and their HTTP route."""
