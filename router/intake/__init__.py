"""HTTP/JSON order intake: a thin FastAPI gateway in front of the router's gRPC services."""
