"""Test support that ships with CoffeeChat, such as the storage conformance suite."""
