"""The customer service: a customers table fed by customer events, and the number of
customers per level."""
import streamkit

app = streamkit.App("customer")

customers = app.table("customers", topic="customer-events")
per_level = (customers.changes()
             .group_by(lambda c: c.get("level", "bronze"), name="customers-by-level")
             .count("customers-per-level"))
