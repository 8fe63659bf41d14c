"""gRPC service of the router: servicers, proto <-> domain conversion, errors, bootstrap."""
