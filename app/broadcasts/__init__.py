"""News broadcasts: subscriptions by SMS keyword or from the voice library, sent through the outbox."""
