"""Routers: thin adapters from HTTP to the job repository."""
