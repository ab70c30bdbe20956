"""Lambda entry points, thin: ``routes`` (the WebSocket routes). Each module's functions
are named in ``chat.functions``, which both hosts read."""
