"""Business rules, one module per feature; they speak to storage only through the interfaces."""
