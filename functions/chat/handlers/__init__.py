"""Lambda entry points, thin: ``routes`` (the WebSocket routes), ``fanout_worker`` (the
fan-out queue), ``authorizer`` (the $connect authorizer) and ``sign_up`` (the user pool's
pre sign-up check). Each module's functions are named in ``chat.functions``, which both
hosts read."""
