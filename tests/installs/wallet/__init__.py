"""A small wallet: transfers behind the gate, for the install tests."""
