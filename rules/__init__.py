"""Pure compliance policy for order-gateway.

Nothing in this package performs I/O on the request path, reads the clock, or knows about
aiohttp: every function takes plain values (and ``now`` where time matters) and returns a
frozen decision.  ``gateway/`` supplies the values and acts on the decisions.
"""
