"""Serving: a trained run behind HTTP (FastAPI), with live interactions and items in a durable event log."""

from kgrec.serve.app import TOKEN_ENV, Service, create_app, serve
from kgrec.serve.events import EventLog
from kgrec.serve.live import Answer, LiveRecommender, UnknownItemError

__all__ = ["Answer", "EventLog", "LiveRecommender", "Service", "TOKEN_ENV", "UnknownItemError", "create_app", "serve"]
