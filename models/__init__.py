"""The pure domain of the order router: frozen types, validation, money. No I/O."""
