"""``modrun repl``: an interactive console for models and functions (MER's REPL)."""
