"""Transactional outbox: SMS and call-backs written with the change that caused them, sent by a worker."""
