"""A small bank: transfers behind the gate, for the install tests."""
