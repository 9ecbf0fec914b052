"""Partner statistics: aggregates that leave the service only with small cells suppressed."""

DEFAULT_STATS_ZONE = "America/Lima"
"""Where the pilot ran; days, weeks and months are counted in this zone unless configured."""
