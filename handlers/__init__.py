"""Tornado request handlers: thin adapters between HTTP and `server.gallery`."""
