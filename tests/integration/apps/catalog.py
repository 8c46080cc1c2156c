"""An app for the query tests: tables materialized from topics, with string and integer
keys, and one table hidden from queries."""
import os

import streamkit

APP_ID = os.environ.get("CATALOG_APP_ID", "catalog")
app = streamkit.App(APP_ID)

items = app.table("items", topic=f"{APP_ID}-items")                 # str keys
ranks = app.table("ranks", topic=f"{APP_ID}-ranks", keys="int")     # 64-bit int keys
secret = app.table("secret", topic=f"{APP_ID}-secret", expose=False)
