"""PostgreSQL: connections, migrations and the queries shared by the batch and the dashboard."""
