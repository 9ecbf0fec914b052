"""Flow definitions and the pure engine that walks them."""
