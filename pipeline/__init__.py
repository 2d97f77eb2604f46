"""Pipeline definition (pure `create_pipeline`) and per-family configuration."""
