"""The order router: engine, service, ledger and command line around the pure domain."""
