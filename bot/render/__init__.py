"""Rendering at the edge: the same domain objects become console text, Telegram HTML or Slack blocks."""
