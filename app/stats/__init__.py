"""Partner statistics: aggregates that leave the service only with small cells suppressed."""
