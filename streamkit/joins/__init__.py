"""Joins: stream-table, stream-global-table and table-table (windowed stream-stream joins
live beside the window stores)."""
