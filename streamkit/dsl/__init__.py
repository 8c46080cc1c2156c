"""The stream DSL: what users write to declare a processing graph (Stream, Table, ...)."""
from .streams import (
                      CogroupedStream,
                      GroupedStream,
                      GroupedTable,
                      Stream,
                      SuppressedTable,
                      Table,
                      WindowedCogroupedStream,
                      WindowedStream,
                      WindowedTable,
                      global_table,
                      source_stream,
                      table_from_topic,
)

__all__ = ["Stream", "GroupedStream", "GroupedTable", "CogroupedStream", "Table",
           "WindowedStream", "WindowedTable", "SuppressedTable", "WindowedCogroupedStream",
           "source_stream", "table_from_topic", "global_table"]
