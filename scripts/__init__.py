"""Developer tooling: the native stack (`scripts/local-stack`) and the pieces tests reuse."""
