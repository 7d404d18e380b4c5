"""The bundled paper broker: a real HTTP upstream for the upstox, kotak and paradex dialects."""

from gateway.paper.app import create_paper_app, run_paper_broker

__all__ = ["create_paper_app", "run_paper_broker"]
