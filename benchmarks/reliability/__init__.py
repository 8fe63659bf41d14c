"""The reliability suite: replicas on one PostgreSQL under faults, and a history checker."""
