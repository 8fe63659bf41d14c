"""The reliability suite: its history checker, and replicas on a private PostgreSQL under faults."""
